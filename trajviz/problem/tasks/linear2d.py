"""Two-parameter linear regression y = w_τ·x: parameter space *is* the plane."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trajviz.problem import models
from trajviz.problem.tasks.base import Problem, TaskSet, as_tensor, check_counts, mse_loss, rng_for

# Four tasks on an arc of weights, after (100,20), (120,38), (70,70), (39,115) / 100.
ARC4 = ((1.0, 0.2), (1.2, 0.38), (0.7, 0.7), (0.39, 1.15))


@dataclass(frozen=True)
class Linear2D:
    """Task weights on an arc: angle ~ U[angle_deg], radius ~ U[radius]; x ~ N(0, I₂).

    With ``fixed=True`` task i is ``ARC4[i % 4]`` (the four-task teaching set).
    The model is ``Linear(2, 1, bias=False)``, so θ = (w₁, w₂) and the exact
    slice needs no projection.
    """

    name: ClassVar[str] = "linear2d"
    shots: int = 20
    query_shots: int = 50
    angle_deg: tuple[float, float] = (10.0, 72.0)
    radius: tuple[float, float] = (1.0, 1.25)
    noise: float = 0.0
    fixed: bool = False

    def problem(self) -> Problem:
        model = models.from_module("linear2d", nn.Linear(2, 1, bias=False))
        return Problem(model, mse_loss(model))

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet:
        check_counts(n_tasks, shots=self.shots, query_shots=self.query_shots)
        rng = rng_for(seed, split)
        if self.fixed:
            w = np.array([ARC4[i % len(ARC4)] for i in range(n_tasks)])
        else:
            angle = np.deg2rad(rng.uniform(*self.angle_deg, size=n_tasks))
            r = rng.uniform(*self.radius, size=n_tasks)
            w = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)

        def points(n: int) -> dict:
            x = rng.normal(size=(n_tasks, n, 2))
            y = np.einsum("tnd,td->tn", x, w)[..., None] + self.noise * rng.normal(size=(n_tasks, n, 1))
            return {"x": as_tensor(x), "y": as_tensor(y)}

        support, query = points(self.shots), points(self.query_shots)
        return TaskSet(support, query, torch.arange(n_tasks), {"w": as_tensor(w)})


def arc_angle_deg() -> tuple[float, float]:
    """The angular range spanned by ARC4, for reference in docs and tests."""
    angles = [math.degrees(math.atan2(b, a)) for a, b in ARC4]
    return min(angles), max(angles)
