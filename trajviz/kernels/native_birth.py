"""The birth map's inner loop in the native kernel (``birth_native.c``), for grid points.

``statistics`` returns what ``birthloop.statistics_loop`` returns (losses
[R, K+1] and update lengths [R, K]) for a ReLU MLP under MSE with sgd,
momentum or adam, running each rollout whole in L1 (see the C file). The
numbers are the plain loop's to float32 rounding, not bit for bit (its sums
run in another order, and it uses fused multiply-adds), so ``birthmap`` uses
it for the map's grid only: learners' θ0 and kept points take the exact
path, so their rows equal their recorded statistics bit for bit.
Rollouts are split over ``threads.kernel_threads()`` threads (the C call
releases the GIL). Where no C compiler exists, ``plan`` is None and the
map keeps ``birthloop``.
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from trajviz.kernels import native
from trajviz.kernels.fused import use_fused  # the MLP-under-MSE recogniser the exact fast loop uses
from trajviz.engine.inner import InnerSpec, all_batches, minibatch_indices
from trajviz.kernels.mlp_plan import Linear, mlp_layers
from trajviz.kernels.native import library, split
from trajviz.problem.tasks import Problem, TaskSet

OPTIMIZERS = {"sgd": 0, "momentum": 1, "adam": 2}
MAX_LAYERS = 16  # the kernel's fixed tables


def plan(problem: Problem, tasks: TaskSet, spec: InnerSpec) -> tuple | None:
    """(linears, relu flags) when the kernel applies to this model, data and optimiser, else None:
    an nn.Linear/ReLU MLP under MSE, float32 CPU data {x, y}, sgd/momentum/adam, a C compiler."""
    if spec.optimizer.name not in OPTIMIZERS:
        return None
    fused_plan = use_fused(problem, tasks.support)
    layers = mlp_layers(problem)
    x = tasks.support.get("x")
    if fused_plan is None or layers is None or x is None or x.dtype != torch.float32 \
            or x.device.type != "cpu" or any(act not in (None, "relu") for *_, act in fused_plan):
        return None
    linears = tuple(layer for layer in layers if isinstance(layer, Linear))
    if len(linears) > MAX_LAYERS or library("birth_native") is None:
        return None
    return linears, tuple(int(act == "relu") for *_, act in fused_plan)


def grid_chunk(problem: Problem, tasks: TaskSet, spec: InnerSpec, total: int,
               workers: int = 1) -> int | None:
    """Grid points per chunk where the kernel takes the map's grid, else None.

    A grid point's memory here is its θ0 row and its tasks' data as the kernel reads
    them (every step's minibatch, or the support once); activations live in L1. So
    chunks hold about ``native.CHUNK_BYTES`` of those, as the native surface's do, but
    number at least 8 (for progress) and 4 per executor worker (``workers``: a Dask
    cluster's, so that every worker gets work and the last chunk is short). On the bench's map (1681
    points of the sinusoid MLP, 8 tasks) that is 211 points, against 18 from
    ``birthmap.default_chunk`` (sized for the exact path's [G·N, P] arrays): the map took
    1.83 s against 2.12 s (best of 5, 1 thread, load 3).
    """
    if plan(problem, tasks, spec) is None:
        return None
    per_task = sum(v[0].numel() for v in tasks.support.values())
    if spec.batch_size is not None and tasks.minibatchable:  # as minibatch_indices decides
        pool = next(iter(tasks.support.values())).shape[1]
        per_task = per_task * spec.batch_size * (spec.steps + 1) // pool
    per_point = 4 * (problem.model.spec.size + len(tasks) * per_task)
    return max(1, min(native.CHUNK_BYTES // per_point, -(-total // max(8, 4 * workers))))


def statistics(native_plan: tuple, theta0: Tensor, tasks: TaskSet, spec: InnerSpec,
               seed: int, repeat: int = 1) -> tuple[Tensor, Tensor]:
    """Losses [R, K+1] and update lengths ‖θ_{i+1} − θ_i‖ [R, K] of R rollouts on ``tasks``
    (rollout r on task r), with ``inner.inner_loop``'s batches; rollout r starts from
    theta0[r // repeat] (theta0: [R / repeat, P]; θ0-major, as ``pair_theta0_with_tasks``)."""
    linears, relu = native_plan
    lib = library("birth_native")
    batches = all_batches(tasks, minibatch_indices(tasks, spec, seed))
    data = tasks.support if batches is None else batches
    x, y = (data[k].to(torch.float32).contiguous() for k in ("x", "y"))
    n_batches = 1 if batches is None else spec.steps + 1
    rollouts, n_params = len(tasks), theta0.shape[1]
    batch = x.shape[-2]
    theta0 = theta0.to(torch.float32).contiguous()
    dims = (ctypes.c_int * (len(linears) + 1))(linears[0].in_features,
                                               *(layer.out_features for layer in linears))
    flags = (ctypes.c_int * len(relu))(*relu)
    w_off = (ctypes.c_long * len(linears))(*(layer.weight[0] for layer in linears))
    b_off = (ctypes.c_long * len(linears))(*(-1 if layer.bias is None else layer.bias[0]
                                             for layer in linears))
    h = dict(spec.optimizer.hyper)
    name = spec.optimizer.name
    hyper = torch.tensor([h["lr"], *((h["beta"],) if name == "momentum" else ()),
                          *((h["beta1"], h["beta2"], h["eps"]) if name == "adam" else ())],
                         dtype=torch.float64)
    losses = torch.empty(rollouts, spec.steps + 1)
    lengths = torch.empty(rollouts, spec.steps)
    scratch_len = lib.trajviz_birth_scratch(len(linears), dims, batch)
    per_x, per_y = x[0].numel(), y[0].numel()

    def run(lo: int, hi: int) -> None:
        scratch = torch.empty(scratch_len)
        lib.trajviz_birth_rollouts(
            len(linears), dims, flags, w_off, b_off, n_params, theta0.data_ptr(), repeat, lo, hi - lo,
            x.data_ptr() + 4 * lo * per_x, y.data_ptr() + 4 * lo * per_y, n_batches, batch,
            spec.steps, OPTIMIZERS[name], hyper.data_ptr(), int(bool(h.get("nesterov", 0))),
            scratch.data_ptr(), losses[lo:].data_ptr(), lengths[lo:].data_ptr())

    split(rollouts, run)
    return losses, lengths
