"""The app's callbacks called as plain functions (no server, no browser)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import plotly.graph_objects as go
import pytest
from app_fixtures import make_run, write_broken_run, write_empty_run, write_run_dir

from trajviz import figures as F
from trajviz.app import ASSETS, create_app, ids
from trajviz.app import callbacks as cb
from trajviz.app.jobs import Job, JobManager, _Reporter, job_config, work
from trajviz.store import RunError


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    write_run_dir(root, make_run(run_id="good", n_params=3, diverge="reptile"))
    write_broken_run(root, "broken")
    write_empty_run(root, "empty")
    return root


@pytest.fixture()
def state(runs):
    return cb.AppState.for_dir(runs)


def text_of(component) -> str:
    """All the text inside a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def test_run_options_list_broken_runs_and_pick_a_good_one(state):
    options, value = cb.run_options(state, None)
    labels = {o["value"]: o["label"] for o in options}
    assert set(labels) == {"good", "broken", "empty"}
    # name · family · created · run id: two runs with the same name differ in the picker
    assert labels["broken"].startswith("⚠ broken")
    assert labels["good"] == "fixture · quadratic · 2025-01-01 00:00 · good"
    assert value == "good"
    assert cb.run_options(state, "broken")[1] == "broken"  # the current choice is kept
    assert cb.run_options(state, "gone", select="empty")[1] == "empty"


def test_no_runs_is_an_explained_empty_page(tmp_path):
    state = cb.AppState.for_dir(tmp_path / "nothing-here")
    assert cb.run_options(state, None) == ([], None)
    out = cb.run_controls(state, None)
    assert out["workspace_style"] == cb.HIDE and out["message_style"] == cb.SHOW
    assert "No runs yet" in text_of(out["message"]) and "trajviz demo" in text_of(out["message"])
    assert out["new_run_open"] is True  # the form to make one is opened


@pytest.mark.parametrize("run_id, reason", [
    ("broken", "run.json is not valid JSON"),
    ("empty", "cannot be shown"),
    ("missing", "does not exist"),
    ("../etc", "is not a run folder of this app"),
])
def test_a_bad_run_shows_a_clear_message(state, run_id, reason):
    out = cb.run_controls(state, run_id)
    assert out["workspace_style"] == cb.HIDE and out["message_style"] == cb.SHOW
    text = text_of(out["message"])
    assert reason in text and "Traceback" not in text
    drawn = cb.draw(state, cb.PageInputs(run_id, None, "mean", ["leap"], "2d", 0))
    assert drawn["data"] is None and drawn["notes"]


def test_run_controls_fill_the_pickers(state):
    out = cb.run_controls(state, "good")
    assert out["message_style"] == cb.HIDE and out["workspace_style"] == cb.SHOW
    assert [o["value"] for o in out["task_options"]] == ["mean", "0", "1", "2", "3"]
    assert out["task_options"][0]["label"] == "mean of 4 held-out tasks (averaged points, not a path taken)"
    assert [o["value"] for o in out["slice_options"]] == ["pca", "random"]
    assert out["slice_style"] == cb.SHOW and out["slice"] == "pca"
    assert out["learners"] == ["leap", "reptile", "random"]
    assert "quadratic" in out["info"] and "K = 10" in out["info"]
    table = text_of(out["summary"])
    assert "Path length" in table and "1 of 4" in table  # reptile's diverged task is counted


def test_draw_returns_figures_at_the_frame_and_compact_playback_data(state):
    out = cb.draw(state, cb.PageInputs("good", "pca", "2", ["leap", "random"], "2d", 4))
    main = out["main"]
    assert isinstance(main, go.Figure) and main.data[0].name == "surface"
    assert [t.name for t in main.data if t.name in ("leap", "reptile", "random")] == \
        ["leap", "leap", "random", "random"]  # path and head of each ticked learner
    assert main.layout.meta["frame"] == 4 and "task 2" in main.layout.title.text
    assert set(out["panels"]) == set(F.PANEL_KEYS)
    assert out["max"] == 10 and out["data"]["frame"] == 4
    assert out["data"]["main"]["id"] == ids.MAIN_GRAPH
    assert [p["id"] for p in out["data"]["panels"]] == [ids.PANEL_GRAPH[k] for k in F.PANEL_KEYS]
    assert len(json.dumps(out["data"])) < 20_000
    assert "variance" in text_of(out["honesty"])


