"""Real browser: moving the what-if lr slider recomputes the paths and the summary, with at
most one recomputation in flight and no queue of stale ones (trajviz.app.whatif)."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from test_browser import ARGS, CHROMIUM, sync_api  # noqa: F401 - skips without playwright/chromium

from trajviz.config import from_dict
from trajviz.experiment import run_experiment
from trajviz.store import write_run

pytestmark = pytest.mark.browser

PATHS_JS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return gd && gd._fullData ? JSON.stringify(gd._fullData.filter(t => t.name === 'leap')
                                   .map(t => [t.x, t.y])) : null; }"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from werkzeug.serving import make_server

    from trajviz.app import create_app

    runs = tmp_path_factory.mktemp("whatif-runs")
    config = from_dict({"family": "linear2d", "learners": ["leap", "random"], "seed": 3,
                        "inner": {"steps": 8, "lr": 0.1},
                        "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 3, "eval_tasks": 2},
                        "heldout_tasks": 3, "slices": {"kinds": ["exact", "pca"], "resolution": 15}})
    write_run(run_experiment(config, run_id="wi"), runs)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(runs)
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}/", app.trajviz_state
    srv.shutdown()
    thread.join(timeout=10)
    app.trajviz_state.whatif.shutdown()


def test_moving_the_lr_slider_redraws_paths_and_summary_without_a_storm(live, tmp_path):
    url, state = live
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors, whatif_posts = [], []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: "_dash-update-component" in r.url and "whatif-shown" in
                (r.post_data or "") and whatif_posts.append(time.perf_counter()))
        page.goto(url)
        page.wait_for_function(f"({PATHS_JS})() !== null && ({PATHS_JS})() !== '[]'", timeout=60_000)
        before_paths = page.evaluate(PATHS_JS)
        before_summary = page.inner_text("#summary")
        # the worker starts when the run is picked; wait until it is warm
        deadline = time.time() + 90
        while not state.whatif.pool._workers and time.time() < deadline:
            time.sleep(0.2)
        handle = page.locator("#whatif-lr [role=slider]").first
        handle.focus()
        presses = 30
        for _ in range(presses):  # as fast as a key can repeat: 30 changes of lr
            page.keyboard.press("ArrowLeft")
        moved = time.perf_counter()
        page.wait_for_function(f"(old) => ({PATHS_JS})() !== old", arg=before_paths, timeout=60_000)
        page.wait_for_function("() => document.querySelector('#whatif-status').innerText"
                               ".startsWith('Recomputed')", timeout=60_000)
        page.wait_for_timeout(1500)  # let the last request settle
        drawn = time.perf_counter() - moved
        after_paths, after_summary = page.evaluate(PATHS_JS), page.inner_text("#summary")
        status = page.inner_text("#whatif-status")
        page.screenshot(path=str(tmp_path / "whatif.png"), full_page=True)
        browser.close()
    assert after_paths != before_paths and after_summary != before_summary
    assert "surface is reused" in status
    gate = state.whatif.gate("wi")
    print(f"{len(whatif_posts)} what-if requests for {presses} changes; {gate.computed} "
          f"recomputed, {gate.superseded} replaced by newer ones; picture {drawn:.2f} s after the "
          f"last change (timing only, not asserted)")
    assert gate.max_in_flight == 1
    assert gate.computed + gate.superseded <= len(whatif_posts)
    assert gate.computed < presses  # latest wins: no queue of stale recomputations
    # the final picture is the last slider value's: lr 10^(log10(0.1) - 0.30) ≈ 0.0501
    assert "lr 0.0501" in status
    assert errors == []
