"""Real-browser tests for the lecture hall: 3D playback moves only the moving traces,
presentation type survives every redraw, and the 2D surface hovers per grid point.

Playwright + Debian's chromium against a live app (pattern of test_browser.py). Frame
rates are printed, never asserted (bench/bench_playback.py measures them)."""
from __future__ import annotations

import re

import pytest
from app_fixtures import make_run, write_run_dir
from browser_kit import painted, wait_js
from test_browser import SHOWN_JS, _serve
from test_browser_screen import open_page

from trajviz.viewmodel.selection import select

pytestmark = pytest.mark.browser

GD = "document.querySelector('#surface-graph .js-plotly-plot')"


@pytest.fixture(scope="module")
def lecture(tmp_path_factory):
    """A 40-step run, served; yields (url, run)."""
    runs = tmp_path_factory.mktemp("lecture-runs")
    run = make_run(run_id="lecture", steps=40, resolution=41)
    write_run_dir(runs, run)
    for url in _serve(runs):
        yield url, run


def wait_key(page, old: str | None = None, three_d: bool = False) -> str:
    page.page.wait_for_function(
        f"""([old, three]) => {{ const gd = {GD};
             return gd && gd._fullLayout && gd.layout.meta && gd.layout.meta.key !== old
                    && (!three || !!(gd._fullLayout.scene && gd._fullLayout.scene._scene)); }}""",
        arg=[old, three_d], timeout=60_000)
    return page.js(f"() => {GD}.layout.meta.key")


def test_3d_fast_playback_moves_the_paths_and_never_resends_the_surface(tv_browser, lecture):
    url, run = lecture
    p = open_page(tv_browser, url, 1366, 768)
    page = p.page
    page.locator("#surface-mode label", has_text="3D").click()
    wait_key(p, three_d=True)
    page.wait_for_function(f"() => {GD}.data[0].type === 'surface'", timeout=60_000)
    # the launch bar says what a click does here: nothing in 3D, 2D picks the point
    page.wait_for_function("() => /switch to 2D contour/.test("
                           "document.getElementById('launch-status').innerText)", timeout=10_000)
    page.locator("#inner-speed label", has_text="fast").click()
    # watch the surface: its WebGL object, its z array, every full redraw of the graph
    p.js(f"""() => {{ const gd = {GD}; const sc = gd._fullLayout.scene._scene;
        const obj = sc.traces[gd._fullData[0].uid];
        window.__w = {{obj: obj, z: gd.data[0].z, updates: 0, afterplot: 0, raf: 0, on: true}};
        const update = obj.update;
        obj.update = function () {{ window.__w.updates++; return update.apply(this, arguments); }};
        gd.on('plotly_afterplot', () => {{ window.__w.afterplot++; }});
        const tick = () => {{ if (window.__w.on) {{ window.__w.raf++; requestAnimationFrame(tick); }} }};
        requestAnimationFrame(tick); window.__w.t0 = performance.now(); }}""")
    page.click("#inner-play")
    page.wait_for_function(
        "() => /inner step ([1-9]\\d) of/.test(document.getElementById('inner-label').innerText)",
        timeout=60_000)
    page.click("#inner-play")  # pause
    # the render after the pause: every panel's cursor at the paused step, drawn
    wait_js(page, SHOWN_JS, "the paused player and every panel's cursor showed one step",
            arg=None, timeout_s=15)
    painted(page)
    w = p.js(f"""() => {{ const gd = {GD}; const sc = gd._fullLayout.scene._scene;
        window.__w.on = false;
        return {{same_object: sc.traces[gd._fullData[0].uid] === window.__w.obj,
                same_z: gd.data[0].z === window.__w.z, updates: window.__w.updates,
                afterplot: window.__w.afterplot, moves: window.trajvizStats.moves3d || 0,
                fps: 1000 * window.__w.raf / (performance.now() - window.__w.t0)}}; }}""")
    k = int(re.search(r"inner step (\d+) of", page.inner_text("#inner-label")).group(1))
    print(f"3D fast playback: {w['fps']:.1f} browser frames/s to step {k}, "
          f"{w['moves']} frames by moving traces alone")
    assert k >= 10
    assert w["same_object"] and w["same_z"]  # the surface was neither replaced nor re-sent
    assert w["updates"] == 0 and w["afterplot"] == 0  # no full redraw while playing
    assert w["moves"] >= 2
    # the heads stand where the run says, at the shown step, in data and in the scene
    sel = select(run, None, 0)
    heads = p.js(f"""() => {{ const gd = {GD}; const sc = gd._fullLayout.scene._scene;
        return gd._fullData.filter(t => t.name === 'leap').map(t =>
            [t.x[0], t.y[0], sc.traces[t.uid].dataPoints.length]); }}""")
    head = heads[-1]  # the head (the path trace also carries the learner's name)
    assert head[0] == pytest.approx(sel.coords["leap"][k, 0], rel=1e-4, abs=1e-6)
    assert head[1] == pytest.approx(sel.coords["leap"][k, 1], rel=1e-4, abs=1e-6)
    assert head[2] == 1
    # panels skipped while playing (below the window) caught up when it paused; the panel
    # sets not picked are not drawn at all (app/draw.py): no card holds a stale figure
    cursors = p.js("""() => [...document.querySelectorAll('[id^=panel-] .js-plotly-plot')]
        .filter(gd => gd.data.some(t => t.name === 'cursor'))  // the spectrum has no step axis
        .map(gd => [gd.parentElement.id, gd.offsetParent !== null,
                    gd.data.find(t => t.name === 'cursor').x[0]])""")
    assert cursors and all(shown for _, shown, _ in cursors), cursors
    assert {x for _, _, x in cursors} == {k}, cursors
    assert p.errors == []
    p.close()