def test_draw_clamps_and_falls_back(state):
    out = cb.draw(state, cb.PageInputs("good", "not-a-slice", "mean", ["leap"], "3d", 99))
    assert out["data"]["frame"] == 10 and out["data"]["main"]["three_d"] is True
    assert out["main"].data[0].type == "surface"
    notes = cb.draw(state, cb.PageInputs("good", "pca", "3", ["reptile"], "2d", 0))["notes"]
    assert len(notes) == 1 and "Diverged on this task: reptile at step" in text_of(notes[0])


def test_draw_without_learners_asks_for_one(state):
    out = cb.draw(state, cb.PageInputs("good", "pca", "mean", [], "2d", 0))
    assert out["data"] is None and "Tick a learner" in text_of(out["notes"])
    assert out["main"].data[0].name == "surface" and len(out["main"].data) == 3  # + hover grid, bar


def test_draw_meta(state):
    out = cb.draw_meta(state, "good", "pca", ["leap", "reptile"], None)
    assert out["max"] == 20 and out["data"]["frame"] == 20
    assert out["data"]["xs"][-1] == 200 and out["data"]["label"] == "meta-step"
    assert out["curves"].layout.meta["key"] == out["data"]["key"]
    assert cb.draw_meta(state, None, None, None, None)["data"] is None


def test_export_from_the_page(state):
    download, text = cb.export(state, "html", "surface",
                               cb.PageInputs("good", "pca", "1", ["leap"], "2d", 3))
    assert download["filename"] == "trajviz-good-surface-pca-task1.html" and download["base64"]
    assert text.startswith("Saved trajviz-good-surface-pca-task1.html")
    download, text = cb.export(state, "png", "surface",
                               cb.PageInputs("broken", "pca", "1", ["leap"], "2d", 3))
    assert download is None and text.startswith("Export failed: run ") and "not valid JSON" in text
    blank = cb.PageInputs(None, None, None, None, "2d", 0)
    assert cb.export(state, "png", "surface", blank)[0] is None


def test_parse_task():
    assert cb.parse_task("mean") is None and cb.parse_task(None) is None
    assert cb.parse_task("3") == 3 and cb.parse_task(2) == 2


def test_run_cache_reloads_a_changed_run(state, runs, tmp_path):
    first = state.cache.get("good")
    assert state.cache.get("good") is first
    os.utime(runs / "good" / "run.json", ns=(time.time_ns(), time.time_ns() + 10**9))
    assert state.cache.get("good") is not first
    with pytest.raises(RunError, match="not a run folder"):
        state.cache.path_of(".hidden")


def test_job_form_is_validated_in_one_line(state):
    out = cb.start_job(state, "linear2d", [], 10, 50, 0, "")
    assert out["status"].startswith("Not started: learners is empty; accepted: any of")
    out = cb.start_job(state, "linear2d", ["leap"], 2.5, 50, 0, "")
    assert out["status"] == "Not started: inner steps must be a whole number, got 2.5"
    out = cb.start_job(state, "nope", ["leap"], 10, 50, 0, "")
    assert out["status"].startswith("Not started: family 'nope' is not one of digits, linear2d")
    assert cb.start_job(state, "linear2d", ["leap"], 10, None, 0, "")["status"] == \
        "Not started: meta-steps is empty"


def test_job_config_is_small_and_valid():
    config = job_config("linear2d", ["leap", "random"], 8, 30, 3, "  my run ")
    assert config.learners == ("leap", "random") and config.inner.steps == 8
    assert config.outer.meta_steps == 30 and config.seed == 3 and config.name == "my run"
    assert config.outer.eval_every == 3
    with pytest.raises(ValueError, match=r"config key 'outer.meta_steps' must be 1..100000, got 0"):
        job_config("linear2d", ["leap"], 8, 0, 0)


def test_poll_of_an_unknown_job_stops_polling(state):
    out = cb.poll_job(state, {"id": "nope"}, None)
    assert out["poll_disabled"] is True and out["status"].startswith("The run failed")


