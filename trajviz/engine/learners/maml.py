"""MAML (Finn et al., 2017): differentiate the query loss through all K inner steps.

``first_order=True`` drops the second-order terms, which is FOMAML exactly.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.func import vmap

from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.engine.learners.base import MetaGradient, mean_finite
from trajviz.engine.learners.fomaml import FOMAML


@dataclass(frozen=True)
class MAML:
    name: ClassVar[str] = "maml"
    trains: ClassVar[bool] = True
    first_order: bool = False

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        if self.first_order:
            return FOMAML().meta_gradient(problem, theta0, tasks, inner, seed)
        with torch.enable_grad():
            leaves = {k: v.detach().requires_grad_(True) for k, v in theta0.items()}
            result = inner_loop(problem, leaves, tasks, inner, seed=seed, differentiable=True)
            query = vmap(problem.loss)(result.final, tasks.query)  # [R]
            ok = torch.isfinite(query.detach()) & (result.diverged_at < 0)
            count = ok.sum().clamp(min=1)
            meta_loss = torch.where(ok, query, torch.zeros_like(query)).sum() / count
            grads = torch.autograd.grad(meta_loss, list(leaves.values()), allow_unused=True)
        grad = {k: torch.zeros_like(v) if g is None else g.detach()
                for (k, v), g in zip(leaves.items(), grads)}
        return MetaGradient(grad, int((~ok).sum()), {"query_loss": mean_finite(query.detach())})
