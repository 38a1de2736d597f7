"""No meta-training: the shared random initialisation, as a baseline."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from trajviz.engine.inner import InnerSpec
from trajviz.engine.learners.base import MetaGradient
from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class RandomInit:
    name: ClassVar[str] = "random"
    trains: ClassVar[bool] = False

    def meta_gradient(self, problem: Problem, theta0: Params, tasks: TaskSet,
                      inner: InnerSpec, seed: int) -> MetaGradient:
        return MetaGradient({k: torch.zeros_like(v) for k, v in theta0.items()})
