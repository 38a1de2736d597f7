"""Birth map throughput: the vectorised map against a per-initialisation loop.

41×41 initialisations on a random plane through the sinusoid MLP 1-40-40-1's
initialisation, × 8 held-out tasks × 32 inner steps. Inner optimiser: Adam,
lr 0.01, full batch by default (the sinusoid demo's inner loop; issue 9 does
not name one); ``--optimizer sgd|momentum`` for the others (lr 0.01).

- The vectorised side is ``compute_birth_map`` as the CLI runs it: the grid in
  chunks through the executor, in the native kernel (trajviz/birth_native.c,
  every rollout whole in L1, the update applied straight from the gradient's
  registers) where a C compiler exists, statistics folded on the fly.
- The baseline is the engine's exact inner loop and statistics
  (``rollout_statistics`` on the inner loop with the torch step: the numbers a run records) one
  initialisation at a time (its 8 tasks together), on an evenly spaced
  subsample of the grid, its time scaled to the whole grid (it is linear in
  the number of points).

Both run in this process, each at its best thread count. The map runs as ``trajviz
birthmap`` runs it (``birthmap.birth_map``): under the thread policy, torch at 1 thread
for this small model and the kernel's rollouts split over the idle cores
(``threads.kernel_threads``), or at ``--threads N`` for both. The loop takes the faster
of 1 thread and all cores, probed on 5 points first (printed): on an idle 2-core machine
2 threads were a little faster (20.8 against 25.1 ms per θ0), with other work running
their barriers made it 8-25x slower (258-830 against 31.5 ms, load 2.8). The map at 1
thread is timed too (``ratio_1_thread``). Before anything is timed, the subsample's means are checked
against the map's (1e-2 relative: float32 rounding amplified along 32 Adam
steps) and against a per-θ0 loop of the kernel itself (1e-5). Also printed:
the map on the exact vectorised path, and the per-θ0 native loop
(``ratio_same_kernel``: the gain of vectorising alone).

Run (from bench/): ``python bench_birthmap.py [--optimizer adam|sgd|momentum] [--grid 41]
[--sample 41] [--repeats 3] [--threads N] [--sweep] [--kernels plain|torch|native|auto]``. Prints first-call and
steady-state times, wall and this process's CPU time (the machine is shared: CPU time
is the steadier of the two); the last line is ``ratio: X`` (per-initialisation loop
wall time for the whole grid / vectorised wall time, medians).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from timing import median_times  # bench/timing.py (scripts run from bench/)

from trajviz.spec.config import BirthmapConfig
from trajviz.engine.work import Work
from trajviz.problem.batches import Rollouts
from trajviz.kernels import choose_birth, kernels, recording
from trajviz.pipeline.birthmap import BIRTH_STATISTICS, compute_birth_map, rollout_statistics
from trajviz.engine.inner import InnerSpec
from trajviz.problem.optim import make_optimizer
from trajviz.data.run import Slice, Surface, View
from trajviz.problem.tasks import make_family
from trajviz.kernels.threads import kernel_threads, thread_scope

STEPS, TASKS = 32, 8


def setup(optimizer: str = "adam"):
    family = make_family("sinusoid", {})
    problem = family.problem()
    tasks = family.sample(0, TASKS, "heldout").to("cpu", torch.float32)
    spec = InnerSpec(make_optimizer(optimizer, 0.01), STEPS)
    P = problem.model.spec.size
    origin = torch.cat([v.reshape(-1) for v in problem.model.init(0).values()]).numpy()
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(P, 2)))
    slc = Slice("random", origin.astype(np.float64), q.T.copy(), np.full(2, np.nan), (-1.0, 1.0, -1.0, 1.0))
    empty = np.zeros(0, np.float32)
    view = View("random", slc, Surface(empty, empty, np.zeros((0, 0, 0)), np.zeros((0, 0)), empty),
                {}, {}, {}, {}, {})
    return problem, tasks, spec, view


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", type=int, default=41)
    ap.add_argument("--sample", type=int, default=41, help="grid points the loop baseline runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for the map, torch and kernel (default: the policy, as "
                         "`trajviz birthmap`: torch 1, the kernel the idle cores)")
    ap.add_argument("--sweep", action="store_true", help="time chunk sizes first")
    ap.add_argument("--kernels", default="auto", choices=["auto", "plain", "torch", "native"],
                    help="the kernels request for both sides (default auto)")
    ap.add_argument("--optimizer", default="adam", choices=["adam", "sgd", "momentum"],
                    help="inner optimiser, lr 0.01 (default adam, as the sinusoid demo)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the loops' (see the docstring); the map sets its own
    problem, tasks, spec, view = setup(args.optimizer)
    with kernels(args.kernels):
        run(args, problem, tasks, spec, view)


def run(args, problem, tasks, spec, view) -> None:
    P, total = problem.model.spec.size, args.grid ** 2
    with thread_scope(args.threads or 1, policy=args.threads is None):
        map_threads = ("the policy's: torch 1, the kernel " if args.threads is None else "") + \
            f"{kernel_threads()}"
    print(f"sinusoid MLP 1-40-40-1 (P = {P}), {args.grid}x{args.grid} θ0s x {TASKS} tasks x {STEPS} "
          f"steps of {args.optimizer}; threads: the map {map_threads} (at the start)")
    grid_backend = choose_birth(problem, tasks, spec).name
    kernel = grid_backend == "native"
    with recording() as ran:
        rollout_statistics(Rollouts(problem, tasks, InnerSpec(spec.optimizer, 1), 0),
                           torch.zeros(1, P))
    print(f"backend of the map's grid: {grid_backend} (kernels {args.kernels}); "
          f"of the loop baseline: inner loop, step on {'+'.join(sorted(ran['step']))}")
    if args.sweep:
        for chunk in (8, 16, 32, 48, 64, 128, 256):
            t, c = time.perf_counter(), time.process_time()
            compute_birth_map(Rollouts(problem, tasks, spec, 0), view, {},
                              BirthmapConfig(grid=21, tasks=len(tasks)), work=Work(chunk=chunk))
            print(f"  chunk {chunk:>4} grid points: {time.perf_counter() - t:.2f} s wall, "
                  f"{time.process_time() - c:.2f} s CPU for 21x21")

    def at(threads: int | None, fn):
        """fn at ``threads`` threads (torch and kernel), or None: under the thread policy."""
        def call():
            with thread_scope(threads or 1, policy=threads is None):
                return fn()
        return call

    def the_map():
        return compute_birth_map(Rollouts(problem, tasks, spec, 0), view, {},
                                 BirthmapConfig(grid=args.grid, tasks=len(tasks)))

    n = args.threads  # None: the policy

    t = time.perf_counter()
    bm = at(n, the_map)()
    first = time.perf_counter() - t
    # The baseline: the same inner loop and statistics, one θ0 at a time.
    pick = np.unique(np.linspace(0, total - 1, args.sample).round().astype(int))
    slc = view.slice
    a, b = np.meshgrid(bm.alpha, bm.beta)
    coords = np.stack([a.ravel(), b.ravel()], axis=1)[pick]
    thetas = torch.as_tensor(slc.origin + coords @ slc.basis, dtype=torch.float32)

    def loop(native: bool = False, count: int | None = None):
        backend = "native" if native else "plain"
        return [rollout_statistics(Rollouts(problem, tasks, spec, 0), thetas[i:i + 1],
                                   backend=backend)
                for i in range(count or len(pick))]

    t = time.perf_counter()
    per_point = at(1, loop)()
    loop_first = time.perf_counter() - t
    # the loop's best thread count here and now: 1 or all cores, on 5 points, best of 2 each
    few, cores = 5, os.cpu_count() or 1
    probe = {k: min(_timed(at(k, lambda: loop(count=few))) for _ in range(2)) for k in {1, cores}}
    loop_threads = min(probe, key=probe.get)
    print("the loop per θ0: " + ", ".join(f"{v / few * 1e3:.1f} ms at {k} thread(s)"
                                          for k, v in sorted(probe.items()))
          + f"; the baseline takes its best, {loop_threads}")

    def worst_difference(points) -> tuple[float, bool]:
        worst = 0.0
        for stat in ("auc", "final_loss", "length", "param_length"):
            got = np.stack([p[stat][0].numpy() for p in points])  # [n, T]
            # the map keeps means; recompute the subsample's means and compare
            want = bm.mean[stat].reshape(-1)[pick]
            rel = np.abs(got.mean(axis=1) - want) / np.maximum(np.abs(want), 1e-12)
            worst = max(worst, float(rel.max()))
        same = np.array_equal(np.stack([p["steps_to_eps"][0].numpy() for p in points]).mean(axis=1),
                              bm.mean["steps_to_eps"].reshape(-1)[pick])
        return worst, same

    worst, steps_same = worst_difference(per_point)
    print(f"check against the exact loop: {len(pick)} points, statistics "
          f"{', '.join(BIRTH_STATISTICS)}: max relative difference of the means {worst:.2e}, "
          f"steps_to_eps identical: {steps_same}")
    fns = {"vectorised": at(n, the_map), "loop": at(loop_threads, loop)}
    if n != 1:
        fns["vectorised, 1 thread"] = at(1, the_map)
    if kernel:
        same_kernel, _ = worst_difference(at(1, lambda: loop(native=True))())
        print(f"check against a per-θ0 loop of the same native kernel: max relative difference "
              f"{same_kernel:.1e} (each rollout runs alone in the kernel; this is the means' "
              "rounding)")
        if not same_kernel < 1e-5:
            raise SystemExit("the vectorised native map and the native loop disagree")
        # float32 rounding, amplified along 32 adaptive steps (Adam divides by √v)
        if not worst < 1e-2:
            raise SystemExit("the native map and the exact loop disagree beyond rounding")
        fns["native loop"] = at(1, lambda: loop(native=True))
        fns["vectorised exact"] = at(1, lambda: exact_map(problem, tasks, spec, view, args.grid))
    elif not worst < 1e-4:
        raise SystemExit("the vectorised map and the loop disagree")
    cpu = {}

    def cpu_timed(name):
        def call():
            c = time.process_time()
            fns[name]()
            cpu.setdefault(name, []).append(time.process_time() - c)
        return call
    times = median_times({name: cpu_timed(name) for name in fns}, args.repeats)
    cpu = {name: float(np.median(ts[1:])) for name, ts in cpu.items()}  # without the warm-up
    scale = total / len(pick)
    loop_total = times["loop"] * scale
    print(f"first call: vectorised {first:.2f} s; loop {loop_first:.2f} s for {len(pick)} points "
          f"(x{scale:.1f} = {loop_first * scale:.1f} s for the grid)")
    print(f"steady state (median of {args.repeats}): vectorised {times['vectorised']:.2f} s "
          f"({total * TASKS / times['vectorised']:.0f} rollouts/s); loop {times['loop']:.2f} s for "
          f"{len(pick)} points, scaled x{scale:.1f} to {loop_total:.1f} s for the grid")
    one = times.get("vectorised, 1 thread", times["vectorised"])
    if n != 1:
        print(f"steady state: the map at 1 thread {one:.2f} s (ratio_1_thread: {loop_total / one:.1f})")
    if kernel:
        print(f"steady state, 1 thread: the map on the exact path (inner loop, torch step) "
              f"{times['vectorised exact']:.2f} s (the kernel's gain: {times['vectorised exact'] / one:.1f}x); "
              f"a per-θ0 loop of the native kernel scaled to the grid {times['native loop'] * scale:.2f} s "
              f"(ratio_same_kernel: {times['native loop'] * scale / one:.1f})")
    print(f"steady state, CPU time of this process: vectorised {cpu['vectorised']:.2f} s; loop "
          f"{cpu['loop'] * scale:.1f} s for the grid; cpu ratio: {cpu['loop'] * scale / cpu['vectorised']:.1f}")
    print(f"ratio: {loop_total / times['vectorised']:.1f}")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def exact_map(problem, tasks, spec, view, grid):
    """The map without the native kernel: the inner loop (torch step) on the grid too."""
    with kernels("torch"):
        return compute_birth_map(Rollouts(problem, tasks, spec, 0), view, {},
                                 BirthmapConfig(grid=grid, tasks=len(tasks)))


if __name__ == "__main__":
    main()
