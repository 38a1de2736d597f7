"""Per-step diagnostics and stability thresholds, against closed forms."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trajviz.data.stability import crossings, divergence_report, good_prefix, stability_threshold
from trajviz.engine.curvature import (
    hvp_fn,
    mean_loss_eigenvectors,
    point_sharpness,
    top_eigenvalues,
)
from trajviz.engine.diagnostics import (
    DiagnosticsSpec,
    adam_scale,
    path_diagnostics,
    sharpness_steps,
)
from trajviz.engine.inner import InnerSpec, all_batches, inner_loop, minibatch_indices
from trajviz.engine.metrics import path_metrics
from trajviz.engine.slices import hessian_slice
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten, unflatten
from trajviz.problem.optim import adam, momentum, sgd
from trajviz.problem.tasks import TaskSet, make_family
from trajviz.problem.tasks.quadratic import Quadratic

F64 = torch.float64


def _bowls(dim: int = 4, condition: float = 10.0, n: int = 3):
    family = Quadratic(dim=dim, condition=condition)
    return family.problem(), family.sample(0, n, "heldout").to("cpu", F64)


def test_quadratic_sharpness_is_the_condition_number_at_every_step():
    problem, tasks = _bowls()
    theta0 = problem.model.init(0, "cpu", F64)
    spec = InnerSpec(sgd(0.05), 8)
    traj = inner_loop(Rollouts(problem, tasks, spec), theta0, record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj, DiagnosticsSpec(iters=60))
    lam = np.linalg.eigvalsh(tasks.support["A"].numpy())[:, -1]  # = condition up to float32 rounding
    np.testing.assert_allclose(lam, 10.0, rtol=1e-6)
    np.testing.assert_allclose(diag.values["sharpness"], np.broadcast_to(lam[:, None], (3, 9)), atol=1e-5)
    np.testing.assert_allclose(diag.values["sharpness"], 10.0, atol=1e-5)
    # gradient norm ‖A(θ − c)‖ and update norm lr·‖g‖ at each step, from the recorded path
    theta, c, a = traj.params.numpy(), tasks.support["c"].numpy(), tasks.support["A"].numpy()
    g = np.einsum("tij,tkj->tki", a, theta - c[:, None])
    np.testing.assert_allclose(diag.values["grad_norm"], np.linalg.norm(g, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(diag.values["update_norm"][:, :-1], 0.05 * np.linalg.norm(g[:, :-1], axis=-1),
                               rtol=1e-12)
    assert np.isnan(diag.values["update_norm"][:, -1]).all()
    assert diag.steps.tolist() == list(range(9)) and not diag.subsampled


def test_linear2d_sharpness_is_the_batch_hessians_top_eigenvalue():
    """MSE of y = w·x on a batch X [B, 2]: ∇² = (2/B)·XᵀX, one batch per step (minibatches)."""
    family = make_family("linear2d", {"shots": 20})
    problem = family.problem()
    tasks = family.sample(3, 4, "heldout").to("cpu", F64)
    spec = InnerSpec(sgd(0.1), 6, batch_size=5)
    traj = inner_loop(Rollouts(problem, tasks, spec, 11), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 11), traj, DiagnosticsSpec(iters=100))
    x = all_batches(tasks, minibatch_indices(tasks, spec, 11))["x"].numpy()  # [R, K+1, B, 2]
    closed = np.linalg.eigvalsh(2.0 / 5 * np.einsum("rkbi,rkbj->rkij", x, x))[..., -1]
    np.testing.assert_allclose(diag.values["sharpness"], closed, rtol=1e-8)
    assert np.ptp(closed) > 0.5  # the batches really differ from step to step


@pytest.mark.parametrize("factor, oscillation, crosses", [(2.05, 1.0, 0), (0.95, 0.0, -1)])
def test_edge_of_stability_on_a_bowl(factor, oscillation, crosses):
    """Full-batch SGD with lr·λ_max = 2.05 zig-zags and grows (|1 − 2.05| > 1); with
    lr·λ_max = 0.95 (< 1) every component shrinks without changing sign. The crossing
    of the sharpness over 2/lr says the same, at step 0 or never."""
    problem = Quadratic(dim=2).problem()
    a = torch.tensor([[[10.0, 0.0], [0.0, 1.0]]], dtype=F64)
    tasks = TaskSet({"A": a, "c": torch.zeros(1, 2, dtype=F64)}, {"A": a, "c": torch.zeros(1, 2, dtype=F64)},
                    torch.arange(1), minibatchable=False)
    lr = factor / 10.0
    spec = InnerSpec(sgd(lr), 12)
    traj = inner_loop(Rollouts(problem, tasks, spec),
                      {"theta": torch.tensor([1.0, 1.0], dtype=F64)}, record=True).trajectory
    metrics = path_metrics(traj.params, traj.losses)
    assert float(metrics["oscillation"][0]) == oscillation
    grows = bool(traj.losses[0, -1] > traj.losses[0, 0])
    assert grows == (factor > 2)
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj, DiagnosticsSpec(iters=30))
    threshold, applies_to, rule = stability_threshold("sgd", {"lr": lr})
    assert applies_to == "sharpness" and rule == "2/lr" and threshold == pytest.approx(2 / lr)
    assert crossings(diag.values["sharpness"], threshold).tolist() == [crosses]


def test_crossings_first_step_above_and_nan_never_counts():
    values = np.array([[1.0, 3.0, 5.0, 1.0], [np.nan, 1.0, 2.0, np.nan], [np.nan, 9.0, 1.0, 9.0]])
    assert crossings(values, 2.5).tolist() == [1, -1, 1]
    assert crossings(values, np.array([0.5, 1.5, 10.0])).tolist() == [0, 2, -1]


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_threshold_separates_decay_from_growth(nesterov):
    """The real inner optimiser on ½λθ² with λ 2% below / above its threshold."""
    problem = Quadratic(dim=1).problem()
    lr, beta = 0.1, 0.9
    threshold, _, _ = stability_threshold("momentum", {"lr": lr, "beta": beta, "nesterov": float(nesterov)})
    expected = (2 + 2 * beta) / ((1 + 2 * beta) * lr) if nesterov else (2 + 2 * beta) / lr
    assert threshold == pytest.approx(expected)
    for scale, grows in ((0.98, False), (1.02, True)):
        a = torch.full((1, 1, 1), threshold * scale, dtype=F64)
        tasks = TaskSet({"A": a, "c": torch.zeros(1, 1, dtype=F64)}, {"A": a, "c": torch.zeros(1, 1, dtype=F64)},
                        torch.arange(1), minibatchable=False)
        spec = InnerSpec(momentum(lr, beta, nesterov), 200, divergence_factor=float("inf"))
        traj = inner_loop(Rollouts(problem, tasks, spec), {"theta": torch.ones(1, dtype=F64)},
                          record=True).trajectory
        assert bool(traj.losses[0, -1] > traj.losses[0, 0]) == grows, scale


def test_adam_preconditioned_sharpness_matches_the_optimiser_and_closed_form():
    problem, tasks = _bowls(dim=3, n=2)
    lr, b1, b2, eps = 0.05, 0.9, 0.999, 1e-8
    spec = InnerSpec(adam(lr, b1, b2, eps), 6)
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    scale = adam_scale(traj.grads, b1, b2, eps)  # √(P⁻¹)
    m = torch.zeros_like(traj.grads[:, 0])
    for i in range(6):  # θ_{i+1} − θ_i = −lr·P_i⁻¹·m_i
        m = b1 * m + (1 - b1) * traj.grads[:, i]
        torch.testing.assert_close(traj.params[:, i + 1] - traj.params[:, i], -lr * scale[:, i] ** 2 * m,
                                   rtol=1e-10, atol=1e-12)
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj, DiagnosticsSpec(iters=200))
    s, a = scale.numpy(), tasks.support["A"].numpy()
    closed = np.linalg.eigvalsh(s[..., :, None] * a[:, None] * s[..., None, :])[..., -1]
    np.testing.assert_allclose(diag.values["preconditioned_sharpness"], closed, rtol=1e-6)
    np.testing.assert_allclose(diag.values["sharpness"], 10.0, atol=1e-5)
    threshold, applies_to, _ = stability_threshold("adam", dict(spec.optimizer.hyper))
    assert applies_to == "preconditioned_sharpness" and threshold == pytest.approx(38 / lr)


def test_negative_dominant_eigenvalue_still_gives_lambda_max():
    """H = diag(−5, 2): power iteration alone finds −5; the shifted second phase gives 2."""
    problem = Quadratic(dim=2).problem()
    a = torch.tensor([[[-5.0, 0.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, -1.0]]], dtype=F64)
    params = {"theta": torch.zeros(2, 2, dtype=F64)}
    batch = {"A": a, "c": torch.zeros(2, 2, dtype=F64)}
    v0 = {"theta": torch.tensor([1.0, 0.7], dtype=F64)}
    got = top_eigenvalues(problem, params, batch, v0, None, 80)
    torch.testing.assert_close(got, torch.tensor([2.0, 3.0], dtype=F64))


def test_vmapped_points_equal_the_per_point_loop():
    family = make_family("sinusoid", {})
    problem = family.problem()
    tasks = family.sample(0, 3, "heldout").to("cpu", F64)
    spec = InnerSpec(sgd(0.01), 3)
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj,
                            DiagnosticsSpec(iters=10, seed=4))
    sharp = point_sharpness(problem, 10)
    gen = torch.Generator().manual_seed(4)
    v0 = unflatten(torch.randn(problem.model.spec.size, generator=gen, dtype=F64), problem.model.spec)
    for r in range(3):
        for i in range(4):
            theta = unflatten(traj.params[r, i], problem.model.spec)
            one = sharp(theta, {k: v[r] for k, v in tasks.support.items()}, v0, None)
            assert float(one) > 0  # the top eigenvalue here is positive: no second phase
            assert diag.values["sharpness"][r, i] == pytest.approx(float(one), rel=1e-9)


def test_large_models_subsample_steps_and_say_so():
    assert sharpness_steps(32, 100, 10_000).tolist() == list(range(33))
    assert sharpness_steps(32, 1000, 10_000).tolist() == [0, 4, 7, 11, 14, 18, 21, 25, 28, 32]
    problem, tasks = _bowls(dim=4, n=2)
    spec = InnerSpec(sgd(0.05), 8)
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, "cpu", F64),
                      record=True).trajectory
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj,
                            DiagnosticsSpec(budget=12))  # 12 // P = 3 steps
    assert diag.subsampled and diag.steps.tolist() == [0, 4, 8]
    evaluated = ~np.isnan(diag.values["sharpness"])
    assert evaluated[:, [0, 4, 8]].all() and evaluated.sum() == 6
    assert not np.isnan(diag.values["grad_norm"]).any()  # cheap diagnostics: every step


def test_diagnostics_stop_at_divergence():
    problem = Quadratic(dim=2).problem()
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1000.0]]], dtype=F64)
    c = torch.tensor([[1.0, -1.0], [0.5, 0.5]], dtype=F64)
    tasks = TaskSet({"A": a, "c": c}, {"A": a, "c": c}, torch.arange(2), minibatchable=False)
    spec = InnerSpec(sgd(1.5), 5)
    traj = inner_loop(Rollouts(problem, tasks, spec), {"theta": torch.zeros(2, dtype=F64)},
                      record=True).trajectory
    assert traj.diverged_at.tolist() == [-1, 1]
    diag = path_diagnostics(Rollouts(problem, tasks, spec, 0), traj, DiagnosticsSpec(iters=20))
    for name in ("grad_norm", "sharpness"):
        assert not np.isnan(diag.values[name][0]).any()
        assert not np.isnan(diag.values[name][1, 0]) and np.isnan(diag.values[name][1, 1:]).all()
    assert diag.values["sharpness"][1, 0] == pytest.approx(1000.0)
    assert good_prefix(np.array([-1, 1]), 5).sum(axis=1).tolist() == [6, 1]
    report = divergence_report({"leap": traj.diverged_at.numpy()}, np.array([7, 9]), 1e6)
    assert report == {"factor": 1e6, "tasks": 2, "learners": {"leap": {"count": 1, "tasks": [9], "steps": [1]}}}


def test_hessian_slice_of_a_bowl_spans_its_top_two_eigenvectors():
    problem, tasks = _bowls(dim=5, condition=20.0, n=4)
    theta = torch.linspace(-1, 1, 5, dtype=F64)
    values, vectors = mean_loss_eigenvectors(problem, theta, tasks)
    mean_a = tasks.support["A"].numpy().mean(axis=0)  # the mean loss's Hessian
    lam, vec = np.linalg.eigh(mean_a)
    np.testing.assert_allclose(values.numpy(), lam[[-1, -2]], rtol=1e-10)
    points = np.random.default_rng(0).normal(size=(30, 5))
    slc = hessian_slice(theta.numpy(), vectors.numpy(), points)
    assert slc.kind == "hessian"
    for k in (-1, -2):
        u = vec[:, k]
        residual = np.linalg.norm(u - slc.basis.T @ (slc.basis @ u))
        assert residual < 1e-8
    centred = points - points.mean(axis=0)
    expected = ((centred @ slc.basis.T) ** 2).sum(axis=0) / (centred ** 2).sum()
    np.testing.assert_allclose(slc.explained_variance, expected)
    coords = (points - theta.numpy()) @ slc.basis.T
    assert slc.extent[0] < coords[:, 0].min() and slc.extent[1] > coords[:, 0].max()


def test_hvp_matches_finite_differences_of_the_gradient():
    family = make_family("sinusoid", {})
    problem = family.problem()
    tasks = family.sample(0, 1, "heldout").to("cpu", F64)
    spec_p = problem.model.spec
    theta = flatten(problem.model.init(0, "cpu", F64), spec_p)
    v = torch.randn(spec_p.size, generator=torch.Generator().manual_seed(1), dtype=F64)
    batch = {k: x[0] for k, x in tasks.support.items()}
    hv = flatten(hvp_fn(problem)(unflatten(theta, spec_p), batch, unflatten(v, spec_p)), spec_p)
    grad = torch.func.grad(lambda t: problem.loss(unflatten(t, spec_p), batch))
    h = 1e-6
    fd = (grad(theta + h * v) - grad(theta - h * v)) / (2 * h)
    torch.testing.assert_close(hv, fd, rtol=1e-5, atol=1e-7)
