"""N-way classification on scikit-learn's bundled 8×8 digits (no download)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch

from trajviz.problem import models
from trajviz.problem.tasks.base import (
    Problem,
    TaskSet,
    as_tensor,
    check_counts,
    cross_entropy_loss,
    rng_for,
)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target.astype(np.int64)


@dataclass(frozen=True)
class Digits:
    """Each task picks ``ways`` classes at random and relabels them 0..ways−1;
    ``shots`` support and ``query_shots`` query images per class. Train tasks
    draw images from the first ⅔ of each class, held-out tasks from the rest,
    so no held-out image is ever seen in meta-training.
    ``net``: "mlp" (64-hidden-ways) or "conv" (two 3×3 conv blocks of ``channels``
    channels and a linear head: P = 9c² + 11c + (4c + 1)·ways, e.g. 16 channels 2.8k,
    330 channels ~1M parameters).
    """

    name: ClassVar[str] = "digits"
    ways: int = 5
    shots: int = 5
    query_shots: int = 10
    net: str = "mlp"
    hidden: int = 64
    channels: int = 16

    def problem(self) -> Problem:
        if self.net == "mlp":
            model = models.mlp((64, self.hidden, self.ways))
        elif self.net == "conv":
            model = models.convnet(self.ways, channels=self.channels)
        else:
            raise ValueError(f"unknown digits net {self.net!r}; accepted: ['conv', 'mlp']")
        return Problem(model, cross_entropy_loss(model))

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet:
        check_counts(n_tasks, ways=self.ways, shots=self.shots, query_shots=self.query_shots)
        if self.ways > 10:
            raise ValueError(f"digits has 10 classes; ways must be <= 10, got {self.ways}")
        images, labels = _digits()
        rng = rng_for(seed, split)
        per_class = self.shots + self.query_shots
        counts = np.bincount(labels, minlength=10)
        available = int(min(2 * counts // 3 if split == "train" else counts - 2 * counts // 3))
        if per_class > available:
            raise ValueError(f"digits has {available} {split} images per class; shots + query_shots "
                             f"must be <= {available}, got {per_class}")
        sx, sy, qx, qy, classes = [], [], [], [], []
        for _ in range(n_tasks):
            chosen = rng.choice(10, size=self.ways, replace=False)
            s_img, q_img = [], []
            for cls in chosen:
                idx = np.flatnonzero(labels == cls)
                cut = (2 * len(idx)) // 3
                pool = idx[:cut] if split == "train" else idx[cut:]
                pick = rng.choice(pool, size=per_class, replace=False)
                s_img.append(pick[: self.shots])
                q_img.append(pick[self.shots:])
            s_idx, q_idx = np.stack(s_img), np.stack(q_img)  # [ways, shots]
            sx.append(images[s_idx.reshape(-1)])
            qx.append(images[q_idx.reshape(-1)])
            sy.append(np.repeat(np.arange(self.ways), self.shots))
            qy.append(np.repeat(np.arange(self.ways), self.query_shots))
            classes.append(chosen)
        shape = (1, 8, 8) if self.net == "conv" else (64,)
        as_x = lambda xs: as_tensor(np.stack(xs).reshape(n_tasks, -1, *shape))
        return TaskSet({"x": as_x(sx), "y": as_tensor(np.stack(sy))},
                       {"x": as_x(qx), "y": as_tensor(np.stack(qy))},
                       torch.arange(n_tasks), {"classes": as_tensor(np.stack(classes))})
