"""The birth map in the app: view-model values, the figure, and the callbacks
(click-to-launch through the real worker process, keep, the birth-map job)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from birth_fixtures import make_birth_run
from dash import no_update

from trajviz.app import create_app
from trajviz.app.birth import (
    birth_panel,
    click_launch,
    keep_launch,
    parse_click,
    poll_birth,
    poll_launch,
    start_birth,
)
from trajviz.app.callbacks import draw
from trajviz.app.inputs import PageInputs
from trajviz.figures.birthmap import birth_figure
from trajviz.store import load_run
from trajviz.viewmodel.birthview import BIRTH_CHOICES, select_birth
from trajviz.viewmodel.selection import summary_rows


@pytest.fixture(scope="module")
def birth_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("birth-runs")
    path = make_birth_run(runs)
    return path, load_run(path)


@pytest.fixture(scope="module")
def app_state(birth_run):
    app = create_app(birth_run[0].parent)
    yield app.trajviz_state
    app.trajviz_state.shutdown()  # every worker and job it started


def test_select_birth_values_follow_the_stored_map(birth_run):
    _, run = birth_run
    bm = run.birthmaps["exact"]
    bs = select_birth(run, "exact", "auc")
    raw = bm.mean["auc"]
    np.testing.assert_array_equal(bs.raw, raw)
    expected = np.log10(raw) if bs.log_z else raw
    np.testing.assert_allclose(bs.z, expected, rtol=1e-6)  # float32 log10
    assert bs.birth == (float(bm.birth[0]), float(bm.birth[1]))
    b, a = bm.birth_index
    assert (bs.alpha[a], bs.beta[b]) == pytest.approx(bs.birth)
    # the birth point is the fastest among the least specialised quarter
    spec = bm.specialisation
    calm = spec <= np.nanquantile(spec, 0.25)
    assert raw[b, a] == pytest.approx(np.nanmin(np.where(calm, raw, np.nan)))
    assert [m.name for m in bs.marks] == list(bm.learners)
    for m, i in zip(bs.marks, range(len(bm.learners))):
        assert (m.a, m.b, m.value) == pytest.approx(
            (bm.learner_table["a"][i], bm.learner_table["b"][i], bm.learner_table["value"][i]))
        # on the exact slice a θ0's projection is the first point of its drawn paths
        assert (m.a, m.b) == pytest.approx(tuple(run.views["exact"].coords[m.name][0, 0]), abs=1e-5)
    np.testing.assert_array_equal(select_birth(run, "exact", "specialisation").raw, spec)
    np.testing.assert_array_equal(select_birth(run, "exact", "predicted").raw, bm.predicted)
    assert f"{bm.rank_correlation:.3f}" in bs.lines[2]
    with pytest.raises(ValueError, match="accepted"):
        select_birth(run, "exact", "speed")
    with pytest.raises(ValueError, match="pca view has no birth map"):
        select_birth(run, "pca", "auc")


def test_birth_figure_marks_the_birth_point_and_every_theta0(birth_run):
    _, run = birth_run
    bs = select_birth(run, "exact", "length")
    fig = birth_figure(bs, "exact")
    assert [t.type for t in fig.data] == ["heatmap", "scatter"] + ["scatter"] * len(bs.marks)
    heat, star, *marks = fig.data
    np.testing.assert_allclose(np.asarray(heat.z, float), bs.z.astype(np.float32), rtol=1e-6)
    assert heat.colorbar.title.text in ("length", "log<sub>10</sub> length")
    assert (star.x[0], star.y[0]) == bs.birth and star.marker.symbol == "star"
    for trace, m in zip(marks, bs.marks):
        assert (trace.x[0], trace.y[0]) == (m.a, m.b) and trace.name == f"{m.name} θ0"
    assert list(fig.layout.xaxis.range) == [bs.alpha[0], bs.alpha[-1]]
    json.loads(fig.to_json())  # serialisable for the browser


def test_birth_panel_offers_a_job_where_there_is_no_map(app_state, birth_run):
    run_id = birth_run[0].name
    with_map = birth_panel(app_state, run_id, "exact", "auc")
    assert with_map["figure"].data[0].type == "heatmap" and with_map["compute"] == {"display": "none"}
    assert len(with_map["lines"]) == 5
    without = birth_panel(app_state, run_id, "pca", "auc")
    # no map: the line and the button, no empty 520 px graph (issue 26)
    assert without["compute"] == {} and "No birth map" in str(without["lines"])
    assert without["graph"] == {"display": "none"} and with_map["graph"] == {}


def test_parse_click():
    assert parse_click({"points": [{"x": 0.5, "y": -1, "curveNumber": 0}]}) == (0.5, -1.0)
    assert parse_click(None) is None and parse_click({"points": []}) is None


def landed(state, started: dict, polls: int = 3000) -> dict:
    """Poll a launch action until it has ended (bounded: about five minutes)."""
    import time

    assert started["job"] is not None, started["status"]
    for _ in range(polls):
        o = poll_launch(state, started["job"], False)
        if o["poll_disabled"]:
            return o
        assert o["row"] == {} and "·" in o["text"]  # the progress row shows while it runs
        time.sleep(0.1)
    raise AssertionError("the launch did not end")


def test_click_launch_draws_a_new_learner_and_keep_stores_it(app_state, birth_run):
    path, run = birth_run
    run_id = path.name
    leap = run.views["exact"].coords["leap"][0, 0]
    started = click_launch(app_state, run_id, "exact", {"points": [{"x": leap[0], "y": leap[1]}]})
    assert started["job"]["a"] == leap[0] and "Training from" in started["status"]
    o = landed(app_state, started)
    launched = o["launched"]
    assert launched["name"] == "click-1", o["status"]
    assert "trained from" in o["status"]
    drawn = draw(app_state, PageInputs(run_id, "exact", "mean", ["leap"], "2d", 0))
    names = [t.name for t in drawn["main"].data]
    assert "click-1" in names and "leap" in names
    result = app_state.launches.latest(run_id)
    # a launch from (the projection of) leap's θ0 on the exact slice trains leap's paths
    np.testing.assert_allclose(result.record.losses, run.learners["leap"].losses, rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(result.views["exact"].coords,
                               run.views["exact"].coords["leap"], rtol=1e-4, atol=1e-5)
    # one launch at a time: a launch that cannot get the worker says so in one line
    app_state.launches._busy.acquire()
    try:
        busy = landed(app_state, click_launch(app_state, run_id, "exact",
                                              {"points": [{"x": 0.0, "y": 0.0}]}))
    finally:
        app_state.launches._busy.release()
    assert "already running" in busy["status"] and busy["launched"] is no_update
    # keep: a bad name is refused in one line; a good one lands in the run
    assert "not accepted" in keep_launch(app_state, run_id, "bad name!", None)["status"]
    assert "already has" in keep_launch(app_state, run_id, "leap", None)["status"]
    kept = keep_launch(app_state, run_id, "my-init", {"n": 0, "select": None})
    assert kept["version"] == {"n": 1, "select": run_id}, kept["status"]
    stored = app_state.cache.get(run_id)
    assert "my-init" in stored.learners and all("my-init" in v.coords for v in stored.views.values())
    assert "my-init" in [r["learner"] for r in summary_rows(stored)]
    np.testing.assert_allclose(stored.learners["my-init"].losses, result.record.losses)
    # the click drew grad/update norms only; the kept point has sharpness, as a run's learners
    assert np.isnan(result.record.diagnostics["sharpness"]).all()
    np.testing.assert_array_equal(stored.learners["my-init"].diagnostics["grad_norm"],
                                  result.record.diagnostics["grad_norm"])
    assert np.isfinite(stored.learners["my-init"].diagnostics["sharpness"]).any()
    assert app_state.launches.latest(run_id) is None


def test_birth_job_computes_and_stores_a_map(app_state, birth_run, monkeypatch):
    import time

    import trajviz.app.birth as birth

    monkeypatch.setattr(birth, "BIRTH_GRID", 5)
    run_id = birth_run[0].name
    started = start_birth(app_state, run_id, "pca")
    assert started["poll"] is False, started["status"]
    assert "already" in start_birth(app_state, run_id, "pca")["status"]
    for _ in range(600):  # bounded: at most about five minutes of polls
        o = poll_birth(app_state, started["job"], 0)
        if o["poll"]:
            break
        time.sleep(0.5)
    assert o["version"] == 1, o["status"]
    bm = app_state.cache.get(run_id).birthmaps["pca"]
    assert bm.alpha.shape == (5,) and bm.task_ids.shape == (4,)
    assert birth_panel(app_state, run_id, "pca", "auc")["figure"].data[0].type == "heatmap"
    assert set(BIRTH_CHOICES) >= {"auc", "length", "steps_to_eps", "final_loss",
                                  "specialisation", "predicted"}
