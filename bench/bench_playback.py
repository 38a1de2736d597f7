"""Playback in a real browser: 2D fast step rate against its setting, and 3D frames/s.

Serves the app over a runs folder (default: a synthetic 40-step run from the tests'
fixtures; ``--runs DIR`` for real runs, e.g. the sinusoid demo), opens it in headless
Chromium (Playwright, /usr/bin/chromium) at 1366x768 and plays at "fast" (150 ms a step):

* 2D: ms per step from the page's own record of each new frame index
  (``window.trajvizStats``), against the setting;
* 3D: browser frames/s, counted by a requestAnimationFrame loop in the page while it
  plays (a frame the page cannot draw because a restyle holds the main thread is a frame
  lost), with the steps/s reached and the longest gap between two browser frames, for
  the full restyle and for moving the traces alone at plotly's default WebGL pixel ratio 2
  (the baselines) and for the app as it is (moving traces, the main graph's own
  ``plotGlPixelRatio``), alternated on one page; then the cost of one frame's parts
  measured in the page at both pixel ratios (restyle, the move, one scene draw waited
  for with readPixels). Headless Chromium draws WebGL in software (SwiftShader): there
  the scene draw (its pixels), not the script, bounds the 3D frame rate.

The last line is ``fps_3d: X``. Run: ``python bench/bench_playback.py [--runs DIR]``.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from browser_kit import launch, new_page  # noqa: E402  (chromium as the tests open it)

FAST_MS = 150  # app/components.SPEEDS "fast"
ROUNDS = 2
PLAY_S = 3.5  # 23 of the 40 steps at 150 ms: it is still playing when counted

COUNT_FRAMES = """() => { window.__raf = {n: 0, t: [], on: true};
    const tick = t => { if (!window.__raf.on) return; window.__raf.n++; window.__raf.t.push(t);
                        requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    window.trajvizStats.steps['inner step'] = []; }"""
STOP_FRAMES = """() => { window.__raf.on = false;
    const s0 = window.trajvizStats.steps['inner step'] || [];
    const t1 = s0.length ? s0[s0.length - 1].t : Infinity;  // frames while it played
    const t = window.__raf.t.filter(x => x <= t1);
    let gap = 0; for (let i = 1; i < t.length; i++) gap = Math.max(gap, t[i] - t[i - 1]);
    const s = window.trajvizStats.steps['inner step'] || [];
    return {frames: t.length, span: t.length > 1 ? t[t.length - 1] - t[0] : 0, gap: gap,
            steps: s.map(x => [x.k, x.t])}; }"""


COSTS = """() => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
    const sc = gd._fullLayout.scene._scene, gl = sc.glplot.gl, px = new Uint8Array(4);
    const med = f => { const t = []; for (let i = 0; i < 5; i++) { const t0 = performance.now();
        f(i); t.push(performance.now() - t0); } return t.sort((a, b) => a - b)[2]; };
    const i = gd._fullData.findIndex(t => t.name && t.name.endsWith(' tail'));
    const x = gd.data[i].x, y = gd.data[i].y, z = gd.data[i].z;
    const restyle = med(() => Plotly.restyle(gd, {x: [x], y: [y], z: [z]}, [i]));
    const move = med(() => sc.traces[gd._fullData[i].uid].update(gd._fullData[i]));
    const draw = med(() => { sc.glplot.redraw(); gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px); });
    const dbg = gl.getExtension('WEBGL_debug_renderer_info');
    return {restyle: restyle, move: move, draw: draw,
            size: gl.drawingBufferWidth + 'x' + gl.drawingBufferHeight + ' WebGL pixels',
            renderer: dbg ? gl.getParameter(dbg.UNMASKED_RENDERER_WEBGL) : 'renderer unknown'}; }"""


def serve(runs: Path, gl_ratio: int | None = None):
    """The app over ``runs`` on a free port; ``gl_ratio`` draws its main graph's 3D scene at
    that WebGL pixel ratio (plotly's ``plotGlPixelRatio``) instead of the app's own."""
    from werkzeug.serving import make_server

    from trajviz.app import create_app, layout
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    own = layout.MAIN_GRAPH_CONFIG
    if gl_ratio is not None:
        layout.MAIN_GRAPH_CONFIG = {**own, "plotGlPixelRatio": gl_ratio}
    try:
        app = create_app(runs)
    finally:
        layout.MAIN_GRAPH_CONFIG = own
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, app


GD = "document.querySelector('#surface-graph .js-plotly-plot')"


def wait_drawn(page, key_not=None, three_d=False):
    page.wait_for_function(
        """([old, three]) => { const gd = document.querySelector('#surface-graph .js-plotly-plot');
             return gd && gd.layout && gd.layout.meta && gd.layout.meta.key && gd._fullLayout
                    && (!three || !!gd._fullLayout.scene) && gd.layout.meta.key !== old; }""",
        arg=[key_not, three_d], timeout=120_000)


def browser_cpu() -> float:
    """CPU seconds (user + system) used so far by the chromium processes this process
    started (psutil, installed with dask.distributed; 0 without it)."""
    try:
        import psutil
    except ImportError:
        return 0.0
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if "chrom" not in child.name():
                continue  # Playwright's driver
            t = child.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            continue
    return total


def open_3d(browser, srv, w: int, h: int):
    """A page of ``srv`` showing the surface in 3D, at "fast"."""
    page = new_page(browser, w, h)
    page.goto(f"http://127.0.0.1:{srv.server_port}/")
    wait_drawn(page)
    page.locator("#inner-speed label", has_text="fast").click()
    page.locator("#surface-mode label", has_text="3D").click()
    wait_drawn(page, three_d=True)
    page.wait_for_timeout(1500)
    return page


def play(page, seconds: float) -> dict:
    page.evaluate("() => window.dash_clientside.set_props('inner-slider', {value: 0})")
    page.wait_for_function("() => /inner step 0 of/.test(document.getElementById('inner-label').innerText)",
                           timeout=120_000)
    page.evaluate(COUNT_FRAMES)
    cpu = browser_cpu()
    page.click("#inner-play")
    page.wait_for_timeout(int(seconds * 1000))
    out = page.evaluate(STOP_FRAMES)
    out["cpu_ms"] = 1000 * (browser_cpu() - cpu)
    for _ in range(5):  # pause; a click that lands just after the last step plays again
        if "Pause" not in page.inner_text("#inner-play"):
            break
        page.click("#inner-play")
        page.wait_for_timeout(400)
    return out


def rate(steps: list) -> tuple[float, int]:
    """ms per step over the steps after the first (the first waits for the click)."""
    run = [(k, t) for k, t in steps if k >= 1]
    if len(run) < 2:
        return float("nan"), len(run)
    (k0, t0), (k1, t1) = run[0], run[-1]
    return (t1 - t0) / max(k1 - k0, 1), len(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="a runs folder (default: a synthetic run)")
    parser.add_argument("--size", default="1366x768")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    if args.runs is None:
        from app_fixtures import make_run, write_run_dir
        runs = Path(tempfile.mkdtemp(prefix="bench-playback-"))
        write_run_dir(runs, make_run(run_id="bench", steps=40, resolution=61))
    else:
        runs = args.runs
    srv, app = serve(runs)
    before_srv, before_app = serve(runs, gl_ratio=2)
    w, h = (int(v) for v in args.size.split("x"))
    print(f"load average {os.getloadavg()}; {runs}; {w}x{h}; fast = {FAST_MS} ms a step")
    with sync_playwright() as p:
        browser = launch(p)
        page = new_page(browser, w, h)
        page.goto(f"http://127.0.0.1:{srv.server_port}/")
        wait_drawn(page)
        page.locator("#inner-speed label", has_text="fast").click()
        page.wait_for_timeout(500)
        out2 = play(page, PLAY_S)
        ms2, n2 = rate(out2["steps"])
        fps2 = 1000 * out2["frames"] / max(out2["span"], 1)
        print(f"2D fast: {ms2:.1f} ms per step over {n2} steps ({1000 / ms2:.2f} steps/s, "
              f"setting {1000 / FAST_MS:.2f}; {100 * (ms2 / FAST_MS - 1):+.1f}%); "
              f"{fps2:.1f} browser frames/s, longest frame gap {out2['gap']:.0f} ms; "
              f"browser CPU {out2['cpu_ms'] / PLAY_S / 1000:.2f} cores")
        key = page.evaluate("() => document.querySelector('#surface-graph .js-plotly-plot')"
                            ".layout.meta.key")
        page.locator("#surface-mode label", has_text="3D").click()
        wait_drawn(page, three_d=True)
        page.wait_for_timeout(1500)
        pages = {"app": page, "pixel ratio 2": open_3d(browser, before_srv, w, h)}
        app_ratio = page.evaluate(f"() => {GD}._context.plotGlPixelRatio")
        variants = {"restyle, pixel ratio 2": ("pixel ratio 2", True),  # before, a full restyle
                    "moving traces, pixel ratio 2": ("pixel ratio 2", False),  # before: plotly's
                    f"moving traces only, pixel ratio {app_ratio}": ("app", False)}  # the app
        results = {how: [] for how in variants}
        for how in list(variants) * ROUNDS:  # A/B/C, A/B/C: same browser, same load
            on, restyle = variants[how]
            page3 = pages[on]
            page3.evaluate("f => { window.trajvizStats.restyle3d = f; }", restyle)
            out3 = play(page3, PLAY_S)
            ms3, n3 = rate(out3["steps"])
            fps3 = 1000 * out3["frames"] / max(out3["span"], 1)
            results[how].append(fps3)
            if os.environ.get("BENCH_DEBUG"):
                print(out3["steps"], page3.inner_text("#inner-label"), page3.inner_text("#inner-play"))
            print(f"3D fast, {how}: {ms3:.1f} ms per step, {n3} distinct steps drawn "
                  f"({1000 / ms3:.2f} steps/s); {fps3:.1f} browser frames/s, longest frame "
                  f"gap {out3['gap']:.0f} ms; browser CPU {out3['cpu_ms'] / PLAY_S / 1000:.2f} "
                  f"cores; load average {os.getloadavg()[0]:.1f}")
        moves = page.evaluate("() => window.trajvizStats.moves3d || 0")
        for on, page3 in pages.items():
            cost = page3.evaluate(COSTS)
            print(f"3D per frame, in the page, {on} ({cost['size']}): "
                  f"restyle {cost['restyle']:.1f} ms of script; moving the traces "
                  f"{cost['move']:.2f} ms of script; one scene draw (WebGL, waited for) "
                  f"{cost['draw']:.1f} ms; {cost['renderer']}; load average "
                  f"{os.getloadavg()[0]:.1f}")
        fps3 = statistics.median(results[f"moving traces only, pixel ratio {app_ratio}"])
        print(f"3D frames drawn by moving traces alone: {moves}; median browser frames/s "
              f"{fps3:.1f} (WebGL pixel ratio {app_ratio}) against "
              + ", ".join(f"{statistics.median(v):.1f} {k}" for k, v in results.items()
                          if not k.startswith("moving traces only"))
              + f" (surface figure key {key})")
        browser.close()
    for server, served in ((srv, app), (before_srv, before_app)):
        server.shutdown()
        served.trajviz_state.jobs.shutdown()
    print(f"load average {os.getloadavg()}")
    print(f"step_ms_2d: {ms2:.1f} (setting {FAST_MS})")
    print(f"fps_3d: {fps3:.1f}")


if __name__ == "__main__":
    main()
