"""Real browser, issue 26: the first screen holds the surface, the player, the what-if
controls and two panels at 1024×768 and 1366×768, in normal and presentation mode; no
text of a figure overlaps another or is cut (titles, tick labels, colour bar, legend,
markers' labels), the birth card without a map takes no room; and "Keep this variant"
keeps exactly the what-if on screen and shows it in the picker at once."""
from __future__ import annotations

import pytest
from browser_kit import chromium, new_page, wait_js, wait_quiet
from test_browser import serving  # skips without playwright/chromium

from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run

pytestmark = pytest.mark.browser

# Every text of every drawn figure: its box, and whether it lies inside its svg.
TEXTS_JS = """() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    if (gd.offsetParent === null) continue;
    const svg = gd.querySelector('.main-svg').getBoundingClientRect();
    const id = gd.closest('[id]') ? gd.closest('.dash-graph, [id]').id : '?';
    for (const t of gd.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (!t.textContent.trim() || r.width === 0 || getComputedStyle(t).opacity === '0') continue;
      out.push({graph: id, text: t.textContent, cls: t.getAttribute('class') || t.parentNode.getAttribute('class') || '',
                l: r.left, t: r.top, r: r.right, b: r.bottom,
                inside: r.left >= svg.left - 1 && r.right <= svg.right + 1 &&
                        r.top >= svg.top - 1 && r.bottom <= svg.bottom + 1});
    }
  }
  return out; }"""


def overlaps(texts: list[dict], slack: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts of one graph whose boxes overlap by more than ``slack`` px each way."""
    bad = []
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            if a["graph"] != b["graph"]:
                continue
            w = min(a["r"], b["r"]) - max(a["l"], b["l"])
            h = min(a["b"], b["b"]) - max(a["t"], b["t"])
            if w > slack and h > slack:
                bad.append((f"{a['graph']}:{a['text']}", f"{b['graph']}:{b['text']}"))
    return bad


def test_overlaps_finds_overlapping_boxes():
    a = {"graph": "g", "text": "a", "l": 0, "t": 0, "r": 10, "b": 10}
    assert overlaps([a, {**a, "text": "b", "l": 5, "r": 15}]) == [("g:a", "g:b")]
    assert overlaps([a, {**a, "text": "b", "l": 10, "r": 20}]) == []  # touching
    assert overlaps([a, {**a, "graph": "h"}]) == []


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    runs = tmp_path_factory.mktemp("page-runs")
    config = from_dict({"name": "page-demo", "family": "linear2d",
                        "learners": ["leap", "reptile", "random"], "seed": 3,
                        "inner": {"steps": 8, "lr": 0.1},
                        "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 3, "eval_tasks": 2},
                        "heldout_tasks": 3, "slices": {"kinds": ["pca"], "resolution": 15}})
    write_run(run_experiment(config, run_id="pg"), runs)
    with serving(runs) as (url, _state):
        yield url, runs


def _open(browser, url, width, height):
    """The page at width x height once its first draws and requests are done: (page, errors)."""
    page = new_page(browser, width, height)
    page.goto(url)
    for g in ("surface-graph", "panel-loss", "panel-length"):
        wait_js(page, """id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
            return gd && gd._fullData && gd._fullData.length > 1; }""", f"#{g} was drawn", arg=g,
                timeout_s=60)
    wait_quiet(page)  # the first callbacks answered (the strip, the key) and drawn
    return page, page.errors


# Every drawn graph (in view or not) uses the given font size.
FONT_JS = """(size) => [...document.querySelectorAll('.js-plotly-plot')].every(
    gd => !gd._fullLayout || gd._fullLayout.font.size === size)"""


def _box(page, selector):
    return page.evaluate("""s => { const e = document.querySelector(s); if (!e) return null;
        const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom}; }""",
                         selector)


@pytest.mark.parametrize("present", [False, True])
@pytest.mark.parametrize("width,height", [(1024, 768), (1366, 768)])
def test_one_screen_and_no_text_overlaps(live, width, height, present, tmp_path):
    url, _ = live
    with chromium() as browser:
        page, errors = _open(browser, url, width, height)
        if present:
            page.click("#present-toggle")
            wait_js(page, FONT_JS, "every figure took presentation type", arg=16, timeout_s=30)
            wait_quiet(page)  # the larger fonts' relayout, and what it asked the server
        for sel in ("#surface-graph .main-svg", "#inner-play", "#inner-label", "#whatif-lr",
                    "#whatif-optimizer", "#whatif-steps", "#whatif-keep", "#surface-key",
                    "#panel-loss .main-svg", "#panel-length .main-svg"):
            b = _box(page, sel)
            assert b and b["b"] - b["t"] > 5 and b["r"] - b["l"] > 5, sel
            assert 0 <= b["t"] and b["b"] <= height and 0 <= b["l"] and b["r"] <= width, (sel, b)
        surface = _box(page, "#surface-graph .main-svg")
        assert surface["b"] - surface["t"] > 280, surface
        # the marker key over the surface, whole
        assert "start" in page.inner_text("#surface-key") and "current step" in page.inner_text("#surface-key")
        # no birth map in this run: its graph takes no room
        assert page.evaluate("() => document.getElementById('birth-graph-row').offsetHeight") == 0
        # the slice row stays, saying why there is no choice
        assert "only slice" in page.inner_text("#slice-row")
        # SGD: no β
        assert page.evaluate("() => document.getElementById('whatif-beta-row').offsetHeight") == 0
        texts = page.evaluate(TEXTS_JS)
        assert any(t["graph"] == "surface-graph" for t in texts)
        cut = [(t["graph"], t["text"]) for t in texts if not t["inside"]]
        assert cut == [], cut
        assert overlaps(texts) == []
        # nothing of the controls strip is clipped (every label is on screen, whole)
        for label in page.query_selector_all("#whatif-box label"):
            r = label.bounding_box()
            if r and r["width"]:
                assert 0 <= r["x"] and r["x"] + r["width"] <= width, label.inner_text()
        page.screenshot(path=str(tmp_path / f"page-{width}-{present}.png"))
        assert errors == []


def test_keep_keeps_what_is_on_screen_and_the_picker_shows_it(live):
    url, runs = live
    with chromium() as browser:
        page, errors = _open(browser, url, 1366, 768)
        page.click("#whatif-keep")  # nothing changed yet: nothing to keep, said so
        page.wait_for_function("() => /Nothing to keep/.test(document.getElementById('whatif-status').innerText)")
        page.fill("#whatif-steps", "5")  # typing recomputes, no Enter needed
        page.wait_for_function("() => /K 5/.test(document.getElementById('whatif-status').innerText)",
                               timeout=60_000)
        page.wait_for_function("""() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
            return gd._fullData.find(t => t.name === 'leap').x.length === 6; }""", timeout=60_000)
        page.fill("#whatif-name", "k5")
        page.click("#whatif-keep")
        page.wait_for_function("() => /Kept 'k5'/.test(document.getElementById('whatif-status').innerText)",
                               timeout=60_000)
        page.wait_for_function("() => /k5/.test(document.getElementById('whatif-variant').innerText)")
        assert page.input_value("#whatif-steps") == "5"  # the controls still say what is shown
        run = load_run(next(runs.iterdir()), heavy=False)
        assert run.inner_variants["k5"].inner["steps"] == 5
        assert run.inner_variants["k5"].inner["lr"] == pytest.approx(0.1)
        assert errors == []
