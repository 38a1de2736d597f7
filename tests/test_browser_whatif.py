"""Real browser: moving the what-if lr slider recomputes the paths and the summary, with at
most one recomputation in flight and no queue of stale ones (trajviz.app.whatif); a change
goes to the JSON route (trajviz.app.whatif_route), not through a Dash callback, and is drawn
by restyling the drawn figures (assets/whatif.js), the summary shown at once beside Dash's
and handed to it once the slider rests, when the full draw follows and shows the same paths.
The time from a change to the new picture is printed, never asserted (bench/bench_whatif.py
--browser measures it)."""
from __future__ import annotations

import numpy as np
import pytest
from browser_kit import IDLE_JS, chromium, new_page, wait_js, wait_quiet, wait_until
from test_browser import serving  # skips without playwright/chromium

from trajviz.app.whatif_route import ROUTE
from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import write_run

pytestmark = pytest.mark.browser

PATHS_JS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return gd && gd._fullData ? JSON.stringify(gd._fullData.filter(t => t.name === 'leap')
                                   .map(t => [t.x, t.y])) : null; }"""
# Keeps each fast update the page draws (window.__fast) from the route's replies.
SPY_JS = """() => { const ns = window.dash_clientside.trajviz_whatif, answer = ns.answer;
    window.__fast = [];
    ns.answer = function (reply) { if (reply.fast) { window.__fast.push(reply.fast); }
                                   return answer.apply(this, arguments); }; }"""
# What the summary card shows: the live copy while it is filled, else Dash's.
SUMMARY_JS = """() => { const live = document.querySelector('#summary-live');
    const dash = document.querySelector('#summary');
    return {live: live.innerText, dash: dash.innerText, shown: getComputedStyle(dash).display}; }"""
# Records what the summary card shows each time the live copy changes (window.__live).
WATCH_LIVE_JS = """() => { window.__live = [];
    new MutationObserver(() => window.__live.push((SUMMARY)()))
      .observe(document.querySelector('#summary-live'), {childList: true, subtree: true}); }"""
WATCH_LIVE_JS = WATCH_LIVE_JS.replace("SUMMARY", SUMMARY_JS)
# Resolves at the first animation frame whose first learner's path differs from old.
CHANGED_JS = """(old) => new Promise(done => { const tick = () => {
    const gd = document.querySelector('#surface-graph .js-plotly-plot');
    const now = Array.from(gd._fullData[1].x).join(',') + '|' + Array.from(gd._fullData[1].y).join(',');
    if (now !== old) { done(true); } else { requestAnimationFrame(tick); } };
  tick(); })"""
# The slider rested: the live summary is empty again (Dash's shows).
RESTED_JS = "() => document.querySelector('#summary-live').innerText === ''"
FIRST_PATH_JS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    return Array.from(gd._fullData[1].x).join(',') + '|' + Array.from(gd._fullData[1].y).join(','); }"""
# The fast update's path, loss series and loss range beside what the full draw shows now.
COMPARE_JS = """() => { const f = window.__fast[window.__fast.length - 1];
    const main = document.querySelector('#surface-graph .js-plotly-plot');
    const loss = document.querySelector('#panel-loss .js-plotly-plot');
    const p = f.panels.find(q => q.id === 'panel-loss');
    return {fast: [f.main.data[0].x, f.main.data[0].y, p.data[0].y, p.layout['yaxis.range']],
            full: [Array.from(main._fullData[1].x), Array.from(main._fullData[1].y),
                   Array.from(loss._fullData[0].y), loss._fullLayout.yaxis.range]}; }"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    runs = tmp_path_factory.mktemp("whatif-runs")
    config = from_dict({"family": "linear2d", "learners": ["leap", "random"], "seed": 3,
                        "inner": {"steps": 8, "lr": 0.1},
                        "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 3, "eval_tasks": 2},
                        "heldout_tasks": 3, "slices": {"kinds": ["exact", "pca"], "resolution": 15}})
    write_run(run_experiment(config, run_id="wi"), runs)
    with serving(runs) as (url, _state):
        yield url, _state


def test_moving_the_lr_slider_redraws_paths_and_summary_without_a_storm(live, tmp_path):
    url, state = live
    with chromium() as browser:
        page = new_page(browser)
        errors, whatif_posts = page.errors, []
        page.on("request", lambda r: r.url.endswith(ROUTE) and whatif_posts.append(r.url))
        dash_whatif = []  # the sliders must not go through the what-if callback (the "Shown"
        # picker following what is on screen, whatif.picker_for, only names it: not counted)
        page.on("request", lambda r: "_dash-update-component" in r.url and "whatif-status.children"
                in (r.post_data or "") and '"changedPropIds":["whatif-variant.value"]'
                not in (r.post_data or "") and dash_whatif.append(r.url))
        full_draws = []  # answered requests for the full inner-loop figures
        page.on("requestfinished", lambda r: "_dash-update-component" in r.url and
                "surface-graph.figure" in (r.post_data or "") and full_draws.append(1))
        page.goto(url)
        page.wait_for_function(f"({PATHS_JS})() !== null && ({PATHS_JS})() !== '[]'", timeout=60_000)
        before_paths = page.evaluate(PATHS_JS)
        before_summary = page.inner_text("#summary")
        # the worker starts when the run is picked; wait until it is warm
        wait_until(lambda: state.whatif.pool._workers, "the run's what-if worker started",
                   timeout_s=90, page=page)
        page.evaluate(SPY_JS)
        page.evaluate(IDLE_JS)
        dash_whatif.clear()  # (the page's first load runs the what-if callback once)
        drawn_before = len(full_draws)
        handle = page.locator("#whatif-lr [role=slider]").first
        handle.focus()
        presses = 30
        for _ in range(presses):  # as fast as a key can repeat: 30 changes of lr
            page.keyboard.press("ArrowLeft")
        page.wait_for_function(f"(old) => ({PATHS_JS})() !== old", arg=before_paths, timeout=60_000)
        page.wait_for_function("() => document.querySelector('#whatif-status').innerText"
                               ".includes('lr 0.0501')", timeout=60_000)
        # the last request settled: the slider rested, its full draw followed and took the
        # summary, and nothing more is asked
        wait_until(lambda: len(full_draws) > drawn_before, "the full draw followed the burst",
                   timeout_s=60, page=page)
        wait_js(page, RESTED_JS, "the live summary was handed to Dash's", timeout_s=10)
        wait_quiet(page)
        after_paths, after_summary = page.evaluate(PATHS_JS), page.inner_text("#summary")
        status = page.inner_text("#whatif-status")
        gate = state.whatif.gate("wi")
        burst = (len(whatif_posts), gate.computed, gate.superseded, gate.max_in_flight)
        page.screenshot(path=str(tmp_path / "whatif.png"), full_page=True)
        # one more change: drawn by the fast restyle first, then by the full draw
        page.evaluate(IDLE_JS)
        page.evaluate("() => { window.__fast = []; }")
        page.evaluate(WATCH_LIVE_JS)
        old = page.evaluate(FIRST_PATH_JS)
        page.keyboard.press("ArrowRight")
        page.evaluate(CHANGED_JS, old)  # waits for the path to change
        page.wait_for_function("() => window.__fast.length > 0", timeout=60_000)
        drawn_before = len(full_draws)
        wait_until(lambda: len(full_draws) > drawn_before,  # the slider rests: after 0.4 s
                   "the full draw followed the resting slider", timeout_s=60, page=page)
        page.evaluate(IDLE_JS)  # plotly draws it
        compare = page.evaluate(COMPARE_JS)
        final_status = page.inner_text("#whatif-status")
        wait_js(page, RESTED_JS, "the live summary was handed to Dash's", timeout_s=10)
        rested_summary = page.evaluate(SUMMARY_JS)  # handed to Dash
        page.wait_for_function("() => document.querySelector('#whatif-variant').innerText"
                               ".includes('on screen now: sgd, lr 0.0')", timeout=10_000)
        lives = [v for v in page.evaluate("() => window.__live") if v["live"]]
    assert after_paths != before_paths and after_summary != before_summary
    assert "surface is reused" in status
    posts, computed, superseded, in_flight = burst
    print(f"{posts} what-if requests for {presses} changes; {computed} recomputed, {superseded} "
          f"replaced by newer ones (latency: python bench/bench_whatif.py --browser)")
    assert len(full_draws) > drawn_before  # and the full draw followed
    assert dash_whatif == []  # the slider changes went to the route only
    # while the slider moved, the live summary stood in for Dash's; at rest, Dash's is shown
    assert len(lives) == 1 and lives[0]["shown"] == "none"  # the one change's summary
    assert lives[0]["live"] != after_summary and "Mean over" in lives[0]["live"]
    assert rested_summary["live"] == "" and rested_summary["shown"] != "none"
    assert rested_summary["dash"] == lives[0]["live"]
    assert in_flight == 1 and gate.max_in_flight == 1
    assert computed + superseded <= posts
    assert computed < presses  # latest wins: no queue of stale recomputations
    # the final picture is the last slider value's: lr 10^(log10(0.1) - 0.30) ≈ 0.0501
    assert "lr 0.0501" in status
    assert "lr 0.0513" in final_status  # and after one step back up, 10^(-1.29)
    # the restyled path, loss series and loss range are what the full draw shows
    for fast, full in zip(compare["fast"][:3], compare["full"][:3]):  # 5 significant digits
        np.testing.assert_allclose(np.array(fast, dtype=float), np.array(full, dtype=float),
                                   rtol=5.01e-5, atol=1e-12)
    np.testing.assert_allclose(compare["fast"][3], compare["full"][3], rtol=1e-9)
    assert errors == []


# Keeps each reply the page draws (window.__replies) and stops the full draw that follows a
# resting slider (set_props of the whatif-shown Store), so two ways of drawing the same
# reply can be compared on the same figures.
HOLD_JS = """() => { const ns = window.dash_clientside.trajviz_whatif, answer = ns.answer;
    window.__replies = [];
    ns.answer = function (reply, frame) { if (reply.fast) { window.__replies.push([reply, frame]); }
                                          return answer.apply(this, arguments); };
    const set = window.dash_clientside.set_props;
    window.dash_clientside.set_props = function (id) {
      return id === 'whatif-shown' ? undefined : set.apply(this, arguments); };
    const direct = window.dash_clientside.trajviz_direct, restyle = direct.restyle;
    window.__direct = 0;
    direct.restyle = function () { const ok = restyle.apply(this, arguments);
                                   window.__direct += ok ? 1 : 0; return ok; }; }"""
# Draws reply i (window.__replies) directly or through plotly's own pass, waits until every
# panel is drawn, and returns each graph in view as SVG (trace and figure uids, random,
# left out: Dash may draw a graph anew in between), its
# traces' x/y and its points (x, y, customdata: what hover shows) as plotly holds them.
DRAW_JS = """async ([i, direct]) => {
    window.trajvizWhatifDirect = direct;
    const [reply, frame] = window.__replies[i], stats = window.trajvizStats.whatif;
    const n = stats.length;
    window.dash_clientside.trajviz_whatif.answer(reply, frame, null);
    while (stats.length === n || stats[stats.length - 1].drawn === undefined) {
      await new Promise(r => requestAnimationFrame(r)); }
    const out = {};
    for (const id of ['surface-graph', ...reply.fast.panels.map(p => p.id)]) {
      const gd = document.querySelector('#' + id + ' .js-plotly-plot');
      if (!gd || gd.offsetParent === null) { continue; }
      // what is drawn, read back through the graph's own axes (its margins may differ
      // with its ticks' history): each trace's line vertices and marker positions in data units
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = v => v;
      const drawn = Array.from(gd.querySelectorAll('.scatterlayer .trace')).map(g => {
        const line = g.querySelector('path.js-line'), d = line ? line.getAttribute('d') || '' : '';
        const nums = (d.match(/-?[0-9.]+(e-?[0-9]+)?/g) || []).map(Number);
        const vertices = [];
        for (let k = 0; k + 1 < nums.length; k += 2) { vertices.push([r(xa.p2c(nums[k])), r(ya.p2c(nums[k + 1]))]); }
        const points = Array.from(g.querySelectorAll('path.point')).map(pt => {
          const m = /translate\\(([^,]+),([^)]+)\\)/.exec(pt.getAttribute('transform') || '');
          return m ? [r(xa.p2c(+m[1])), r(ya.p2c(+m[2]))] : null; });
        return {vertices, points}; });
      out[id] = {drawn: drawn, span: [Math.abs(xa.p2c(xa._length) - xa.p2c(0)),
                                       Math.abs(ya.p2c(ya._length) - ya.p2c(0))],
                 xy: JSON.stringify(gd._fullData.map(t => [Array.from(t.x || []), Array.from(t.y || [])])),
                 calc: JSON.stringify(gd.calcdata.map(cd => cd.map(p => [p.x, p.y, p.data])))};
    }
    return out; }"""


def test_the_direct_redraw_draws_what_plotlys_own_pass_draws(live):
    """assets/direct.js (only the changed traces recomputed and drawn) leaves every graph as
    plotly's Plotly.animate/update would: the same data and points, and the same lines and
    markers drawn (read back through each graph's axes), plane and panels."""
    url, state = live
    with chromium() as browser:
        page = new_page(browser)
        errors = page.errors
        page.goto(url)
        page.wait_for_function(f"({PATHS_JS})() !== null && ({PATHS_JS})() !== '[]'", timeout=60_000)
        wait_until(lambda: state.whatif.pool._workers, "the run's what-if worker started",
                   timeout_s=90, page=page)
        page.evaluate(IDLE_JS)
        page.evaluate(HOLD_JS)
        page.locator("#whatif-lr [role=slider]").first.focus()
        for count in (1, 2):  # two what-ifs, one after the other
            page.keyboard.press("ArrowLeft")
            page.wait_for_function(f"() => window.__replies.length >= {count}", timeout=60_000)
            page.evaluate(IDLE_JS)
        # the same two draws each time (a panel's margins follow its ticks' history)
        page.evaluate(DRAW_JS, [1, False])
        plotly = page.evaluate(DRAW_JS, [0, False])
        page.evaluate(DRAW_JS, [1, False])
        before = page.evaluate("() => window.__direct")
        direct = page.evaluate(DRAW_JS, [0, True])
        used = page.evaluate("() => window.__direct") - before
    assert set(direct) == set(plotly) and "surface-graph" in direct and len(direct) >= 3
    assert used >= 1 + 1  # the plane and at least one panel took the direct path
    for gid in plotly:
        assert direct[gid]["xy"] == plotly[gid]["xy"], gid
        assert direct[gid]["calc"] == plotly[gid]["calc"], gid
        a, b = direct[gid]["drawn"], plotly[gid]["drawn"]
        assert len(a) == len(b) and any(t["vertices"] or t["points"] for t in a), gid
        sx, sy = plotly[gid]["span"]
        for ta, tb in zip(a, b):  # the same lines and markers, to 1/1000 of each axis's span
            assert len(ta["vertices"]) == len(tb["vertices"]) and len(ta["points"]) == len(tb["points"]), gid
            for u, v in zip(ta["vertices"] + ta["points"], tb["vertices"] + tb["points"]):
                assert (u is None) == (v is None), gid
                if u is not None:
                    assert abs(u[0] - v[0]) <= 1e-3 * sx and abs(u[1] - v[1]) <= 1e-3 * sy, (gid, u, v)
    assert errors == []


def test_switching_the_optimiser_goes_to_the_route_and_redraws(live):
    """The optimiser is drawn like the sliders: posted to the route (no Dash what-if
    callback), restyled at once, then the full draw; the status names the new optimiser."""
    url, state = live
    with chromium() as browser:
        page = new_page(browser)
        posts, dash_whatif = [], []
        page.on("request", lambda r: r.url.endswith(ROUTE) and posts.append(r.post_data))
        page.on("request", lambda r: "_dash-update-component" in r.url and "whatif-status.children"
                in (r.post_data or "") and '"changedPropIds":["whatif-variant.value"]'
                not in (r.post_data or "") and dash_whatif.append(r.url))
        page.goto(url)
        wait_js(page, f"({PATHS_JS})() !== null && ({PATHS_JS})() !== '[]'",
                "the first draw", timeout_s=60)
        wait_until(lambda: state.whatif.pool.is_warm("wi"), "the run's what-if worker warm",
                   timeout_s=120, page=page)
        wait_quiet(page, 0.8)
        before, posted, asked = page.evaluate(PATHS_JS), len(posts), len(dash_whatif)
        page.locator("#whatif-optimizer label", has_text="momentum").first.click()
        wait_js(page, "() => document.querySelector('#whatif-status').innerText"
                      ".includes('momentum')", "the status naming momentum", timeout_s=60)
        wait_js(page, f"(old) => ({PATHS_JS})() !== old", "the paths redrawn", arg=before,
                timeout_s=60)
        wait_quiet(page, 0.8)
        assert len(posts) > posted and '"opt":"momentum"' in posts[-1]
        assert len(dash_whatif) == asked  # not through the Dash what-if callback
        assert page.is_visible("#whatif-beta-row")  # β shows for momentum
        assert page.errors == []
