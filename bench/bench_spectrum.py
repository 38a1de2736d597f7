"""λ_min + trace at every step of 8 tasks × 33 points (sinusoid MLP 1-40-40-1, P = 1761):
vectorised SLQ over all points vs the same SLQ one point at a time, and two libraries.

The vectorised side is ``curvature.spectra`` on all 264 (task, step) points in one
call (Lanczos from 4 Rademacher probes × 20 steps, vmapped over points and probes:
λ_min, its residual, Hutchinson's trace and its standard error). The baseline calls
the very same function once per point in a Python loop (numbers checked equal).
For the note, on a few points: scipy's ``eigsh(which='SA')`` on a LinearOperator over
our HVP plus a 4-probe Hutchinson trace, and curvlinops (``HessianLinearOperator`` with
eigsh and its ``hutchinson_trace``) when importable (``--curvlinops-path DIR``).

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/bench_spectrum.py [--repeats 3] [--library-points 6]

Last line: ``ratio: X`` = loop time / vectorised time, steady state (target >= 10).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import median_times  # noqa: E402

from trajviz.problem.batches import Rollouts  # noqa: E402
from trajviz.engine.curvature import SpectrumSpec, hvp_fn, rademacher, spectra  # noqa: E402
from trajviz.engine.inner import InnerSpec, inner_loop  # noqa: E402
from trajviz.problem.models import flatten, unflatten  # noqa: E402
from trajviz.problem.optim import adam  # noqa: E402
from trajviz.problem.tasks import make_family  # noqa: E402


def scipy_point(problem, theta: torch.Tensor, batch: dict, probes: np.ndarray) -> tuple[float, float]:
    """λ_min by ARPACK (which='SA') and a Hutchinson trace, at one point, over our HVP."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    spec = problem.model.spec
    hvp = hvp_fn(problem)
    params = unflatten(theta, spec)

    def mv(v):
        t = torch.as_tensor(np.asarray(v).ravel(), dtype=theta.dtype)
        return flatten(hvp(params, batch, unflatten(t, spec)), spec).detach().numpy().astype(np.float64)
    op = LinearOperator((spec.size, spec.size), matvec=mv, dtype=np.float64)
    lam = eigsh(op, k=1, which="SA", tol=1e-3, return_eigenvectors=False)[0]
    return float(lam), float(np.mean([z @ mv(z) for z in probes]))


def curvlinops_point(problem, theta: torch.Tensor, batch: dict) -> tuple[float, float]:
    """The same with curvlinops' HessianLinearOperator (an nn.Module copy of the MLP)."""
    from curvlinops import HessianLinearOperator, hutchinson_trace
    from scipy.sparse.linalg import eigsh
    spec = problem.model.spec
    net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40),
                              torch.nn.ReLU(), torch.nn.Linear(40, 1))
    values = unflatten(theta, spec)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(values[name])
    h = HessianLinearOperator(net, torch.nn.MSELoss(), list(net.parameters()),
                              [(batch["x"], batch["y"])], check_deterministic=False)
    sp = h.to_scipy() if hasattr(h, "to_scipy") else h
    lam = eigsh(sp, k=1, which="SA", tol=1e-3, return_eigenvectors=False)[0]
    return float(lam), float(hutchinson_trace(h, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--library-points", type=int, default=6)
    parser.add_argument("--curvlinops-path", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    family = make_family("sinusoid", {})
    problem = family.problem()
    tasks = family.sample(0, 8, "heldout")
    traj = inner_loop(Rollouts(problem, tasks, InnerSpec(adam(0.01), 32)), problem.model.init(0),
                      record=True).trajectory
    n_tasks, n_points, size = traj.params.shape
    theta = traj.params.reshape(-1, size).detach()
    batch = {k: v.repeat_interleave(n_points, dim=0) for k, v in tasks.support.items()}
    sspec = SpectrumSpec()
    print(f"model {problem.model.name} (P = {size}), {n_tasks} tasks × {n_points} points = "
          f"{theta.shape[0]} points, SLQ {sspec.probes} probes × {sspec.lanczos} Lanczos steps, "
          f"{torch.get_num_threads()} thread(s)")

    def vectorised():
        s = spectra(problem, theta, batch, sspec)
        return torch.stack([s.lambda_min, s.trace])

    def loop():
        out = []
        for i in range(theta.shape[0]):
            s = spectra(problem, theta[i:i + 1], {k: v[i:i + 1] for k, v in batch.items()}, sspec)
            out.append(torch.stack([s.lambda_min, s.trace]))
        return torch.cat(out, 1)

    torch.func.grad(lambda x: (x ** 2).sum())(torch.ones(2))  # torch.func's one-time import
    fast, slow = vectorised(), loop()
    torch.testing.assert_close(fast, slow, rtol=1e-3, atol=1e-3)
    print(f"same numbers: max |vectorised − loop| = {float((fast - slow).abs().max()):.2e} "
          f"(λ_min {float(fast[0].min()):.3g} .. {float(fast[0].max()):.3g})")
    steady = median_times({"vectorised": vectorised}, args.repeats)
    t0 = time.perf_counter()
    loop()
    steady["loop"] = time.perf_counter() - t0
    n = theta.shape[0]
    print(f"steady state: vectorised {steady['vectorised']:.3f} s, loop {steady['loop']:.3f} s; "
          f"per point {1e3 * steady['vectorised'] / n:.2f} vs {1e3 * steady['loop'] / n:.2f} ms")
    m = min(args.library_points, n)
    pick = np.linspace(0, n - 1, m).astype(int)
    probes = rademacher(size, sspec.probes, 0).numpy()
    one = lambda i: {k: v[i] for k, v in batch.items()}  # noqa: E731
    t0 = time.perf_counter()
    got = [scipy_point(problem, theta[i], one(i), probes) for i in pick]
    per = (time.perf_counter() - t0) / m
    gap = max(abs(g[0] - float(fast[0, i])) for g, i in zip(got, pick))
    print(f"scipy eigsh(SA) + Hutchinson, one point at a time: {1e3 * per:.1f} ms a point "
          f"({m} points; max |λ_min − ours| {gap:.2e}); all {n} points ≈ {per * n:.2f} s")
    if args.curvlinops_path:
        sys.path.insert(0, args.curvlinops_path)
    try:
        t0 = time.perf_counter()
        got = [curvlinops_point(problem, theta[i], one(i)) for i in pick]
        per = (time.perf_counter() - t0) / m
        gap = max(abs(g[0] - float(fast[0, i])) for g, i in zip(got, pick))
        print(f"curvlinops HessianLinearOperator + eigsh(SA) + hutchinson_trace: {1e3 * per:.1f} "
              f"ms a point (max |λ_min − ours| {gap:.2e}); all {n} points ≈ {per * n:.2f} s")
    except ImportError as err:
        print(f"curvlinops not importable ({err}); pass --curvlinops-path")
    print(f"ratio: {steady['loop'] / steady['vectorised']:.1f}")


if __name__ == "__main__":
    main()
