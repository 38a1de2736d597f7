"""Real browser: a slow what-if shows its progress row (text, bar, Cancel) while it runs,
and Cancel stops the worker's job and leaves the page as it was (trajviz.app.actions).

The what-if is made slow deterministically by the worker's test delay
(``TRAJVIZ_TEST_WORKER_DELAY_S``, set before the server starts the run's worker): every
recomputation first waits, cancellably, 600 s. Times are printed, never asserted."""
from __future__ import annotations

import os

import pytest
from browser_kit import chromium, new_page, wait_quiet, wait_until
from test_browser import serving  # skips without playwright/chromium

from trajviz.cli.worker import DELAY_ENV
from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import write_run

pytestmark = pytest.mark.browser

PATHS_JS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return gd && gd._fullData ? JSON.stringify(gd._fullData.filter(t => t.name === 'leap')
                                   .map(t => [t.x, t.y].map(v => Array.from(v || [])
                                        .map(z => Number(z).toFixed(5))))) : null; }"""
SHOWN_JS = "(id) => { const el = document.getElementById(id); return !!el && el.offsetParent !== null; }"


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    runs = tmp_path_factory.mktemp("progress-runs")
    config = from_dict({"family": "linear2d", "learners": ["leap", "random"], "seed": 3,
                        "inner": {"steps": 8, "lr": 0.1},
                        "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 3, "eval_tasks": 2},
                        "heldout_tasks": 3, "slices": {"kinds": ["exact"], "resolution": 15}})
    write_run(run_experiment(config, run_id="slow"), runs)
    old = os.environ.get(DELAY_ENV)
    os.environ[DELAY_ENV] = "600"  # the workers this server starts inherit it
    try:
        with serving(runs) as served:
            yield served
    finally:
        if old is None:
            os.environ.pop(DELAY_ENV, None)
        else:
            os.environ[DELAY_ENV] = old


def test_a_slow_whatif_shows_progress_and_cancel_leaves_the_page_as_it_was(slow, tmp_path):
    url, state = slow
    with chromium() as browser:
        page = new_page(browser)
        errors = page.errors
        page.goto(url)
        page.wait_for_function(f"({PATHS_JS})() !== null && ({PATHS_JS})() !== '[]'", timeout=60_000)
        before = page.evaluate(PATHS_JS)
        assert not page.evaluate(SHOWN_JS, "whatif-progress-row")  # idle: no row
        steps = page.locator("#whatif-steps")
        steps.fill("12")
        steps.press("Enter")
        page.wait_for_function(SHOWN_JS, arg="whatif-progress-row", timeout=60_000)
        text = page.inner_text("#whatif-progress-text")
        # at once: what runs and, beyond a few seconds, how long it should take; then the polls
        assert text.startswith("Recomputing 6 rollouts with sgd, lr 0.1, K 12"), text
        assert page.inner_text("#whatif-status") == text
        # the worker's own progress frames come through the poll
        page.wait_for_function("() => document.querySelector('#whatif-progress-text').innerText"
                               ".startsWith('recomputing the held-out paths · ')", timeout=120_000)
        worker = state.whatif.pool.get("slow", state.cache.path_of("slow"))
        pid = worker.process.pid
        assert worker._running is not None  # the job is in the worker now
        page.click("#whatif-progress-cancel")
        page.wait_for_function(f"() => !({SHOWN_JS})('whatif-progress-row')", timeout=30_000)
        page.wait_for_function("() => document.querySelector('#whatif-status').innerText"
                               ".startsWith('Cancelled')", timeout=30_000)
        wait_until(lambda: worker._running is None, "the worker dropped the cancelled job",
                   timeout_s=30, page=page)
        assert worker.process.poll() is None and worker.process.pid == pid  # stopped, still warm
        # nothing lands later: the page's requests end (no request for twice the progress
        # poll's 300 ms: it stopped with the row) and then it still shows the old picture
        wait_quiet(page, quiet_s=0.6)
        assert page.evaluate(PATHS_JS) == before  # the picture is as it was
        page.screenshot(path=str(tmp_path / "cancelled.png"), full_page=True)
    assert not errors, errors
