"""Real-browser test of issue 27's line: a run built to make MAML worse (outer SGD lr 12 on
the unit bowl doubles |θ0| every meta-step, tests/test_training.py) shows the line in the
summary card and the Meta-training tab, and its '?' opens the likely causes."""
from __future__ import annotations


import pytest
from test_browser import serving
from test_browser_diag import ARGS, CHROMIUM, sync_api
from test_training import worse_run  # noqa: F401  (the fixture)

from trajviz.viewmodel.training import worse_line

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(worse_run, tmp_path_factory):  # noqa: F811
    import dataclasses

    from trajviz.store import write_run

    runs = tmp_path_factory.mktemp("worse-runs")
    write_run(dataclasses.replace(worse_run, run_id="worse"), runs)
    with serving(runs) as (url, _state):
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            pg = browser.new_page(viewport={"width": 1366, "height": 768})
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.goto(url)
            pg.wait_for_selector("#summary .tv-table", timeout=30_000)
            pg.wait_for_load_state("networkidle")
            pg.errors = errors
            yield pg
            browser.close()


def test_the_line_and_its_question_mark_in_the_summary_and_the_meta_tab(page, worse_run):  # noqa: F811
    line = worse_line(worse_run)
    summary = page.locator("#explain-worse-summary")
    assert summary.locator("summary").inner_text().strip().endswith(line.removeprefix("⚠ "))
    assert not summary.locator("p").first.is_visible()
    summary.locator("summary").click()
    assert "second-order term" in summary.inner_text()
    assert "Outer learning rate 12 for every learner" in page.locator("#summary").inner_text()
    page.get_by_text("Meta-training", exact=True).click()
    meta = page.wait_for_selector("#explain-worse-meta", timeout=30_000)
    assert line.removeprefix("⚠ ") in meta.inner_text()
    assert page.errors == []
