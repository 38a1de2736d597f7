"""The page accepts only what it offers (issue 23): the New-run family must be offered, and
every request naming a run passes the listing's check before a file is read or a process
started. What ran is observed, not assumed: an audit hook records every process start
(``subprocess.Popen``) and every file opened under the symlinked run's target; the
worker pools and job spawners are replaced by recorders (a positive control shows they
record a real run's start)."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest
from app_fixtures import make_run, write_broken_run, write_run_dir
from browser_kit import wait_until
from test_trust import _distribution, _module

from trajviz.app import birth, create_app, ids, jobs, launches, worker_client
from trajviz.app import callbacks as cb
from trajviz.app.state import AppState
from trajviz.app.whatif import WhatIfService, answer, run_changed
from trajviz.app.whatif_route import fast_reply
from trajviz.store import list_runs

_WATCH: list[str] = []   # path prefixes whose opening is recorded
_SEEN: list[tuple[str, str]] = []


def _audit(event: str, args: tuple) -> None:
    if not _WATCH:
        return
    if event == "subprocess.Popen":
        _SEEN.append(("process", str(args[1])[:200]))
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if any(path.startswith(w) for w in _WATCH):
            _SEEN.append(("open", path))


sys.addaudithook(_audit)  # process-wide and permanent: inert unless _WATCH is set


class FakeWorker:
    """Stands in for ``WorkerClient``: records its start, runs nothing."""

    started: list[Path] = []

    def __init__(self, run_path, warm="whatif", timeout=0.0):
        FakeWorker.started.append(Path(run_path))
        self.run_path = Path(run_path)
        self.process = self

    def poll(self):
        return None

    def call(self, kind, payload=b"", **header):
        raise worker_client.WorkerError("a fake worker answers nothing")

    def close(self):
        pass


class FakeProcess:
    def poll(self):
        return 0

    def wait(self, timeout=None):
        return 0


@pytest.fixture()
def spawned(monkeypatch):
    """Every worker and job process asked for, recorded instead of started."""
    FakeWorker.started = []
    calls: list[list[str]] = []

    def spawn(folder, module_args, env=None):
        calls.append(list(module_args))
        return FakeProcess()

    monkeypatch.setattr(worker_client, "WorkerClient", FakeWorker)
    monkeypatch.setattr(jobs, "spawn", spawn)
    monkeypatch.setattr(launches, "spawn", spawn)
    return calls


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """runs/ with a good run, a broken one, a hidden real run, a plain file and two
    symlinks (to a run outside, and to the good run inside); the outside run is real."""
    root = tmp_path_factory.mktemp("trust")
    runs, outside = root / "runs", root / "outside"
    write_run_dir(runs, make_run(run_id="good", learners=("leap", "random"), n_tasks=2, steps=4))
    write_broken_run(runs, "broken")
    write_run_dir(runs, make_run(run_id="hidden", learners=("leap",), n_tasks=2, steps=4))
    (runs / "hidden").rename(runs / ".hidden")
    write_run_dir(outside, make_run(run_id="real", learners=("leap",), n_tasks=2, steps=4))
    (runs / "a-file").write_text("not a run")
    (runs / "link-outside").symlink_to(outside / "real")
    (runs / "link-inside").symlink_to(runs / "good")
    return runs, outside


@pytest.fixture()
def world(folders):
    runs, outside = folders
    state = AppState.for_dir(runs)
    state.whatif = WhatIfService()
    yield state, outside
    for stop in (state.launches.shutdown, state.births.shutdown, state.jobs.shutdown,
                 state.whatif.shutdown):
        stop()


ODD = ["link-outside", "link-inside", "broken", ".hidden", "a-file", "missing", "..", ".",
       "/etc", "../outside/real", "good/../link-outside", "", "x" * 300, "good\x00", {"a": 1}, 3]
CLICK = {"points": [{"x": 0.1, "y": 0.2}]}
CHANGES = {"optimizer": "sgd", "lr": 0.05, "steps": 4}


def _settle(state) -> None:
    """Wait until no prewarm is pending (they run in background threads)."""
    pools = (state.launches._pool, state.whatif.pool)
    wait_until(lambda: not any(p._prewarming for p in pools), "no worker prewarm was pending", 30)


# every run-naming step, called as its Dash callback calls it: (name, call)
STEPS = [
    ("picker", lambda st, r: cb.run_options(st, r, r)),
    ("run-controls", lambda st, r: cb.run_controls(st, r)),
    ("draw", lambda st, r: cb.draw(st, cb.PageInputs(r, None, None, ["leap"], "2d", 0))),
    ("draw-meta", lambda st, r: cb.draw_meta(st, r, None, ["leap"], 0)),
    ("export-download", lambda st, r: cb.export(st, "html", "surface",
                                                cb.PageInputs(r, None, None, ["leap"], "2d", 0))),
    ("birth-panel", lambda st, r: birth.birth_panel(st, r, None, "auc")),
    ("launch-warm-up", lambda st, r: birth.warm_launch(st, r, "2d")),
    ("launch", lambda st, r: birth.click_launch(st, r, None, CLICK)),
    ("keep-launch", lambda st, r: birth.keep_launch(st, r, "mine", None)),
    ("birth-map-job", lambda st, r: birth.start_birth(st, r, None)),
    ("whatif-warm-up", lambda st, r: run_changed(st, r)),
    ("whatif", lambda st, r: _raises(lambda: answer(st, r, CHANGES))),
    ("whatif-fast-route", lambda st, r: fast_reply(st, {"run": r, "opt": "sgd", "lr": -1.3,
                                                        "beta": 0.9, "steps": 4})),
]


def _raises(fn):
    try:
        return fn()
    except ValueError as exc:  # RunError, WorkerError: the callbacks show these as messages
        return str(exc)


@pytest.mark.parametrize("name", ODD, ids=[repr(n)[:30] for n in ODD])
def test_an_odd_run_name_starts_nothing_and_reads_nothing(name, world, spawned, tmp_path):
    state, outside = world
    _WATCH[:] = [str(outside), str(state.runs_dir / "link-outside")]
    _SEEN.clear()
    try:
        for step, call in STEPS:
            call(state, name)
            _settle(state)
            assert FakeWorker.started == [] and spawned == [], (step, name)
            assert _SEEN == [], (step, name, _SEEN)
    finally:
        _WATCH.clear()
    assert state.launches._pool.started == 0 and state.whatif.pool.started == 0
    assert state.jobs.running() is None and state.births.running() is None


def test_each_step_says_why_in_a_message(world, spawned):
    state, _ = world
    out = cb.run_controls(state, "link-outside")
    assert "symbolic link" in str(out["message"]) and out["workspace_style"] == cb.HIDE
    assert birth.click_launch(state, "link-outside", None, CLICK)["status"].startswith(
        "Not launched: is a symbolic link")
    assert birth.start_birth(state, "broken", None)["status"].startswith("Not started: ")
    assert cb.export(state, "html", "surface",
                     cb.PageInputs("../outside/real", None, None, ["leap"], "2d", 0)
                     )[1].startswith("Export failed: ")
    assert fast_reply(state, {"run": "link-inside", "opt": "sgd", "lr": -1, "beta": 0.9,
                              "steps": 4})["status"].startswith("Not recomputed: ")
    options, value = cb.run_options(state, "link-outside", "link-outside")
    assert value == "good" and {o["value"] for o in options} == {"good", "broken"}
    assert {e.run_id for e in list_runs(state.runs_dir)} == {"good", "broken"}


def test_a_listed_run_warms_one_worker_each(world, spawned):
    """The positive control: the recorders do see a start, for a run the listing shows."""
    state, _ = world
    _WATCH[:] = [str(state.runs_dir / "good")]
    _SEEN.clear()
    try:
        cb.run_controls(state, "good")
    finally:
        _WATCH.clear()
    assert ("open", str(state.runs_dir / "good" / "run.json")) in _SEEN  # the hook sees reads
    birth.warm_launch(state, "good", "2d")
    run_changed(state, "good")
    _settle(state)
    assert sorted(p.name for p in FakeWorker.started) == ["good", "good"]
    assert birth.start_birth(state, "good", "pca")["job"] != cb.no_update
    assert spawned and spawned[0][0] == "trajviz.cli.birthjob"


def test_a_burst_of_picks_starts_at_most_two_workers(monkeypatch, tmp_path):
    """Prewarms coalesce: one background start at a time, for the latest run asked."""
    started, gate = [], threading.Event()

    class Slow(FakeWorker):
        def __init__(self, run_path, warm="whatif", timeout=0.0):
            gate.wait(5)
            started.append(Path(run_path).name)
            super().__init__(run_path, warm, timeout)

    monkeypatch.setattr(worker_client, "WorkerClient", Slow)
    pool = worker_client.WorkerPool(1, warm="launch", follow=False)
    for i in range(30):
        pool.prewarm(f"run-{i}", tmp_path / f"run-{i}")
    gate.set()
    wait_until(lambda: not pool._prewarming, "the pool's prewarms ended", 30)
    assert started == ["run-0", "run-29"] and pool.started == 2
    assert list(pool._workers) == ["run-29"]  # capped at the pool's size, the latest kept


# ---------------------------------------------------------------------------- New run

def _post_job(client, app, family) -> str:
    """The New-run button through the app's real callback endpoint, ``family`` as posted."""
    key = next(k for k in app.callback_map if f".{ids.JOB_STORE}.data" in k)
    entry = app.callback_map[key]
    values = {ids.JOB_FAMILY: family, ids.JOB_LEARNERS: ["leap"], ids.JOB_STEPS: 3,
              ids.JOB_META_STEPS: 2, ids.JOB_SEED: 0, ids.JOB_NAME: "x", ids.JOB_START: 1}
    outputs = [dict(zip(("id", "property"), o.rsplit(".", 1)))
               for o in key.strip(".").split("...")]
    body = {"output": key, "outputs": outputs, "changedPropIds": [f"{ids.JOB_START}.n_clicks"],
            "inputs": [{**i, "value": values.get(i["id"])} for i in entry["inputs"]],
            "state": [{**s, "value": values.get(s["id"])} for s in entry["state"]]}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


