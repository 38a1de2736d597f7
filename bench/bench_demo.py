"""The README's first command, timed: create the two demo runs end to end.

Creates trajviz/demos/sinusoid.toml and linear2d.toml (config → meta-training
of six learners → held-out paths → slices → surfaces → run written to a
temporary runs folder), each measurement in a fresh child process with
``OMP_NUM_THREADS`` unset, as a new user would run it:

1. ``new``: this code's defaults (thread policy of trajviz/threads.py, fused
   steps where they apply), on the machine as it is;
2. ``new, loaded``: the same while two CPU-bound processes of this script's
   own run beside it (busy Python loops, one per core of a 2-core machine);
3. ``old``: the code before issue 10, as far as it can be run from here:
   torch's default thread count (one per core) and the plain (unfused)
   steps (``trajviz.kernels.fused.plain_only``), on the machine as it is.

Run: ``python bench/bench_demo.py [--skip-old]``. Prints the machine
(CPUs, load average before each measurement) and every time; the last lines
are ``demo_s: X`` (1) and ``demo_loaded_ratio: Y`` (2 over 1); ``old_s`` and
``demo_speedup`` (old over new) come just before.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ("sinusoid.toml", "linear2d.toml")


def child(mode: str) -> None:
    """Create both demo runs in this process and print the seconds it took."""
    import torch

    from trajviz.kernels import fused
    from trajviz.spec.config import load_toml
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.pipeline.heldout import config_threads
    from trajviz.store import new_run_id, write_run

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as runs:
        for name in DEMOS:
            config = load_toml(ROOT / "trajviz" / "demos" / name)
            if mode == "old":
                threads = os.cpu_count() or 1
                with fused.plain_only():
                    run = run_experiment(config, run_id=new_run_id(config.family), threads=threads)
            else:
                threads = config_threads(config)
                run = run_experiment(config, run_id=new_run_id(config.family))
            write_run(run, Path(runs))
            times = ", ".join(f"{k} {v:.1f}" for k, v in run.info["timings"].items())
            print(f"  {name}: {threads} torch thread(s), {'plain' if mode == 'old' else 'default'} "
                  f"steps; seconds: {times}", flush=True)
    print(f"seconds: {time.perf_counter() - start:.2f} (torch threads after: {torch.get_num_threads()})")


def measure(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{mode}: load average before {load}", flush=True)
    out = subprocess.run([sys.executable, __file__, "--child", mode.split(",")[0]], env=env,
                         check=True, capture_output=True, text=True).stdout
    print(out, end="")
    return float(out.strip().splitlines()[-1].split()[1])


def _hog(parent: int) -> None:
    """Burn one core until stopped, or until the parent is gone."""
    n = 0
    while True:
        n += 1
        if n % 10_000_000 == 0 and os.getppid() != parent:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["new", "old"], help=argparse.SUPPRESS)
    parser.add_argument("--skip-old", action="store_true", help="do not time the old defaults")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"demo runs {', '.join(DEMOS)}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    t_new = measure("new")
    hogs = [mp.Process(target=_hog, args=(os.getpid(),), daemon=True) for _ in range(2)]
    for h in hogs:
        h.start()
    try:
        t_loaded = measure("new, loaded (2 CPU-bound processes beside it)")
    finally:
        for h in hogs:
            h.terminate()
            h.join()
    t_old = None if args.skip_old else measure("old")
    if t_old is not None:
        print(f"old_s: {t_old:.1f}")
        print(f"demo_speedup: {t_old / t_new:.2f}")
    print(f"demo_s: {t_new:.1f}")
    print(f"demo_loaded_ratio: {t_loaded / t_new:.2f}")


if __name__ == "__main__":
    main()
