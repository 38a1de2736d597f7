"""What-if recomputation time (trajviz.pipeline.whatif.whatif) for small runs of the demo configs.

Each run is the demo config with 3 meta-steps (the what-if cost does not depend on
meta-training). Printed per run: the first call (builds the context: problem, tasks,
slices) and the steady state (a warm worker's cost: median over changed lrs), with
and without the per-step diagnostics (sharpness by HVP is the dear part on big
models). The last line is ``whatif_linear2d_ms: X`` (steady state as the page asks for it:
grad/update norms, no sharpness; target <= 200). Run: ``python bench/bench_whatif.py``.

``--browser`` also times the page (``whatif_page.py``: headless chromium, the same small
runs served by the app): from one lr slider change to the new picture (path, panels and
summary redrawn), ``page_<run>_ms`` the steady-state median and the first change apart,
with the stages of one change; ``page_<run>_all_panels_ms`` until every panel in view is
redrawn too. ``--ab`` alternates with changes drawn as before (every figure through
plotly's own pass, the panels all at once), in the same page. Needs playwright and /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trajviz.spec.config import from_dict, load_toml, to_dict  # noqa: E402
from trajviz.pipeline.experiment import run_experiment  # noqa: E402
from trajviz.pipeline.whatif import whatif, whatif_context  # noqa: E402

DEMOS = Path(__file__).resolve().parents[1] / "trajviz" / "demos"


def small_run(stem: str, resolution: int | None = 21):
    """The demo config with 3 meta-steps (and a ``resolution`` grid; None: the demo's own)."""
    data = to_dict(load_toml(DEMOS / f"{stem}.toml"))
    data["outer"].update(meta_steps=3, eval_every=3)
    if resolution is not None:
        data["slices"]["resolution"] = resolution
    return run_experiment(from_dict(data), run_id=stem)


def steady(run, ctx, lr0: float, diagnostics: str, repeats: int = 7) -> float:
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        whatif(run, {"lr": lr0 * (1.1 + 0.05 * i)}, context=ctx, diagnostics=diagnostics)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def page_times(runs: dict, changes: int, ab: bool = False) -> None:
    """Each run in a runs folder of its own, timed in the page (whatif_page.py)."""
    import tempfile

    from whatif_page import describe, page_latency

    from trajviz.store import write_run

    with tempfile.TemporaryDirectory(prefix="bench-whatif-") as tmp:
        for stem, run in runs.items():
            folder = Path(tmp) / stem
            folder.mkdir()
            write_run(run, folder)
            out = page_latency(folder, changes, ab)
            print(f"{stem:<10} page: first change {out['first']:.0f} ms; steady: path {out['path']:.0f} ms, "
                  f"picture {out['steady']:.0f} ms (painted {out['painted']:.0f} ms), all panels "
                  f"{out['all']:.0f} ms; load average "
                  f"{os.getloadavg()}", flush=True)
            if ab:
                old = out["old"]
                print(f"{stem:<10} same page, drawn as before: path {old['path']:.0f} ms, "
                      f"picture {old['steady']:.0f} ms (painted {old['painted']:.0f} ms), all panels "
                      f"{old['all']:.0f} ms", flush=True)
            for row in (out["rows"] + (out["old"]["rows"][1:] if ab else [])):
                print(f"    {describe(row)}")
            print(f"page_{stem}_ms: {out['steady']:.0f}", flush=True)
            print(f"page_{stem}_all_panels_ms: {out['all']:.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", action="store_true", help="also time the page (chromium)")
    parser.add_argument("--changes", type=int, default=7, help="slider changes per run (page)")
    parser.add_argument("--ab", action="store_true",
                        help="page: every other change drawn as before (plotly's own pass, panels at once)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    print(f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()}")
    result, runs = {}, {}
    for stem in ("quadratic", "sinusoid", "linear2d"):
        run = runs[stem] = small_run(stem, None if args.browser else 21)
        lr0 = run.config["inner"]["lr"]
        rollouts = len(run.learners) * len(run.task_ids)
        started = time.perf_counter()
        ctx = whatif_context(run)
        whatif(run, {"lr": lr0 * 2}, context=ctx, diagnostics="norms")
        first = time.perf_counter() - started
        ends = steady(run, ctx, lr0, "norms")
        full = steady(run, ctx, lr0, "full", repeats=3)
        off = steady(run, ctx, lr0, "none")
        print(f"{stem:<10} {rollouts} rollouts x {run.steps} steps, P={run.info['param_count']}: "
              f"first call {1e3 * first:.0f} ms; steady: page (norms, no sharpness) {1e3 * ends:.0f} ms, "
              f"full diagnostics {1e3 * full:.0f} ms, no diagnostics {1e3 * off:.0f} ms", flush=True)
        result[stem] = ends
    if args.browser:
        page_times({s: runs[s] for s in ("linear2d", "quadratic", "sinusoid")}, args.changes, args.ab)
    print(f"whatif_linear2d_ms: {1e3 * result['linear2d']:.0f}")


if __name__ == "__main__":
    main()
