"""'auto' measured: which plane-loss backend is fastest here, timed once per machine and shape class.

At the first surface of a shape class (the MLP's widths, the rows T·N rounded
to a power of two, the dtype, the thread count) ``plane_order`` times every
eligible backend on one chunk of that surface (each at the chunk size it
would use, up to ``TRIAL_POINTS``; best of ``REPEATS`` after a warm-up call,
interleaved, per grid point) and returns them fastest first. The result is kept in memory and in
``cache.native_dir()/plane-timings-<key>.json``, whose key is the C kernel's
build key: rebuilding the kernel (a new source, compiler or CPU) times again,
and deleting the cache folder forgets both. On the bench's MLP (51x51 grid) the
timing took 0.16 s at N = 10 and 0.55 s at N = 1000 (load 20), once per machine.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import threading
import time

import torch

from trajviz.kernels.cache import native_dir
from trajviz.kernels.mlp_plan import Linear, torch_plane
from trajviz.kernels.native import NativePlane, build_key, chunk_points
from trajviz.problem.tasks.base import Batch, Problem

REPEATS = 5  # best of, per backend
TRIAL_POINTS = 128  # at most this many grid points per timed call
_memory: dict[str, list[str]] = {}
_lock = threading.Lock()


def shape_class(layers: tuple, batch: Batch) -> str:
    """The key timings are kept under: widths, rows (a power of two), dtype, threads."""
    x = batch["x"]
    rows = x.shape[0] * x.shape[1]
    widths = [layers[0].in_features] + [layer.out_features for layer in layers if isinstance(layer, Linear)]
    acts = "".join("L" if isinstance(layer, Linear) else type(layer).__name__[0] for layer in layers)
    return (f"{'-'.join(map(str, widths))}:{acts}:rows{2 ** round(math.log2(max(rows, 1)))}:"
            f"{str(x.dtype).removeprefix('torch.')}:t{torch.get_num_threads()}")


def _path():
    return native_dir() / f"plane-timings-{build_key('plane_native') or 'nocc'}.json"


def _load() -> dict:
    try:
        return json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}


def _save(key: str, order: list[str], seconds: dict[str, float]) -> None:
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        table = _load()
        table[key] = {"order": order, "seconds_per_point": seconds}
        fd, tmp = tempfile.mkstemp(suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w") as f:
            json.dump(table, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache: the timing is kept in memory only


def _evaluator(name: str, layers: tuple, origin, basis, batch: Batch):
    if name == "native":
        return NativePlane.build(layers, origin, basis, batch)
    return torch_plane(layers, origin, basis, batch)


def time_backends(problem: Problem, layers: tuple, batch: Batch, points: int,
                  eligible: tuple[str, ...], chunks: dict[str, int] | None = None) -> dict[str, float]:
    """Seconds per grid point of each eligible backend on one chunk (its size from ``chunks``,
    else ``TRIAL_POINTS``) of a random plane through the batch."""
    size = problem.model.spec.size
    dtype = batch["x"].dtype
    gen = torch.Generator().manual_seed(0)
    origin = 0.1 * torch.randn(size, generator=gen, dtype=torch.float64).to(dtype)
    basis = torch.randn(2, size, generator=gen, dtype=torch.float64).to(dtype) / math.sqrt(size)
    trials = {}
    with torch.no_grad():
        for name in eligible:
            default = chunk_points(size) if name == "native" else TRIAL_POINTS
            g = max(1, min(points, TRIAL_POINTS, (chunks or {}).get(name, default)))
            coords = torch.rand(g, 2, generator=gen, dtype=torch.float64).to(dtype) - 0.5
            plane = _evaluator(name, layers, origin, basis, batch)
            plane.losses(coords)  # warm-up
            trials[name] = (plane, coords)
        best = dict.fromkeys(eligible, math.inf)
        for _ in range(REPEATS):  # interleaved: a burst of load from elsewhere falls on all
            for name, (plane, coords) in trials.items():
                t0 = time.perf_counter()
                plane.losses(coords)
                best[name] = min(best[name], (time.perf_counter() - t0) / coords.shape[0])
    return best


def plane_order(problem: Problem, layers: tuple, batch: Batch, points: int,
                eligible: tuple[str, ...], chunks: dict[str, int] | None = None) -> tuple[str, ...]:
    """``eligible`` fastest first, as timed on this machine for this shape class (timing now
    where nothing is kept)."""
    key = shape_class(layers, batch) + ":" + ",".join(sorted(eligible))
    with _lock:
        order = _memory.get(f"{_path()}:{key}")
        if order is None:
            kept = _load().get(key)
            order = kept["order"] if kept and set(kept["order"]) == set(eligible) else None
        if order is None:
            seconds = time_backends(problem, layers, batch, points, eligible, chunks)
            order = sorted(eligible, key=seconds.__getitem__)
            _save(key, order, seconds)
        _memory[f"{_path()}:{key}"] = order
    return tuple(order)


def forget() -> None:
    """Drop the timings kept in memory (tests; a new cache folder)."""
    with _lock:
        _memory.clear()
