"""The page's what-if plumbing without a browser: latest-wins gating, the warm worker
(a real process), the shown run and the keep button's path (trajviz.app.whatif)."""
from __future__ import annotations

import threading

import numpy as np
from browser_kit import wait_until

from trajviz.app.inputs import PageInputs
from trajviz.app.state import AppState
from trajviz.app.whatif import WhatIfService, changes_of, recompute, shown_run
from trajviz.app.whatif_fast import fast_update
from trajviz.app.worker_client import SUPERSEDED, LatestWins
from trajviz.pipeline.experiment import run_experiment
from trajviz.pipeline.whatif import whatif
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run
from trajviz.viewmodel.selection import select


def test_latest_wins_runs_one_at_a_time_and_drops_overtaken_requests():
    gate, started, release, results = LatestWins(), threading.Event(), threading.Event(), {}

    def ask(i, fn):
        results[i] = gate.run(fn)

    def first_fn():
        started.set()
        return release.wait(10) and "first"

    first = threading.Thread(target=ask, args=(0, first_fn))
    first.start()
    assert started.wait(10), "the first request never ran"
    waiting = [threading.Thread(target=ask, args=(i, lambda i=i: f"req{i}")) for i in (1, 2, 3)]
    for i, t in enumerate(waiting, start=1):
        t.start()  # in order: 1, then 2, then 3 (each has taken its ticket before the next)
        wait_until(lambda i=i: gate._ticket == 1 + i, f"request {i} reached the gate", 10)
    release.set()
    for t in [first, *waiting]:
        t.join(10)
    assert results == {0: "first", 1: SUPERSEDED, 2: SUPERSEDED, 3: "req3"}
    assert gate.computed == 2 and gate.superseded == 2 and gate.max_in_flight == 1


def test_changes_of_the_controls():
    assert changes_of("momentum", -1, 0.5, 8) == {"optimizer": "momentum", "lr": 0.1, "steps": 8,
                                                   "momentum": 0.5}
    assert changes_of("adam", "-2", 0.8, "4")["beta1"] == 0.8


def quadratic_run(runs):
    """A small quadratic run "q" written into ``runs``: its folder."""
    config = from_dict({"family": "quadratic", "learners": ["leap", "random"], "seed": 1,
                        "family_options": {"dim": 2}, "inner": {"steps": 5, "lr": 0.05},
                        "outer": {"meta_steps": 2, "meta_batch": 2, "eval_every": 2, "eval_tasks": 2},
                        "heldout_tasks": 2, "slices": {"kinds": ["exact"], "resolution": 9}})
    return write_run(run_experiment(config, run_id="q"), runs)


def test_worker_recomputes_and_the_page_draws_the_variant(tmp_path):
    path = quadratic_run(tmp_path)
    state = AppState.for_dir(tmp_path)
    state.whatif = WhatIfService()
    try:
        out = recompute(state, "q", {"optimizer": "sgd", "lr": 0.2, "steps": 7})
        expected = whatif(load_run(path), {"lr": 0.2, "steps": 7}, diagnostics="norms")
        shown = shown_run(state, "q", out["shown"])
        assert shown.steps == 7 and "lr 0.2" in out["status"]
        for name in ("leap", "random"):
            np.testing.assert_array_equal(shown.learners[name].losses, expected.learners[name].losses)
            np.testing.assert_array_equal(shown.views["exact"].coords[name],
                                          expected.views["exact"][name].coords)
        assert shown_run(state, "q", None).steps == 5  # the stored run is untouched
        # a slider's fast redraw: the drawn selection's key, the variant's paths
        fast = fast_update(state, "q", out["run"], PageInputs("q", "exact", "1", ["leap", "random"], frame=3))
        assert fast["key"] == select(shown_run(state, "q", None), "exact", 1).key
        assert fast["frames"] == 8 and fast["frame_data"]["frame"] == 3
        np.testing.assert_allclose(fast["main"]["data"][0]["x"],
                                   expected.views["exact"]["leap"].coords[1, :, 0], rtol=5.01e-5)
        # a newer what-if replaces the live one: an older token draws the newest
        newer = recompute(state, "q", {"optimizer": "sgd", "lr": 0.1, "steps": 7})
        assert newer["shown"]["live"] > out["shown"]["live"]
        assert shown_run(state, "q", out["shown"]).config["inner"]["lr"] == 0.1
        worker = state.whatif.pool.get("q", path)
        worker.call("keep", changes={"optimizer": "sgd", "lr": 0.2, "steps": 7}, name="fast")
        kept = load_run(path, heavy=False)
        assert list(kept.inner_variants) == ["fast"]
        assert np.isfinite(kept.inner_variants["fast"].learners["leap"].diagnostics["sharpness"]).any()
        picked = shown_run(state, "q", {"run": "q", "variant": "fast", "live": None})
        np.testing.assert_array_equal(picked.learners["leap"].losses, expected.learners["leap"].losses)
    finally:
        state.whatif.shutdown()


