"""Real-browser tests of the one-screen layout, the keyboard, run switching, playback
rate and the standalone HTML export (Playwright + Debian's chromium)."""
from __future__ import annotations

import dataclasses
import re

import pytest
from app_fixtures import make_run, write_run_dir
from test_browser import Page, _serve

from trajviz.export import export_current

pytestmark = pytest.mark.browser
FAST_MS = 150  # the "fast" speed's step interval (app/components.SPEEDS)


@pytest.fixture(scope="module")
def screen_server(tmp_path_factory):
    """Two runs: 'long' (40 inner steps, newest: the default) and 'short' (6 steps)."""
    runs = tmp_path_factory.mktemp("screen-runs")
    short = make_run(run_id="short", steps=6)
    short = dataclasses.replace(short, info={**short.info, "created": "2025-01-01T00:00:00+00:00"})
    write_run_dir(runs, short)
    long = make_run(run_id="long", steps=40)
    long = dataclasses.replace(long, config={**long.config, "name": "long"},
                               info={**long.info, "created": "2026-01-01T00:00:00+00:00"})
    write_run_dir(runs, long)
    yield from _serve(runs)


def open_page(browser, url, width, height) -> Page:
    page = Page.__new__(Page)
    page.context = browser.new_context(viewport={"width": width, "height": height})
    page.page = page.context.new_page()
    page.errors, page.requests, page.responses = [], [], []
    page.page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.page.goto(url)
    page.wait_drawn()
    for g in ("panel-loss", "panel-length"):
        page.wait_drawn(g)
    return page


def box(page: Page, selector: str) -> dict:
    return page.js("""s => { const r = document.querySelector(s).getBoundingClientRect();
                             return {l: r.left, t: r.top, r: r.right, b: r.bottom}; }""", selector)


@pytest.mark.parametrize("width,height", [(1024, 768), (1366, 768)])
def test_surface_player_and_two_panels_share_the_first_screen(tv_browser, screen_server,
                                                              width, height, tmp_path):
    p = open_page(tv_browser, screen_server, width, height)
    for sel in ("#surface-graph .main-svg", "#inner-play", "#inner-label",
                "#panel-loss .main-svg", "#panel-length .main-svg"):
        b = box(p, sel)
        assert b["b"] - b["t"] > 10 and b["r"] - b["l"] > 10, sel
        assert 0 <= b["t"] and b["b"] <= height and 0 <= b["l"] and b["r"] <= width, (sel, b)
    assert box(p, "#surface-graph .main-svg")["b"] - box(p, "#surface-graph .main-svg")["t"] > 300
    assert p.js("() => window.scrollY") == 0
    p.page.screenshot(path=str(tmp_path / f"screen-{width}.png"))
    assert p.errors == []
    p.close()


def test_space_plays_and_pauses_and_arrows_step(tv_browser, screen_server):
    p = open_page(tv_browser, screen_server, 1366, 768)
    page = p.page
    page.click("#inner-fwd")  # focus on a button, as after any click
    assert p.frame() == 1
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => /inner step 3 of/.test(document.getElementById('inner-label').innerText)")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => /inner step 2 of/.test(document.getElementById('inner-label').innerText)")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('inner-play').innerText.includes('Pause')")
    page.wait_for_function("() => /inner step ([4-9]|\\d\\d) of/.test(document.getElementById('inner-label').innerText)")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.getElementById('inner-play').innerText.includes('Play')")
    stopped = p.frame()
    page.wait_for_timeout(1200)
    assert p.frame() == stopped  # paused: the frame stays
    assert p.errors == []
    p.close()


