"""Did meta-training help? What the page says about each learner's meta-training
(view-model, numpy only, no plotly).

* ``meta_checks``: per meta-trained learner, its held-out final loss, AUC and path
  length at the first and last evaluation of meta-training (``LearnerRecord.evals``),
  which of final loss and AUC ended worse than they started, and whether its θ0 looks
  collapsed (dead ReLUs from ``run.info["dead_units"]``, or paths that barely move);
* ``worse_line``: ONE line naming the learners that meta-training made worse (or that
  end worse than the random initialisation), with the numbers;
* ``outer_lr_line`` and ``tuning_rows``: how each learner's outer learning rate was
  chosen (one value for all, or the sweep of ``outer.lr = "tune"``: grid, scores, choice).

Runs without ``dead_units`` or ``tuning`` in ``run.info`` (older runs) still read:
those parts are left out.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajviz.data.run import Run
from trajviz.viewmodel.labels import fmt
from trajviz.viewmodel.summary import summary_rows

#: A metric "ended worse" when its last value exceeds the first by more than this fraction
#: (the evaluations reuse the same tasks and minibatches, so this is not noise, but a
#: change of a few percent is not worth a warning).
WORSE_MARGIN = 0.05
#: Metrics watched, in the order the line names them.
WATCHED = (("final_loss", "final loss"), ("auc", "AUC"))
#: A θ0 is collapsed when at least this fraction of its ReLU units are dead on the
#: held-out inputs, and more than at the start ...
DEAD_COLLAPSE = 0.5
#: ... or when its held-out paths are shorter than this fraction of the start's while its
#: loss got worse: the network has gone flat, so nothing moves.
STILL_FRACTION = 0.25


@dataclass(frozen=True)
class MetaCheck:
    """One meta-trained learner: ``start``/``end`` {final_loss, auc, length} at its first and
    last evaluation (meta-steps ``steps[0]``, ``steps[1]``); ``worse``: the WATCHED metrics
    that ended worse; ``dead``: (start, end) dead-ReLU fractions, NaN when not recorded;
    ``collapsed``: what says the θ0 collapsed, '' when nothing does."""

    learner: str
    steps: tuple[int, int]
    start: dict[str, float]
    end: dict[str, float]
    worse: tuple[str, ...]
    dead: tuple[float, float]
    collapsed: str


def _value(evals: dict[str, np.ndarray], key: str, index: int) -> float:
    v = np.asarray(evals.get(key, ()), dtype=float).ravel()
    return float(v[index]) if v.size else math.nan


def _ended_worse(start: float, end: float) -> bool:
    if not math.isfinite(start):
        return False
    return not math.isfinite(end) or end > start * (1.0 + WORSE_MARGIN) + 1e-12


def _dead(run: Run, learner: str) -> tuple[float, float]:
    record = run.info.get("dead_units") or {}
    start, end = record.get("start"), (record.get("learners") or {}).get(learner)
    as_float = lambda x: float(x) if isinstance(x, (int, float)) else math.nan
    return as_float(start), as_float(end)


def collapse_reason(dead: tuple[float, float], start: dict[str, float], end: dict[str, float],
                    worse: Sequence[str]) -> str:
    """What says a θ0 collapsed, in words ('' when nothing does)."""
    d0, d1 = dead
    reasons = []
    if math.isfinite(d1) and d1 >= DEAD_COLLAPSE and not d1 <= d0:
        reasons.append(f"{d1:.0%} of its ReLU units are dead on the held-out inputs "
                       f"({d0:.0%} at the start)" if math.isfinite(d0) else
                       f"{d1:.0%} of its ReLU units are dead on the held-out inputs")
    l0, l1 = start.get("length", math.nan), end.get("length", math.nan)
    if worse and math.isfinite(l0) and math.isfinite(l1) and l1 < STILL_FRACTION * l0:
        reasons.append(f"its paths barely move (length {fmt(l0)} → {fmt(l1)})")
    return " and ".join(reasons)


def meta_trained(rec: Any) -> bool:
    """Whether a learner was evaluated at least twice during meta-training and its held-out
    metrics changed ('random' and fixed initialisations keep θ0: their evaluations are
    equal to the bit). Read from the evaluations, which the app loads (``meta_path`` is
    heavy and the page loads it empty)."""
    if np.asarray(rec.eval_steps).size < 2:
        return False
    return any(not np.array_equal(np.asarray(v)[:1], np.asarray(v)[-1:], equal_nan=True)
               for v in rec.evals.values())


def meta_checks(run: Run, learners: Sequence[str] | None = None) -> dict[str, MetaCheck]:
    """{learner: MetaCheck} for the learners that meta-trained (``meta_trained``)."""
    out = {}
    for name, rec in run.learners.items():
        steps = np.asarray(rec.eval_steps).ravel()
        if (learners is not None and name not in learners) or not meta_trained(rec):
            continue
        start = {k: _value(rec.evals, k, 0) for k in ("final_loss", "auc", "length")}
        end = {k: _value(rec.evals, k, -1) for k in ("final_loss", "auc", "length")}
        worse = tuple(k for k, _ in WATCHED if _ended_worse(start[k], end[k]))
        dead = _dead(run, name)
        out[name] = MetaCheck(name, (int(steps[0]), int(steps[-1])), start, end, worse, dead,
                              collapse_reason(dead, start, end, worse))
    return out


def _worse_than_random(run: Run, learners: Sequence[str] | None) -> dict[str, tuple[float, float]]:
    """{learner: (its held-out mean final loss, random's)} where it ends worse than random's."""
    rows = {r["learner"]: r for r in summary_rows(run)}
    if "random" not in rows:
        return {}
    ref = rows["random"]["final_loss"][0]
    return {n: (r["final_loss"][0], ref) for n, r in rows.items()
            if n != "random" and (learners is None or n in learners)
            and meta_trained(run.learners[n]) and _ended_worse(ref, r["final_loss"][0])}


def worse_line(run: Run, learners: Sequence[str] | None = None) -> str:
    """One line for the summary and the meta-training tab: which learners meta-training made
    worse (with start → end of their held-out final loss and AUC), which end worse than
    the random initialisation, and which collapsed; '' when none."""
    checks = meta_checks(run, learners)
    parts = []
    for name, c in checks.items():
        if c.worse:
            numbers = ", ".join(f"{label} {fmt(c.start[k])} → {fmt(c.end[k])}"
                                for k, label in WATCHED)
            parts.append(f"{name} got worse during meta-training ({numbers} over "
                         f"{c.steps[1] - c.steps[0]} meta-steps)")
        if c.collapsed:
            parts.append(f"{name}'s θ0 looks collapsed: {c.collapsed}")
    for name, (mean, ref) in _worse_than_random(run, learners).items():
        if not (name in checks and checks[name].worse):
            parts.append(f"{name} ends worse than random (held-out final loss {fmt(mean)} vs "
                         f"{fmt(ref)})")
    return ("⚠ " + "; ".join(parts) + ".") if parts else ""


def tuning_rows(run: Run) -> list[dict[str, Any]]:
    """Per tuned learner: {'learner', 'grid' [G], 'scores' [G] (NaN: diverged), 'chosen',
    'start' (the score at the shared starting θ0), 'helped' (the chosen score beats the
    start), 'metric', 'tasks'} from ``run.info["tuning"]``; [] when the run was not tuned."""
    number = lambda x: float(x) if isinstance(x, (int, float)) else math.nan
    rows = []
    for name, t in (run.info.get("tuning") or {}).items():
        if not isinstance(t, dict) or name not in run.learners:
            continue
        grid, scores = [float(g) for g in t.get("grid", ())], [number(s) for s in t.get("scores", ())]
        chosen, start = number(t.get("chosen")), number(t.get("start"))
        best = dict(zip(grid, scores)).get(chosen, math.nan)
        rows.append({"learner": name, "grid": grid, "scores": scores, "chosen": chosen,
                     "start": start, "helped": not (best >= start),
                     "metric": str(t.get("metric", "auc")), "tasks": int(t.get("tasks", 0))})
    return rows


def lr_text(lr: float) -> str:
    """A learning rate as people write it: 0.0001, 0.003, 12."""
    return f"{lr:g}"


def outer_lr_line(run: Run) -> str:
    """How the outer learning rates were chosen, in one line."""
    rows = tuning_rows(run)
    outer = run.config.get("outer") if isinstance(run.config.get("outer"), dict) else {}
    if not rows:
        lr = outer.get("lr")
        if not isinstance(lr, (int, float)):
            return ""
        return (f"Outer learning rate {lr_text(float(lr))} for every learner, not tuned "
                "(outer.lr = \"tune\" picks each learner's own).")
    metric = "loss AUC" if rows[0]["metric"] == "auc" else rows[0]["metric"].replace("_", " ")
    chosen = ", ".join(f"{r['learner']} {lr_text(r['chosen'])}" for r in rows)
    grid = ", ".join(lr_text(g) for g in rows[0]["grid"])
    stuck = [r["learner"] for r in rows if not r["helped"]]
    text = (f"Outer learning rate tuned per learner from {{{grid}}} by mean {metric} on "
            f"{rows[0]['tasks']} validation tasks, never the held-out ones: {chosen}.")
    if stuck:
        text += (f" No value in the grid beat the starting θ0 for {', '.join(stuck)}: "
                 "meta-training did not help it here at any of these rates.")
    return text
