"""The per-learner summary over held-out tasks (view-model, no plotly).

``summary_rows`` gives each learner's mean and 95% interval per metric;
``best_learners`` names the best mean per column. The page's table, the
exported table figure and the tests all read these rows.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from .palette import learner_colour
from .run import Run

#: The per-learner summary: metric key, column title, which way is better.
SUMMARY_COLUMNS = (("length", "Path length", "lower"), ("oscillation", "Oscillation", "lower"),
                   ("monotonicity", "Monotonicity", "higher"),
                   ("final_loss", "Final loss", "lower"), ("auc", "Loss AUC", "lower"))
FRACTIONS = ("oscillation", "monotonicity")


def summarise(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` with a two-sided Student-t confidence interval.

    values: [N] (any array-like, torch tensors included; flattened). NaN
    entries are ignored (diverged rollouts); ±inf is kept and propagates.
    Returns (mean, lo, hi) as floats: mean ± t_{(1+c)/2, n−1}·s/√n with s the
    sample standard deviation (ddof=1) over the n non-NaN values. With n = 1
    the interval is (mean, mean); with n = 0 all three are NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu()
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1 or not math.isfinite(mean):
        return mean, mean, mean
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return mean, mean - half, mean + half


def summary_rows(run: Run, learners: Sequence[str] | None = None,
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per learner: {'learner', 'colour', 'n', metric: (mean, lo, hi)} over held-out tasks
    (Student-t interval, clipped to the metric's possible range: ≥ 0 where every value is,
    ≤ 1 for fractions; diverged tasks, NaN, are left out and counted in 'diverged')."""
    names = [n for n in run.learners if learners is None or n in learners]
    rows = []
    for n in names:
        rec = run.learners[n]
        row: dict[str, Any] = {"learner": n, "colour": learner_colour(n),
                               "diverged": int(np.sum(np.asarray(rec.diverged_at) >= 0)),
                               "n": len(run.task_ids)}
        for key, _, _ in SUMMARY_COLUMNS:
            values = np.asarray(rec.metrics.get(key, np.full(len(run.task_ids), np.nan)), float)
            values = np.where(np.isinf(values), np.nan, values)
            mean, lo, hi = summarise(values, confidence)
            # the t-interval can leave the metric's possible range; clip it there
            if np.isfinite(values).any() and np.nanmin(values) >= 0:
                lo = max(lo, 0.0)
            if key in FRACTIONS:
                hi = min(hi, 1.0)
            row[key] = (mean, lo, hi)
        rows.append(row)
    return rows


def best_learners(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{metric: learner with the best mean} (lower or higher is better per SUMMARY_COLUMNS);
    a metric where the best mean is shared (a tie, to 6 significant digits) has no entry."""
    best = {}
    for key, _, better in SUMMARY_COLUMNS:
        scored = sorted((float(f"{r[key][0]:.6g}"), r["learner"]) for r in rows
                        if np.isfinite(r[key][0]))
        if better == "higher":
            scored.reverse()
        if scored and (len(scored) == 1 or scored[0][0] != scored[1][0]):
            best[key] = scored[0][1]
    return best
