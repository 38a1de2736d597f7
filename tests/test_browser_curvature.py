"""Real-browser test of the curvature panels on a REAL small run (sinusoid 1-8-8-1, exact
spectra): the spectrum panel follows the playback clock in the browser, with no server
request per frame, and the λ_min, trace and straight-line panels draw."""
from __future__ import annotations

import pytest
from browser_kit import chromium, new_page, painted, wait_drawn, wait_js
from test_browser import serving  # skips without playwright/chromium

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.spec.config import from_dict
    from trajviz.store import write_run

    config = from_dict({
        "family": "sinusoid", "family_options": {"hidden": [8, 8]}, "learners": ["leap", "random"],
        "seed": 0, "heldout_tasks": 2, "inner": {"steps": 6, "lr": 0.02},
        "outer": {"meta_steps": 2, "meta_batch": 2, "eval_every": 1, "eval_tasks": 2},
        "slices": {"kinds": ["pca"], "resolution": 21}})
    runs = tmp_path_factory.mktemp("curvature-runs")
    write_run(run_experiment(config, run_id="sinusoid-small"), runs)
    with serving(runs) as (url, _state), chromium() as browser:
        pg = new_page(browser, 1024, 768)
        pg.goto(url)
        wait_drawn(pg, timeout_s=60)
        yield pg


SPECTRUM = "() => { const gd = document.querySelector('#panel-spectrum .js-plotly-plot'); " \
           "return {y: Array.from(gd.data[0].y), label: gd.data[gd.data.length - 1].text[0]}; }"


def test_spectrum_moves_with_the_clock_without_the_server(page):
    page.click("#panel-set input[value='curvature']")
    page.wait_for_function("() => document.querySelector('#panel-card-spectrum').offsetParent !== null")
    page.wait_for_function("""() => { const gd = document.querySelector('#panel-spectrum .js-plotly-plot');
        return gd && gd.data && gd.data.length >= 3; }""", timeout=30_000)
    before = page.evaluate(SPECTRUM)
    updates: list[str] = []
    page.on("request", lambda r: updates.append(r.url) if "_dash-update-component" in r.url else None)
    page.evaluate("() => document.querySelector('#panel-card-spectrum').scrollIntoView()")
    for _ in range(3):
        page.click("#inner-fwd")
    wait_js(page, """old => { const gd = document.querySelector('#panel-spectrum .js-plotly-plot');
        return /inner step 3 of/.test(document.getElementById('inner-label').textContent)
               && gd.data[gd.data.length - 1].text[0] !== old; }""",
            "the player stood at step 3 and the spectrum's label changed", arg=before["label"],
            timeout_s=10)
    # the last step is drawn; a server callback on these frames would have been sent with
    # the frame change itself, so ``updates`` is complete now
    painted(page)
    after = page.evaluate(SPECTRUM)
    assert before["label"] != after["label"] and after["label"].startswith("step ")
    assert before["y"] != after["y"]  # the density of another step
    assert not updates, f"the spectrum asked the server: {updates}"
    for key in ("lambda_min", "trace"):
        n = page.evaluate(f"() => document.querySelector('#panel-{key} .js-plotly-plot').data.length")
        assert n == 2 + 2  # two learners, cursor, dots
    assert "λ_min" in page.inner_text("#panel-card-lambda_min")
    assert not page.errors