def font_size(p, graph: str = "surface-graph") -> float:
    return p.js("""id => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
                           return gd._fullLayout.font.size; }""", graph)


CLEAR = f"""() => {{ const gd = {GD}, r = gd.getBoundingClientRect();
    const b = s => gd.querySelector(s).getBoundingClientRect();
    return {{subtitle: b('.gtitle-subtitle').bottom, plot_top: r.top + gd._fullLayout._size.t,
             xtitle: b('.g-xtitle').bottom, bottom: r.bottom,
             legend: gd.querySelector('.legend') ? b('.legend').top : null}}; }}"""


def test_presentation_type_survives_every_redraw(tv_browser, lecture):
    url, _ = lecture
    p = open_page(tv_browser, url, 1366, 768)
    page = p.page
    assert font_size(p) == 12
    page.click("#present-toggle")
    page.wait_for_function(f"() => {GD}._fullLayout.font.size === 16")
    assert font_size(p, "panel-loss") == 16
    # the larger title's subtitle stays above the plot, the axis title inside the figure;
    # the page's surface has no legend (the HTML key over it names the learners)
    clear = p.js(CLEAR)
    assert clear["subtitle"] <= clear["plot_top"] and clear["xtitle"] <= clear["bottom"], clear
    assert clear["legend"] is None, clear
    key = p.js(f"() => {GD}.layout.meta.key")
    # a redraw from the server: another task (the controls are folded while presenting)
    p.js("() => window.dash_clientside.set_props('task-picker', {value: '2'})")
    key = wait_key(p, key)
    page.wait_for_function(f"() => {GD}._fullLayout.font.size === 16", timeout=5_000)
    page.wait_for_function("""() => document.querySelector('#panel-loss .js-plotly-plot')
                                      ._fullLayout.font.size === 16""", timeout=5_000)
    # frames: stepping and playing keep it
    k = p.frame()
    page.click("#inner-fwd")
    page.keyboard.press("ArrowRight")
    wait_js(page, SHOWN_JS, f"two steps forward, step {k + 2}, were shown", arg=k + 2, timeout_s=15)
    painted(page)
    assert font_size(p) == 16 and font_size(p, "panel-loss") == 16
    # a full redraw in another mode
    p.js("() => window.dash_clientside.set_props('surface-mode', {value: '3d'})")
    wait_key(p, None, three_d=True)  # the key does not name the mode
    page.wait_for_function(f"() => {GD}._fullLayout.font.size === 16", timeout=5_000)
    # leaving presentation puts the screen type back
    page.click("#present-toggle")
    page.wait_for_function(f"() => {GD}._fullLayout.font.size === 12", timeout=5_000)
    assert font_size(p, "panel-loss") == 12
    assert p.js(f"() => {GD}.layout.title.font.size") == 15  # the figure's own title size
    assert p.errors == []
    p.close()


def test_hovering_the_2d_surface_shows_the_loss_at_that_grid_point(tv_browser, lecture):
    url, run = lecture
    p = open_page(tv_browser, url, 1366, 768)
    page = p.page
    sel = select(run, None, 0)
    # a grid point inside the view, away from the paths
    pt = p.js(f"""() => {{ const gd = {GD}; const t = gd._fullData.find(d => d.name === 'surface value');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
        const heads = gd._fullData.filter(d => d.mode === 'lines+markers');
        let best = null;
        for (let i = 0; i < t.x.length; i++) {{
            const px = xa.d2p(t.x[i]), py = ya.d2p(t.y[i]);
            if (px < 20 || py < 20 || px > xa._length - 20 || py > ya._length - 20) continue;
            let d = Infinity;
            heads.forEach(h => {{ for (let j = 0; j < h.x.length; j++)
                d = Math.min(d, Math.hypot(xa.d2p(h.x[j]) - px, ya.d2p(h.y[j]) - py)); }});
            if (!best || d > best.d) best = {{d: d, a: t.x[i], b: t.y[i],
                cx: r.left + xa._offset + px, cy: r.top + ya._offset + py}};
        }}
        return best; }}""")
    assert pt is not None and pt["d"] > 15
    page.mouse.move(pt["cx"] + 1, pt["cy"] + 1)
    page.wait_for_selector("#surface-graph .hoverlayer .hovertext", timeout=5_000)
    text = p.js("""() => [...document.querySelectorAll('#surface-graph .hoverlayer .hovertext')]
                          .map(e => e.textContent).join(' | ')""")
    loss = float(re.search(r"loss: ([-+0-9.e]+)", text).group(1))
    i = int(abs(sel.alpha - pt["a"]).argmin())
    j = int(abs(sel.beta - pt["b"]).argmin())
    assert loss == pytest.approx(float(sel.z[j, i]), rel=1e-3), text
    assert p.errors == []
    p.close()
