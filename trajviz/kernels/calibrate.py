"""'auto' measured: which plane-loss backend is fastest here, timed once per machine and shape class.

At the first surface of a shape class (the MLP's widths, the rows T·N rounded
to a power of two, the dtype, the thread count) ``plane_order`` times every
eligible backend on about ``TRIAL_POINTS`` grid points of that surface's
shape, in chunks of the size it would use (best of ``REPEATS`` of this
process's CPU time after a warm-up, interleaved; see ``time_backends``) and
returns them fastest first. The result is kept in memory and in
``cache.native_dir()/plane-timings-v<FORMAT>-<key>.json``, whose key is the C
kernel's build key: rebuilding the kernel (a new source, compiler or CPU)
times again, and deleting the cache folder forgets both. It costs about
(REPEATS + 1) x 128 grid points per backend, once per machine and shape class:
about 0.15 s of CPU at N = 1000 samples on the bench's MLP.
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


FORMAT = 2  # of the timings file: a new timing method discards the old timings


def _path():
    return native_dir() / f"plane-timings-v{FORMAT}-{build_key('plane_native') or 'nocc'}.json"


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
    """CPU seconds per grid point of each eligible backend on about ``TRIAL_POINTS`` points of
    a random plane through the batch, in chunks of its own size (``chunks``).

    CPU time of this process, not wall time: on a machine shared with other work, wall
    time favours short calls (they fit between preemptions) over long ones; measured here,
    a 12-point torch chunk looked 3x faster per point than a 128-point native call at load
    20 while the whole grid ran 1.6x slower. (A kernel's threads all count: this
    measures work, which is what a loaded machine pays.)"""
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
            calls = max(1, min(points, TRIAL_POINTS) // g)  # about as many points for each
            coords = [torch.rand(g, 2, generator=gen, dtype=torch.float64).to(dtype) - 0.5
                      for _ in range(calls)]
            plane = _evaluator(name, layers, origin, basis, batch)
            plane.losses(coords[0])  # warm-up
            trials[name] = (plane, coords)
        best = dict.fromkeys(eligible, math.inf)
        for _ in range(REPEATS):  # interleaved: a burst of load from elsewhere falls on all
            for name, (plane, coords) in trials.items():
                t0 = time.process_time()
                for chunk in coords:
                    plane.losses(chunk)
                spent = time.process_time() - t0
                best[name] = min(best[name], spent / (len(coords) * coords[0].shape[0]))
    return best


def plane_order(problem: Problem, layers: tuple, batch: Batch, points: int,
                eligible: tuple[str, ...], chunks: dict[str, int] | None = None) -> tuple[str, ...]:
    """``eligible`` fastest first, as timed on this machine for this shape class (timing now
    where nothing is kept)."""
    key = shape_class(layers, batch) + ":" + ",".join(sorted(eligible))
    with _lock:
        remembered = f"{_path()}:{key}"  # the path names the build: computed once per call
        order = _memory.get(remembered)
        if order is None:
            kept = _load().get(key)
            order = kept["order"] if kept and set(kept["order"]) == set(eligible) else None
        if order is None:
            seconds = time_backends(problem, layers, batch, points, eligible, chunks)
            order = sorted(eligible, key=seconds.__getitem__)
            _save(key, order, seconds)
        _memory[remembered] = order
    return tuple(order)


def forget(disk: bool = False) -> None:
    """Drop the timings kept in memory (tests; a new cache folder), and with ``disk`` the
    machine's timings file too (the bench times afresh)."""
    with _lock:
        _memory.clear()
        if disk:
            _path().unlink(missing_ok=True)
