"""The native backend of the birth map's statistics: the C inner loop (``birth_native.c``).

``statistics`` returns what the inner loop's statistics are (losses [R, K+1]
and update lengths ‖θ_{i+1} − θ_i‖ [R, K]) for an MLP under MSE whose
activations and optimiser have a C form in ``tables`` (ReLU or identity;
sgd, momentum or adam), running each rollout whole in L1 (see the C file).
The numbers are the plain loop's to float32 rounding, not bit for bit (its
sums run in another order, and it uses fused multiply-adds), so ``birthmap``
uses it for the map's grid only: learners' θ0 and kept points take the
inner loop, so their rows equal their recorded statistics bit for bit.
Rollouts are split over ``threads.kernel_threads()`` threads (the C call
releases the GIL). ``birth_declines`` says why a case is not taken (then
the dispatcher runs the inner loop).
"""
from __future__ import annotations

import ctypes

import torch
from torch import Tensor

from trajviz.kernels.fused import step_declines
from trajviz.kernels.mlp_plan import Linear, mlp_layers
from trajviz.kernels.native import CHUNK_BYTES, BirthArgs, check_status, ints, library, split, typed
from trajviz.kernels.tables import OPTIMIZERS, activation_of, native_activation, native_optimizer
from trajviz.problem.batches import InnerSpec, all_batches, minibatch_indices
from trajviz.problem.tasks import Problem, TaskSet

MAX_LAYERS = 16  # the kernel's fixed tables


def birth_declines(problem: Problem, tasks: TaskSet, spec: InnerSpec) -> str | None:
    """Why the C loop does not take these rollouts, or None (it does, building it if needed)."""
    reason = native_optimizer(spec.optimizer.name) or step_declines(
        problem, tasks.support, spec.optimizer.name)
    if reason is not None:
        return reason
    layers = mlp_layers(problem)
    for layer in layers:
        if not isinstance(layer, Linear) and (why := native_activation(layer)) is not None:
            return why
    x = tasks.support["x"]
    if x.dtype != torch.float32 or x.device.type != "cpu":
        return f"the C kernels take float32 CPU data, not {x.dtype} on {x.device.type}"
    if sum(isinstance(layer, Linear) for layer in layers) > MAX_LAYERS:
        return f"more than {MAX_LAYERS} linear layers"
    if library("birth_native") is None:
        return "no C compiler to build the kernel"
    return None


def grid_chunk(problem: Problem, tasks: TaskSet, spec: InnerSpec, total: int,
               workers: int = 1) -> int:
    """Grid points per chunk where the C loop takes the map's grid.

    A grid point's memory here is its θ0 row and its tasks' data as the kernel reads
    them (every step's minibatch, or the support once); activations live in L1. So
    chunks hold about ``native.CHUNK_BYTES`` of those, as the native surface's do, but
    number at least 8 (for progress) and 4 per executor worker (``workers``: a Dask
    cluster's, so that every worker gets work and the last chunk is short). On the bench's map (1681
    points of the sinusoid MLP, 8 tasks) that is 211 points, against 18 from
    ``birthmap.default_chunk`` (sized for the exact path's [G·N, P] arrays): the map took
    1.83 s against 2.12 s (best of 5, 1 thread, load 3).
    """
    per_task = sum(v[0].numel() for v in tasks.support.values())
    if spec.batch_size is not None and tasks.minibatchable:  # as minibatch_indices decides
        pool = next(iter(tasks.support.values())).shape[1]
        per_task = per_task * spec.batch_size * (spec.steps + 1) // pool
    per_point = 4 * (problem.model.spec.size + len(tasks) * per_task)
    return max(1, min(CHUNK_BYTES // per_point, -(-total // max(8, 4 * workers))))


def statistics(problem: Problem, theta0: Tensor, tasks: TaskSet, spec: InnerSpec,
               seed: int, repeat: int = 1) -> tuple[Tensor, Tensor]:
    """Losses [R, K+1] and update lengths ‖θ_{i+1} − θ_i‖ [R, K] of R rollouts on ``tasks``
    (rollout r on task r), with ``inner.inner_loop``'s batches; rollout r starts from
    theta0[r // repeat] (theta0: [R / repeat, P]; θ0-major, as ``pair_theta0_with_tasks``).
    The caller has checked ``birth_declines``."""
    layers = mlp_layers(problem)
    linears = tuple(layer for layer in layers if isinstance(layer, Linear))
    act = [0] * len(linears)
    for i, layer in enumerate(layers):
        if not isinstance(layer, Linear):
            act[sum(isinstance(before, Linear) for before in layers[:i]) - 1] = activation_of(layer).native
    lib = library("birth_native")
    batches = all_batches(tasks, minibatch_indices(tasks, spec, seed))
    data = tasks.support if batches is None else batches
    x, y = (data[k].to(torch.float32).contiguous() for k in ("x", "y"))
    n_batches = 1 if batches is None else spec.steps + 1
    rollouts, n_params = len(tasks), theta0.shape[1]
    batch = x.shape[-2]
    theta0 = theta0.to(torch.float32).contiguous()
    if rollouts % repeat or theta0.shape[0] != rollouts // repeat:
        raise ValueError(f"native birth: {theta0.shape[0]} θ0 rows x repeat {repeat} "
                         f"!= {rollouts} rollouts")
    dims = [linears[0].in_features, *(layer.out_features for layer in linears)]
    entry = OPTIMIZERS[spec.optimizer.name]
    h = dict(spec.optimizer.hyper)
    hyper = torch.tensor([float(h[k]) for k in entry.hyper if k != "nesterov"], dtype=torch.float64)
    losses = torch.empty(rollouts, spec.steps + 1)
    lengths = torch.empty(rollouts, spec.steps)
    dims_c = ints(dims)
    scratch_len = lib.trajviz_birth_scratch(len(linears), dims_c, batch)
    f32 = torch.float32
    shape_x = (rollouts, batch, dims[0]) if n_batches == 1 else (rollouts, n_batches, batch, dims[0])
    shape_y = (rollouts, batch, dims[-1]) if n_batches == 1 else (rollouts, n_batches, batch, dims[-1])
    base = dict(
        n_layers=len(linears), dims=dims_c, act=ints(act),
        w_off=ints([layer.weight[0] for layer in linears], ctypes.c_long),
        b_off=ints([-1 if layer.bias is None else layer.bias[0] for layer in linears], ctypes.c_long),
        n_params=n_params, theta0=typed(theta0, f32, (rollouts // repeat, problem.model.spec.size), "theta0"),
        repeat=repeat, x=typed(x, f32, shape_x, "x"), y=typed(y, f32, shape_y, "y"),
        n_batches=n_batches, batch=batch, steps=spec.steps, opt=entry.native,
        nesterov=int(bool(h.get("nesterov", 0))),
        hyper=typed(hyper, torch.float64, (len(hyper),), "hyper"),
        losses=typed(losses, f32, (rollouts, spec.steps + 1), "losses"),
        lengths=typed(lengths, f32, (rollouts, spec.steps), "lengths"))

    def run(lo: int, hi: int) -> None:
        scratch = torch.empty(scratch_len)
        args = BirthArgs(**base, first=lo, count=hi - lo,
                         scratch=typed(scratch, f32, (scratch_len,), "scratch"))
        check_status(lib.trajviz_birth_rollouts(ctypes.byref(args)), "trajviz_birth_rollouts")

    split(rollouts, run)
    return losses, lengths
