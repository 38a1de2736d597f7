"""MAML (Finn et al., 2017): differentiate the query loss through all K inner steps.

``first_order=True`` drops the second-order terms, which is FOMAML exactly. A large
model's meta-batch is differentiated in chunks (``maml_chunk``), so its graph never holds
every rollout's K steps at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch.func import vmap

from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.learners.base import MetaGradient, mean_finite
from trajviz.engine.learners.fomaml import FOMAML
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.spec.budget import maml_chunk


@dataclass(frozen=True)
class MAML:
    name: ClassVar[str] = "maml"
    trains: ClassVar[bool] = True
    first_order: bool = False

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        if self.first_order:
            return FOMAML().meta_gradient(problem, theta0, tasks, inner, seed)
        R = len(tasks)
        chunk = maml_chunk(problem.model.spec.size, inner.steps, next(iter(theta0.values())).element_size(), R)
        leaves = {k: v.detach().requires_grad_(True) for k, v in theta0.items()}
        sums, queries, bad = None, [], 0
        for start in range(0, R, chunk):  # one graph per chunk: memory O(chunk·K·P), not O(R·K·P)
            part = tasks if chunk >= R else tasks.select(list(range(start, min(start + chunk, R))))
            with torch.enable_grad():
                result = inner_loop(Rollouts(problem, part, inner, seed), leaves,
                                    differentiable=True)
                query = vmap(problem.loss)(result.final, part.query)  # [r]
                ok = torch.isfinite(query.detach()) & (result.diverged_at < 0)
                total = torch.where(ok, query, torch.zeros_like(query)).sum()
                if chunk >= R:  # the whole meta-batch at once: the mean, as it always was
                    total = total / ok.sum().clamp(min=1)
                grads = torch.autograd.grad(total, list(leaves.values()), allow_unused=True)
            part_grads = [None if g is None else g.detach() for g in grads]
            sums = part_grads if sums is None else [
                a if b is None else (b if a is None else a + b) for a, b in zip(sums, part_grads)]
            queries.append(query.detach())
            bad += int((~ok).sum())
        query = torch.cat(queries)
        if chunk < R:
            count = max(1, R - bad)
            sums = [None if g is None else g / count for g in sums]
        grads = sums
        grad = {k: torch.zeros_like(v) if g is None else g.detach()
                for (k, v), g in zip(leaves.items(), grads)}
        return MetaGradient(grad, bad, {"query_loss": mean_finite(query)})
