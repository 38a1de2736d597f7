"""Scale-out: a loss surface on a 2-worker Dask LocalCluster against one in-process thread.

The job: the sinusoid MLP 1-40-40-1, ``--tasks`` tasks of ``--shots``
support points each, on a random orthonormal plane through an
initialisation; square grids of increasing size. Each grid is evaluated

(a) in this process, one torch thread (``torch.set_num_threads(1)``);
(b) through ``DaskExecutor.local(2)``: two worker processes of one thread
    each on 127.0.0.1, started once before timing (its start-up time is
    printed, not counted), warmed by one small job.

Both use the same chunk size (``choose_chunk``) and give the same numbers
(checked: bitwise in float32 here, since both run the same chunk function
with one thread). (b) pays, per grid, the scatter of the context (the task
data and the plane: tens of kB) and a scheduler round-trip per chunk.
Times are medians of ``--repeats`` interleaved runs. ``break_even`` is the
smallest grid (points) at which (b) beats (a); the last line is
``speedup_2_workers: X``, (a)'s time over (b)'s on the largest grid. On a
2-core machine the ceiling is 2, less the client and scheduler's share of
the cores. ``uptime`` is printed first: the machine may be shared.

Run: ``python bench/bench_scaleout.py [--sizes 11,21,41,61,81] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time

import numpy as np
import torch
from timing import median_times  # bench/timing.py (scripts run from bench/)

from trajviz.context import ProblemRef
from trajviz.models import flatten
from trajviz.slices import Slice
from trajviz.surface import choose_chunk, evaluate_surface
from trajviz.tasks import make_family

HIDDEN = (40, 40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="11,21,41,61,81", help="grid points per axis")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    torch.set_num_threads(1)

    from trajviz.executor_dask import DaskExecutor

    options = {"hidden": HIDDEN, "shots": args.shots}
    ref = ProblemRef.of("sinusoid", options)
    problem, tasks = ref.problem(), make_family("sinusoid", options).sample(0, args.tasks)
    spec = problem.model.spec
    origin = flatten(problem.model.init(0), spec).double().numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T
    slc = Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 1.0, -1.0, 1.0))
    chunk = choose_chunk(problem, tasks, spec.size)
    print(f"job: sinusoid MLP 1-40-40-1 (P = {spec.size}), {args.tasks} tasks x {args.shots} "
          f"points, float32, {chunk} grid points per chunk")

    started = time.perf_counter()
    with DaskExecutor.local(2, threads_per_worker=1) as dask:
        print(f"local cluster of 2 one-thread workers started in "
              f"{time.perf_counter() - started:.1f} s (not counted below)")
        evaluate_surface(problem, slc, tasks, (5, 5), chunk=chunk, executor=dask, ref=ref)

        def surface(n: int, executor=None):
            return evaluate_surface(problem, slc, tasks, (n, n), chunk=chunk, executor=executor,
                                    ref=ref)

        print(f"{'grid':>9} {'points':>7} {'chunks':>6} {'1 thread s':>11} {'2 workers s':>12} "
              f"{'speedup':>8}")
        break_even, speedup = None, float("nan")
        for n in sizes:
            same = np.array_equal(surface(n).loss, surface(n, dask).loss)
            times = median_times({"one": lambda: surface(n),
                                  "two": lambda: surface(n, dask)}, args.repeats)
            speedup = times["one"] / times["two"]
            if break_even is None and speedup > 1:
                break_even = n * n
            print(f"{n:>4}x{n:<4} {n * n:>7} {-(-n * n // chunk):>6} {times['one']:>11.3f} "
                  f"{times['two']:>12.3f} {speedup:>8.2f}" + ("" if same else "  MISMATCH"))
    print(f"cores: {len(os.sched_getaffinity(0))}")
    print(f"break_even: {break_even if break_even else 'not reached'} grid points")
    print(f"speedup_2_workers: {speedup:.2f}")


if __name__ == "__main__":
    main()
