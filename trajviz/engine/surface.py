"""Loss surfaces on a slice, evaluated in vectorised chunks sized to cache and memory.

A surface is the loss of every task, on its full support set, at every point
θ(a, b) = origin + a·basis[0] + b·basis[1] of a regular grid over the slice.
The grid is evaluated chunk by chunk: ``evaluate_chunk`` maps G grid
coordinates to a [G, T] block of losses and needs nothing but the model, the
plane and the data, so an executor (in-process today, Dask later) can hand
chunks out with nothing large attached. A [A·B, P] tensor of the whole grid's
parameters is never built: a chunk holds [G, P] at most.

Three backends, one contract (tests/test_kernels.py holds each to the plain one),
chosen by the kernels' one dispatch (``trajviz.kernels.choose_plane``):

- ``plain`` (``method="vmap"``), for any model: ``vmap`` over grid points of
  ``vmap`` over tasks of ``problem.loss``.
- ``torch`` (``method="fused"``), for a multilayer perceptron (``nn.Linear`` layers and
  elementwise activations in an ``nn.Sequential``, or one ``nn.Linear``) with
  the loss ``tasks.base.mse_loss`` of that model: the same maths as batched
  matmuls. The first layer is linear in (a, b),
  W(a, b)·x + c(a, b) = Q₀ + a·Q_u + b·Q_v, so its three products with the
  data are taken once per chunk and the chunk's pre-activations are one
  [G, 2]×[2, H·T·N] matmul (whatever the input width); every later layer is
  one batched matmul over the chunk, [G, out, in]×[G, in, T·N], in which all
  tasks and samples share a grid point's weights. On the sinusoid MLP
  1-40-40-1 it was measured 2-3x faster than the vmap path, and at N = 1000
  at about half the speed of a large float32 GEMM (bench/bench_surface.py).
- ``native``: the C kernel (``trajviz.kernels.native``: all layers on
  L1-sized strips of samples, bias and ReLU inside the GEMM) where a C
  compiler exists and the activations have a C form.

"auto" takes the eligible backend timed fastest on this machine for this
shape class (``trajviz.kernels.calibrate``); an explicit request (``method``
or the ``kernels`` context) is tried first. The backend is chosen once per
surface, in the caller's thread, and travels to the chunks by name.

Chunks are sized to cache (``choose_chunk``): a single vmap over a whole 51×51 grid
was measured slower than a per-point loop (the activations no longer fit in cache).
"""
from __future__ import annotations

import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.func import vmap

from trajviz.data.run import Slice, Surface
from trajviz.engine.context import ChunkContext
from trajviz.engine.executors import IN_PROCESS
from trajviz.engine.work import DEFAULT_WORK, Work
from trajviz.kernels import choose_plane, prepared_plane, requested
from trajviz.kernels.mlp_plan import peak_activation
from trajviz.kernels.native import chunk_points
from trajviz.problem.models import unflatten
from trajviz.problem.tasks.base import Batch, Problem, TaskSet
from trajviz.spec.config import BOUNDS, MAX_GRID_POINTS

MIN_AXIS, MAX_AXIS = BOUNDS["slices.resolution"]  # the config's bounds, so the two agree
MAX_POINTS = MAX_GRID_POINTS
# A chunk's working set (its [G, P] parameters and the live activations of its
# G·T forward passes, as ``choose_chunk`` estimates it) on a CPU. Measured on the
# sinusoid MLP 1-40-40-1, 51x51 grid, 1 thread, with the prepared fused evaluator
# (``mlp_plan.PlaneMLP``: about a dozen ops per chunk), CPU ms for the grid at
# N = 1000 samples: 2 points 902, 4: 633, 8: 567, 12: 508, 16: 482, 25: 532,
# 48: 1395; at N = 10: 64 points 25, 128: 17, 256: 14, 512: 19, 818: 27
# (``bench/bench_surface.py --sweep``; a shared, loaded machine). 4 MiB picks 12 and 409:
# chunks in a core's cache, large enough that per-chunk ops do not dominate.
CPU_CHUNK_BYTES = 4 * 2**20
# On a GPU a chunk only has to fit memory: an eighth of what is free.
GPU_FREE_FRACTION = 8
# Tensors of an activation's size alive at once in a forward pass: a layer's input and output.
LIVE_ACTIVATIONS = 2
# method -> the kernels request it stands for ("auto": the context's, ``kernels.requested()``)
METHODS = {"auto": None, "vmap": "plain", "fused": "torch", "plain": "plain", "torch": "torch",
           "native": "native"}

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------- validation

