"""Sharpness at every step of 8 tasks × 33 points (sinusoid MLP 1-40-40-1): vmapped vs a loop.

Both sides run the *same* power iteration (``hessian.point_sharpness``, the
shifted second phase only where the dominant eigenvalue is negative): the
vmapped side does all 264 (task, step) points in one call
(``hessian.top_eigenvalues``), the baseline calls it once per point in a
Python loop. The numbers are checked equal first. One process; first-call
times (which include torch.func's one-time import of torch._dynamo on the
very first call, timed on its own) are printed apart from steady-state medians.

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_sharpness.py [--iters 20] [--repeats 3]

Last line: ``ratio: X`` = loop time / vmapped time, steady state (target ≥ 10).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_times  # noqa: E402

from trajviz.problem.batches import Rollouts  # noqa: E402
from trajviz.engine.curvature import point_sharpness, top_eigenvalues  # noqa: E402
from trajviz.engine.inner import InnerSpec, inner_loop  # noqa: E402
from trajviz.problem.models import unflatten  # noqa: E402
from trajviz.problem.optim import adam  # noqa: E402
from trajviz.problem.tasks import make_family  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="power iterations per point")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state repeats (vmapped)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    family = make_family("sinusoid", {})
    problem = family.problem()
    spec_p = problem.model.spec
    tasks = family.sample(0, 8, "heldout")
    traj = inner_loop(Rollouts(problem, tasks, InnerSpec(adam(0.01), 32)), problem.model.init(0),
                      record=True).trajectory
    n_tasks, n_points, size = traj.params.shape
    theta = traj.params.reshape(-1, size)  # [264, P], task-major
    params = {k: v.contiguous() for k, v in unflatten(theta, spec_p).items()}
    batch = {k: v.repeat_interleave(n_points, dim=0) for k, v in tasks.support.items()}
    v0 = unflatten(torch.randn(size, generator=torch.Generator().manual_seed(0)), spec_p)
    sharp = point_sharpness(problem, args.iters)
    print(f"model {problem.model.name} (P = {size}), {n_tasks} tasks × {n_points} points = "
          f"{theta.shape[0]} points, {args.iters} power iterations, {torch.get_num_threads()} thread(s)")

    def vmapped() -> torch.Tensor:
        return top_eigenvalues(problem, params, batch, v0, None, args.iters)

    def loop() -> torch.Tensor:
        out = []
        for i in range(theta.shape[0]):
            p = {k: v[i] for k, v in params.items()}
            b = {k: v[i] for k, v in batch.items()}
            mu = sharp(p, b, v0, None)
            out.append(sharp(p, b, v0, None, -mu) if mu < 0 else mu)
        return torch.stack(out)

    t0 = time.perf_counter()
    torch.func.grad(lambda x: (x ** 2).sum())(torch.ones(2))
    print(f"one-time torch.func import (torch._dynamo): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    fast = vmapped()
    first_vmapped = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = loop()
    first_loop = time.perf_counter() - t0
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-4)
    print(f"same numbers: max |vmapped − loop| = {float((fast - slow).abs().max()):.2e} "
          f"(sharpness {float(fast.min()):.3g} .. {float(fast.max()):.3g})")
    print(f"first call: vmapped {first_vmapped:.3f} s, loop {first_loop:.3f} s")
    steady = median_times({"vmapped": vmapped}, args.repeats)
    t0 = time.perf_counter()
    loop()
    steady["loop"] = time.perf_counter() - t0
    print(f"steady state: vmapped {steady['vmapped']:.3f} s (median of {args.repeats}), "
          f"loop {steady['loop']:.3f} s (one call)")
    print(f"per point: vmapped {1e3 * steady['vmapped'] / theta.shape[0]:.2f} ms, "
          f"loop {1e3 * steady['loop'] / theta.shape[0]:.2f} ms")
    print(f"ratio: {steady['loop'] / steady['vmapped']:.1f}")


if __name__ == "__main__":
    main()
