"""Leap (Flennerhag et al., ICLR 2019), with the reference implementation's semantics.

For each segment θ_i → θ_{i+1} of a task's inner loop (amzn/metalearn-leap,
``Updater.increment_grad``) the meta-gradient gains

    −(Δθ_i + Δf̃_i · ∇f_i(θ_i)) / √(Δf_i² + ‖Δθ_i‖²)     (norm=True: path length)
    −(Δθ_i + Δf̃_i · ∇f_i(θ_i))                            (norm=False: energy, no factor 2)

with Δθ_i = θ_{i+1} − θ_i (the optimiser's true displacement), Δf_i =
f_{i+1}(θ_{i+1}) − f_i(θ_i) on the batches of those steps, Δf̃ = −|Δf| when
``stabilizer`` (the reference flips a positive Δf), and the Δf terms dropped
when ``loss=False``. Increments are summed over segments and averaged over
tasks. Unlike the reference, the last segment (θ_{K−1} → θ_K) is included,
and no counter or buffer lives across calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from trajviz.engine.inner import InnerSpec, Point, inner_loop
from trajviz.engine.learners.base import (
    MetaGradient,
    finite_rollouts,
    masked_task_mean,
    mean_finite,
)
from trajviz.engine.learners.reptile import Reptile
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class Leap:
    name: ClassVar[str] = "leap"
    trains: ClassVar[bool] = True
    norm: bool = True
    loss: bool = True
    stabilizer: bool = True

    def coefficients(self, prev: Point, curr: Point) -> tuple[Params, Tensor, Tensor]:
        """One segment's increment as ``a·Δθ + b·∇f_i(θ_i)`` per rollout.

        Returns Δθ {name: [R, ...]} (a fresh tensor, θ_{i+1} − θ_i) and the
        per-rollout scalars a = −1/ℓ, b = −Δf̃/ℓ ([R] each), where ℓ is the segment's
        length (1 when ``norm=False``) and b = 0 when ``loss=False``.
        """
        d_theta = {k: curr.params[k] - prev.params[k] for k in prev.params}
        # per-rollout norms over every non-rollout axis, without reshape (which would copy a
        # non-contiguous gradient-layout tensor)
        sq = sum(torch.linalg.vector_norm(d, dim=tuple(range(1, d.dim()))) ** 2 if d.dim() > 1 else d * d
                 for d in d_theta.values())
        a, b = self.scalars(sq, curr.loss - prev.loss)
        return d_theta, a, b

    def scalars(self, sq_step: Tensor, d_loss: Tensor) -> tuple[Tensor, Tensor]:
        """The per-run a, b [R] of ``coefficients`` from ‖Δθ‖² and Δf ([R] each)."""
        if self.stabilizer:
            d_loss = -d_loss.abs()
        sq = sq_step + d_loss * d_loss if self.loss else sq_step
        a = -torch.ones_like(sq)
        if self.norm:
            length = sq.sqrt()
            # a zero-length segment has a zero numerator too: leave it at 0, not 0/0
            a = torch.where(length > 0, -1.0 / length, torch.zeros_like(length))
        b = a * d_loss if self.loss else torch.zeros_like(a)
        return a, b

    def segment_increment(self, prev: Point, curr: Point) -> Params:
        """The increment of every rollout for one segment: {name: [R, ...]}."""
        d_theta, a, b = self.coefficients(prev, curr)
        return {k: _per_rollout(a, d) * d + _per_rollout(b, d) * prev.grad[k] for k, d in d_theta.items()}

    def accumulate(self, acc: Params | None, prev: Point, curr: Point) -> Params:
        """Add one segment's increment to ``acc``, the fold's own buffers (updated in place).

        Fused: the only new tensors are Δθ (which becomes the buffer on the first
        segment); the rest is in-place multiply-adds, two passes over memory per
        parameter instead of seven.
        """
        d_theta, a, b = self.coefficients(prev, curr)
        first = acc is None
        out = {} if first else acc
        for k, d in d_theta.items():
            if first:
                out[k] = d.mul_(_per_rollout(a, d))
            else:
                out[k].addcmul_(d, _per_rollout(a, d))
            if self.loss:
                out[k].addcmul_(prev.grad[k], _per_rollout(b, d))
        return out

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        if not self.norm and not self.loss:
            # Every increment is −Δθ_i, so the sum telescopes to θ0 − θ_K: taken whole, as
            # Reptile does, it is exact (no float32 sum of K differences) and bitwise Reptile's.
            return Reptile().meta_gradient(problem, theta0, tasks, inner, seed)
        with torch.no_grad():
            result = inner_loop(Rollouts(problem, tasks, inner, seed), theta0,
                                on_segment=self.accumulate)
            accumulated, diverged_at, final_loss = result.accumulated, result.diverged_at, result.final_loss
            ok = finite_rollouts(diverged_at, accumulated)
            grad = masked_task_mean(accumulated, ok)
        return MetaGradient(grad, int((~ok).sum()), {"inner_final_loss": mean_finite(final_loss)})


def _per_rollout(values: Tensor, like: Tensor) -> Tensor:
    """[R] -> [R, 1, ...] broadcastable against ``like`` [R, ...]."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))
