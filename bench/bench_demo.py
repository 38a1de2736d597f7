"""The README's first command, timed: ``trajviz demo`` in an empty folder until the page
answers and until both demo runs are listed, then the two demo runs' creation end to end.

``serve``: ``python -m trajviz demo`` started in an empty temporary folder (a fresh child
process, ``OMP_NUM_THREADS`` unset, a free port): seconds to the first HTTP 200 of the page,
to the first run in its run picker and to both (asked as the page asks, through the Dash
callback that fills the picker: ``tests/page_http.py``); then a second start in the same
folder, which reuses the runs (both listed at its first answer). Then:

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

Run: ``python bench/bench_demo.py [--skip-old] [--serve-only]``. Prints the machine
(CPUs, load average before each measurement) and every time; ``serve_first_200_s``,
``serve_first_run_s``, ``serve_both_runs_s`` and ``second_start_both_runs_s`` first; the
last lines are ``demo_s: X`` (1) and ``demo_loaded_ratio: Y`` (2 over 1); ``old_s`` and
``demo_speedup`` (old over new) come just before.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMOS = ("sinusoid.toml", "linear2d.toml")
sys.path.insert(0, str(ROOT / "tests"))
from page_http import picker  # noqa: E402 - the page's run picker over HTTP


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
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{mode}: load average before {load}", flush=True)
    out = subprocess.run([sys.executable, __file__, "--child", mode.split(",")[0]], env=_env(),
                         check=True, capture_output=True, text=True).stdout
    print(out, end="")
    return float(out.strip().splitlines()[-1].split()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(what, period: float, limit: float = 900.0):
    """Call ``what()`` every ``period`` s until it returns something true; (value, time)."""
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        value = what()
        if value:
            return value, time.perf_counter()
        time.sleep(period)
    raise TimeoutError(f"nothing after {limit:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _listed(url: str, n: int) -> list[str] | None:
    try:
        runs = picker(url, timeout=30)[0]
    except (urllib.error.URLError, OSError):
        return None
    return runs if len(runs) >= n else None


def start_demo(folder: str) -> dict[str, float]:
    """``trajviz demo`` in ``folder``: seconds to the first 200, the first run and both."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    log = open(Path(folder) / "demo.log", "wb")  # noqa: SIM115 - kept open for the child
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "trajviz", "demo", "--port", str(port)],
                            cwd=folder, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        _, t200 = _until(lambda: proc.poll() is None and _answers(url), 0.05)
        _, t1 = _until(lambda: _listed(url, 1), 0.25)
        runs, t2 = _until(lambda: _listed(url, 2), 0.25)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    assert sorted(r.split("-")[2] for r in runs) == ["linear2d", "sinusoid"], runs
    return {"first_200_s": t200 - start, "first_run_s": t1 - start, "both_runs_s": t2 - start}


def measure_serve() -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"serve: trajviz demo in an empty folder; load average before {load}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        first = start_demo(folder)
        second = start_demo(folder)
    for key, value in first.items():
        print(f"serve_{key}: {value:.1f}")
    print(f"second_start_first_200_s: {second['first_200_s']:.1f}")
    print(f"second_start_both_runs_s: {second['both_runs_s']:.1f}", flush=True)


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
    parser.add_argument("--serve-only", action="store_true",
                        help="time trajviz demo's page only (first HTTP 200, runs listed)")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print(f"demo runs {', '.join(DEMOS)}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    measure_serve()
    if args.serve_only:
        return
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