def test_switching_runs_puts_the_meta_view_at_its_last_step(tv_browser, screen_server):
    p = open_page(tv_browser, screen_server, 1366, 768)
    page = p.page
    page.click("#tabs >> text=Meta-training")
    label = "#meta-label"
    page.wait_for_function("() => /meta-step \\d+ of \\d+/.test(document.getElementById('meta-label').innerText)")
    for _ in range(3):
        page.click("#meta-back")
    shown, total = re.search(r"meta-step (\d+) of (\d+)", page.inner_text(label)).groups()
    assert shown != total
    page.click("#run-picker")
    page.locator("[role=option]", has_text="short").first.click()
    page.wait_for_function(
        """() => { const m = /meta-step (\\d+) of (\\d+)/.exec(document.getElementById('meta-label').innerText);
                   const gd = document.querySelector('#meta-graph .js-plotly-plot');
                   return m && m[1] === m[2] && gd && gd.layout.meta.key.includes('short'); }""",
        timeout=30_000)
    assert p.errors == []
    p.close()


def test_fast_playback_keeps_its_step_rate(tv_browser, screen_server):
    """The step timer, measured in the page (performance.now of each new frame)."""
    p = open_page(tv_browser, screen_server, 1366, 768)
    page = p.page
    page.locator("#inner-speed label", has_text="fast").click()
    page.wait_for_timeout(300)
    page.click("#inner-play")
    page.wait_for_timeout(5500)
    times = p.js("""() => window.trajvizStats.steps['inner step'].map(s => [s.k, s.t])""")
    print("label", page.inner_text("#inner-label"), len(times))
    run = [(k, t) for k, t in times if 1 <= k < 40]
    (k0, t0), (k1, t1) = run[0], run[-1]
    per_step = (t1 - t0) / (k1 - k0)
    print(f"fast playback: {per_step:.1f} ms per step over steps {k0}..{k1} "
          f"({1000 / per_step:.2f} steps/s, intended {1000 / FAST_MS:.2f}); "
          f"{len(run)} distinct frames drawn")
    assert k1 - k0 >= 20
    assert abs(per_step - FAST_MS) <= 0.15 * FAST_MS
    assert p.errors == []
    p.close()


def test_html_export_keeps_its_surface_for_100_frames(tv_browser, tmp_path):
    run = make_run(run_id="html", steps=100, resolution=41)
    name, data = export_current(run, "html", "surface", slice_name="pca", task=0, learners=None)
    path = tmp_path / name
    path.write_bytes(data)
    page = tv_browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg")
    # play with the Play button's own options (redraw and all), 30 ms a frame, and check
    # the surface (colour image and contour-line trace) at every frame plotly draws
    page.evaluate("""() => { const gd = document.querySelector('.js-plotly-plot');
        window.seen = []; window.missing = 0;
        gd.on('plotly_animatingframe', ev => {
            const img = gd.querySelector('.layer-below image, .imagelayer image');
            const lines = gd.querySelector('.scatterlayer .trace path.js-line');
            window.seen.push(ev.name); window.missing += !(img && lines); });
        const opts = JSON.parse(JSON.stringify(gd.layout.updatemenus[0].buttons[0].args[1]));
        opts.frame.duration = 30;
        Plotly.animate(gd, null, opts); }""")
    page.wait_for_function("() => window.seen.length >= 100", timeout=60_000)
    assert page.evaluate("() => window.missing") == 0
    assert page.evaluate("() => new Set(window.seen).size") >= 100
    # the player's buttons leave the slider's step label clear
    rects = page.evaluate("""() => {
        const r = e => { const b = e.getBoundingClientRect(); return [b.left, b.right, b.top, b.bottom]; };
        const texts = [...document.querySelectorAll('.js-plotly-plot text')];
        return {label: r(texts.find(t => /^step \\d+/.test(t.textContent))),
                buttons: [...document.querySelectorAll('.updatemenu-button')].map(r)}; }""")
    label = rects["label"]
    assert len(rects["buttons"]) == 2
    for buttons in rects["buttons"]:
        overlap = not (buttons[1] <= label[0] or label[1] <= buttons[0]
                       or buttons[3] <= label[2] or label[3] <= buttons[2])
        assert not overlap, (buttons, label)
    page.close()
