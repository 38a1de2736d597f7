"""Why a path trains badly, for the page (view-model, numpy only, no plotly).

Reads a run's per-step diagnostics (``LearnerRecord.diagnostics``), the
run-level facts in ``run.info["diagnostics"]`` / ``run.info["divergence"]``
and each path's ``diverged_at``, and says what the panels and the plane draw:

* ``threshold_of``: the stability threshold a panel draws (2/lr for SGD, ...,
  from ``trajviz.data.stability``), which diagnostic it applies to, and the rule;
* ``crossing_marks``: where each drawn path first rises above it;
* ``divergence_marks``: the ✕ at each diverged path's last good point;
* ``divergence_note``: ONE note per run naming the learners and tasks that diverged.

Old (version 1) runs have no diagnostics: every function degrades to "not
recorded" rather than failing.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trajviz.data.run import Run
from trajviz.data.stability import DEFAULT_DIVERGENCE_FACTOR, crossings, divergence_report
from trajviz.viewmodel.labels import fmt

NOT_RECORDED = "not recorded in this run"

#: What a threshold crossing means, in words (the panel's line; the ``?`` text teaches more).
CROSSING_MEANING = ("above it a step overshoots along the sharpest direction: the path "
                    "zig-zags or blows up")


@dataclass(frozen=True)
class Threshold:
    """The stability threshold of a run's inner optimiser: value, the diagnostic it applies
    to ('sharpness' or 'preconditioned_sharpness'), its rule in words ('2/lr') and the
    optimiser. ``value`` is NaN when the run does not say (old runs)."""

    value: float
    applies_to: str
    rule: str
    optimizer: str

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.value))


def threshold_of(run: Run) -> Threshold:
    """The run's stability threshold from ``run.info["diagnostics"]`` (NaN if absent)."""
    d = run.info.get("diagnostics") or {}
    value = d.get("threshold")
    return Threshold(float(value) if isinstance(value, (int, float)) else float("nan"),
                     str(d.get("threshold_applies_to") or "sharpness"),
                     str(d.get("threshold_rule") or ""), str(d.get("optimizer") or ""))


def diagnostic_name(run: Run, name: str) -> str:
    """The recorded diagnostic a panel for ``name`` draws: for Adam's sharpness panel the
    preconditioned sharpness (the one its threshold applies to)."""
    if name == "sharpness":
        return threshold_of(run).applies_to
    return name


def diagnostic_values(run: Run, learner: str, name: str) -> np.ndarray | None:
    """[T, K+1] float64 of a learner's diagnostic ``name`` (NaN where not evaluated), or
    None when the run did not record it."""
    values = run.learners[learner].diagnostics.get(diagnostic_name(run, name))
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan)


def upto_divergence(values: np.ndarray, diverged_at: np.ndarray) -> np.ndarray:
    """[T, K+1] float64 ``values`` with NaN after each path's first bad step (the bad step
    itself is kept, so a panel shows the jump that ended the path)."""
    v = np.asarray(values, dtype=np.float64)
    d = np.asarray(diverged_at).reshape(-1)
    stop = np.where(d >= 0, d + 1, v.shape[-1])
    return np.where(np.arange(v.shape[-1])[None, :] < stop[:, None], v, np.nan)


def crossing_marks(series: Mapping[str, np.ndarray], threshold: float) -> dict[str, int]:
    """{learner: first step at which its drawn series [K+1] exceeds ``threshold``, or −1}."""
    if not np.isfinite(threshold):
        return {n: -1 for n in series}
    return {n: int(crossings(np.asarray(v, float), threshold)) for n, v in series.items()}


def crossing_line(run: Run, learners: Sequence[str], task: int | None,
                  thr: Threshold) -> str:
    """The short line under the sharpness panel: who crosses the threshold, and what it
    means; '' when no path crosses (or nothing was recorded)."""
    if not thr.known:
        return ""
    parts = {}
    for n in learners:
        v = diagnostic_values(run, n, "sharpness")
        if v is None:
            continue
        first = crossings(v, thr.value)
        if task is not None:
            if first[task] >= 0:
                parts[n] = f"from step {int(first[task])}"
        elif (first >= 0).any():
            parts[n] = f"{int((first >= 0).sum())}/{len(first)}"
    if not parts:
        return ""
    lead = "× first crossing" if task is not None else "× where the mean crosses. Tasks that cross"
    return f"{lead}: {grouped(parts, learners)}. {CROSSING_MEANING.capitalize()}."


def grouped(parts: Mapping[str, str], learners: Sequence[str]) -> str:
    """{learner: fragment} as 'leap, reptile on …; random on …' ('every learner' when all
    drawn learners share one fragment), in ``learners`` order."""
    by: dict[str, list[str]] = {}
    for n in learners:
        if n in parts:
            by.setdefault(parts[n], []).append(n)
    if len(by) == 1 and len(parts) == len(learners) > 1:
        return f"every learner {next(iter(by))}"
    return "; ".join(f"{', '.join(names)} {frag}" for frag, names in by.items())


def threshold_label(thr: Threshold) -> str:
    """'threshold 2/lr = 0.667' (and, for Adam, that it is the preconditioned sharpness)."""
    if not thr.known:
        return ""
    value = f"{thr.value:.4g}" if 1e-3 <= abs(thr.value) < 1e5 else fmt(thr.value)
    text = f"Dashed: threshold {thr.rule} = {value}" if thr.rule \
        else f"Dashed: threshold {value}"
    if thr.applies_to == "preconditioned_sharpness":
        text = (f"{thr.optimizer.capitalize() or 'Adaptive'} steps: the preconditioned "
                f"sharpness λ_max(P⁻¹H); dashed: (2+2β1)/((1−β1)·lr) = {value}")
    return text


