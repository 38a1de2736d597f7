"""Leap's meta-gradient with plain SGD, fused: one multiply-add per step into the meta-gradient.

With SGD, Δθ_i = θ_{i+1} − θ_i = −lr·g_i (g_i = ∇f_i(θ_i)), so Leap's segment
increment a·Δθ_i + b·g_i (``Leap.coefficients``) is a per-rollout scalar
times g_i:

    increment_i = c_i·g_i,   c_i = −lr·a_i + b_i,   ‖Δθ_i‖² = lr²·‖g_i‖²

so no Δθ is formed and θ is never read twice: per step and parameter the
loop reads θ and g for the update (in place), g once for its norm and once
more for the multiply-add into the meta-gradient. The plain path
(``inner_loop`` with ``Leap.accumulate``) forms Δθ, reads it for its norm and
again for the increment: about twice the memory passes, which is what a
wide model's step is made of. The numbers are the plain path's up to float
rounding (Δθ is −lr·g exactly here, where the plain path rounds θ_{i+1} − θ_i).

Rollouts advance in chunks (``rollouts_chunk``) so that a wide model's
per-step working set stays in the last-level cache.
"""
from __future__ import annotations

import torch
from torch import Tensor

from trajviz.kernels.fused import grads_from_factors, mlp_losses_and_factors, use_fused
from trajviz.engine.inner import InnerSpec, all_batches, minibatch_indices
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet

# Working set of one chunk (θ, g, the previous g, the meta-gradient: 4 arrays of
# [rollouts, P]) kept under half of the 32 MiB last-level cache. Measured at width
# 256, 16 rollouts (one run, load average 6): 4, 8 and 16 rollouts per chunk took
# 1.00, 1.03 and 1.13 s per meta-gradient, 1 and 2 took 2.06 and 1.45 s: a few
# large chunks, never many small ones (each chunk pays every op's overhead).
CHUNK_BYTES = 16 * 2**20
ARRAYS_PER_ROLLOUT = 4


def rollouts_chunk(param_count: int, itemsize: int, rollouts: int, budget: int = CHUNK_BYTES) -> int:
    """Rollouts advanced at once: chunks of equal size whose working set fits ``budget``
    bytes (≥ 1), e.g. 16 rollouts that fit 15 at a time go as 8 + 8, not 15 + 1."""
    cap = max(1, budget // max(ARRAYS_PER_ROLLOUT * param_count * itemsize, 1))
    chunks = -(-rollouts // cap)
    return max(1, -(-rollouts // chunks))


def applies(problem: Problem, tasks: TaskSet, inner: InnerSpec, differentiable: bool = False) -> bool:
    """True where the fused Leap-SGD loop computes what ``inner_loop`` + ``Leap.accumulate`` would."""
    return (not differentiable and inner.optimizer.name == "sgd"
            and use_fused(problem, tasks.support) is not None)


def leap_sgd(leap, problem: Problem, theta0: Params, tasks: TaskSet, inner: InnerSpec,
             seed: int, chunk: int | None = None) -> tuple[Params, Tensor, Tensor]:
    """Per-rollout Leap increments summed over the K segments, fused for SGD.

    theta0: {name: [*shape]} shared by all R rollouts; tasks: R tasks.
    Returns (accumulated {name: [R, *shape]}, losses [R, K+1], final θ's loss [R]),
    what ``inner_loop(..., on_segment=leap.accumulate)`` gives as
    ``accumulated``, the stacked step losses and ``final_loss``.
    """
    plan = use_fused(problem, tasks.support)
    lr = dict(inner.optimizer.hyper)["lr"]
    rollouts = len(tasks)
    first = next(iter(theta0.values()))
    if chunk is None:
        chunk = rollouts_chunk(problem.model.spec.size, first.element_size(), rollouts)
    batches = all_batches(tasks, minibatch_indices(tasks, inner, seed))
    accs, losses = [], []
    with torch.no_grad():
        for start in range(0, rollouts, chunk):
            rows = slice(start, min(start + chunk, rollouts))
            if batches is None:
                part = {k: v[rows] for k, v in tasks.support.items()}
                at_step = lambda step, part=part: part  # noqa: E731 - full batch every step
            else:
                part = {k: v[rows] for k, v in batches.items()}
                at_step = lambda step, part=part: {k: v[:, step] for k, v in part.items()}  # noqa: E731
            acc, loss = _chunk(leap, plan, theta0, at_step, rows.stop - rows.start, inner.steps, lr)
            accs.append(acc)
            losses.append(loss)
    accumulated = {k: torch.cat([a[k] for a in accs]) for k in theta0}
    losses_all = torch.cat(losses)
    return accumulated, losses_all, losses_all[:, -1]


def _chunk(leap, plan: tuple, theta0: Params, at_step, rollouts: int, steps: int,
           lr: float) -> tuple[Params, Tensor]:
    """One chunk of rollouts: ({name: [r, ...]} summed increments, losses [r, K+1]).

    ‖g‖² comes from two [B, B] Gram matrices per layer, ‖δᵀh‖² = Σ (δδᵀ) ⊙ (hhᵀ),
    not from a pass over g; θ is updated in place. (Updating W with one
    ``baddbmm_`` without forming g was tried: its different rounding flips
    a ReLU near its kink in one bench task and the path then drifts, 2% at
    width 256, so g is formed exactly as the plain path forms it.)
    """
    params = {k: v.expand(rollouts, *v.shape).clone() for k, v in theta0.items()}
    acc = {k: torch.zeros_like(v) for k, v in params.items()}
    step_losses = []
    prev = None  # (loss, grads, ‖g‖²) of the previous step
    for step in range(steps + 1):
        loss, factors = mlp_losses_and_factors(plan, params, at_step(step))
        step_losses.append(loss)
        if prev is not None:
            coeff = _coefficient(leap, prev[0], loss, prev[2], lr)
            for k, g in prev[1].items():
                acc[k].addcmul_(g, coeff.reshape(-1, *([1] * (g.dim() - 1))))
        if step < steps:
            sq = sum(_sq_norm(delta, inputs, b_name is not None)
                     for (_, b_name, _), (delta, inputs) in zip(plan, factors))
            grads = grads_from_factors(plan, factors)
            for k, g in grads.items():
                params[k].add_(g, alpha=-lr)
            prev = (loss, grads, sq)
    return acc, torch.stack(step_losses, dim=1)


def _sq_norm(delta: Tensor, inputs: Tensor, bias: bool) -> Tensor:
    """Per-rollout ‖δᵀh‖²_F (+ ‖Σ_B δ‖² with a bias) from [B, B] Gram matrices: [r]."""
    gram = (torch.bmm(delta, delta.transpose(1, 2)) * torch.bmm(inputs, inputs.transpose(1, 2)))
    sq = gram.sum(dim=(1, 2))
    if bias:
        sq = sq + delta.sum(dim=1).square().sum(dim=1)
    return sq


def _coefficient(leap, prev_loss: Tensor, loss: Tensor, grad_sq: Tensor, lr: float) -> Tensor:
    """c = −lr·a + b of ``Leap.coefficients`` with ‖Δθ‖² = lr²·‖g‖²: [r]."""
    a, b = leap.scalars((lr * lr) * grad_sq, loss - prev_loss)
    return -lr * a + b
