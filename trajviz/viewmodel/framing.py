"""Frames one outlier cannot take over: which points the "fit these paths" box is fitted
to, and the points left outside it, drawn clipped at the frame's edge and marked.

The rule for a learner whose path went far is ``trajviz.data.outliers`` (shared with the
slice fit); ``honesty`` names the learners it left out. No plotly, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajviz.data.outliers import plane_outliers

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class EdgeMark:
    """A learner's path leaving the frame: where it is drawn (a, b on the frame's edge),
    where its farthest point really is (true_a, true_b), and how many points are out."""

    learner: str
    a: float
    b: float
    true_a: float
    true_b: float
    count: int


def framed_points(coords: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, float]]:
    """The finite points [M, 2] a frame is fitted to, and the far learners left out
    {learner: how many times as far as the others' paths reached}."""
    return plane_outliers(coords)


def outside(coords: dict[str, np.ndarray], box: Box) -> dict[str, np.ndarray]:
    """{learner: [..] bool}: finite points outside ``box`` (x0, x1, y0, y1)."""
    out = {}
    for name, c in coords.items():
        c = np.asarray(c, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            out[name] = np.isfinite(c).all(-1) & ((c[..., 0] < box[0]) | (c[..., 0] > box[1])
                                                  | (c[..., 1] < box[2]) | (c[..., 1] > box[3]))
    return out


def clip_to(c: np.ndarray, box: Box) -> np.ndarray:
    """Points [..., 2] moved onto ``box`` along each axis (NaN stays NaN)."""
    c = np.asarray(c, dtype=np.float64)
    return np.stack([np.clip(c[..., 0], box[0], box[1]), np.clip(c[..., 1], box[2], box[3])], -1)


def edge_marks(coords: dict[str, np.ndarray], box: Box) -> list[EdgeMark]:
    """One mark per learner with points outside ``box``: its farthest point, clipped."""
    marks = []
    centre = np.array([(box[0] + box[1]) / 2, (box[2] + box[3]) / 2])
    for name, flags in outside(coords, box).items():
        if not flags.any():
            continue
        pts = np.asarray(coords[name], dtype=np.float64)[flags]
        far = pts[np.argmax(np.linalg.norm(pts - centre, axis=-1))]
        edge = clip_to(far, box)
        marks.append(EdgeMark(name, float(edge[0]), float(edge[1]), float(far[0]), float(far[1]),
                              int(flags.sum())))
    return marks


__all__ = ["EdgeMark", "clip_to", "edge_marks", "framed_points", "outside"]