# ---------------------------------------------------------------------------- divergence

def divergence_marks(run: Run, coords: Mapping[str, np.ndarray],
                     task: int | None) -> dict[str, tuple[int, str]]:
    """{learner: (index of the last good point in its drawn coords, hover text)} for every
    drawn path that diverged: on one task its ``diverged_at − 1``; on the task mean the
    last finite point of the mean path (the text counts the tasks)."""
    out = {}
    for n, xy in coords.items():
        d = np.asarray(run.learners[n].diverged_at).ravel()
        if task is not None:
            if d[task] >= 0:
                out[n] = (max(int(d[task]) - 1, 0), f"{n} diverged at step {int(d[task])}")
            continue
        bad = d[d >= 0]
        if not bad.size:
            continue
        finite = np.flatnonzero(np.isfinite(np.asarray(xy, float)).all(-1))
        last = int(finite[-1]) if finite.size else 0
        out[n] = (last, f"{n} diverged on {bad.size} of {d.size} tasks "
                        f"(first at step {int(bad.min())})")
    return out


def divergence_record(run: Run) -> dict[str, Any]:
    """``run.info["divergence"]``, or the same record computed from ``diverged_at``."""
    rec = run.info.get("divergence")
    if isinstance(rec, dict) and isinstance(rec.get("learners"), dict):
        return rec
    factor = (run.config.get("inner") or {}).get("divergence_factor", DEFAULT_DIVERGENCE_FACTOR) \
        if isinstance(run.config.get("inner"), dict) else DEFAULT_DIVERGENCE_FACTOR
    return divergence_report({n: r.diverged_at for n, r in run.learners.items()},
                             np.asarray(run.task_ids), float(factor))


def divergence_note(run: Run, learners: Sequence[str], task: int | None) -> str:
    """One note for the whole run: which learners diverged on which tasks (or, on one
    task, at which step); '' when no drawn path diverged."""
    rec = divergence_record(run)
    factor = f"{float(rec.get('factor', DEFAULT_DIVERGENCE_FACTOR)):.3g}".replace("e+0", "e") \
        .replace("e+", "e")
    parts = {}
    for n in learners:
        d = np.asarray(run.learners[n].diverged_at).ravel()
        if task is not None:
            if d[task] >= 0:
                parts[n] = f"at step {int(d[task])}"
            continue
        bad = np.flatnonzero(d >= 0)
        if bad.size:
            ids = np.asarray(run.task_ids).ravel()[bad]
            where = f"on every task ({bad.size} of {d.size})" if bad.size == d.size else \
                f"on {bad.size} of {d.size} tasks (id{'s' if bad.size > 1 else ''} " \
                f"{', '.join(str(i) for i in ids)})"
            lo, hi = int(d[bad].min()), int(d[bad].max())
            parts[n] = f"{where}, first bad step {lo if lo == hi else f'{lo}–{hi}'}"
    if not parts:
        return ""
    head = "Diverged on this task: " if task is not None else "Diverged: "
    return (head + grouped(parts, learners) + f". A path diverges at its first step whose "
            f"loss is not finite or above {factor}× its start; it is drawn up to its last "
            "good point, marked ✕, and means over tasks use the tasks still finite.")


def _pick(values: np.ndarray, task: int | None) -> np.ndarray:
    """[T, K+1] -> the task's row, or the mean over the tasks finite at each step."""
    if task is not None:
        return values[task]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps stay NaN
        return np.nanmean(values, axis=0)


@dataclass(frozen=True)
class Diagnosis:
    """What the diagnostic panels and the plane add to a selection.

    series: {panel key: {learner: [K+1]}} for the diagnostic panels (NaN where not
    recorded); thresholds: {panel key: threshold} for panels that draw one;
    crossing: {panel key: {learner: first step above the threshold or −1}};
    lines: {panel key: the short line under the panel}; missing: panel keys the run
    did not record; diverged: {learner: (index of the last good point, hover text)};
    errors: {panel key: {learner: [K+1] error bar}} for panels whose values are estimates.
    """

    series: dict[str, dict[str, np.ndarray]]
    thresholds: dict[str, float]
    crossing: dict[str, dict[str, int]]
    lines: dict[str, str]
    missing: tuple[str, ...]
    diverged: dict[str, tuple[int, str]]
    errors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def diagnose(run: Run, panels: Sequence[tuple[str, str, bool]], learners: Sequence[str],
             task: int | None, coords: Mapping[str, np.ndarray]) -> Diagnosis:
    """The diagnostic panels' series, thresholds, crossing marks and lines, and the
    divergence marks. panels: (panel key, diagnostic name, draws the threshold)."""
    thr = threshold_of(run)
    series, thresholds, crossing, lines, missing = {}, {}, {}, {}, []
    for key, name, with_threshold in panels:
        series[key] = {}
        for n in learners:
            v = diagnostic_values(run, n, name)
            series[key][n] = np.full(run.steps + 1, np.nan) if v is None else _pick(v, task)
        recorded = any(diagnostic_values(run, n, name) is not None for n in learners)
        if not recorded:
            missing.append(key)
            lines[key] = f"{name.replace('_', ' ')}: {NOT_RECORDED}"
            continue
        if with_threshold and thr.known:
            thresholds[key] = thr.value
            crossing[key] = crossing_marks(series[key], thr.value)
            lines[key] = " ".join(t for t in (threshold_label(thr) + ".",
                                              crossing_line(run, learners, task, thr)) if t)
    return Diagnosis(series, thresholds, crossing, lines, tuple(missing),
                     divergence_marks(run, coords, task))
