"""Sinusoid regression (Finn et al., 2017): y = a·sin(x − φ)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from trajviz.problem import models
from trajviz.problem.tasks.base import Problem, TaskSet, as_tensor, check_counts, mse_loss, rng_for


@dataclass(frozen=True)
class Sinusoid:
    """Amplitude a ~ U[0.1, 5], phase φ ~ U[0, π], x ~ U[−5, 5].

    ``shots`` support points per task (a larger pool lets the inner loop draw
    a fresh minibatch each step), ``query_shots`` held-out points, and an MLP
    ``1-hidden...-1``.
    """

    name: ClassVar[str] = "sinusoid"
    shots: int = 10
    query_shots: int = 50
    hidden: tuple[int, ...] = (40, 40)
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def problem(self) -> Problem:
        model = models.mlp((1, *self.hidden, 1), activation="relu")
        return Problem(model, mse_loss(model))

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet:
        check_counts(n_tasks, shots=self.shots, query_shots=self.query_shots)
        rng = rng_for(seed, split)
        amp = rng.uniform(*self.amplitude, size=(n_tasks, 1, 1))
        phase = rng.uniform(*self.phase, size=(n_tasks, 1, 1))

        def points(n: int) -> dict:
            x = rng.uniform(*self.x_range, size=(n_tasks, n, 1))
            return {"x": as_tensor(x), "y": as_tensor(amp * np.sin(x - phase))}

        support, query = points(self.shots), points(self.query_shots)
        return TaskSet(support, query, as_tensor(np.arange(n_tasks, dtype=np.int64)),
                       {"amplitude": as_tensor(amp[:, 0, 0]), "phase": as_tensor(phase[:, 0, 0])})
