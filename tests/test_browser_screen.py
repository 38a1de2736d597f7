"""Real-browser tests of the one-screen layout, the keyboard, run switching, playback
rate and the standalone HTML export (Playwright + Debian's chromium)."""
from __future__ import annotations

import dataclasses
import re

import pytest
from app_fixtures import make_run, write_run_dir
from browser_kit import new_page
from test_browser import Page, _serve

from trajviz.app.components import DEFAULT_SPEED
from trajviz.figures.export import export_current

pytestmark = pytest.mark.browser


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
    """``url`` at width x height with its surface and the first screen's two panels drawn."""
    page = Page(browser, url, width, height)
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
    stopped = p.wait_shown()
    steps = p.js("() => window.trajvizStats.steps['inner step'].length")
    # paused: the frame stays. Absence takes time: three ticks of the player's interval
    # (a tick still due would move the label and add a step to the page's own record)
    page.wait_for_timeout(3 * DEFAULT_SPEED)
    assert p.frame() == stopped
    assert p.js("() => window.trajvizStats.steps['inner step'].length") == steps
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


def test_playback_keeps_time_by_the_clock(tv_browser, screen_server):
    """The player's step follows the clock (assets/playback.js: frame = start + elapsed /
    interval), so ticks delivered late skip frames instead of playing slower. Checked with
    the page's own transport function on a stubbed clock (no timing of this machine), then
    end to end: "fast" playback of the 40-step run plays through and stops at its end."""
    p = open_page(tv_browser, screen_server, 1366, 768)
    frames = p.js("""() => {
        const ns = window.dash_clientside, transport = ns.trajviz.transport;
        const saved = ns.callback_context, realNow = performance.now;
        let now = 1000;
        performance.now = () => now;
        const data = {frames: 41, label: "clock-test"};
        const out = [];
        const call = (prop, frame, disabled) => {
            window.dash_clientside.callback_context = {triggered: [{prop_id: prop}]};
            const r = transport(0, 0, 0, 0, 0, data, frame, disabled, 150);
            return [r[0] === ns.no_update ? null : r[0], r[2] === ns.no_update ? null : r[2]];
        };
        try {
            out.push(call("inner-play.n_clicks", 0, true));           // play from step 0
            for (const [t, f] of [[150, 0], [1000, 1], [1010, 6], [1200, 6], [9000, 8]]) {
                now = 1000 + t;
                out.push(call("inner-interval.n_intervals", f, false));
            }
        } finally {
            performance.now = realNow;
            window.dash_clientside.callback_context = saved;
        }
        return out; }""")
    # [frame, interval disabled]: play; on time; late (skips 2-5); same frame (no update);
    # 1200 ms: step 8; past the end: the last step, and the player stops
    assert frames == [[0, False], [1, None], [6, None], [None, None], [8, None], [40, True]]

    page = p.page
    page.locator("#inner-speed label", has_text="fast").click()
    page.click("#inner-play")
    page.wait_for_selector("#inner-play:has-text('Play')", timeout=60_000)  # stopped at the end
    steps = p.js("""() => window.trajvizStats.steps['inner step'].map(s => s.k)""")
    played = steps[steps.index(0) if 0 in steps else 0:]
    assert played[-1] == 40 and played == sorted(played)  # forwards to the end, no step back
    assert page.inner_text("#inner-label").startswith("inner step 40")
    assert p.errors == []
    p.close()


def test_html_export_keeps_its_surface_for_100_frames(tv_browser, tmp_path):
    run = make_run(run_id="html", steps=100, resolution=41)
    name, data = export_current(run, "html", "surface", slice_name="pca", task=0, learners=None)
    path = tmp_path / name
    path.write_bytes(data)
    page = new_page(tv_browser, 1200, 900)
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
    page.context.close()