@pytest.mark.parametrize("family", ["os:system", "tvt_app:make", "tvt_app:plain",
                                    "demos.plugin_example:make_family", "cubic", "sinusoid "])
def test_new_run_with_a_family_the_form_does_not_offer_runs_nothing(family, world, spawned,
                                                                     tmp_path, monkeypatch):
    state, _ = world
    monkeypatch.chdir(tmp_path)  # tvt_app.py in the server's folder, as in the report
    monkeypatch.syspath_prepend(str(tmp_path))
    _module(tmp_path, "tvt_app", deco="@trajviz.task_family")
    app = create_app(state.runs_dir)
    _WATCH[:] = [str(tmp_path / "tvt_app")]
    _SEEN.clear()
    try:
        text = _post_job(app.server.test_client(), app, family)
    finally:
        _WATCH.clear()
    assert "Not started: family" in text and "is not one of digits, linear2d" in text, text
    assert spawned == [] and _SEEN == [] and app.trajviz_state.jobs.running() is None
    assert "tvt_app" not in sys.modules and not (tmp_path / "tvt_app.imported").exists()


def test_new_run_offers_and_accepts_an_entry_point_family(world, spawned, tmp_path, monkeypatch):
    state, _ = world
    site = tmp_path / "site"
    _module(site, "tvt_ep_page")
    _distribution(site, "tvt-ep-page", "tvt-page = tvt_ep_page:make")
    monkeypatch.syspath_prepend(str(site))
    app = create_app(state.runs_dir)
    assert "tvt-page" in str(app.layout)  # offered in the form's dropdown
    text = _post_job(app.server.test_client(), app, "tvt-page")
    assert "Starting" in text, text
    assert [args[0] for args in spawned] == ["trajviz.app.jobs"]
    assert not (site / "tvt_ep_page.imported").exists()  # the server itself imports nothing
    app.trajviz_state.shutdown()  # every worker and job it started
