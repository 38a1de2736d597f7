"""First-order MAML: the meta-gradient is the query-set gradient at θ_K."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from trajviz.engine.inner import InnerSpec, inner_loop, losses_and_grads
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
class FOMAML:
    name: ClassVar[str] = "fomaml"
    trains: ClassVar[bool] = True

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        result = inner_loop(Rollouts(problem, tasks, inner, seed), theta0)
        query_loss, query_grad = losses_and_grads(problem, result.final, tasks.query)
        ok = finite_rollouts(result.diverged_at, query_grad) & torch.isfinite(query_loss)
        grad = masked_task_mean(query_grad, ok)
        return MetaGradient(grad, int((~ok).sum()), {"query_loss": mean_finite(query_loss)})
