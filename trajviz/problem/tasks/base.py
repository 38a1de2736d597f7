"""What every task family provides: a ``Problem`` (model + loss) and ``TaskSet``s.

A family is a small frozen dataclass whose fields are its options. It must
offer ``name``, ``problem() -> Problem`` and
``sample(seed, n_tasks, split) -> TaskSet``; see ``tasks/plugin.py`` for
bringing your own.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from trajviz.problem.models import Model, Params

Batch = dict[str, Tensor]
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Problem:
    """A model and the loss of one task on one batch.

    ``loss(params, batch) -> []`` is pure and vmappable: ``params`` has the
    model's own shapes, ``batch`` holds one task's tensors (``x: [B, ...]``,
    ``y: [B, ...]``, or a family's own keys such as ``A: [D, D]``).
    """

    model: Model
    loss: Callable[[Params, Batch], Tensor]


@dataclass(frozen=True)
class TaskSet:
    """``T`` tasks stacked on axis 0.

    support: {key: [T, N, ...]} adaptation data (or [T, ...] without a sample
        axis when ``minibatchable`` is False, e.g. quadratic bowls).
    query: {key: [T, M, ...]} held-out data of the same tasks.
    ids: [T] int64 task identifiers, stable for a seed.
    info: {key: [T, ...]} the parameters that generated each task.
    """

    support: Batch
    query: Batch
    ids: Tensor
    info: Batch = field(default_factory=dict)
    minibatchable: bool = True

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def select(self, index: Tensor | list[int]) -> TaskSet:
        """A TaskSet of the tasks at ``index`` (in that order, repeats allowed)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = lambda d: {k: v[idx] for k, v in d.items()}
        return TaskSet(pick(self.support), pick(self.query), self.ids[idx], pick(self.info),
                       self.minibatchable)

    def placement(self) -> tuple[torch.device, torch.dtype]:
        """(device, dtype) to compute in: those of the first floating support tensor
        (float32 if there is none; integer labels do not count)."""
        tensors = list(self.support.values())
        first = next((v for v in tensors if v.is_floating_point()), tensors[0])
        return first.device, first.dtype if first.is_floating_point() else torch.float32

    def to(self, device: str | torch.device, dtype: torch.dtype) -> TaskSet:
        """Move to ``device``; floating tensors take ``dtype``, integer labels stay."""
        def move(d: Batch) -> Batch:
            return {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
                    for k, v in d.items()}
        return TaskSet(move(self.support), move(self.query), self.ids.to(device),
                       move(self.info), self.minibatchable)


@runtime_checkable
class TaskFamily(Protocol):
    name: str

    def problem(self) -> Problem: ...

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet: ...


def rng_for(seed: int, split: str, *stream: int) -> np.random.Generator:
    """An independent numpy generator per (seed, split, stream...): splits never share tasks."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; accepted: {list(SPLITS)}")
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), *stream]))


def as_tensor(array: np.ndarray) -> Tensor:
    """float arrays become float32 tensors (``TaskSet.to`` picks the final dtype)."""
    t = torch.from_numpy(np.ascontiguousarray(array))
    return t.float() if t.is_floating_point() else t


def mse_loss(model: Model) -> Callable[[Params, Batch], Tensor]:
    def loss(params: Params, batch: Batch) -> Tensor:
        return ((model.apply(params, batch["x"]) - batch["y"]) ** 2).mean()
    return loss


def cross_entropy_loss(model: Model) -> Callable[[Params, Batch], Tensor]:
    def loss(params: Params, batch: Batch) -> Tensor:
        return torch.nn.functional.cross_entropy(model.apply(params, batch["x"]), batch["y"])
    return loss


def check_counts(n_tasks: int, **sizes: int) -> None:
    for name, value in {"n_tasks": n_tasks, **sizes}.items():
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
