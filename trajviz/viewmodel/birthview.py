"""View-model of the birth map: what the page draws of a run's ``BirthMap`` (no plotly).

``select_birth(run, view, statistic)`` picks the map's values for one statistic
(a per-task mean of ``BIRTH_STATISTICS``, or ``specialisation``, or
``predicted``), the birth point, every learner's θ0 on the slice, the learner
table and the lines that say how the birth point was chosen and how well the
predictor ranks the grid. Every consumer (page, screenshot, tests) draws from it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajviz.data.run import BIRTH_STATISTICS, Run
from trajviz.viewmodel.selection import use_log

#: What the statistic picker offers, with labels (lower is faster or less specialised).
BIRTH_CHOICES = {
    "auc": "loss AUC (mean loss over the K steps)",
    "length": "path length (Leap)",
    "steps_to_eps": "steps to within ε of the final loss",
    "final_loss": "final loss",
    "specialisation": "specialisation (CV of per-task AUC)",
    "predicted": "predicted AUC (from the first steps)",
    "param_length": "parameter path length Σ‖Δθ‖",
}


LOG_SPAN = 10.0


@dataclass(frozen=True)
class BirthMark:
    """One learner's θ0 on the map: its projection (a, b) and the map's statistic there
    (NaN when the map's table does not hold it, e.g. a point kept after the map was made)."""

    name: str
    a: float
    b: float
    value: float


@dataclass(frozen=True)
class BirthSelection:
    """alpha [A], beta [B]; z [B, A] the picked statistic (log10 where ``log_z``);
    raw [B, A] its values; birth (a, b) and birth_value (of the map's ranking
    statistic); marks: the learners' θ0s; rows: the learner table; lines: the
    explanation numbers (rule, predictor and its rank correlation)."""

    view: str
    statistic: str
    ranked_by: str
    label: str
    alpha: np.ndarray
    beta: np.ndarray
    z: np.ndarray
    raw: np.ndarray
    log_z: bool
    birth: tuple[float, float]
    birth_value: float
    marks: tuple[BirthMark, ...]
    rows: tuple[dict, ...]
    lines: tuple[str, ...]
    key: str


def birth_values(bm, statistic: str) -> np.ndarray:
    """[B, A] values of ``statistic`` over the map's grid."""
    if statistic == "specialisation":
        return np.asarray(bm.specialisation, float)
    if statistic == "predicted":
        return np.asarray(bm.predicted, float)
    if statistic in BIRTH_STATISTICS:
        return np.asarray(bm.mean[statistic], float)
    raise ValueError(f"unknown birth-map statistic {statistic!r}; accepted: {list(BIRTH_CHOICES)}")


def _marks(run: Run, bm) -> tuple[BirthMark, ...]:
    table = bm.learner_table
    view = run.views[bm.view]
    marks = []
    for name in run.learners:
        if name in bm.learners:
            i = bm.learners.index(name)
            marks.append(BirthMark(name, float(table["a"][i]), float(table["b"][i]),
                                   float(table["value"][i])))
        elif name in view.coords:
            a, b = np.asarray(view.coords[name], float)[0, 0]
            marks.append(BirthMark(name, float(a), float(b), float("nan")))
    return tuple(marks)


def _rows(bm) -> tuple[dict, ...]:
    t = bm.learner_table
    return tuple({"learner": n, "a": float(t["a"][i]), "b": float(t["b"][i]),
                  "residual": float(t["residual"][i]), "value": float(t["value"][i]),
                  "value_gap": float(t["value_gap"][i]), "plane_gap": float(t["plane_gap"][i]),
                  "param_gap": float(t["param_gap"][i]),
                  "specialisation": float(t["specialisation"][i])}
                 for i, n in enumerate(bm.learners))


def select_birth(run: Run, view: str | None = None, statistic: str | None = None) -> BirthSelection:
    """The birth map of ``view`` (default: the first view that has one) for ``statistic``
    (default: the one the map ranks by). ValueError (one line) if there is none."""
    if not run.birthmaps:
        raise ValueError("this run has no birth map yet")
    if view not in run.birthmaps:
        if view is not None and view in run.views:
            raise ValueError(f"the {view} view has no birth map yet")
        view = next(iter(run.birthmaps))
    bm = run.birthmaps[view]
    statistic = statistic or bm.statistic
    raw = birth_values(bm, statistic)
    finite = raw[np.isfinite(raw)]
    # loss-like values spanning over a decade are coloured in log10, so the fast region shows
    log_z = statistic != "specialisation" and (use_log([raw]) or bool(
        finite.size and finite.min() > 0 and finite.max() / finite.min() > LOG_SPAN))
    z = np.log10(np.where(raw > 0, raw, np.nan)) if log_z else raw
    bi = tuple(int(i) for i in bm.birth_index)
    s = bm.settings
    birth_value = float(bm.mean[bm.statistic][bi])
    lines = (
        f"Birth point (a, b) = ({bm.birth[0]:.3g}, {bm.birth[1]:.3g}): mean {bm.statistic} "
        f"{birth_value:.4g}, specialisation {float(bm.specialisation[bi]):.3g}.",
        f"Rule: {s.get('rule', '')}",
        f"Predictor: {s.get('predictor', '')}. Its Spearman rank correlation with the measured "
        f"mean {bm.statistic} over the grid: {bm.rank_correlation:.3f} (1 = it ranks the grid "
        "points exactly as measured).",
        f"Specialisation: {s.get('specialisation', '')}",
        f"Grid {len(bm.alpha)}×{len(bm.beta)} θ0s × {s.get('tasks', len(bm.task_ids))} held-out "
        f"tasks × {s.get('steps', '?')} inner steps ({float(s.get('seconds', float('nan'))):.1f} s).",
    )
    label = BIRTH_CHOICES.get(statistic, statistic)
    return BirthSelection(
        view=view, statistic=statistic, ranked_by=bm.statistic, label=label,
        alpha=np.asarray(bm.alpha, float), beta=np.asarray(bm.beta, float), z=z, raw=raw,
        log_z=bool(log_z), birth=(float(bm.birth[0]), float(bm.birth[1])),
        birth_value=birth_value, marks=_marks(run, bm), rows=_rows(bm), lines=lines,
        key=f"{run.run_id}|birth|{view}|{statistic}")


__all__ = ["BIRTH_CHOICES", "BirthMark", "BirthSelection", "birth_values", "select_birth"]