def test_the_sliders_route_answers_json_never_a_500(tmp_path, monkeypatch):
    """trajviz.app.whatif_route: the fast path's reply, bad input as a message."""
    from trajviz.app import create_app
    from trajviz.app import whatif as whatif_app
    from trajviz.app.whatif import summary_children
    from trajviz.app.whatif_route import ROUTE, html_of, plain

    path = quadratic_run(tmp_path)
    app = create_app(tmp_path)
    client = app.server.test_client()
    body = {"run": "q", "lr": -1, "beta": 0.9, "opt": "sgd", "steps": 5, "view": "exact",
            "task": "1", "learners": ["leap", "random"], "mode": "2d", "frame": 2}
    try:
        refused = [client.post(ROUTE, data="lr=1", content_type="text/plain"),  # not JSON
                   client.post(ROUTE, json=[1, 2]),
                   client.post(ROUTE, json={**body, "lr": "fast"}),
                   client.post(ROUTE, json={**body, "run": "../etc"}),
                   client.post(ROUTE, json={**body, "run": "nope"})]
        assert [r.status_code for r in refused] == [200] * 5
        texts = [r.get_json()["status"] for r in refused]
        assert all(t.startswith("Not recomputed: ") and "\n" not in t for t in texts)
        assert "JSON object" in texts[0] and "JSON object" in texts[1]
        assert "must be numbers" in texts[2] and str(tmp_path) not in " ".join(texts)
        assert all(set(r.get_json()) == {"status"} for r in refused)
        own = client.post(ROUTE, json={**body, "lr": -1.3}).get_json()  # 10^-1.3 = 0.05: its own
        assert own["shown"] is None and "fast" not in own and "<table" in own["summary_html"]
        state = app.trajviz_state
        # a cold worker: the change runs as an action (progress row ids and the job back)
        cold = client.post(ROUTE, json={**body, "lr": -1.1}).get_json()
        assert cold["job"]["run"] == "q" and cold["progress"]["job"] == "whatif-progress-job"
        assert cold["status"].startswith("Recomputing 4 rollouts") and "shown" not in cold
        wait_until(lambda: state.actions.status(cold["job"]["id"])["state"] != "running",
                   "the cold what-if's action finished", timeout_s=300)
        assert state.actions.status(cold["job"]["id"])["state"] == "done"
        # warm and quick: answered at once. "Quick" is the estimate from the cold one's
        # measured rate, over SYNC_S on a loaded machine: the route's choice is not timed here
        monkeypatch.setattr(whatif_app, "SYNC_S", float("inf"))
        reply = client.post(ROUTE, json=body).get_json()
        run = shown_run(state, "q", reply["shown"])
        expected = whatif(load_run(path), {"lr": 0.1}, diagnostics="norms")
        np.testing.assert_array_equal(run.learners["leap"].losses, expected.learners["leap"].losses)
        fast = reply["fast"]
        assert fast["shown"] == reply["shown"] and fast["frame_data"]["frame"] == 2
        np.testing.assert_allclose(fast["main"]["data"][0]["x"],
                                   expected.views["exact"]["leap"].coords[1, :, 0], rtol=5.01e-5)
        assert "lr 0.1" in reply["status"]
        summary = plain(summary_children(run))
        assert reply["summary"] == summary and reply["summary_html"] == html_of(summary)
        three_d = client.post(ROUTE, json={**body, "lr": -0.9, "mode": "3d"}).get_json()
        assert "fast" not in three_d and three_d["shown"]["live"] > reply["shown"]["live"]
    finally:
        app.trajviz_state.shutdown()  # every worker and job it started


def test_html_of_escapes_text_and_writes_classes_and_styles():
    from dash import dcc, html

    from trajviz.app.whatif_route import html_of, plain

    out = html_of(plain([html.P("a<b & c", className="tv-hint", title='say "hi"'),
                         html.Td(html.Span(style={"background": "#fff", "marginRight": "3px"}))]))
    assert out == ('<p class="tv-hint" title="say &quot;hi&quot;">a&lt;b &amp; c</p>'
                   '<td><span style="background:#fff;margin-right:3px"></span></td>')
    try:
        html_of(plain(dcc.Store(id="x")))
    except ValueError as exc:
        assert "cannot write Store as HTML" in str(exc)
    else:
        raise AssertionError("a non-html component was written")
