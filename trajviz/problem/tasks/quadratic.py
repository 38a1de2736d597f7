"""Rotated anisotropic bowls f_τ(θ) = ½(θ−c_τ)ᵀA_τ(θ−c_τ), minimiser c_τ."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from trajviz.problem import models
from trajviz.problem.models import Params
from trajviz.problem.tasks.base import Batch, Problem, TaskSet, as_tensor, check_counts, rng_for


def bowl_loss(params: Params, batch: Batch) -> torch.Tensor:
    d = params["theta"] - batch["c"]
    return 0.5 * d @ batch["A"] @ d


@dataclass(frozen=True)
class Quadratic:
    """Bowls in ``dim`` dimensions with eigenvalues spaced geometrically in
    [1, ``condition``] and a random rotation per task; centres c ~ N(0, spread²·I).

    Ill-conditioning (large ``condition``) with a large step makes gradient
    descent zig-zag: the teaching case for oscillation and monotonicity.
    There is no data: support and query are the bowl itself.
    """

    name: ClassVar[str] = "quadratic"
    dim: int = 2
    condition: float = 10.0
    spread: float = 2.0
    init_scale: float = 3.0

    def problem(self) -> Problem:
        return Problem(models.point(self.dim, self.init_scale), bowl_loss)

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet:
        check_counts(n_tasks, dim=self.dim)
        if not self.condition >= 1.0:
            raise ValueError(f"condition must be >= 1, got {self.condition}")
        rng = rng_for(seed, split)
        eig = np.geomspace(1.0, self.condition, self.dim)
        q, r = np.linalg.qr(rng.normal(size=(n_tasks, self.dim, self.dim)))
        rot = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
        a = np.einsum("tij,j,tkj->tik", rot, eig, rot)
        a = 0.5 * (a + a.transpose(0, 2, 1))
        c = self.spread * rng.normal(size=(n_tasks, self.dim))
        bowl = {"A": as_tensor(a), "c": as_tensor(c)}
        return TaskSet(bowl, dict(bowl), torch.arange(n_tasks), {"minimiser": as_tensor(c)},
                       minibatchable=False)
