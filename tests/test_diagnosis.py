"""The diagnostic panels, divergence drawing, summary rules and log ticks: view-model values,
figure structure and callbacks, on hand-made diagnostics (no torch, seconds)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from app_fixtures import make_run, write_run_dir

from trajviz import figures as F
from trajviz.app import callbacks as cb
from trajviz.viewmodel import selection as S
from trajviz.viewmodel.diagnosis import NOT_RECORDED, crossing_marks, divergence_note, threshold_of
from trajviz.viewmodel.summary import best_learners, coverage, not_eligible
from trajviz.viewmodel.ticks import log_ticks, tick_text

T, K = 4, 10
THRESHOLD = 2 / 0.5  # sgd, lr 0.5


def _with_diagnostics(run, diverge_leap_on: int | None = None):
    """``run`` with sharpness rising 1, 2, ..., (t+1)·i-ish per task, known crossings,
    grad/update norms, the run-level info of an SGD run with lr 0.5."""
    steps = np.arange(K + 1, dtype=float)
    learners = {}
    for j, (name, rec) in enumerate(run.learners.items()):
        # learner j, task t: sharpness = 1 + (j + 1)·(t + 1)·i / 4 crosses 4 at the first i
        # with (j + 1)(t + 1) i > 12; random (j = 2) is flat at 3: never crosses
        sharp = np.stack([1 + (j + 1) * (t + 1) * steps / 4 for t in range(T)])
        if name == "random":
            sharp = np.full((T, K + 1), 3.0)
        diag = {"sharpness": sharp, "grad_norm": np.full((T, K + 1), 0.5 + j),
                "update_norm": np.concatenate([np.full((T, K), 0.25), np.full((T, 1), np.nan)], 1)}
        d = np.asarray(rec.diverged_at).copy()
        if name == "leap" and diverge_leap_on is not None:
            d[diverge_leap_on] = 6
            for v in diag.values():
                v[diverge_leap_on, 6:] = np.nan
            metrics = {k: np.where(np.arange(T) == diverge_leap_on, np.nan, v)
                       for k, v in rec.metrics.items()}
            rec = dataclasses.replace(rec, metrics=metrics)
        learners[name] = dataclasses.replace(rec, diagnostics=diag, diverged_at=d)
    info = {**run.info, "diagnostics": {"optimizer": "sgd", "threshold": THRESHOLD,
                                        "threshold_applies_to": "sharpness",
                                        "threshold_rule": "2/lr", "names": ["sharpness"]}}
    info.pop("divergence", None)
    return dataclasses.replace(run, learners=learners, info=info)


@pytest.fixture(scope="module")
def plain():
    return make_run(n_tasks=T, steps=K)


@pytest.fixture(scope="module")
def diag(plain):
    return _with_diagnostics(plain, diverge_leap_on=1)


def _first_cross(j: int, t: int) -> int:
    """Hand-computed first i with 1 + (j+1)(t+1) i / 4 > 4."""
    return next((i for i in range(K + 1) if 1 + (j + 1) * (t + 1) * i / 4 > 4), -1)


# ---------------------------------------------------------------------------- ticks

def test_log_ticks_never_repeat_a_label_and_stay_few():
    vals, texts = log_ticks(math.log10(0.2), math.log10(2))  # the "2, 5, 1, 2, 5" range
    assert texts == ["0.2", "0.5", "1", "2"] and vals == [0.2, 0.5, 1.0, 2.0]
    vals, texts = log_ticks(-3, 27)  # a blow-up: 31 decades
    assert len(texts) <= 6 and texts[0] == "1" and len(set(texts)) == len(texts)
    assert all(math.log10(v) == round(math.log10(v)) for v in vals)  # decades only
    assert np.diff(np.log10(vals)).std() == 0  # evenly thinned
    assert log_ticks(0, 1)[1] == ["1", "2", "5", "10"]
    assert log_ticks(math.log10(0.25), math.log10(0.45))[1] == ["0.3", "0.4"]
    rng = np.random.default_rng(0)
    for lo, span in zip(rng.uniform(-12, 12, 300), 10 ** rng.uniform(-2, 1.7, 300)):
        vals, texts = log_ticks(lo, lo + span)
        assert 1 <= len(texts) <= 6 and len(set(texts)) == len(texts)
        assert all(lo - 1e-9 <= math.log10(v) <= lo + span + 1e-9 for v in vals)
    assert tick_text(1e5) == "10<sup>5</sup>" and tick_text(0.02) == "0.02"
    assert log_ticks(0, 6.2)[1] == ["1", "10<sup>2</sup>", "10<sup>4</sup>", "10<sup>6</sup>"]
    with pytest.raises(ValueError, match="lo < hi"):
        log_ticks(1, 1)


def test_log_panels_use_the_tick_rule(diag):
    run = dataclasses.replace(diag, learners={
        n: dataclasses.replace(r, losses=np.geomspace(1e-3, 1e27, K + 1)[None].repeat(T, 0))
        for n, r in diag.learners.items()})
    sel = S.select(run, "pca", 0, ["leap"])
    fig = F.panel_figure(sel, "loss")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.tickmode == "array"
    text = list(fig.layout.yaxis.ticktext)
    assert 2 <= len(text) <= 6 and len(set(text)) == len(text)
    lo, hi = fig.layout.yaxis.range
    assert all(lo <= math.log10(v) <= hi for v in fig.layout.yaxis.tickvals)


# ---------------------------------------------------------------------------- thresholds

def test_crossing_marks_are_where_each_path_first_exceeds_the_threshold(diag):
    for t in range(T):
        sel = S.select(diag, "pca", t)
        assert sel.diagnosis.thresholds == {"sharpness": THRESHOLD}
        marks = sel.diagnosis.crossing["sharpness"]
        leap = -1 if t == 1 else _first_cross(0, t)  # leap's task 1 stops at step 6: NaN after
        assert marks == {"leap": leap, "reptile": _first_cross(1, t), "random": -1}
    assert crossing_marks({"a": np.array([1.0, np.nan, 5.0])}, 4.0) == {"a": 2}
    assert crossing_marks({"a": np.array([9.0])}, math.nan) == {"a": -1}


def test_sharpness_panel_draws_threshold_and_crossings(diag):
    sel = S.select(diag, "pca", 2)
    fig = F.panel_figure(sel, "sharpness", 0)
    n = len(sel.learners)
    assert [t.name for t in fig.data[n:]] == ["cursor", "now", "stability threshold",
                                              "crosses threshold"]
    line, marks = fig.data[-2], fig.data[-1]
    assert list(line.y) == [THRESHOLD, THRESHOLD] and list(line.x) == [0, K]
    assert _first_cross(0, 2) == 5 and _first_cross(1, 2) == 3  # 1 + 3i/4 > 4, 1 + 6i/4 > 4
    assert list(marks.x) == [_first_cross(0, 2), _first_cross(1, 2)]
    assert list(marks.y) == pytest.approx([1 + (j + 1) * 3 * _first_cross(j, 2) / 4
                                           for j in range(2)])
    lo, hi = fig.layout.yaxis.range  # the threshold is inside the fixed range
    lo, hi = (10 ** lo, 10 ** hi) if fig.layout.yaxis.type == "log" else (lo, hi)
    assert lo < THRESHOLD < hi
    line = sel.diagnosis.lines["sharpness"]
    assert line.startswith("Dashed: threshold 2/lr = 4.") and "leap, reptile from step" not in line
    assert f"leap from step {_first_cross(0, 2)}" in line and "random" not in line
    assert "overshoots along the sharpest direction" in line and "× first crossing" in line
    assert "Tasks that cross: leap 2/4; reptile 4/4." in S.select(diag, "pca").diagnosis.lines[
        "sharpness"]  # leap's task 0 stays below, its task 1 stops (step 6) before step 7


def test_adam_draws_the_preconditioned_sharpness(diag):
    info = {**diag.info, "diagnostics": {**diag.info["diagnostics"], "optimizer": "adam",
                                         "threshold_applies_to": "preconditioned_sharpness"}}
    learners = {n: dataclasses.replace(r, diagnostics={
        **r.diagnostics, "preconditioned_sharpness": r.diagnostics["sharpness"] * 10})
        for n, r in diag.learners.items()}
    run = dataclasses.replace(diag, info=info, learners=learners)
    sel = S.select(run, "pca", 0)
    assert threshold_of(run).applies_to == "preconditioned_sharpness"
    np.testing.assert_allclose(sel.series["sharpness"]["leap"][:3],
                               10 * diag.learners["leap"].diagnostics["sharpness"][0, :3])
    assert "preconditioned sharpness" in sel.diagnosis.lines["sharpness"]


def test_runs_without_diagnostics_say_not_recorded(plain):
    sel = S.select(plain, "pca")
    assert set(sel.diagnosis.missing) == {"sharpness", "grad_norm", "update_norm", "lambda_min",
                                          "trace", "spectrum", "straight"}
    assert NOT_RECORDED in sel.diagnosis.lines["sharpness"]
    fig = F.panel_figure(sel, "sharpness")
    assert any(NOT_RECORDED.capitalize() == a.text for a in fig.layout.annotations)
    assert "sharpness" not in F.panels.metrics_keys(sel)


# ---------------------------------------------------------------------------- divergence

def test_divergence_is_one_note_and_a_cross_at_the_last_good_point(diag):
    sel = S.select(diag, "pca", 1)
    div = [n for n in sel.notes if "Diverged" in n]
    assert len(div) == 1 and div[0].startswith("Diverged on this task: leap at step 6")
    assert "reptile" not in div[0]  # the fixture's reptile diverges on the last task only
    assert sel.diagnosis.diverged["leap"] == (5, "leap diverged at step 6")
    fig = F.surface_figure(sel, 0)
    names = [t.name for t in fig.data]
    cross = fig.data[names.index("diverged")]
    assert cross.marker.symbol == "x" and names.count("diverged") == 1
    assert names.index("diverged") == 1 + len(F.GROUP) * len(sel.learners)  # right after the groups
    i = list(cross.text).index("leap diverged at step 6")
    np.testing.assert_allclose([cross.x[i], cross.y[i]], sel.coords["leap"][5], rtol=1e-6)
    loss = sel.series["loss"]["leap"]  # the panel shows the jump at step 6, then stops
    assert np.isfinite(loss[:7]).all() and np.isnan(loss[7:]).all()
    paper = F.paper_surface_figure(sel)
    crosses = [t for t in paper.data if t.name == "diverged"]
    assert len(crosses) == 1 and crosses[0].text == ("leap diverged at step 6",)
    metrics = F.metrics_figure(sel)
    assert "Diverged on this task: leap at step 6." in metrics.layout.annotations[-1].text
    mean = S.select(diag, "pca")
    assert len(mean.notes) == 1
    assert "leap on 1 of 4 tasks (id 1), first bad step 6" in mean.notes[0]
    assert divergence_note(diag, ["random"], None) == ""
    assert not S.select(diag, "pca", 0, ["random"]).diagnosis.diverged


# ---------------------------------------------------------------------------- summary

def _row(name, final, length, diverged=0, n=6, covers=None):
    cols = {k: (math.nan,) * 3 for k, _, _ in S.SUMMARY_COLUMNS}
    cols.update(final_loss=(final, final, final), length=(length, length, length),
                monotonicity=(0.5, 0.5, 0.5))
    return {"learner": name, "colour": "#000", "n": n, "diverged": diverged,
            "covers": covers or {}, **cols}


def test_best_never_goes_to_a_diverged_learner_or_one_that_learned_nothing():
    rows = [_row("leap", 0.5, 3.0), _row("fomaml", 1.0, 0.1), _row("maml", 0.01, 0.05, 2),
            _row("random", 1.0, 4.0)]
    best = best_learners(rows)
    # maml diverged; fomaml's final loss equals random's: it learned nothing
    assert best["final_loss"] == "leap" and best["length"] == "leap"
    assert not_eligible(rows) == {"maml": "diverged on 2 of 6 tasks",
                                  "fomaml": "final loss not below the random initialisation's"}
    # without random, only the divergence rule applies
    assert best_learners(rows[:3])["length"] == "fomaml"
    # everyone diverged: no best at all
    assert best_learners([_row("leap", 1, 1, 6), _row("random", 2, 2, 6)]) == {}


def test_counts_text_and_table(diag):
    assert coverage(_row("leap", 1, 1, covers={"length": 4}), "length") == "4 of 6 tasks"
    assert coverage(_row("leap", 1, 1, covers={"length": 6}), "length") == ""
    rows = S.summary_rows(diag)
    leap = next(r for r in rows if r["learner"] == "leap")
    assert leap["diverged"] == 1 and leap["covers"]["final_loss"] == T - 1
    counted = dataclasses.replace(diag, info={**diag.info, "summary_counts": {
        "leap": {"final_loss": [2, T]}}})
    assert next(r for r in S.summary_rows(counted)
                if r["learner"] == "leap")["covers"]["final_loss"] == 2
    table = F.summary_table_figure(rows)
    cells = table.data[0].cells.values
    final = [c for c in cells if any("over" in str(x) for x in c)]
    assert final and any(f"over {T - 1} of {T} tasks" in str(x) for x in final[0])


# ---------------------------------------------------------------------------- page

def test_panel_sets_and_panel_lines():
    shape = cb.panel_styles("shape")
    steps = cb.panel_styles("steps")
    keys = [p.key for p in S.PANELS]
    shown = {k for k, s in zip(keys, steps) if s == {}}
    assert shown == {"loss", "sharpness", "grad_norm", "update_norm"}
    assert {k for k, s in zip(keys, shape) if s == {}} == {
        "loss", "straight", "length", "oscillation", "monotonicity", "residual"}
    curvature = cb.panel_styles("curvature")
    assert {k for k, s in zip(keys, curvature) if s == {}} == {
        "loss", "sharpness", "lambda_min", "trace", "spectrum"}
    assert cb.panel_styles(None) == shape


def test_draw_and_run_controls_carry_the_diagnostics(diag, tmp_path):
    write_run_dir(tmp_path, dataclasses.replace(diag, run_id="diag"))
    state = cb.AppState.for_dir(tmp_path)
    out = cb.draw(state, cb.PageInputs("diag", "pca", "2", ["leap", "reptile", "random"], "2d", 0))
    assert out["panel_notes"]["sharpness"].startswith("Dashed: threshold 2/lr = 4.")
    assert out["panel_notes"]["length"] == ""
    names = [t.name for t in out["panels"]["sharpness"].data]
    assert names[-2:] == ["stability threshold", "crosses threshold"]
    assert [p["id"] for p in out["data"]["panels"] if "spectrum" not in p][-3:] == [
        "panel-trace", "panel-grad_norm", "panel-update_norm"]
    controls = cb.run_controls(state, "diag")
    hint = controls["summary"][0].children
    assert "Never bold: leap (diverged on 1 of 4 tasks)" in hint


def test_hessian_slice_is_labelled():
    assert S.slice_name("hessian") == "Hessian slice (sharpest directions)"
