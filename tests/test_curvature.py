"""λ_min, trace, spectral density and the straight line, against closed forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from trajviz.engine.curvature import SpectrumSpec, exact_spectra, rademacher, slq_spectra, spectra
from trajviz.engine.curvature_path import density_steps
from trajviz.engine.diagnostics import DiagnosticsSpec, path_diagnostics
from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.straight import straight_losses
from trajviz.problem import models
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten
from trajviz.problem.optim import sgd
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.problem.tasks.quadratic import Quadratic, bowl_loss
from trajviz.problem.tasks.sinusoid import Sinusoid

F64 = torch.float64
SLQ = SpectrumSpec(exact_max=0, lanczos=8, probes=3)  # forces the estimate on small P


def _tasks(support: dict) -> TaskSet:
    n = next(iter(support.values())).shape[0]
    return TaskSet(support, support, torch.arange(n), {}, minibatchable=False)


def _bowls(dim: int = 5, n: int = 3):
    family = Quadratic(dim=dim, condition=30.0)
    return family.problem(), family.sample(0, n, "heldout").to("cpu", F64)


def test_rotated_bowls_exact_spectrum_trace_and_lambda_min():
    problem, tasks = _bowls()
    theta = torch.randn(3, 5, dtype=F64, generator=torch.Generator().manual_seed(0))
    a = tasks.support["A"].numpy()
    eig = np.linalg.eigvalsh(a)
    s = spectra(problem, theta, tasks.support)
    assert s.exact
    np.testing.assert_allclose(s.lambda_min.numpy(), eig[:, 0], rtol=1e-12)
    np.testing.assert_allclose(s.trace.numpy(), np.trace(a, axis1=1, axis2=2), rtol=1e-12)
    np.testing.assert_allclose(s.nodes.numpy(), eig, rtol=1e-12)
    np.testing.assert_allclose(s.weights.numpy(), 0.2)
    assert (s.lambda_min_err == 0).all() and (s.trace_err == 0).all()
    # SLQ with Lanczos steps >= dim closes the Krylov space: λ_min exact, nodes are eigenvalues
    e = slq_spectra(problem, theta, tasks.support, SLQ)
    np.testing.assert_allclose(e.lambda_min.numpy(), eig[:, 0], rtol=1e-10)
    assert (e.lambda_min_err < 1e-8).all()
    live = e.weights.numpy() > 1e-12
    for i in range(3):
        assert np.abs(e.nodes.numpy()[i][live[i]][:, None] - eig[i][None]).min(1).max() < 1e-8
    np.testing.assert_allclose(e.weights.sum(-1).numpy(), 1.0, rtol=1e-12)


def test_diagonal_bowl_slq_is_exact_trace_and_density():
    """Rademacher probes give zᵀDz = tr D exactly and weight 1/P on each eigenvalue of a
    diagonal D: Hutchinson's estimate has zero spread, the SLQ density is exact."""
    diag = torch.tensor([-2.0, 0.5, 1.0, 3.0, 7.0], dtype=F64)
    problem = Problem(models.point(5), bowl_loss)
    support = {"A": torch.diag(diag)[None].repeat(2, 1, 1), "c": torch.zeros(2, 5, dtype=F64)}
    theta = torch.ones(2, 5, dtype=F64)
    s = slq_spectra(problem, theta, support, SLQ)
    np.testing.assert_allclose(s.trace.numpy(), 9.5, rtol=1e-12)
    np.testing.assert_allclose(s.trace_err.numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(s.lambda_min.numpy(), -2.0, rtol=1e-12)
    for i in range(2):
        live = s.weights[i] > 1e-12
        nodes, weights = s.nodes[i][live].numpy(), s.weights[i][live].numpy()
        for lam in diag.numpy():
            np.testing.assert_allclose(weights[np.abs(nodes - lam) < 1e-8].sum(), 0.2, rtol=1e-10)


def _saddle_problem() -> Problem:
    """f(x, y) = x⁴/4 − x²/2 + s·(y − x²)²: a saddle at 0, minima at x = ±1, y = 1."""
    def loss(params, batch):
        x, y = params["theta"][0], params["theta"][1]
        return x ** 4 / 4 - x ** 2 / 2 + batch["s"][0] * (y - x ** 2) ** 2
    return Problem(models.point(2), loss)


def _saddle_hessian(x: np.ndarray, y: np.ndarray, s: float) -> np.ndarray:
    fxx = 3 * x ** 2 - 1 - 4 * s * (y - x ** 2) + 8 * s * x ** 2
    fxy = -4 * s * x
    fyy = 2 * s * np.ones_like(x)
    return np.stack([np.stack([fxx, fxy], -1), np.stack([fxy, fyy], -1)], -2)


@pytest.mark.parametrize("sspec", [SpectrumSpec(), SpectrumSpec(exact_max=0, lanczos=4, probes=2)],
                         ids=["exact", "slq"])
def test_two_parameter_saddle_along_gradient_descent(sspec):
    problem = _saddle_problem()
    s = 0.5
    tasks = _tasks({"s": torch.full((2, 1), s, dtype=F64)})
    theta0 = {"theta": torch.tensor([0.05, 0.0], dtype=F64)}
    spec = InnerSpec(sgd(0.2), 150)
    traj = inner_loop(Rollouts(problem, tasks, spec), theta0, record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj,
                            DiagnosticsSpec(spectrum=sspec))
    p = traj.params.numpy()
    h = _saddle_hessian(p[..., 0], p[..., 1], s)
    eig = np.linalg.eigvalsh(h)
    np.testing.assert_allclose(diag.values["lambda_min"], eig[..., 0], rtol=1e-9, atol=1e-12)
    if sspec.exact(2):
        np.testing.assert_allclose(diag.values["hessian_trace"], eig.sum(-1), rtol=1e-9)
    else:  # Hutchinson: the mean of zᵀHz over the run's seeded probes, by hand
        z = rademacher(2, sspec.probes, 0).numpy()
        np.testing.assert_allclose(diag.values["hessian_trace"],
                                   np.einsum("vi,rkij,vj->rkv", z, h, z).mean(-1), rtol=1e-9)
    assert (diag.values["lambda_min"][:, 0] < -0.9).all()  # negative curvature early (the saddle)
    # positive at the minimum (1, 1): H = [[2 + 8s, −4s], [−4s, 2s]], λ_min = (7 − √41)/2 at s = ½
    np.testing.assert_allclose(diag.values["lambda_min"][:, -1], (7 - 41 ** 0.5) / 2, rtol=1e-3)


def _mlp(seed: int = 1):
    family = Sinusoid(hidden=(8, 8))  # P = 97
    problem = family.problem()
    tasks = family.sample(0, 3, "heldout").to("cpu", F64)
    theta = flatten(problem.model.init(0, "cpu", F64), problem.model.spec)[None].repeat(3, 1)
    noise = torch.randn(theta.shape, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return problem, tasks, theta + 0.3 * noise


def test_tiny_mlp_estimates_against_the_exact_spectrum():
    """SLQ (20 Lanczos steps, 4 probes) on a P = 97 MLP: λ_min within its error bar and never
    below the exact one; density within Wasserstein-1 distance 3% of the spectral width;
    trace within 2 standard errors in >= 80% of 20 seeds × 3 points."""
    problem, tasks, theta = _mlp()
    exact = exact_spectra(problem, theta, tasks.support)
    hits = 0
    for seed in range(20):
        est = slq_spectra(problem, theta, tasks.support, SpectrumSpec(seed=seed))
        assert not est.exact
        gap = (est.lambda_min - exact.lambda_min).numpy()
        assert (gap >= -1e-9).all() and (gap <= est.lambda_min_err.numpy() + 1e-9).all()
        hits += int(((est.trace - exact.trace).abs() <= 2 * est.trace_err).sum())
        for i in range(3):
            width = float(exact.nodes[i, -1] - exact.nodes[i, 0])
            w1 = wasserstein_distance(exact.nodes[i].numpy(), est.nodes[i].numpy(),
                                      exact.weights[i].numpy(), est.weights[i].numpy())
            assert w1 <= 0.03 * width
    assert hits >= 48


def test_seeded_and_deterministic():
    problem, tasks, theta = _mlp()
    a = slq_spectra(problem, theta, tasks.support, SpectrumSpec(seed=3))
    b = slq_spectra(problem, theta, tasks.support, SpectrumSpec(seed=3))
    c = slq_spectra(problem, theta, tasks.support, SpectrumSpec(seed=4))
    for name in ("lambda_min", "trace", "trace_err", "nodes", "weights"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert not torch.equal(a.trace, c.trace)


def test_straight_line_ends_are_the_recorded_losses():
    problem, tasks = _bowls(dim=3)
    spec = InnerSpec(sgd(0.02), 12)
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj)
    line = diag.values["straight_loss"]
    assert line.shape == (3, 13)
    np.testing.assert_allclose(line[:, 0], traj.losses[:, 0].numpy(), rtol=1e-12)
    np.testing.assert_allclose(line[:, -1], traj.losses[:, -1].numpy(), rtol=1e-12)
    # midpoint by hand: ½(θ−c)ᵀA(θ−c) at (θ0 + θ_K)/2
    mid = (traj.params[:, 0] + traj.params[:, -1]).numpy() / 2
    d = mid - tasks.support["c"].numpy()
    expect = 0.5 * np.einsum("ti,tij,tj->t", d, tasks.support["A"].numpy(), d)
    np.testing.assert_allclose(line[:, 6], expect, rtol=1e-12)
    # a bowl is convex along any line: second differences are >= 0; a NaN end gives NaN
    assert (np.diff(line, 2, axis=1) >= -1e-9).all()
    end = traj.params[:, -1].clone()
    end[1] = float("nan")
    out = straight_losses(problem, traj.params[:, 0], end, tasks, 5).numpy()
    assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_diagnostics_store_curvature_at_the_sharpness_steps():
    problem, tasks = _bowls(dim=3)
    spec = InnerSpec(sgd(0.02), 30)
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj,
                            DiagnosticsSpec(budget=3 * 10))
    assert diag.subsampled
    done = ~np.isnan(diag.values["lambda_min"][0])
    assert np.flatnonzero(done).tolist() == diag.steps.tolist()
    keep = density_steps(diag.steps)
    np.testing.assert_array_equal(diag.values["spectrum_steps"], np.broadcast_to(keep, (3, len(keep))))
    assert diag.values["spectrum_nodes"].shape == (3, len(keep), 3)
    off = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj,
                           DiagnosticsSpec(curvature=False))
    assert "lambda_min" not in off.values and "spectrum_nodes" not in off.values
    np.testing.assert_array_equal(off.values["straight_loss"], diag.values["straight_loss"])
    assert density_steps(np.arange(101)).tolist() == list(range(0, 101, 5))
