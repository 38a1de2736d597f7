"""The inner loop: adapt parameters to tasks, vectorised over rollouts, recording paths.

A *rollout* is one inner loop from one θ0 on one task. ``inner_loop`` advances ``R``
rollouts at once: the forward pass is ``vmap``-ed over rollouts and one ``autograd.grad``
of the summed losses gives every rollout's own gradient (the rollouts are
independent, so ∂(Σ_r f_r)/∂θ_r = ∇f_r). On CPU this costs about two thirds
of ``vmap(grad(f))`` for small models (16 rollouts of a 1-40-40-1 MLP), and the
same code differentiates through the loop for MAML (``differentiable=True``).
(Its weight gradients of vmapped linear layers come back transposed in
memory, which makes elementwise work on very wide layers slower; see the
notes in bench/bench_inner.py.)

Step i evaluates f_i(θ_i) and ∇f_i(θ_i) on batch i, then moves to
θ_{i+1} = θ_i + update. After K updates it also evaluates f_K(θ_K) on batch K,
so K steps give K+1 points and K segments: none is dropped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torch.func import vmap

from trajviz.kernels import choose_step, fused
from trajviz.problem.batches import (  # noqa: F401 - InnerSpec is re-exported
    InnerSpec,
    Rollouts,
    all_batches,
    minibatch_indices,
)
from trajviz.problem.models import Params, batch_shape, flatten
from trajviz.problem.tasks import Batch, Problem, TaskSet


@dataclass(frozen=True)
class Trajectory:
    """``R`` recorded rollouts (each one inner loop from one θ0 on one task), stacked.

    params: [R, K+1, P]  θ_0..θ_K, flattened in ``ParamSpec`` order.
    losses: [R, K+1]     f_i(θ_i) on the batch used at step i (batch K for θ_K).
    grads: [R, K+1, P]   ∇f_i(θ_i) on that same batch.
    query_losses: [R, K+1]  loss on the task's query set at θ_i.
    task_ids: [R]        id of each rollout's task.
    diverged_at: [R]     first step at which the rollout diverged (``InnerSpec``), or −1.
    learner: name of the learner whose θ0 started the rollouts.
    """

    params: Tensor
    losses: Tensor
    grads: Tensor
    query_losses: Tensor
    task_ids: Tensor
    diverged_at: Tensor
    learner: str = ""

    @property
    def steps(self) -> int:
        return self.params.shape[-2] - 1


class Point(NamedTuple):
    """One point of ``R`` rollouts: params {name: [R, ...]}, loss [R], grad {name: [R, ...]}."""

    params: Params
    loss: Tensor
    grad: Params


SegmentFn = Callable[[Any, Point, Point], Any]


@dataclass(frozen=True)
class InnerResult:
    """What ``inner_loop`` returns.

    final: {name: [R, ...]} θ_K; final_loss: [R] f_K(θ_K); diverged_at: [R];
    trajectory: the recorded path when ``record=True``; accumulated: the
    value folded by ``on_segment`` over the K segments.
    """

    final: Params
    final_loss: Tensor
    diverged_at: Tensor
    trajectory: Trajectory | None
    accumulated: Any


def broadcast_theta0(theta0: Params, problem: Problem, rollouts: int) -> Params:
    """Give θ0 a leading rollout axis [R, ...]: a shared θ0 is expanded (no copy)."""
    lead = batch_shape(theta0, problem.model.spec)
    if lead == ():
        return {k: v.expand(rollouts, *v.shape) for k, v in theta0.items()}
    if lead != (rollouts,):
        raise ValueError(f"theta0 has batch shape {lead}, expected () or ({rollouts},)")
    return theta0


def pair_theta0_with_tasks(theta0: Params, tasks: TaskSet, problem: Problem) -> tuple[Params, TaskSet]:
    """Every one of ``I`` θ0s {name: [I, ...]} on every one of ``T`` tasks.

    Returns params [I·T, ...] and a TaskSet of I·T rollouts, θ0-major (rollout
    ``i·T + t`` is θ0 i on task t), for one vectorised ``inner_loop``.
    """
    (n_theta0,) = batch_shape(theta0, problem.model.spec)
    n_tasks = len(tasks)
    params = {k: v.repeat_interleave(n_tasks, dim=0) for k, v in theta0.items()}
    return params, tasks.select(torch.arange(n_tasks).repeat(n_theta0))


def losses_and_grads(problem: Problem, params: Params, batch: Batch,
                     differentiable: bool = False, *, backend: str | None = None,
                     optimizer: str = "sgd") -> tuple[Tensor, Params]:
    """f_r(θ_r) [R] and ∇f_r(θ_r) {name: [R, ...]} for every rollout at once.

    With ``differentiable`` the gradients keep their graph (second order).
    ``backend``: "plain" (autograd, below) or "torch" (``kernels.fused``), as
    ``kernels.choose_step`` chose for the loop (default: chosen here, for ``optimizer``).
    """
    if backend is None:
        backend = choose_step(problem, batch, optimizer).name
    if backend == "torch":
        return fused.mlp_losses_and_grads(fused.mlp_plan(problem), params, batch, differentiable)
    with torch.enable_grad():
        leaves = params if differentiable else {k: v.detach().requires_grad_(True)
                                                for k, v in params.items()}
        losses = vmap(problem.loss)(leaves, batch)
        grads = torch.autograd.grad(losses.sum(), list(leaves.values()),
                                    create_graph=differentiable, allow_unused=True)
    grads = {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}
    if not differentiable:
        losses = losses.detach()
    return losses, grads


def query_losses(problem: Problem, params: Params, tasks: TaskSet) -> Tensor:
    """Loss of every rollout on its task's query set: [R]."""
    with torch.no_grad():
        return vmap(problem.loss)(params, tasks.query)


