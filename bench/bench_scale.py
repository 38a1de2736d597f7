"""Real-model scale (issue 22): wall, peak RSS, run-folder size and load + surface-figure
time of ``trajviz run`` at 1M and 10M parameters, beside ``spec/budget.py``'s estimate.

Each target runs ``python -m trajviz run ...`` in a child process; its peak RSS is the
child's own ``ru_maxrss`` (``os.wait4``), its wall the child's. Then a second child loads
the run as the app does (``load_run(heavy=False)``) and builds its surface figure
(``trajviz.figure(run, "surface")``), timed inside that child. The estimate is
``budget.estimate`` of the same config (memory, time, disk).

Targets (the issue's, 2 cores):
  a   1.05M params (sinusoid MLP 1-1024-1024-1), leap + random, 10 meta-steps, default policy:
      RSS <= 2.5 GB, folder <= 150 MB, load + surface figure <= 5 s
  b   the same model, the default six learners, 20 meta-steps: RSS <= 3 GB, folder <= 300 MB,
      wall <= 9 min 55 s (before: 14.9 GB, 7.0 GB)
  c   ~10M params (1-3162-3162-1), leap + reptile + random, 10 meta-steps: completes,
      RSS <= 12 GB, folder <= 1 GB
  small  a 66k-parameter MLP (1-256-256-1), six learners, 20 meta-steps: a quick check
  b2, c1  b and c with 2 and 1 meta-steps: memory and folder only (for a loaded machine)

Run: ``python bench/bench_scale.py [--targets a,b,c] [--out DIR] [--keep]``. Timings are
noisy on a shared machine: the load average is printed before and after each target.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GB = 1e9
TARGETS = {
    "small": (["--family", "sinusoid", "--set", "family_options.hidden=[256,256]",
               "--meta-steps", "20"], {}),
    "a": (["--family", "sinusoid", "--set", "family_options.hidden=[1024,1024]",
           "--learners", "leap,random", "--meta-steps", "10"],
          {"rss": 2.5 * GB, "folder": 150e6, "load": 5.0}),
    "b": (["--family", "sinusoid", "--set", "family_options.hidden=[1024,1024]",
           "--meta-steps", "20"], {"rss": 3 * GB, "folder": 300e6, "wall": 595.0}),
    # b and c with 2 and 1 meta-steps: their memory and folder (the meta path adds <= 4 MB
    # per kept point), when a loaded machine cannot give b's or c's wall in the time there is
    "b2": (["--family", "sinusoid", "--set", "family_options.hidden=[1024,1024]",
            "--meta-steps", "2"], {"rss": 3 * GB, "folder": 300e6}),
    "c1": (["--family", "sinusoid", "--set", "family_options.hidden=[3162,3162]",
            "--learners", "leap,reptile,random", "--meta-steps", "1", "--force"],
           {"rss": 12 * GB, "folder": 1 * GB}),
    "c": (["--family", "sinusoid", "--set", "family_options.hidden=[3162,3162]",
           "--learners", "leap,reptile,random", "--meta-steps", "10", "--force"],
          {"rss": 12 * GB, "folder": 1 * GB}),
}
LOAD_AND_DRAW = """
import sys, time
t0 = time.perf_counter()
import trajviz
run = trajviz.load_run(sys.argv[1], heavy=False)
t1 = time.perf_counter()
fig = trajviz.figure(run, "surface")
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Run ``cmd``: its wall seconds, its own peak RSS (bytes, ``os.wait4``) and stdout."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss * 1024.0, out.decode()


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def estimate(args: list[str]):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from trajviz.cli.main import build_parser, config_from_args
    from trajviz.spec import budget

    config = config_from_args(build_parser().parse_args(["run", *args]))
    sizes = budget.family_sizes(config.family, config.family_options)
    plan = budget.record_plan(config, sizes.param_count, len(config.learners), 1)
    return sizes.param_count, budget.estimate(config, sizes), plan


def bench(name: str, out: Path) -> dict:
    args, limits = TARGETS[name]
    p, est, plan = estimate(args)
    load_before = os.getloadavg()[0]
    wall, rss, stdout = run_child([sys.executable, "-m", "trajviz", "run", *args, "--quiet",
                                   "--out", str(out)])
    path = Path(stdout.strip().splitlines()[-1])
    size = folder_bytes(path)
    _, _, timed = run_child([sys.executable, "-c", LOAD_AND_DRAW, str(path)])
    load_s, draw_s = (float(x) for x in timed.split())
    row = {"target": name, "P": p, "policy": plan.policy, "wall_s": wall, "rss_gb": rss / GB,
           "folder_mb": size / 1e6, "load_s": load_s, "figure_s": draw_s,
           "est_wall_s": est.seconds, "est_rss_gb": est.memory_bytes / GB,
           "est_folder_mb": est.disk_bytes / 1e6, "load_avg": (load_before, os.getloadavg()[0])}
    checks = {"rss": rss <= limits.get("rss", float("inf")),
              "folder": size <= limits.get("folder", float("inf")),
              "load": load_s + draw_s <= limits.get("load", float("inf")),
              "wall": wall <= limits.get("wall", float("inf"))}
    row["meets"] = all(checks.values())
    row["missed"] = [k for k, ok in checks.items() if not ok]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", default="a,b,c")
    parser.add_argument("--out", type=Path, help="runs folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the runs")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        for name in args.targets.split(","):
            r = bench(name.strip(), out)
            print(f"{r['target']:>5}  P={r['P']:,}  record={r['policy']}  "
                  f"wall {r['wall_s']:.0f} s (est {r['est_wall_s']:.0f})  "
                  f"peak RSS {r['rss_gb']:.2f} GB (est {r['est_rss_gb']:.2f})  "
                  f"folder {r['folder_mb']:.0f} MB (est {r['est_folder_mb']:.0f})  "
                  f"load {r['load_s']:.2f} s + surface figure {r['figure_s']:.2f} s  "
                  f"load avg {r['load_avg'][0]:.1f}->{r['load_avg'][1]:.1f}  "
                  f"{'meets targets' if r['meets'] else 'MISSES ' + ','.join(r['missed'])}",
                  flush=True)
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
