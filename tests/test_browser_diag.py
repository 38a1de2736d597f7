"""Real-browser test of the diagnostics and divergence drawing on a REAL blown-up run:
linear2d with inner.lr = 3 (every path diverges), made once per session.

Chromium via Playwright against a live app on 127.0.0.1, as in test_browser.py.
"""
from __future__ import annotations

import numpy as np
import pytest
from browser_kit import chromium, new_page, wait_drawn
from test_browser import serving  # skips without playwright/chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def blown_up_runs(tmp_path_factory):
    """A runs folder holding one small linear2d run with inner.lr = 3 (a few seconds)."""
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.spec.config import from_dict
    from trajviz.store import write_run

    config = from_dict({
        "family": "linear2d", "learners": ["leap", "random"], "seed": 0, "heldout_tasks": 3,
        "inner": {"steps": 10, "lr": 3.0},
        "outer": {"meta_steps": 2, "meta_batch": 2, "eval_every": 1, "eval_tasks": 2,
                  "lr": 0.01},
        "slices": {"kinds": ["exact", "hessian"], "resolution": 21}})
    runs = tmp_path_factory.mktemp("lr3-runs")
    run = run_experiment(config, run_id="linear2d-lr3")
    write_run(run, runs)
    return runs, run


@pytest.fixture(scope="module")
def page(blown_up_runs):
    with serving(blown_up_runs[0]) as (url, _state), chromium() as browser:
        pg = new_page(browser, 1366, 768)
        pg.goto(url)
        wait_drawn(pg)
        yield pg


def _traces(pg, graph: str):
    return pg.evaluate("""id => document.querySelector('#' + id + ' .js-plotly-plot')._fullData
        .map(t => ({name: t.name, type: t.type, x: t.x ? Array.from(t.x) : null,
                    y: t.y ? Array.from(t.y) : null, text: t.text ? Array.from(t.text) : null,
                    z: t.z ? Array.from(t.z).map(r => Array.from(r)) : null}))""", graph)


def test_blown_up_run_draws_a_finite_surface_crosses_and_one_note(page, blown_up_runs,
                                                                   tmp_path):
    run = blown_up_runs[1]
    assert all((np.asarray(r.diverged_at) >= 0).all() for r in run.learners.values())
    traces = _traces(page, "surface-graph")
    # the surface: a colour image in the layout (finite losses only: a NaN would leave a hole
    # the image cannot show, so check the stored grid) and trace 0, its contour lines
    assert np.isfinite(run.views["exact"].surface.loss).all() and run.views["exact"].surface.loss.size > 100
    images = page.evaluate("""id => document.getElementById(id).querySelector('.js-plotly-plot')
        .layout.images.map(i => String(i.source).slice(0, 22))""", "surface-graph")
    assert images and images[0] == "data:image/png;base64,"
    lines = np.array([np.nan if v is None else v for v in traces[0]["x"]], dtype=float)
    assert traces[0]["name"] == "surface" and not np.isinf(lines).any()  # NaN: line breaks
    assert np.isfinite(lines).sum() > 10
    # the page opens on task 0: the ✕ says the step
    d = int(run.learners["leap"].diverged_at[0])
    cross = [t for t in traces if t["name"] == "diverged"]
    assert len(cross) == 1 and len(cross[0]["x"]) == 2  # one ✕ per learner
    assert all(np.isfinite(cross[0]["x"])) and all(np.isfinite(cross[0]["y"]))
    assert f"leap diverged at step {d}" in cross[0]["text"]
    # the task mean: one ✕ per learner saying on how many tasks, and one note for the run
    page.click("#task-picker")
    page.get_by_text("mean of", exact=False).first.click()
    page.wait_for_function("""() => document.querySelector('#surface-graph .js-plotly-plot')
        .layout.meta.key.split('|')[2] !== '0'""", timeout=30_000)
    cross = [t for t in _traces(page, "surface-graph") if t["name"] == "diverged"]
    assert len(cross) == 1 and len(cross[0]["x"]) == 2
    assert any(t.startswith("leap diverged on 3 of 3 tasks") for t in cross[0]["text"])
    notes = page.locator("#notes .tv-msg")
    diverged = [t for t in (notes.nth(i).inner_text() for i in range(notes.count()))
                if "Diverged" in t]  # beside it, e.g., a note that two paths coincide
    assert len(diverged) == 1 and "Diverged: every learner on every task (3 of 3)" in diverged[0]
    page.screenshot(path=str(tmp_path / "lr3.png"))
    page.click("#task-picker")  # back to task 0 for the next test
    page.get_by_text("task 0", exact=False).first.click()
    page.wait_for_function("""() => document.querySelector('#surface-graph .js-plotly-plot')
        .layout.meta.key.split('|')[2] === '0'""", timeout=30_000)
    assert page.errors == []


def test_steps_panels_show_threshold_and_crossings(page, blown_up_runs):
    page.get_by_text("Step size", exact=True).click()
    page.locator("#panel-card-sharpness").wait_for(state="visible", timeout=10_000)
    # a panel set's figures are drawn when it is picked (app/draw.py): wait for them
    page.wait_for_function("""() => { const g = document.querySelector('#panel-sharpness .js-plotly-plot');
        return g && g.data && g.data.some(t => t.name === 'stability threshold'); }""",
                           timeout=30_000)
    assert not page.locator("#panel-card-length").is_visible()
    traces = _traces(page, "panel-sharpness")
    thr = [t for t in traces if t["name"] == "stability threshold"][0]
    assert thr["y"] == pytest.approx([2 / 3.0] * 2, rel=1e-6)
    marks = [t for t in traces if t["name"] == "crosses threshold"][0]
    assert len(marks["x"]) >= 1
    assert "first crossing" in page.inner_text("#panel-note-sharpness")
    assert page.errors == []
