"""Loss surfaces on a slice, evaluated in vectorised chunks sized to cache and memory."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Surface:
    """alpha: [A] and beta: [B] grid coordinates on the slice; loss: [T, B, A]
    per task (row b, column a, as plotly's contour ``z`` expects); mean: [B, A]
    the task mean; task_ids: [T]."""

    alpha: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    mean: np.ndarray
    task_ids: np.ndarray

# INTERFACE (to be implemented): evaluate_surface, plane_losses, choose_chunk
