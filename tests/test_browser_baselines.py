"""Real-browser test of issue 27's line: a run built to make MAML worse (outer SGD lr 12 on
the unit bowl doubles |θ0| every meta-step, tests/test_training.py) shows the line in the
summary card and the Meta-training tab, and its '?' opens the likely causes."""
from __future__ import annotations

import pytest
from browser_kit import chromium, new_page
from test_browser import serving  # skips without playwright/chromium
from test_training import worse_run  # noqa: F401  (the fixture)

from trajviz.viewmodel.training import worse_line

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(worse_run, tmp_path_factory):  # noqa: F811
    import dataclasses

    from trajviz.store import write_run

    runs = tmp_path_factory.mktemp("worse-runs")
    write_run(dataclasses.replace(worse_run, run_id="worse"), runs)
    with serving(runs) as (url, _state), chromium() as browser:
        pg = new_page(browser, 1366, 768)
        pg.goto(url)
        pg.wait_for_selector("#summary .tv-table", timeout=30_000)
        pg.wait_for_load_state("networkidle")
        yield pg


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
