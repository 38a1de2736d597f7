"""Real browser: the birth map card and click-to-launch on a small real run with a birth map.

Playwright drives /usr/bin/chromium against a live app (pattern of test_browser.py).
Timings are printed, never asserted."""
from __future__ import annotations

import pytest
from birth_fixtures import make_birth_run
from browser_kit import chromium, wait_js
from test_browser import Page, _serve

from trajviz.store import load_run

pytestmark = pytest.mark.browser

HAS_CLICK = """name => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return gd && gd._fullData && gd._fullData.some(t => t.name === name)
           && window.__t0 !== undefined ? performance.now() - window.__t0 : false; }"""


class BirthPage(Page):
    """Page with a longer first-draw wait: the launch worker warms up beside the first draw."""

    DRAW_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def birth_server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("birth-browser")
    path = make_birth_run(runs)
    for url in _serve(runs):
        yield url, load_run(path, heavy=False)


@pytest.fixture(scope="module")
def birth_page(birth_server):
    with chromium() as browser:
        page = BirthPage(browser, birth_server[0])
        yield page, birth_server[1]
        page.close()


def _click_surface(page: Page, fx: float, fy: float, name: str) -> float:
    """Click the surface at fractions (fx, fy) of its plot area; ms from mousedown to the
    new paths drawn, measured in the browser."""
    page.page.locator("#surface-graph").scroll_into_view_if_needed()
    box = page.page.locator("#surface-graph .nsewdrag").first.bounding_box()
    page.js("() => { delete window.__t0; document.addEventListener('mousedown', "
            "() => { window.__t0 = performance.now(); }, {capture: true, once: true}); }")
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.page.mouse.click(x, y)  # anywhere in the plot area (assets/surface_click.js)
    drawn = wait_js(page.page, HAS_CLICK, f"the paths launched by the click, {name}, were drawn",
                    arg=name, timeout_s=180)
    return float(drawn.json_value())


def test_birth_map_and_birth_point_are_drawn(birth_page, tmp_path):
    page, run = birth_page
    page.wait_drawn("birth-graph")
    bm = run.birthmaps["exact"]
    birth = page.graph("birth-graph")
    types = [t["type"] for t in birth["traces"]]
    assert types[:2] == ["heatmap", "scatter"] and len(types) == 2 + len(run.learners)
    star = birth["traces"][1]
    assert star["name"] == "birth point"
    assert (star["x"][0], star["y"][0]) == pytest.approx(tuple(bm.birth), rel=1e-6)
    for i, name in enumerate(bm.learners):
        mark = birth["traces"][2 + i]
        assert mark["name"] == f"{name} θ0"
        assert (mark["x"][0], mark["y"][0]) == pytest.approx(
            (bm.learner_table["a"][i], bm.learner_table["b"][i]), rel=1e-5)
    assert "Spearman" in page.page.inner_text("#birth-lines")
    assert page.page.locator("#birth-table tr").count() == 1 + len(bm.learners)
    page.page.locator("#birth-card").screenshot(path=str(tmp_path / "birth.png"))
    assert page.errors == []


def test_a_click_on_the_surface_draws_new_paths(birth_page, tmp_path):
    page, run = birth_page
    before = {t["name"] for t in page.graph("surface-graph")["traces"]}
    assert not any(n.startswith("click-") for n in before)
    first = _click_surface(page, 0.3, 0.35, "click-1")  # may wait for the worker to warm up
    names = {t["name"] for t in page.graph("surface-graph")["traces"]}
    assert "click-1" in names and before <= names
    assert "click-1" in {t["name"] for t in page.graph("panel-loss")["traces"]}
    second = _click_surface(page, 0.7, 0.6, "click-2")  # the worker is warm now
    assert "click-2" in {t["name"] for t in page.graph("surface-graph")["traces"]}
    print(f"\nclick to drawn, in the browser: first {first / 1000:.2f} s (worker warm-up "
          f"included), second {second / 1000:.2f} s")
    assert "trained from" in page.page.inner_text("#launch-status")
    page.page.screenshot(path=str(tmp_path / "clicked.png"), full_page=True)
    assert page.errors == []
