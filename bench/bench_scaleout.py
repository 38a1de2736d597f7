"""Scale-out: a grid job on a 2-worker Dask LocalCluster against one in-process thread.

The job (``--job``): a birth map (default) or a loss surface, on a random
orthonormal plane through an initialisation of the sinusoid MLP 1-40-40-1,
for square grids of increasing size:

- birthmap: ``compute_birth_map`` as the CLI runs it, every grid point run as
  θ0 through 32 Adam steps (lr 0.01) on 8 held-out tasks; its chunks are
  ``birthmap.default_chunk`` grid points;
- surface: ``evaluate_surface`` over 32 tasks × 100 support points; its
  chunks are ``choose_chunk`` grid points.

Each grid is evaluated

(a) in this process, one torch thread (``torch.set_num_threads(1)``);
(b) through ``DaskExecutor.local(2)``: two worker processes of one thread
    each on 127.0.0.1, started once before timing (its start-up time is
    printed, not counted), warmed by one small job.

Both use the same chunks and give the same numbers (checked: bitwise here,
both run the same chunk function with one thread), and the same glibc
malloc settings (``executor_dask.MALLOC_ENV``: the script restarts itself
with them). (b) pays, per grid, the scatter of the context (task data, the
plane: tens of kB) and a scheduler round trip per batch of chunks. Times
are medians of ``--repeats`` interleaved runs. ``break_even`` is the
smallest grid (points) at which (b) beats (a); the last line is
``speedup_2_workers: X``, (a)'s wall time over (b)'s on the largest grid.
On a 2-core machine the ceiling is 2, less the client and scheduler's share.

``uptime`` is printed first and last: on a shared machine whose kernel
groups CPU time by session (autogroup), a session's processes share one
session's slice, so extra worker processes win little wall time while
others keep the cores busy. Column ``cpu-bound`` is the speedup two free
cores would give, from CPU times: (a)'s CPU over the larger of the busier
worker's CPU and half the CPU of all three processes.

Run: ``python bench/bench_scaleout.py [--job birthmap|surface] [--sizes 11,21,31,41] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import torch

from trajviz.spec.config import BirthmapConfig
from trajviz.engine.work import Work
from trajviz.problem.batches import Rollouts
from trajviz.engine.context import ProblemRef
from trajviz.problem.models import flatten
from trajviz.data.run import Slice, Surface, View
from trajviz.problem.tasks import make_family


def _cpu(pids: list[int]) -> list[float]:
    """User + system CPU seconds of each process so far."""
    import psutil
    return [sum(psutil.Process(p).cpu_times()[:2]) for p in pids]


def make_job(kind: str):
    """(description, chunk size, job(n, executor) -> an array to compare)."""
    from trajviz.pipeline.birthmap import compute_birth_map, default_chunk
    from trajviz.engine.executors import IN_PROCESS
    from trajviz.engine.inner import InnerSpec
    from trajviz.problem.optim import make_optimizer
    from trajviz.engine.surface import choose_chunk, evaluate_surface

    options = {"hidden": (40, 40)} if kind == "birthmap" else {"hidden": (40, 40), "shots": 100}
    ref = ProblemRef.of("sinusoid", options)
    n_tasks = 8 if kind == "birthmap" else 32
    problem, tasks = ref.problem(), make_family("sinusoid", options).sample(0, n_tasks, "heldout")
    spec = problem.model.spec
    origin = flatten(problem.model.init(0), spec).double().numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T
    slc = Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 1.0, -1.0, 1.0))
    if kind == "surface":
        chunk = choose_chunk(problem, tasks, spec.size)
        return (f"surface of the sinusoid MLP 1-40-40-1 (P = {spec.size}), {n_tasks} tasks x 100 "
                f"points, float32", chunk,
                lambda n, ex: evaluate_surface(problem, slc, tasks, (n, n),
                                               work=Work(ex, ref=ref, chunk=chunk)).loss)
    inner = InnerSpec(make_optimizer("adam", 0.01), 32)
    empty = np.zeros(0, np.float32)
    view = View("random", slc, Surface(empty, empty, np.zeros((0, 0, 0)), np.zeros((0, 0)), empty),
                {}, {}, {}, {}, {})
    chunk = default_chunk(spec.size, n_tasks)
    return (f"birth map of the sinusoid MLP 1-40-40-1 (P = {spec.size}), {n_tasks} tasks x 32 Adam "
            f"steps, float32", chunk,
            lambda n, ex: compute_birth_map(Rollouts(problem, tasks, inner, 0), view, {},
                                            BirthmapConfig(grid=n, tasks=len(tasks)),
                                            work=Work(ex or IN_PROCESS, ref=ref)).mean["auc"])


def main() -> None:
    from trajviz.engine.executors.dask_cluster import MALLOC_ENV

    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        # the baseline gets the malloc settings the workers get, so that the ratio is the
        # parallelism alone (they also make the in-process path cheaper; see MALLOC_ENV)
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="birthmap", choices=["birthmap", "surface"])
    parser.add_argument("--sizes", default="11,21,31,41", help="grid points per axis")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    torch.set_num_threads(1)

    from trajviz.engine.executors.dask_cluster import DaskExecutor

    what, chunk, job = make_job(args.job)
    print(f"job: {what}, {chunk} grid points per chunk")
    started = time.perf_counter()
    with DaskExecutor.local(2, threads_per_worker=1) as dask:
        print(f"local cluster of 2 one-thread workers started in "
              f"{time.perf_counter() - started:.1f} s (not counted below)")
        job(5, dask)
        pids = list(dask.client.run(os.getpid).values())

        def timed(n: int, executor) -> tuple[float, float, list[float], np.ndarray]:
            """Wall s, this process's CPU s, each worker's CPU s and the result of one job."""
            before = _cpu(pids) + [time.process_time()]
            start = time.perf_counter()
            out = job(n, executor)
            wall = time.perf_counter() - start
            used = [b - a for a, b in zip(before, _cpu(pids) + [time.process_time()])]
            return wall, used[-1], used[:-1], out

        print(f"{'grid':>9} {'points':>7} {'chunks':>6} {'1 thread s':>11} {'2 workers s':>12} "
              f"{'speedup':>8} {'cpu-bound':>9}")
        break_even, speedup = None, float("nan")
        for n in sizes:
            runs: dict[str, list] = {"one": [], "two": []}
            for _ in range(args.repeats):  # interleaved: load from others falls on both alike
                runs["one"].append(timed(n, None))
                runs["two"].append(timed(n, dask))
            same = all(np.array_equal(a[3], b[3], equal_nan=True)
                       for a, b in zip(runs["one"], runs["two"]))
            one = float(np.median([r[0] for r in runs["one"]]))
            two = float(np.median([r[0] for r in runs["two"]]))
            speedup = one / two
            # with two free cores: the busier worker, or all the CPU used shared over two cores
            one_cpu = np.median([r[1] for r in runs["one"]])
            two_cpu = np.median([max(max(r[2]), (sum(r[2]) + r[1]) / 2) for r in runs["two"]])
            if break_even is None and speedup > 1:
                break_even = n * n
            print(f"{n:>4}x{n:<4} {n * n:>7} {-(-n * n // chunk):>6} {one:>11.3f} {two:>12.3f} "
                  f"{speedup:>8.2f} {one_cpu / two_cpu:>9.2f}" + ("" if same else "  MISMATCH"),
                  flush=True)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print(f"cores: {len(os.sched_getaffinity(0))}")
    print(f"break_even: {break_even if break_even else 'not reached'} grid points")
    print(f"speedup_2_workers: {speedup:.2f}")


if __name__ == "__main__":
    main()
