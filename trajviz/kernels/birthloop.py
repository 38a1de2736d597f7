"""The birth map's statistics-only inner loop for fusable MLPs: flat, in place, no recording.

``birthmap.rollout_statistics`` needs, per rollout, only the losses f_0..f_K
and the update lengths ‖θ_{i+1} − θ_i‖. For an MLP that ``fused`` handles and
an optimiser of ``optim.py`` (sgd, momentum, adam) this module runs the inner
loop on one flat θ [R, P] with every [R, P] array allocated once per chunk
and updated in place (the plain loop allocates a fresh [R, P] array per
elementwise op and per parameter tensor, and checks every θ_i for finiteness,
which the statistics do not need):

    per step   f, (δ_l, h_{l−1}) = fused.mlp_losses_and_factors(θ views)
               g ← [δ_lᵀ·h_{l−1} | Σ_B δ_l] written into one flat buffer
               u ← the optimiser's update, op by op as in optim.py
               θ' ← θ + u;  ‖θ' − θ‖ (as path_metrics computes it)

The optimisers are written with the same IEEE operations in the same order as
``optim.py`` (same scalars, no fused multiply-adds), so the numbers are the
plain loop's: tests check bitwise equality on the sinusoid MLP. Any other
model or optimiser returns None from ``fast_plan`` and keeps the plain path;
so do ``TRAJVIZ_BIRTHLOOP=0`` and ``inner_loop_only()`` (A/B timing and tests).
"""
from __future__ import annotations

import contextlib
import os

import torch
from torch import Tensor

from trajviz.kernels import fused
from trajviz.engine.inner import InnerSpec, all_batches, minibatch_indices
from trajviz.problem.models import unflatten
from trajviz.problem.optim import InnerOptimizer
from trajviz.problem.tasks import Problem, TaskSet

OPTIMIZERS = ("sgd", "momentum", "adam")
_off = False


@contextlib.contextmanager
def inner_loop_only():
    """Within this block ``fast_plan`` returns None: the plain ``inner_loop`` (A/B checks)."""
    global _off
    saved, _off = _off, True
    try:
        yield
    finally:
        _off = saved


def fast_plan(problem: Problem, tasks: TaskSet, spec: InnerSpec) -> tuple | None:
    """The fused MLP plan when this loop applies (fusable MLP, sgd/momentum/adam), else None."""
    if _off or os.environ.get("TRAJVIZ_BIRTHLOOP", "1") == "0" or spec.optimizer.name not in OPTIMIZERS:
        return None
    plan = fused.use_fused(problem, tasks.support)
    if plan is None:
        return None
    names = problem.model.spec.names
    covered = {n for w, b, _ in plan for n in (w, b) if n is not None}
    return plan if covered == set(names) else None


def _stepper(opt: InnerOptimizer, theta: Tensor):
    """``step(g, u)``: writes the update for gradient g [R, P] into u, as ``opt.update`` would."""
    h = dict(opt.hyper)
    lr = h["lr"]
    if opt.name == "sgd":
        def step(g: Tensor, u: Tensor) -> None:
            torch.mul(g, -lr, out=u)  # -lr * g
        return step
    if opt.name == "momentum":
        beta, nesterov = h["beta"], bool(h["nesterov"])
        buf = torch.zeros_like(theta)

        def step(g: Tensor, u: Tensor) -> None:
            buf.mul_(beta).add_(g)  # beta * buf + g
            if nesterov:
                torch.mul(buf, beta, out=u)
                torch.add(g, u, out=u)  # g + beta * buf
                u.mul_(-lr)
            else:
                torch.mul(buf, -lr, out=u)
        return step
    b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
    m, v, tmp = torch.zeros_like(theta), torch.zeros_like(theta), torch.empty_like(theta)
    t = [0]

    def step(g: Tensor, u: Tensor) -> None:
        t[0] += 1
        bc1, bc2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        m.mul_(b1).add_(torch.mul(g, 1 - b1, out=tmp))  # b1 * m + (1 - b1) * g
        torch.mul(g, 1 - b2, out=tmp).mul_(g)  # (1 - b2) * g * g
        v.mul_(b2).add_(tmp)
        torch.sqrt(v, out=tmp).div_(bc2 ** 0.5).add_(eps)  # √v / √bc2 + eps (v ≥ 0)
        torch.mul(m, -(lr / bc1), out=u).div_(tmp)
    return step


def statistics_loop(plan: tuple, problem: Problem, theta0: Tensor, tasks: TaskSet, spec: InnerSpec,
                    seed: int) -> tuple[Tensor, Tensor]:
    """Losses [R, K+1] and update lengths ‖θ_{i+1} − θ_i‖ [R, K] of R rollouts.

    theta0: [R, P] (one row per rollout, e.g. from ``pair_theta0_with_tasks``);
    tasks: the R rollouts' tasks; the same batches as ``inner.inner_loop``.
    """
    spec_p = problem.model.spec
    rollouts, steps = theta0.shape[0], spec.steps
    batches = all_batches(tasks, minibatch_indices(tasks, spec, seed))
    with torch.no_grad():
        theta = theta0.detach().clone(memory_format=torch.contiguous_format)
        other, g, u = torch.empty_like(theta), torch.empty_like(theta), torch.empty_like(theta)
        grads = unflatten(g, spec_p)
        step_fn = _stepper(spec.optimizer, theta)
        losses = torch.empty(steps + 1, rollouts, dtype=theta.dtype, device=theta.device)
        lengths = torch.empty(steps, rollouts, dtype=theta.dtype, device=theta.device)
        for i in range(steps + 1):
            batch = tasks.support if batches is None else {k: v[:, i] for k, v in batches.items()}
            loss, factors = fused.mlp_losses_and_factors(plan, unflatten(theta, spec_p), batch)
            losses[i] = loss
            if i == steps:
                break
            for (w_name, b_name, _), (delta, inputs) in zip(plan, factors):
                grads[w_name].copy_(torch.bmm(delta.transpose(1, 2), inputs))
                if b_name is not None:
                    grads[b_name].copy_(delta.sum(dim=1))
            step_fn(g, u)
            torch.add(theta, u, out=other)  # θ_{i+1} = θ_i + update
            torch.sub(other, theta, out=u)
            lengths[i] = torch.linalg.vector_norm(u, dim=-1)
            theta, other = other, theta
    return losses.T.contiguous(), lengths.T.contiguous()  # the plain path's layout: same sums