def test_reporter_turns_stages_into_one_fraction(tmp_path):
    path = tmp_path / "progress.json"
    rep = _Reporter(path, ["leap", "random"], ["pca"])
    rep("meta:leap", 50, 100)
    status = json.loads(path.read_text())
    assert status["fraction"] == pytest.approx(0.98 * 0.5 / 3, abs=1e-3)
    assert status["stage"] == "meta-training leap: step 50/100"
    rep("tune:random", 40, 40)  # outer.lr = "tune": the sweep's meta-steps (done: not throttled)
    status = json.loads(path.read_text())
    assert status["fraction"] == pytest.approx(0.98 * 2 / 3, abs=1e-3)
    assert status["stage"] == "tuning the outer lr of random: step 40/40"
    rep("surface:pca", 4, 4)
    assert json.loads(path.read_text())["fraction"] == pytest.approx(0.98)


def test_a_failing_worker_reports_its_error_in_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"family": "linear2d", "seed": -1}))
    assert work(tmp_path / "config.json", tmp_path / "runs", tmp_path / "progress.json") == 1
    status = json.loads((tmp_path / "progress.json").read_text())
    assert status["state"] == "failed" and "seed" in status["message"]
    assert "\n" not in status["message"] and not (tmp_path / "runs").exists()


def test_a_worker_that_dies_is_reported_failed(tmp_path):
    jobs = JobManager(tmp_path)
    with open(tmp_path / "log.txt", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "print('boom: out of memory'); raise SystemExit(3)"],
            stdout=log, stderr=subprocess.STDOUT)
    jobs._jobs["x"] = Job("x", tmp_path, process)
    process.wait()
    status = jobs.status("x")
    assert status["state"] == "failed" and status["message"] == "boom: out of memory"
    assert jobs.running() is None


def test_a_job_writes_a_run_the_picker_then_lists(tmp_path):
    state = cb.AppState.for_dir(tmp_path / "runs")
    started = cb.start_job(state, "linear2d", ["leap", "random"], 3, 2, 0, "tiny")
    assert started["poll_disabled"] is False and started["busy"] is True
    assert "already" in cb.start_job(state, "linear2d", ["leap"], 3, 2, 0, "")["status"]
    out = cb.poll_job(state, started["job"], None)
    for _ in range(400):  # a bounded wait (about two minutes), not a timing assertion
        if out["poll_disabled"] is not False:
            break
        time.sleep(0.3)
        out = cb.poll_job(state, started["job"], None)
    assert out["status"].startswith("Done: "), out["status"]
    run_id = out["version"]["select"]
    options, value = cb.run_options(state, None, select=run_id)
    assert value == run_id and options[0]["label"].startswith("tiny · linear2d · ")
    assert options[0]["label"].endswith(f" · {run_id}")
    assert cb.run_controls(state, run_id)["learners"] == ["leap", "random"]
    state.jobs.shutdown()


def test_create_app_builds_the_page(tmp_path):
    app = create_app(tmp_path)
    assert (ASSETS / "playback.js").is_file() and (ASSETS / "style.css").is_file()
    layout_ids = set()

    def walk(c):
        if getattr(c, "id", None):
            layout_ids.add(c.id)
        children = getattr(c, "children", None)
        for child in children if isinstance(children, list) else [children]:
            if child is not None and not isinstance(child, (str, int, float)):
                walk(child)
    walk(app.layout)
    for name in (ids.RUN, ids.TASK, ids.LEARNERS, ids.MAIN_GRAPH, ids.INNER.frame,
                 ids.INNER.interval, ids.META.frame, ids.JOB_START, *ids.PANEL_GRAPH.values()):
        assert name in layout_ids, name
    outputs = " ".join(app.callback_map)
    assert ids.INNER.frame in outputs and ids.MAIN_GRAPH in outputs
    transport = next(v for k, v in app.callback_map.items() if ids.INNER.frame in k)
    assert transport.get("callback") is None  # the frame index is moved clientside
    # no server callback listens to the frame index: playback makes no requests
    for spec in app.callback_map.values():
        if spec.get("callback") is not None:
            assert all(i["id"] != ids.INNER.frame for i in spec["inputs"]), spec["output"]