def check_resolution(resolution: tuple[int, int]) -> tuple[int, int]:
    """(A, B) points along the slice's two axes, each in MIN_AXIS..MAX_AXIS (the config's
    ``slices.resolution`` bounds), at most ``MAX_POINTS`` in all."""
    try:
        n_a, n_b = resolution
    except (TypeError, ValueError):
        msg = f"resolution must be a pair (A, B) of integers, got {resolution!r}"
        raise ValueError(msg) from None
    for name, n in (("A", n_a), ("B", n_b)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise ValueError(f"resolution {name} must be an integer, got {n!r}")
        if not MIN_AXIS <= n <= MAX_AXIS:
            raise ValueError(f"resolution {name} = {n} is outside the accepted "
                             f"{MIN_AXIS}..{MAX_AXIS} points per axis")
    if n_a * n_b > MAX_POINTS:
        raise ValueError(f"resolution {n_a}x{n_b} = {n_a * n_b} grid points exceeds the limit "
                         f"of {MAX_POINTS:,} points")
    return int(n_a), int(n_b)


def _check_extent(extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    try:
        a_min, a_max, b_min, b_max = (float(e) for e in extent)
    except (TypeError, ValueError):
        raise ValueError("slice extent must be four numbers (a_min, a_max, b_min, b_max), "
                         f"got {extent!r}") from None
    if not all(math.isfinite(e) for e in (a_min, a_max, b_min, b_max)):
        raise ValueError(f"slice extent must be finite, got {extent!r}")
    if not (a_min < a_max and b_min < b_max):
        raise ValueError(f"slice extent must have a_min < a_max and b_min < b_max, got {extent!r}")
    return a_min, a_max, b_min, b_max


def _plane(slc: Slice, size: int, device: str | torch.device,
           dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """The slice's origin [P] and basis [2, P] as tensors, checked against the model's P."""
    origin = torch.as_tensor(np.asarray(slc.origin), device=device).to(dtype)
    basis = torch.as_tensor(np.asarray(slc.basis), device=device).to(dtype)
    if origin.shape != (size,) or basis.shape != (2, size):
        raise ValueError(f"slice has origin {tuple(origin.shape)} and basis {tuple(basis.shape)}; "
                         f"the model has P = {size} parameters, so ({size},) and (2, {size})")
    return origin, basis


# ---------------------------------------------------------------- chunk size

def _peak_activation_numel(problem: Problem, params: dict[str, Tensor], batch: Batch) -> int:
    """Entries of the largest tensor one loss evaluation allocates (one point, one task).

    Measured by watching every op of one real evaluation; falls back to
    samples × widest parameter dimension if the model cannot be watched.
    """
    try:
        from torch.utils._python_dispatch import TorchDispatchMode

        class _Peak(TorchDispatchMode):
            peak = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if any(r.alias_info is not None for r in func._schema.returns):
                    return out  # a view (transpose, select, ...) allocates nothing
                for t in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(t, Tensor):
                        self.peak = max(self.peak, t.numel())
                return out

        with torch.no_grad(), _Peak() as watch:
            problem.loss(params, batch)
        return max(int(watch.peak), 1)
    except Exception:  # noqa: BLE001 - an estimate only; never fail the surface for it
        samples = max((v.shape[0] for v in batch.values() if v.dim() > 0), default=1)
        widest = max((max(s) for s in problem.model.spec.shapes if s), default=1)
        return samples * widest


# peak activation per (problem, one task's batch shapes, P): measuring costs a
# traced forward pass (~1 ms), more than a small surface takes
_PEAK_CACHE: dict = {}


def _memory_cap(device: torch.device) -> int | None:
    """Bytes a chunk may take: a quarter of available RAM, or an eighth of free GPU memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // GPU_FREE_FRACTION
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 4
    except (ValueError, OSError, AttributeError):
        return None


def choose_chunk(problem: Problem, tasks: TaskSet, P: int, budget_bytes: int | None = None) -> int:
    """Grid points per chunk so that a chunk's working set fits ``budget_bytes``.

    Bytes per grid point = itemsize × (P parameters + ``LIVE_ACTIVATIONS`` ×
    T tasks × the largest tensor one task's loss allocates), the last
    measured once per problem and batch shape by watching one evaluation of
    the first task. The default budget is ``CPU_CHUNK_BYTES`` (cache-sized,
    measured) on a CPU and an eighth of free memory on a GPU; any budget is
    capped by a quarter of the available RAM (an eighth of free GPU memory).
    At least 1.
    """
    if len(tasks) == 0:
        raise ValueError("choose_chunk needs at least one task")
    first = next(iter(tasks.support.values()))
    device, dtype = first.device, _data_dtype(tasks)
    one_task = {k: v[0] for k, v in tasks.support.items()}
    shapes = tuple((k, tuple(v.shape), v.dtype, str(v.device)) for k, v in one_task.items())
    key = (problem, P, shapes)
    try:
        act = _PEAK_CACHE.get(key)
    except TypeError:  # a problem without a hash: measure every time
        key, act = None, None
    if act is None:
        act = peak_activation(problem, one_task)  # an MLP's, from its plan (no tracing)
    if act is None:
        params = unflatten(torch.zeros(P, device=device, dtype=dtype), problem.model.spec)
        act = _peak_activation_numel(problem, params, one_task)
        if key is not None:
            if len(_PEAK_CACHE) >= 256:
                _PEAK_CACHE.clear()
            _PEAK_CACHE[key] = act
    itemsize = torch.empty((), dtype=dtype).element_size()
    per_point = itemsize * (P + LIVE_ACTIVATIONS * len(tasks) * act)
    if budget_bytes is None:
        budget_bytes = _memory_cap(device) if device.type == "cuda" else CPU_CHUNK_BYTES
    if isinstance(budget_bytes, bool) or not isinstance(budget_bytes, (int, np.integer)) \
            or budget_bytes <= 0:
        raise ValueError(f"budget_bytes must be a positive integer, got {budget_bytes!r}")
    cap = _memory_cap(device)
    budget = min(int(budget_bytes), cap) if cap else int(budget_bytes)
    return max(1, budget // per_point)


def _data_dtype(tasks: TaskSet) -> torch.dtype:
    """The floating dtype of a TaskSet's support data (float32 when it has none)."""
    for v in tasks.support.values():
        if v.is_floating_point():
            return v.dtype
    return torch.float32


# ---------------------------------------------------------------- evaluators

def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {list(METHODS)}")
    return METHODS[method] or requested()


def _chosen(problem: Problem, batch: Batch, dtype: torch.dtype, points: int, method: str,
            chunks: dict[str, int] | None = None) -> str:
    """The backend (native | torch | plain) for these plane losses; "fused" insists on one."""
    choice = choose_plane(problem, batch, dtype, points, request=_check_method(method), chunks=chunks)
    if method == "fused" and choice.name == "plain":
        raise ValueError(f"method 'fused' needs an nn.Sequential of nn.Linear and table activations "
                         f"with tasks.base.mse_loss and x: [T, N, in], y: [T, N, out] "
                         f"({choice.declined[-1][1]}); use 'auto' or 'vmap' here")
    return choice.name


def evaluate_chunk(problem: Problem, origin: Tensor, basis: Tensor, coords: Tensor, batch: Batch,
                   *, method: str = "auto", backend: str | None = None) -> Tensor:
    """Losses [G, T] of T tasks at G points of a plane, vectorised (pure).

    origin: [P]; basis: [2, P]; coords: [G, 2] plane coordinates (a, b), the
    point being origin + a·basis[0] + b·basis[1]; batch: {key: [T, ...]} the
    tasks' data. ``method``: "auto" (the kernels' dispatch), "vmap" (plain),
    "fused" (the torch backend: an MLP with ``mse_loss``; ValueError
    otherwise), or a backend's name; ``backend``: one already chosen.
    """
    coords = coords.to(device=origin.device, dtype=origin.dtype)
    if backend is None:
        backend = _chosen(problem, batch, origin.dtype, coords.shape[0], method)
    with torch.no_grad():
        plane = prepared_plane(backend, problem, origin, basis, batch)
        if plane is not None:
            return plane.losses(coords)
        params = unflatten(torch.addmm(origin, coords, basis), problem.model.spec)
        over_tasks = vmap(problem.loss, in_dims=(None, 0))
        return vmap(over_tasks, in_dims=(0, None))(params, batch)


@dataclass(frozen=True)
class GridChunk:
    """Grid points ``start:stop`` of a surface, in row-major (b, a) order: all a chunk carries."""

    start: int
    stop: int


def surface_chunk(context: ChunkContext, chunk: GridChunk) -> np.ndarray:
    """Losses [G, T] at grid points ``chunk.start:chunk.stop`` (pure; the executors' unit of work).

    ``context.tensors``: origin [P], basis [2, P], alpha [A], beta [B] and the
    tasks' support data under ``batch.<key>`` ([T, ...]); ``context.options``:
    ``backend`` (native | torch | plain, chosen by ``evaluate_surface``). Point i is
    (alpha[i mod A], beta[i div A]).
    """
    t = context.tensors
    index = torch.arange(chunk.start, chunk.stop, device=t["alpha"].device)
    n_a = t["alpha"].shape[0]
    coords = torch.stack([t["alpha"][index % n_a], t["beta"][index // n_a]], dim=-1)  # [G, 2]
    plan = _plane_plan(context)
    with torch.no_grad():
        if plan is not None:
            return plan.losses(coords).cpu().numpy()
        return evaluate_chunk(context.problem, t["origin"], t["basis"], coords, context.batch(),
                              backend="plain").cpu().numpy()


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _plane_plan(context: ChunkContext):
    """The context's prepared plane for its backend (built at its first chunk, kept while the
    context lives), or None for plain."""
    if context not in _PLANS:
        t = context.tensors
        with torch.no_grad():
            _PLANS[context] = prepared_plane(context.options["backend"], context.problem, t["origin"],
                                        t["basis"], context.batch())
    return _PLANS[context]


def evaluate_surface(problem: Problem, slc: Slice, tasks: TaskSet,
                     resolution: tuple[int, int] = (61, 61), *, method: str = "auto",
                     work: Work = DEFAULT_WORK) -> Surface:
    """The loss of every task on its full support set over the slice's grid.

    alpha = linspace(a_min, a_max, A), beta = linspace(b_min, b_max, B) from ``slc.extent``;
    ``resolution`` = (A, B), each 2..1000, at most 250,000 points, computed on the tasks'
    device and in their dtype (``TaskSet.placement``; move them first with ``tasks.to``).
    ``work.chunk`` grid points are evaluated at once (default ``choose_chunk``, or
    ``native.chunk_points`` for the native backend); ``method``: as ``evaluate_chunk``'s,
    the backend chosen once here; ``work.progress(done, total)`` is called after each chunk
    with grid points done and in all. alpha and beta hold the coordinates as evaluated.
    The chunks go through ``work.executor`` (default in-process; ``engine.executors.base``);
    ``work.ref``, the problem's family and options, lets Dask workers rebuild the problem.
    """
    device, dtype = tasks.placement()
    chunk, progress, executor, ref = work.chunk, work.progress, work.executor, work.ref
    n_a, n_b = check_resolution(resolution)
    a_min, a_max, b_min, b_max = _check_extent(slc.extent)
    _check_method(method)
    if len(tasks) == 0:
        raise ValueError("evaluate_surface needs at least one task")
    size = problem.model.spec.size
    origin, basis = _plane(slc, size, device, dtype)
    on_device = tasks.to(device, dtype)
    total = n_a * n_b
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer))
                              or chunk <= 0):
        raise ValueError(f"chunk must be a positive integer (grid points at once), got {chunk!r}")
    chunks = {"native": chunk_points(size), "torch": choose_chunk(problem, on_device, size)} \
        if chunk is None else {"native": int(chunk), "torch": int(chunk)}
    backend = _chosen(problem, on_device.support, dtype, total, method, chunks)  # the one dispatch
    chunk = min(chunks.get(backend) or choose_chunk(problem, on_device, size), total)
    alpha = torch.linspace(a_min, a_max, n_a, dtype=torch.float64).to(device=device, dtype=dtype)
    beta = torch.linspace(b_min, b_max, n_b, dtype=torch.float64).to(device=device, dtype=dtype)
    # the grid travels as its two axes and index ranges: never [A·B, P], nor even [A·B, 2]
    context = ChunkContext(problem, {"origin": origin, "basis": basis, "alpha": alpha, "beta": beta,
                                     **{f"batch.{k}": v for k, v in on_device.support.items()}},
                           ref, {"backend": backend, "chunk": chunk})
    chunks = [GridChunk(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    report = None if progress is None else (
        lambda done, _: progress(min(done * chunk, total), total))
    blocks = (executor or IN_PROCESS).map(surface_chunk, context, chunks, progress=report)
    out = torch.from_numpy(np.concatenate(blocks)).to(device)  # [A·B, T]
    loss = out.T.reshape(len(tasks), n_b, n_a)
    return Surface(alpha=alpha.cpu().numpy(), beta=beta.cpu().numpy(), loss=loss.cpu().numpy(),
                   mean=loss.mean(dim=0).cpu().numpy(), task_ids=tasks.ids.cpu().numpy())


def plane_losses(problem: Problem, slc: Slice, coords: np.ndarray | Tensor, tasks: TaskSet, *,
                 chunk: int | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Loss on the plane at projected path points: [R, K+1].

    coords: [R, K+1, 2] plane coordinates of R rollouts' paths; tasks: R tasks,
    rollout r on task r. Entry (r, k) is task r's full-support loss at
    origin + coords[r, k]·basis, to show beside the recorded loss. A point
    with a NaN coordinate gets a NaN loss. ``chunk`` bounds the points
    evaluated at once (default ``choose_chunk``).
    """
    coords = torch.as_tensor(np.asarray(coords) if not isinstance(coords, Tensor) else coords)
    if coords.dim() != 3 or coords.shape[-1] != 2:
        raise ValueError(f"coords must be [R, K+1, 2], got {tuple(coords.shape)}")
    rollouts, points = coords.shape[:2]
    if rollouts != len(tasks):
        raise ValueError(f"coords has {rollouts} rollouts but there are {len(tasks)} tasks; "
                         "rollout r is evaluated on task r")
    size = problem.model.spec.size
    origin, basis = _plane(slc, size, device, dtype)
    coords = coords.to(device=device, dtype=dtype)
    missing = torch.isnan(coords).any(dim=-1)
    coords = torch.where(missing[..., None], torch.zeros_like(coords), coords)
    on_device = tasks.to(device, dtype)
    if chunk is None:
        chunk = choose_chunk(problem, on_device.select([0]), size)
    elif isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk <= 0:
        raise ValueError(f"chunk must be a positive integer (points at once), got {chunk!r}")
    per_chunk = max(1, int(chunk) // max(points, 1))  # whole rollouts per chunk
    paired = vmap(vmap(problem.loss, in_dims=(0, None)), in_dims=(0, 0))  # rollouts, then points
    out = torch.empty(rollouts, points, device=device, dtype=dtype)
    with torch.no_grad():
        for start in range(0, rollouts, per_chunk):
            stop = min(start + per_chunk, rollouts)
            theta = torch.matmul(coords[start:stop], basis) + origin  # [r, K+1, P]
            batch = {k: v[start:stop] for k, v in on_device.support.items()}
            out[start:stop] = paired(unflatten(theta, problem.model.spec), batch)
    out = torch.where(missing, torch.full_like(out, float("nan")), out)
    return out.cpu().numpy()
