"""The straight line θ0 → θ_K beside the path actually taken (view-model, numpy only).

The run stores each path's loss along the straight segment from its start to
its end (``diagnostics["straight_loss"]`` [T, K+1], point i at t = i/K, on the
task's full support set; ``trajviz.engine.straight``). Here: the series the
"straight" panel draws, the loss along the plane's straight segment between the
projected ends (read off the stored surface, bilinear), and whether each line is
monotone (Goodfellow et al., ICLR 2015: "monotonic linear interpolation").
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trajviz.data.run import Run, View
from trajviz.viewmodel.diagnosis import grouped
from trajviz.viewmodel.labels import fmt

RISE_TOL = 1e-6  # a rise above this fraction of the line's loss scale breaks monotonicity


@dataclass(frozen=True)
class Straight:
    """line {learner: [K+1]} the straight θ0 → θ_K loss (task or task mean); plane
    {learner: [K+1]} along the plane's straight segment between the projected ends;
    monotone {learner: (monotone tasks, tasks with a line)} over the chosen tasks (one
    task: (1, 1) or (0, 1)); rise {learner: the largest rise of the drawn line above an
    earlier point of it}; recorded: whether the run stored straight lines."""

    line: dict[str, np.ndarray]
    plane: dict[str, np.ndarray]
    monotone: dict[str, tuple[int, int]]
    rise: dict[str, float]
    recorded: bool


def largest_rise(values: np.ndarray) -> np.ndarray:
    """[..., N] -> [...]: max over i of v_i − min_{j<i} v_j (0 for a non-increasing line;
    NaN where the line has a NaN)."""
    v = np.asarray(values, float)
    before = np.minimum.accumulate(v, axis=-1)
    rise = np.max(v[..., 1:] - before[..., :-1], axis=-1, initial=0.0)
    return np.where(np.isnan(v).any(-1), np.nan, np.maximum(rise, 0.0))


def is_monotone(values: np.ndarray) -> np.ndarray:
    """[..., N] -> [...] bool: never rises by more than RISE_TOL of its loss scale."""
    v = np.asarray(values, float)
    scale = np.nanmax(np.abs(v), axis=-1) if v.size else 1.0
    return largest_rise(v) <= RISE_TOL * np.maximum(scale, 1e-30)


def bilinear(alpha: np.ndarray, beta: np.ndarray, z: np.ndarray, a: np.ndarray,
             b: np.ndarray) -> np.ndarray:
    """z [B, A] on the grid (alpha [A], beta [B]) at points (a, b) [N]; NaN outside."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    inside = (a >= alpha[0]) & (a <= alpha[-1]) & (b >= beta[0]) & (b <= beta[-1])
    ia = np.clip(np.searchsorted(alpha, np.where(inside, a, alpha[0])) - 1, 0, len(alpha) - 2)
    ib = np.clip(np.searchsorted(beta, np.where(inside, b, beta[0])) - 1, 0, len(beta) - 2)
    fa = (np.where(inside, a, alpha[0]) - alpha[ia]) / (alpha[ia + 1] - alpha[ia])
    fb = (np.where(inside, b, beta[0]) - beta[ib]) / (beta[ib + 1] - beta[ib])
    val = ((1 - fa) * (1 - fb) * z[ib, ia] + fa * (1 - fb) * z[ib, ia + 1]
           + (1 - fa) * fb * z[ib + 1, ia] + fa * fb * z[ib + 1, ia + 1])
    return np.where(inside, val, np.nan)


def plane_segment(view: View, learner: str) -> np.ndarray:
    """[T, K+1] the surface's loss along the straight segment between each path's projected
    start and end on ``view`` (NaN for a diverged path or a segment leaving the grid)."""
    xy = np.asarray(view.coords[learner], float)  # [T, K+1, 2]
    t = np.linspace(0.0, 1.0, xy.shape[1])[None, :, None]
    seg = xy[:, :1] + t * (xy[:, -1:] - xy[:, :1])
    s = view.surface
    alpha, beta = np.asarray(s.alpha, float), np.asarray(s.beta, float)
    return np.stack([bilinear(alpha, beta, np.asarray(s.loss[i], float), seg[i, :, 0], seg[i, :, 1])
                     for i in range(len(seg))])


def _pick(values: np.ndarray, task: int | None) -> np.ndarray:
    if task is not None:
        return values[task]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=0)


def straight(run: Run, view: str, learners: Sequence[str], task: int | None) -> Straight:
    """The straight-line panel's data for the drawn ``learners`` on ``view``."""
    line, plane, monotone, rise = {}, {}, {}, {}
    recorded = False
    for n in learners:
        stored = run.learners[n].diagnostics.get("straight_loss")
        plane[n] = _pick(plane_segment(run.views[view], n), task)
        if stored is None:
            line[n] = np.full(run.steps + 1, np.nan)
            continue
        recorded = True
        v = np.asarray(stored, float)
        rows = v if task is None else v[task:task + 1]
        has = ~np.isnan(rows).any(-1)
        monotone[n] = (int(is_monotone(rows[has]).sum()) if has.any() else 0, int(has.sum()))
        line[n] = _pick(v, task)
        rise[n] = float(largest_rise(line[n]))
    return Straight(line, plane, monotone, rise, recorded)


def straight_line_text(s: Straight, learners: Sequence[str], task: int | None) -> str:
    """Under the panel: which straight lines are monotone, and the largest bump."""
    if not s.recorded:
        return ""
    parts = {}
    for n in learners:
        if n not in s.monotone or not s.monotone[n][1]:
            continue
        good, total = s.monotone[n]
        if task is not None:
            parts[n] = "monotone" if good else f"rises by {fmt(s.rise[n])} on the way"
        else:
            parts[n] = f"monotone on {good}/{total} tasks"
    if not parts:
        return ""
    return ("Dotted: the loss on the straight line from θ0 to θ_K (step i at fraction i/K of the "
            f"way); dash-dot: the same segment on the slice (read off the surface grid). "
            f"{_upper(grouped(parts, learners))}.")


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]
