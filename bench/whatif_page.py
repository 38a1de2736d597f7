"""The what-if in a real page: time from one lr slider change to the new picture.

``page_latency(runs_dir)`` serves the app over a runs folder holding one run, opens it
in headless chromium (Playwright, /usr/bin/chromium), waits for the run's worker,
then presses the lr slider's ← key ``changes + 1`` times, one change at a time: each
waits until the new picture is drawn (the first learner's path on the plane, the loss
panel's first series and the summary all changed) and until the page is quiet again
(the full draw once the slider rests, every request answered). Times are from the key
press (performance.now() in the page) to the first animation frame that shows the
change ("painted": to a task just after that frame's paint). The first change (it may still wait for the worker) is reported apart from
the steady state (median of the rest). "All panels": until every metric panel in view
is redrawn too (``assets/whatif.js`` redraws the plane and the first panel at once, the
other panels one animation frame each after; its ``drawn`` stamp). Per stage: the key press to the what-if
request (the sliders' JSON route, ``trajviz.app.whatif_route``; a Dash callback request
on older versions), the server's time for it (the Flask app, measured around the
request), its response end, and ``assets/whatif.js``'s restyle. Used by
``bench_whatif.py --browser``.
"""
from __future__ import annotations

import logging
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser_kit import chromium, new_page, wait_quiet, wait_until  # noqa: E402  (as the tests use them)

# What the picture shows now: the first learner's path (trace 1), the loss panel's first
# series, the summary table (the live copy assets/whatif.js fills while a slider moves, else
# Dash's).
SIGNATURE = """() => {
  const g = id => document.querySelector('#' + id + ' .js-plotly-plot');
  const xy = (gd, i) => gd && gd._fullData && gd._fullData[i]
      ? Array.from(gd._fullData[i].x || []).join(',') + '|' + Array.from(gd._fullData[i].y || []).join(',') : '';
  const text = id => (document.querySelector('#' + id) || {}).textContent || '';
  return {path: xy(g('surface-graph'), 1), panel: xy(g('panel-loss'), 0),
          summary: text('summary-live') || text('summary')}; }"""

INSTRUMENT = """() => {
  window.__lat = {t0: null};
  document.addEventListener('keydown', () => { window.__lat.t0 = performance.now();
    performance.clearResourceTimings(); }, true);
}"""

# Resolves when every part of the signature differs from ``old`` (checked once per
# animation frame), with each part's time since the key press and the request timings.
WATCH = """(old) => new Promise(done => {
  const L = window.__lat, marks = {}, sig = (SIGNATURE);
  let painted = null;
  const tick = () => {
    const now = performance.now(), s = sig();
    for (const k of Object.keys(old)) { if (s[k] !== old[k] && !(k in marks)) marks[k] = now - L.t0; }
    if (painted === null && Object.keys(old).every(k => k in marks)) {
      painted = undefined;  // a task after this frame: its paint is done
      setTimeout(() => { painted = performance.now() - L.t0; }, 0);
    }
    const applied = ((window.trajvizStats || {}).whatif || []).filter(a => a.start >= L.t0);
    const last = applied[applied.length - 1];
    const waiting = (last && last.drawn === undefined || painted === undefined) &&
                    now - L.t0 < 10000;  // the other panels, the paint
    if ((Object.keys(old).every(k => k in marks) && !waiting) || now - L.t0 > 60000) {
      const reqs = performance.getEntriesByType('resource')
        .filter(e => e.name.includes('_dash-update') || e.name.includes('_trajviz/whatif'))
        .map(e => [e.startTime - L.t0, e.responseEnd - L.t0, e.encodedBodySize]);
      done({marks, reqs, painted, applied: applied.map(a => [a.start - L.t0, a.end - L.t0,
                                                    a.drawn === undefined ? null : a.drawn - L.t0])});
    } else { requestAnimationFrame(tick); }
  };
  tick(); })""".replace("SIGNATURE", SIGNATURE)


def _serve(runs: Path):
    from flask import g, request
    from werkzeug.serving import make_server

    from trajviz.app import create_app
    from trajviz.app.whatif_route import ROUTE

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(runs)
    log: list[tuple[str, float]] = []

    @app.server.before_request
    def _start():
        g.trajviz_started = time.perf_counter()

    @app.server.after_request
    def _end(response):
        if "_dash-update-component" in request.path:
            output = (request.get_json(silent=True) or {}).get("output", "")
            log.append((output, time.perf_counter() - g.trajviz_started))
        elif request.path == ROUTE:  # the sliders' fast path (trajviz.app.whatif_route)
            log.append((ROUTE, time.perf_counter() - g.trajviz_started))
        return response

    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return app, srv, log


