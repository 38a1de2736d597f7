"""Reptile (Nichol et al., 2018): the meta-gradient is the mean of θ0 − θ_K."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.learners.base import (
    MetaGradient,
    finite_rollouts,
    masked_task_mean,
    mean_finite,
)
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class Reptile:
    name: ClassVar[str] = "reptile"
    trains: ClassVar[bool] = True

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        with torch.no_grad():
            result = inner_loop(Rollouts(problem, tasks, inner, seed), theta0)
            shift = {k: theta0[k].unsqueeze(0) - v for k, v in result.final.items()}
            ok = finite_rollouts(result.diverged_at, shift)
            grad = masked_task_mean(shift, ok)
        return MetaGradient(grad, int((~ok).sum()), {"inner_final_loss": mean_finite(result.final_loss)})
