"""Real browser on a LIGHT run (light_fixtures.py: no held-out paths kept): the page draws
its surface, paths and birth map, and a click on the surface launches, exactly as on a full
run. Timings are printed, never asserted."""
from __future__ import annotations

import pytest
from browser_kit import chromium
from light_fixtures import make_light_run
from test_browser import _serve
from test_browser_birth import BirthPage, _click_surface

from trajviz.store import load_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def light_page(tmp_path_factory):
    runs = tmp_path_factory.mktemp("light-browser")
    path = make_light_run(runs)
    for url in _serve(runs):
        with chromium() as browser:
            page = BirthPage(browser, url)
            yield page, load_run(path, heavy=False)
            page.close()


def test_a_light_run_draws_its_paths_and_birth_map(light_page):
    page, run = light_page
    assert run.info["record"]["policy"] == "light"
    page.wait_drawn()
    names = [t["name"] for t in page.graph("surface-graph")["traces"]]
    assert {"leap", "random"} <= set(names)
    page.wait_drawn("birth-graph")
    assert [t["type"] for t in page.graph("birth-graph")["traces"]][:2] == ["heatmap", "scatter"]
    assert page.errors == []


def test_a_click_on_a_light_run_launches(light_page):
    page, _ = light_page
    page.wait_drawn()
    ms = _click_surface(page, 0.4, 0.4, "click-1")
    assert "click-1" in {t["name"] for t in page.graph("surface-graph")["traces"]}
    assert "trained from" in page.page.inner_text("#launch-status")
    print(f"\nclick to drawn on a light run: {ms / 1000:.2f} s")
    assert page.errors == []
