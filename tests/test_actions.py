"""Page actions that compute (trajviz.app.actions, estimate, worker cancel): the board's
states, the estimate's arithmetic, the worker's progress frames and SIGUSR1 cancel (a
real worker process), and a background what-if polled and cancelled through the
callbacks' functions. A slow what-if is made deterministic with the worker's test delay
(``TRAJVIZ_TEST_WORKER_DELAY_S``); no test asserts a wall time."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from browser_kit import wait_until
from dash import no_update
from test_whatif_app import quadratic_run

from trajviz.app.actions import ActionBoard, poll_action, progress_line
from trajviz.app.estimate import Estimate, Rates, launch_estimate, whatif_estimate
from trajviz.app.state import AppState
from trajviz.app.whatif import WhatIfService, answer, poll_whatif, shown_run
from trajviz.app.worker_client import WorkerCancelled, WorkerClient, WorkerError
from trajviz.cli.worker import DELAY_ENV
from trajviz.pipeline.whatif import whatif
from trajviz.store import load_run


def action_threads() -> set[threading.Thread]:
    """The live threads that run actions (``ActionBoard.start`` names them trajviz-KIND)."""
    return {t for t in threading.enumerate() if t.name.startswith("trajviz-") and t.is_alive()}


# ---------------------------------------------------------------------------- the board

def test_a_cancelled_action_calls_its_hook_and_drops_its_result():
    board = ActionBoard()
    release, returned, hooked, landed = threading.Event(), threading.Event(), [], []

    def work(report):
        try:
            report.on_cancel(lambda: hooked.append(True) or release.set())
            report.stage("working hard")
            release.wait(30)
            return report.land(lambda: landed.append("stored") or 42)
        finally:
            returned.set()

    job = board.start("whatif", "r", Estimate(10.0, "test"), work)
    wait_until(lambda: board.status(job)["stage"] == "working hard", "the work said its stage")
    s = board.status(job)
    assert s["state"] == "running" and s["kind"] == "whatif" and 0.0 <= s["fraction"] <= 0.95
    assert s["estimate"] == 10.0 and s["estimate_text"] == "about 10 s (test)"
    assert board.cancel(job) and hooked == [True]
    assert returned.wait(30), "the cancelled work never returned from land"
    assert board.status(job)["state"] == "cancelled" and board.result(job) is None
    assert landed == []  # land refused: nothing was made visible
    assert not board.cancel(job)  # already ended


def test_a_newer_action_of_a_kind_cancels_the_older_and_failures_are_one_line():
    board = ActionBoard()
    gate = threading.Event()
    first = board.start("launch", "r", Estimate(0.0, "t"), lambda report: gate.wait(30))
    second = board.start("launch", "r", Estimate(0.0, "t"), lambda report: "second")
    wait_until(lambda: board.status(second)["state"] == "done", "the second action was done")
    assert board.status(first)["state"] == "cancelled" and board.result(second) == "second"
    gate.set()

    def broken(report):
        raise WorkerError("the worker for r exited\nwith a traceback")

    bad = board.start("birth", "r", Estimate(0.0, "t"), broken)
    wait_until(lambda: board.status(bad)["state"] != "running", "the failing action ended")
    assert board.status(bad)["error"] == "the worker for r exited with a traceback"
    assert board.status("nope")["state"] == "unknown"


def test_a_finished_result_the_page_has_not_taken_is_dropped_by_a_newer_request():
    """A what-if that finished before its poll came, then replaced by a newer change (the
    run's own settings, answered at once): the late poll must not draw the older one."""
    board = ActionBoard()
    old = board.start("whatif", "r", Estimate(0.0, "t"), lambda report: "old picture")
    wait_until(lambda: board.status(old)["state"] == "done", "the older action was done")
    taken = board.start("launch", "r", Estimate(0.0, "t"), lambda report: "a launch")
    wait_until(lambda: board.status(taken)["state"] == "done", "the taken action was done")
    assert board.result(taken) == "a launch"  # taken by the page: stays done
    board.cancel_kind("whatif")  # the newer request
    board.cancel_kind("launch")
    assert board.status(old)["state"] == "superseded" and board.result(old) is None
    assert board.status(taken)["state"] == "done"
    state = AppState.for_dir(Path("unused"))
    state.actions = board
    out = poll_whatif(state, {"id": old, "run": "r"}, cancel=False)
    assert out["shown"] is no_update and out["status"] is no_update and out["poll_disabled"]


def test_picking_no_run_leaves_the_what_if_controls_alone():
    """At load the run picker has no value yet: resetting the controls then would start a
    what-if with the defaults once a run is picked."""
    from trajviz.app.whatif import run_changed
    assert run_changed(AppState.for_dir(Path("unused")), None) == (no_update,) * 6


def test_poll_action_shows_the_row_while_running_and_hides_it_after():
    board = ActionBoard()
    gate = threading.Event()
    job = board.start("whatif", "r", Estimate(60.0, "t"), lambda report: gate.wait(30) and 7)
    o = poll_action(board, job)
    assert o["row"] == {} and not o["poll_disabled"] and o["text"].endswith("of about 60 s")
    o = poll_action(board, job, cancel=True)
    assert o["state"] == "cancelled" and o["row"] == {"display": "none"} and o["poll_disabled"]
    gate.set()
    line = progress_line({"stage": "recomputing", "elapsed": 12.4, "estimate": 40.0})
    assert line == "recomputing · 12 s of about 40 s"
    assert progress_line({"stage": "", "elapsed": 1.0, "estimate": 1.0}) == "working · 1 s"


# ---------------------------------------------------------------------------- estimates

def test_the_estimate_counts_rollout_steps_at_the_best_rate(tmp_path):
    path = quadratic_run(tmp_path)
    run = load_run(path, heavy=False)
    rates = Rates()
    # recorded: the random learner's time over its evaluation and held-out rollout-steps
    t = run.info["timings"]["meta:random"]
    outer, k1 = run.config["outer"], run.config["inner"]["steps"] + 1
    evals = outer["meta_steps"] // outer["eval_every"] + 2
    rate = t / ((evals * outer["eval_tasks"] + len(run.task_ids)) * k1)
    est = whatif_estimate(run, "q", path, steps=9, rates=rates)
    assert est.seconds == pytest.approx(2 * 2 * 10 * rate) and "recorded" in est.basis
    # measured here: overrides the recording
    rates.record("q", 3.0, 300)
    est = whatif_estimate(run, "q", path, steps=9, rates=rates)
    assert est.seconds == pytest.approx(2 * 2 * 10 * 0.01) and "last recomputation" in est.basis
    assert launch_estimate(run, "q", path, rates).seconds == pytest.approx(2 * k1 * 0.01)
    # a cold worker adds its start (import, heavy.npz, a warm-up what-if)
    cold = whatif_estimate(run, "q", path, steps=9, rates=rates, warm=False)
    heavy = (path / "heavy.npz").stat().st_size
    from trajviz.app import estimate

    assert cold.seconds == pytest.approx(est.seconds + estimate.IMPORT_S
                                         + heavy / estimate.READ_BYTES_PER_S + 4 * k1 * 0.01)
    assert Estimate(2.0, "x").text() == "" and Estimate(150, "x").text() == "about 2 min (x)"


# ---------------------------------------------------------------------------- the worker

def test_the_worker_reports_progress_and_a_cancel_stops_its_job_not_the_worker(tmp_path,
                                                                             monkeypatch):
    path = quadratic_run(tmp_path)
    monkeypatch.setenv(DELAY_ENV, "120")
    client = WorkerClient(path)
    try:
        frames, outcome = [], {}

        def call():
            try:
                client.call("whatif", changes={"lr": 0.2}, on_progress=frames.append)
            except WorkerError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=call)
        thread.start()
        wait_until(lambda: len(frames) >= 2, "two progress frames came", 300)
        assert frames[0]["stage"] == "recomputing the held-out paths"
        assert 0 < frames[0]["elapsed"] < frames[1]["elapsed"]
        assert client.cancel()
        thread.join(60)
        assert isinstance(outcome["error"], WorkerCancelled)
        assert "the whatif was cancelled" in str(outcome["error"])
        pid = client.process.pid
        assert client.process.poll() is None  # still warm: the same process answers next
        assert client.call("ping")[0]["ok"] and client.process.pid == pid
        assert not client.cancel()  # nothing runs now: no signal sent
    finally:
        client.close()