def counted_page(browser, srv, width: int, height: int):
    """A page of ``srv``'s app at width x height (its requests in flight counted, for
    ``wait_quiet``)."""
    page = new_page(browser, width, height)
    page.goto(f"http://127.0.0.1:{srv.server_port}/")
    return page


def page_latency(runs: Path, changes: int = 7, ab: bool = False) -> dict:
    """{"first": ms, "steady": ms (median), "path": ms (median, the plane only), "all": ms
    (median, every panel in view redrawn too), "rows": [...]} for the run in ``runs`` (see
    the module docstring). ``ab``: every other change drawn as before (every figure by
    plotly's own pass, the panels all at once: ``window.trajvizWhatifDirect`` and
    ``trajvizWhatifStagger`` false), reported as "old" (the same keys) from the same page."""
    app, srv, log = _serve(runs)
    state = app.trajviz_state
    rows = []
    try:
        with chromium() as browser:
            page = counted_page(browser, srv, 1440, 1000)
            page.wait_for_function(f"({SIGNATURE})().path !== ''", timeout=180_000)
            page.evaluate(INSTRUMENT)
            wait_until(lambda: state.whatif.pool._workers, "the run's what-if worker started",
                       timeout_s=180, page=page)
            wait_quiet(page, 1.0)
            page.locator("#whatif-lr [role=slider]").first.focus()
            for i in range(changes * (2 if ab else 1) + 1):
                stagger = not ab or i % 2 == 0  # False: as before (see page_latency)
                flag = str(stagger).lower()
                page.evaluate(f"() => {{ window.trajvizWhatifStagger = {flag}; "
                              f"window.trajvizWhatifDirect = {flag}; }}")
                old = page.evaluate(SIGNATURE)
                log.clear()
                page.keyboard.press("ArrowLeft")
                row = page.evaluate(WATCH, old)
                wait_quiet(page, 0.8)
                row["server"] = [(out.split("...")[0].strip("."), s * 1e3) for out, s in log]
                row["stagger"] = stagger
                rows.append(row)
    finally:
        srv.shutdown()
        state.whatif.shutdown()
    out = _summary(rows[1:], rows[0]) if not ab else _summary([r for r in rows[1:] if r["stagger"]], rows[0])
    if ab:
        out["old"] = _summary([r for r in rows[1:] if not r["stagger"]], rows[0])
    return out


def _all_panels(row: dict) -> float:
    """ms to every panel in view redrawn (whatif.js's drawn stamp), else the picture's."""
    drawn = [a[2] for a in row["applied"] if len(a) > 2 and a[2] is not None]
    return max([*drawn, *row["marks"].values()])


def _summary(rows: list[dict], first: dict) -> dict:
    return {"first": max(first["marks"].values()),
            "steady": statistics.median(max(r["marks"].values()) for r in rows),
            "painted": statistics.median(r["painted"] or float("nan") for r in rows),
            "path": statistics.median(r["marks"]["path"] for r in rows),
            "all": statistics.median(_all_panels(r) for r in rows), "rows": [first, *rows]}


def describe(row: dict) -> str:
    """One change's stages in ms since the key press."""
    req = row["reqs"][0] if row["reqs"] else (float("nan"),) * 3
    server = next((ms for out, ms in row["server"] if out.startswith(("/_trajviz/whatif", "whatif-shown"))),
                  float("nan"))
    applied = row["applied"][0] if row["applied"] else (float("nan"),) * 2
    return (f"request sent {req[0]:.0f}, server {server:.0f}, response end {req[1]:.0f} "
            f"({req[2] / 1024:.0f} kB), restyle {applied[0]:.0f}-{applied[1]:.0f}, path "
            f"{row['marks'].get('path', float('nan')):.0f}, picture {max(row['marks'].values()):.0f} "
            f"(painted {row.get('painted') or float('nan'):.0f}), "
            f"all panels {_all_panels(row):.0f}" + ("" if row.get("stagger", True) else " (as before)"))


__all__ = ["describe", "page_latency"]
