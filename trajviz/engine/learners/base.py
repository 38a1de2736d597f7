"""What a meta-learner is, and helpers the learners share.

A learner is a small frozen dataclass with a pure
``meta_gradient(problem, theta0, tasks, inner, seed) -> MetaGradient``;
the shared outer loop (``outer.py``) applies any torch optimiser to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from trajviz.engine.inner import InnerSpec
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class MetaGradient:
    """grad: {name: [*shape]} the direction the outer optimiser *descends*.

    diverged: how many of the meta-batch's rollouts produced a non-finite loss
    (they are left out of the mean); stats: scalars for the progress log.
    """

    grad: Params
    diverged: int = 0
    stats: dict[str, float] = field(default_factory=dict)


class Learner(Protocol):
    name: str
    trains: bool

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient: ...


def masked_task_mean(per_rollout: Params, ok: Tensor) -> Params:
    """Mean over rollouts (axis 0) of the rollouts where ``ok`` [R] is True; zero if none."""
    count = ok.sum().clamp(min=1).to(next(iter(per_rollout.values())).dtype)
    out = {}
    for k, v in per_rollout.items():
        mask = ok.reshape(-1, *([1] * (v.dim() - 1)))
        out[k] = torch.where(mask, v, torch.zeros_like(v)).sum(0) / count
    return out


def finite_rollouts(diverged_at: Tensor, *values: Params) -> Tensor:
    """[R] True where a rollout never diverged and every value in ``values`` is finite."""
    ok = diverged_at < 0
    for params in values:
        for v in params.values():
            ok = ok & torch.isfinite(v.detach()).reshape(v.shape[0], -1).all(dim=1)
    return ok


def pooled_batch(tasks: TaskSet) -> dict[str, Tensor]:
    """Support and query of each task joined along the sample axis: {key: [T, N+M, ...]}."""
    if not tasks.minibatchable:
        return tasks.support
    return {k: torch.cat([tasks.support[k], tasks.query[k]], dim=1) for k in tasks.support}


def mean_finite(values: Tensor) -> float:
    """Mean of the finite entries (a progress statistic), NaN if there are none."""
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if finite.numel() else float("nan")
