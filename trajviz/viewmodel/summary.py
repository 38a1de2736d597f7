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

from trajviz.data.run import Run
from trajviz.data.stats import summarise, t_quantile  # noqa: F401 - re-exported for the view-model
from trajviz.viewmodel.palette import learner_colour

#: The per-learner summary: metric key, column title, which way is better.
SUMMARY_COLUMNS = (("length", "Path length", "lower"), ("oscillation", "Oscillation", "lower"),
                   ("monotonicity", "Monotonicity", "higher"),
                   ("final_loss", "Final loss", "lower"), ("auc", "Loss AUC", "lower"))
FRACTIONS = ("oscillation", "monotonicity")


def summary_rows(run: Run, learners: Sequence[str] | None = None,
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per learner: {'learner', 'colour', 'n', 'diverged', 'covers', metric: (mean, lo, hi)}
    over held-out tasks (Student-t interval, clipped to the metric's possible range: ≥ 0
    where every value is, ≤ 1 for fractions; diverged tasks, NaN, are left out and
    counted in 'diverged'). 'covers': {metric: tasks the mean is over} (from
    ``run.info["summary_counts"]`` where the run has it, else the finite values)."""
    names = [n for n in run.learners if learners is None or n in learners]
    rows = []
    for n in names:
        rec = run.learners[n]
        row: dict[str, Any] = {"learner": n, "colour": learner_colour(n),
                               "diverged": int(np.sum(np.asarray(rec.diverged_at) >= 0)),
                               "n": len(run.task_ids), "covers": {}}
        counts = (run.info.get("summary_counts") or {}).get(n) or {}
        for key, _, _ in SUMMARY_COLUMNS:
            values = np.asarray(rec.metrics.get(key, np.full(len(run.task_ids), np.nan)), float)
            values = np.where(np.isinf(values), np.nan, values)
            stored = counts.get(key)
            row["covers"][key] = int(stored[0]) if isinstance(stored, (list, tuple)) and \
                stored else int(np.isfinite(values).sum())
            mean, lo, hi = summarise(values, confidence)
            # the t-interval can leave the metric's possible range; clip it there
            if np.isfinite(values).any() and np.nanmin(values) >= 0:
                lo = max(lo, 0.0)
            if key in FRACTIONS:
                hi = min(hi, 1.0)
            row[key] = (mean, lo, hi)
        rows.append(row)
    return rows


def coverage(row: dict[str, Any], key: str) -> str:
    """'' when the metric's mean covers every task, else '4 of 6 tasks'."""
    k = row.get("covers", {}).get(key, row["n"])
    return "" if k >= row["n"] else f"{k} of {row['n']} tasks"


def not_eligible(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{learner: why it is never marked best}: it diverged on some task, or (when the run
    has the 'random' baseline) its mean final loss is not below random's, so it learned
    nothing a random start does not (random itself stays eligible: it is the yardstick).
    Without 'random' in the rows only the divergence rule applies."""
    out = {}
    random = next((r for r in rows if r["learner"] == "random"), None)
    ref = random["final_loss"][0] if random is not None else math.nan
    for r in rows:
        if r.get("diverged", 0) > 0:
            out[r["learner"]] = f"diverged on {r['diverged']} of {r['n']} tasks"
        elif r is not random and math.isfinite(ref) and \
                not float(f"{r['final_loss'][0]:.6g}") < float(f"{ref:.6g}"):
            out[r["learner"]] = "final loss not below the random initialisation's"
    return out


def best_learners(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{metric: learner with the best mean} (lower or higher is better per SUMMARY_COLUMNS),
    among the learners ``not_eligible`` does not exclude; a metric where the best mean is
    shared (a tie, to 6 significant digits) has no entry."""
    excluded = not_eligible(rows)
    rows = [r for r in rows if r["learner"] not in excluded]
    best = {}
    for key, _, better in SUMMARY_COLUMNS:
        scored = sorted((float(f"{r[key][0]:.6g}"), r["learner"]) for r in rows
                        if np.isfinite(r[key][0]))
        if better == "higher":
            scored.reverse()
        if scored and (len(scored) == 1 or scored[0][0] != scored[1][0]):
            best[key] = scored[0][1]
    return best