CACHE_BYTES = 1 << 20  # per parameter-sized array of a chunk: about half an L2 cache


def rollouts_per_chunk(param_count: int, itemsize: int, rollouts: int,
                       budget: int = CACHE_BYTES) -> int:
    """How many rollouts to advance at once so one [rollouts, P] array stays in cache.

    Small models take every rollout at once (per-op overhead dominates); wide
    ones are split, because streaming several [R, P] arrays through memory
    each step was measured slower than a few cache-sized chunks.
    """
    return max(1, min(rollouts, budget // max(1, param_count * itemsize)))


def inner_loop(rollouts: Rollouts, theta0: Params, *, record: bool = False,
               on_segment: SegmentFn | None = None, initial: Any = None,
               differentiable: bool = False, chunk: int | None = None) -> InnerResult:
    """Run ``rollouts.spec.steps`` optimiser steps from ``theta0`` on every task of ``rollouts``
    (R = ``len(rollouts.tasks)`` rollouts, minibatches from ``rollouts.seed``).

    theta0: {name: [*shape]} shared by all rollouts, or {name: [R, *shape]}.
    Use ``pair_theta0_with_tasks`` for θ0s × tasks.
    on_segment(acc, prev, curr) -> acc is folded over the K segments, starting
    from ``initial``: learners accumulate their meta-gradient here without
    storing the path; a chunked loop needs ``initial`` and ``acc`` to be None
    or {name: [R, ...]} per rollout (each chunk starts from its own rows).
    ``record`` keeps the full path (for pictures only; its ``learner`` label is the
    caller's to set, ``dataclasses.replace``).
    ``differentiable`` keeps the graph through every step (MAML).
    ``chunk`` rollouts advance together (default ``rollouts_per_chunk``); the
    result does not depend on it, since rollouts are independent.
    """
    problem, tasks, spec, seed = rollouts.problem, rollouts.tasks, rollouts.spec, rollouts.seed
    n_rollouts = len(tasks)
    first = next(iter(theta0.values()))
    if chunk is None:
        chunk = n_rollouts if differentiable else rollouts_per_chunk(
            problem.model.spec.size, first.element_size(), n_rollouts)
    if chunk < n_rollouts:
        shared = batch_shape(theta0, problem.model.spec) == ()
        parts = []
        for start in range(0, n_rollouts, chunk):
            rows = slice(start, min(start + chunk, n_rollouts))
            part0 = theta0 if shared else {k: v[rows] for k, v in theta0.items()}
            part_initial = None if initial is None else {k: v[rows] for k, v in initial.items()}
            parts.append(inner_loop(rollouts.on(tasks.select(list(range(rows.start, rows.stop)))),
                                    part0, record=record, on_segment=on_segment,
                                    initial=part_initial, differentiable=differentiable,
                                    chunk=rows.stop - rows.start))
        return _concat_results(parts)
    params = broadcast_theta0(theta0, problem, n_rollouts)
    if not differentiable:
        params = {k: v.detach() for k, v in params.items()}
    spec_p = problem.model.spec
    batches = all_batches(tasks, minibatch_indices(tasks, spec, seed))
    opt_state = None  # initialised at step 0, once θ has its final memory layout
    backend = choose_step(problem, tasks.support, spec.optimizer.name).name  # the kernels' dispatch
    optimizer = fused.step_optimizer(spec.optimizer, problem, n_rollouts) if backend == "torch" \
        else spec.optimizer
    acc = initial
    step_losses, rec_params, rec_grads, rec_query, params_ok = [], [], [], [], []
    prev: Point | None = None
    for step in range(spec.steps + 1):
        batch = tasks.support if batches is None else {k: v[:, step] for k, v in batches.items()}
        loss, grad = losses_and_grads(problem, params, batch, differentiable, backend=backend)
        step_losses.append(loss.detach())
        params_ok.append(torch.stack([torch.isfinite(v.detach()).flatten(1).all(1) for v in params.values()]).all(0))
        curr = Point(params, loss, grad)
        if record:
            rec_params.append(flatten({k: v.detach() for k, v in params.items()}, spec_p))
            rec_grads.append(flatten({k: v.detach() for k, v in grad.items()}, spec_p))
            rec_query.append(query_losses(problem, params, tasks))
        if prev is not None and on_segment is not None:
            acc = on_segment(acc, prev, curr)
        prev = curr
        if step == 0:
            if not differentiable:
                # Give θ the memory layout of its gradient (vmapped Linear weights come back
                # transposed): every later elementwise op then walks both contiguously.
                params = {k: torch.empty_like(grad[k]).copy_(v) for k, v in params.items()}
            opt_state = optimizer.init(params)
        if step < spec.steps:
            updates, opt_state = optimizer.update(grad, opt_state, params)
            params = {k: params[k] + updates[k] for k in params}
    losses = torch.stack(step_losses, dim=1)  # [R, K+1]
    diverged_at = first_divergence(losses, torch.stack(params_ok, dim=1), spec.divergence_factor)
    trajectory = None
    if record:
        trajectory = Trajectory(
            params=torch.stack(rec_params, dim=1), losses=losses,
            grads=torch.stack(rec_grads, dim=1), query_losses=torch.stack(rec_query, dim=1),
            task_ids=tasks.ids, diverged_at=diverged_at)
    return InnerResult(params, prev.loss, diverged_at, trajectory, acc)


def first_divergence(losses: Tensor, params_ok: Tensor, factor: float) -> Tensor:
    """[R] first step i whose loss f_i or θ_i is not finite or |f_i| > factor·|f_0|, else −1.

    losses: [R, K+1]; params_ok: [R, K+1] bool, θ_i finite. A run starting at
    f_0 = 0 diverges at the first step with |f_i| > factor·(smallest normal float).
    """
    f0 = losses[:, :1].abs().clamp_min(torch.finfo(losses.dtype).tiny)
    bad = ~torch.isfinite(losses) | ~params_ok | (losses.abs() > factor * f0)
    return torch.where(bad.any(dim=1), bad.int().argmax(dim=1), -1)


def _concat_results(parts: list[InnerResult]) -> InnerResult:
    """Join the results of consecutive rollout chunks along the rollout axis."""
    def cat_dicts(dicts):
        return None if dicts[0] is None else {k: torch.cat([d[k] for d in dicts]) for k in dicts[0]}

    trajectory = None
    if parts[0].trajectory is not None:
        ts = [p.trajectory for p in parts]
        trajectory = Trajectory(*(torch.cat([getattr(t, f) for t in ts]) for f in
                                  ("params", "losses", "grads", "query_losses", "task_ids", "diverged_at")),
                                learner=ts[0].learner)
    return InnerResult(cat_dicts([p.final for p in parts]), torch.cat([p.final_loss for p in parts]),
                       torch.cat([p.diverged_at for p in parts]), trajectory,
                       cat_dicts([p.accumulated for p in parts]))
