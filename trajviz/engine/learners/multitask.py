"""Multi-task pretraining: one gradient step on the meta-batch's pooled data."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.func import vmap

from trajviz.engine.inner import InnerSpec
from trajviz.engine.learners.base import MetaGradient, pooled_batch
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class Multitask:
    """Minimises the mean over tasks of f_τ(θ0) on support ∪ query; no inner loop."""

    name: ClassVar[str] = "multitask"
    trains: ClassVar[bool] = True

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        with torch.enable_grad():
            leaves = {k: v.detach().requires_grad_(True) for k, v in theta0.items()}
            losses = vmap(problem.loss, in_dims=(None, 0))(leaves, pooled_batch(tasks))
            ok = torch.isfinite(losses.detach())
            loss = torch.where(ok, losses, torch.zeros_like(losses)).sum() / ok.sum().clamp(min=1)
            grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
        grad = {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(leaves.items(), grads)}
        return MetaGradient(grad, int((~ok).sum()), {"pooled_loss": float(loss.detach())})