# ---------------------------------------------------------------------------- the callbacks

def test_a_background_whatif_lands_and_a_cancelled_one_changes_nothing(tmp_path, monkeypatch):
    path = quadratic_run(tmp_path)
    state = AppState.for_dir(tmp_path)
    state.whatif = WhatIfService()
    try:
        started = answer(state, "q", {"optimizer": "sgd", "lr": 0.2, "steps": 7}, background=True)
        assert started["job"]["run"] == "q" and started["status"].startswith("Recomputing 4 rollouts")
        o = {}
        wait_until(lambda: o.update(poll_whatif(state, started["job"], False))
                   or o["poll_disabled"], "the what-if's poll stopped (it landed)", 300)
        assert o["state"] == "done" and "4 rollouts recomputed" in o["status"]
        expected = whatif(load_run(path), {"lr": 0.2, "steps": 7}, diagnostics="norms")
        drawn = shown_run(state, "q", o["shown"])
        np.testing.assert_array_equal(drawn.learners["leap"].losses, expected.learners["leap"].losses)
        assert state.rates.get("q") is not None  # measured: the next estimate uses it

        # a slow one (the worker's test delay), cancelled: the live variant is unchanged
        state.whatif.shutdown()
        monkeypatch.setenv(DELAY_ENV, "120")
        state.whatif = WhatIfService()
        live_before = state.whatif.live.get("q")
        slow = answer(state, "q", {"optimizer": "sgd", "lr": 0.3, "steps": 7}, background=True)
        # the worker's own progress frames: it has begun the request (a cancel sent while it
        # still warms up is ignored there, and it is stopped after CANCEL_GRACE_S instead)
        wait_until(lambda: state.actions.status(slow["job"]["id"])["stage"]
                   == "recomputing the held-out paths", "the worker began the request", 300)
        running = poll_whatif(state, slow["job"], False)
        assert running["row"] == {} and running["shown"] is no_update
        cancelled = poll_whatif(state, slow["job"], True)
        assert cancelled["state"] == "cancelled" and cancelled["status"].startswith("Cancelled")
        assert cancelled["row"] == {"display": "none"} and cancelled["poll_disabled"]
        worker = state.whatif.pool.get("q", path)
        wait_until(lambda: worker._running is None, "the worker answered the cancel", 300)
        assert worker.process.poll() is None and state.whatif.live.get("q") == live_before
    finally:
        state.whatif.shutdown()


def test_a_whatif_cancelled_while_its_worker_starts_never_reaches_it(tmp_path):
    quadratic_run(tmp_path)
    state = AppState.for_dir(tmp_path)
    state.whatif = WhatIfService()
    try:
        before = action_threads()
        started = answer(state, "q", {"optimizer": "sgd", "lr": 0.3, "steps": 7}, background=True)
        mine = action_threads() - before
        assert state.actions.cancel(started["job"]["id"])  # the worker is still starting
        worker = state.whatif.pool.get("q", state.cache.path_of("q"))  # waits for the start
        assert state.actions.status(started["job"]["id"])["state"] == "cancelled"
        # nothing was asked, ever: the action's thread has ended without a call
        wait_until(lambda: not action_threads() & mine, "the cancelled action's thread ended", 60)
        assert worker._calls == 0 and state.whatif.live.get("q") is None  # nothing was asked
    finally:
        state.whatif.shutdown()
