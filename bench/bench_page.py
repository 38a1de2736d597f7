"""The page in a real browser: time from an input event to the settled picture, per control.

``python bench/bench_page.py RUNS [--repeats N]`` serves RUNS (e.g. the demo runs: a
sinusoid-demo and a linear2d-demo run) in headless chromium at 1366x768 and, on each
run, times: a what-if learning-rate key press (the lr slider's ←), switching the inner
optimiser (What if?), the view ("all tasks" and back), 2D -> 3D and back, and switching
to the other run. "Settled": the last change to the page's DOM after the input event,
once no request has been out for 0.8 s and ten animation frames came in a row (the
page is idle). Times are printed per event as the median over ``--repeats``, with the
machine's load (uptime): they are noisy on a shared machine. Beside the what-if lr key,
"surface first": the first change to the surface's graph, the fast restyle of the new
paths (``assets/whatif.js``); the full draw that settles the page follows. Each run's
worker is warm before its events are timed (a run switch starts one in the background).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whatif_page import _serve, chromium, counted_page, wait_quiet, wait_until  # noqa: E402

INSTRUMENT = """() => {
  window.__t0 = null; window.__last = null; window.__first = null;
  const mark = () => { window.__t0 = performance.now(); window.__last = null; window.__first = null; };
  document.addEventListener('mousedown', mark, true);
  document.addEventListener('keydown', mark, true);
  const surface = document.getElementById('surface-graph');
  new MutationObserver(ms => { if (window.__t0 === null) return;
      window.__last = performance.now();
      if (window.__first === null && ms.some(m => surface.contains(m.target)))
        window.__first = window.__last; })
    .observe(document.querySelector('.tv-app'), {subtree: true, childList: true,
                                                  attributes: true, characterData: true});
}"""


def _settled(page) -> tuple[float, float]:
    """(ms to the surface's first change, ms to the last change of the page)."""
    wait_quiet(page, 0.8)
    return tuple(page.evaluate("""() => [window.__first === null ? NaN : window.__first - window.__t0,
                                         window.__last === null ? NaN : window.__last - window.__t0]"""))


def _click_label(page, box: str, text: str) -> None:
    page.locator(f"#{box} label", has_text=text).first.click()


def _switch_run(page, name: str) -> None:
    page.click("#run-picker")
    page.locator("[role=option]", has_text=name).first.click()


def bench(runs: Path, repeats: int) -> dict[str, dict[str, float]]:
    app, srv, _log = _serve(runs)
    state = app.trajviz_state
    names = sorted(p.name for p in runs.iterdir() if (p / "run.json").exists())
    out: dict[str, dict[str, list[float]]] = {}
    try:
        with chromium() as browser:
            page = counted_page(browser, srv, 1366, 768)
            page.wait_for_function("""() => { const g = document.querySelector('#surface-graph .js-plotly-plot');
                return g && g._fullData && g._fullData.length > 1; }""", timeout=180_000)
            page.evaluate(INSTRUMENT)
            wait_until(lambda: state.whatif.pool._workers, "the run's what-if worker started",
                       timeout_s=180, page=page)
            wait_quiet(page, 1.5)
            for r in range(repeats):
                for run_name in names:
                    label = run_name.split("-")[2] if run_name.count("-") >= 3 else run_name
                    times = out.setdefault(label, {})

                    def timed(event: str, act) -> None:
                        act()
                        first, last = _settled(page)
                        times.setdefault(event, []).append(last)
                        times.setdefault(event + " (surface first)", []).append(first)

                    timed("run switch", lambda: _switch_run(page, run_name))
                    wait_until(lambda: state.whatif.pool.is_warm(run_name),  # timed apart:
                               f"{run_name}'s what-if worker warm", timeout_s=120, page=page)
                    wait_quiet(page, 1.0)  # (its start is not a click)
                    page.locator("#whatif-lr [role=slider]").first.focus()
                    timed("what-if lr ←", lambda: page.keyboard.press("ArrowLeft"))
                    page.keyboard.press("ArrowRight")
                    wait_quiet(page, 1.0)
                    timed("optimiser → momentum", lambda: _click_label(page, "whatif-optimizer", "momentum"))
                    timed("optimiser → back", lambda: _click_label(page, "whatif-optimizer", "SGD" if "linear" in label else "Adam"))
                    timed("view → all tasks", lambda: _click_label(page, "surface-zoom", "all tasks"))
                    timed("view → fit", lambda: _click_label(page, "surface-zoom", "fit these paths"))
                    timed("2D → 3D", lambda: _click_label(page, "surface-mode", "3D"))
                    timed("3D → 2D", lambda: _click_label(page, "surface-mode", "2D contour"))
    finally:
        srv.shutdown()
        state.whatif.shutdown()
    return {run: {e: statistics.median(v) for e, v in ev.items()} for run, ev in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    res = bench(args.runs, args.repeats)
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"{'run':10s} {'event':24s} {'settled':>9s} {'surface first':>14s}")
    for run, events in res.items():
        for event, ms in events.items():
            if not event.endswith(" (surface first)"):
                # only the what-if's first change is a picture (the fast restyle): for the
                # others it is the graph's loading state, set while Dash's request is out
                first = events.get(event + " (surface first)", float("nan"))
                shown = f"{first:11.0f} ms" if event.startswith("what-if") else f"{'':>14s}"
                print(f"{run:10s} {event:24s} {ms:6.0f} ms {shown}")


if __name__ == "__main__":
    main()
