"""Surfaces and plane losses: every value checked against a direct model evaluation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajviz.engine import surface
from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.slices import Slice
from trajviz.engine.surface import (
    MAX_POINTS,
    Surface,
    check_resolution,
    choose_chunk,
    evaluate_chunk,
    evaluate_surface,
    plane_losses,
)
from trajviz.engine.work import Work
from trajviz.kernels import mlp_plan
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten, from_module, unflatten
from trajviz.problem.optim import sgd
from trajviz.problem.tasks import Linear2D, Problem, Quadratic, Sinusoid
from trajviz.problem.tasks.base import mse_loss


def random_slice(problem: Problem, seed: int = 0, extent=(-1.0, 1.5, -2.0, 0.5)) -> Slice:
    """An orthonormal random plane through an initialisation."""
    spec = problem.model.spec
    origin = flatten(problem.model.init(seed), spec).double().numpy()
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(spec.size, 2)))[0].T
    return Slice("random", origin, basis, np.full(2, np.nan), extent)


def identity_slice(extent=(-2.0, 2.0, -2.0, 2.0)) -> Slice:
    return Slice("exact", np.zeros(2), np.eye(2), np.full(2, np.nan), extent)


def direct_loss(problem: Problem, slc: Slice, a: float, b: float, batch: dict,
                dtype=torch.float32) -> float:
    """The model applied as an nn.Module at origin + a·u + b·v, with the MSE written out."""
    theta = (torch.as_tensor(slc.origin, dtype=torch.float64)
             + a * torch.as_tensor(slc.basis[0]) + b * torch.as_tensor(slc.basis[1])).to(dtype)
    params = unflatten(theta, problem.model.spec)
    net = problem.model.module
    with torch.no_grad():
        out = torch.func.functional_call(net, params, (batch["x"].to(dtype),))
        return float(((out - batch["y"].to(dtype)) ** 2).mean())


def task_batch(tasks, t: int) -> dict:
    return {k: v[t] for k, v in tasks.support.items()}


@pytest.fixture(params=["fused-feature-major", "fused-sample-major", "vmap"])
def method(request, monkeypatch):
    """Every evaluator: the fused MLP path in both activation layouts, and vmap."""
    if request.param == "vmap":
        return "vmap"
    rows = 0 if request.param == "fused-feature-major" else 10**9
    monkeypatch.setattr(mlp_plan, "FEATURE_MAJOR_ROWS", rows)
    return "fused"


@pytest.fixture(scope="module")
def sinusoid():
    family = Sinusoid(shots=12, hidden=(16, 16))
    return family.problem(), family.sample(seed=3, n_tasks=3)


def test_grid_points_equal_direct_evaluation_float32(sinusoid, method):
    problem, tasks = sinusoid
    slc = random_slice(problem)
    surf = evaluate_surface(problem, slc, tasks, (9, 7), method=method)
    assert isinstance(surf, Surface)
    assert surf.loss.shape == (3, 7, 9) and surf.mean.shape == (7, 9)
    np.testing.assert_allclose(surf.alpha, np.linspace(-1.0, 1.5, 9), rtol=1e-6)
    np.testing.assert_allclose(surf.beta, np.linspace(-2.0, 0.5, 7), rtol=1e-6)
    np.testing.assert_array_equal(surf.task_ids, tasks.ids.numpy())
    for t in range(3):
        for j in (0, 3, 6):
            for i in (0, 4, 8):
                want = direct_loss(problem, slc, surf.alpha[i], surf.beta[j], task_batch(tasks, t))
                assert surf.loss[t, j, i] == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_grid_points_equal_direct_evaluation_float64(sinusoid, method):
    problem, tasks = sinusoid
    slc = random_slice(problem, seed=1)
    surf = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (5, 6), method=method)
    assert surf.loss.dtype == np.float64
    for t in range(3):
        for j in range(6):
            for i in range(5):
                want = direct_loss(problem, slc, surf.alpha[i], surf.beta[j], task_batch(tasks, t),
                                   dtype=torch.float64)
                assert surf.loss[t, j, i] == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_mean_is_the_mean_over_tasks(sinusoid):
    problem, tasks = sinusoid
    surf = evaluate_surface(problem, random_slice(problem), tasks, (6, 5))
    np.testing.assert_allclose(surf.mean, surf.loss.mean(axis=0), rtol=1e-6)


def test_chunk_sizes_give_identical_results(sinusoid, method):
    problem, tasks = sinusoid
    slc = random_slice(problem, seed=2)
    surfs = [evaluate_surface(problem, slc, tasks, (11, 10), method=method, work=Work(chunk=c))
             for c in (1, 7, None)]
    for other in surfs[1:]:
        np.testing.assert_allclose(other.loss, surfs[0].loss, rtol=1e-6, atol=0)
        np.testing.assert_allclose(other.mean, surfs[0].mean, rtol=1e-6, atol=0)


@pytest.mark.parametrize("rows", [0, 10**9], ids=["feature-major", "sample-major"])
def test_fused_and_vmap_paths_agree_on_mlps(monkeypatch, rows):
    monkeypatch.setattr(mlp_plan, "FEATURE_MAJOR_ROWS", rows)
    for hidden, act in (((16, 16), "relu"), ((8,), "tanh"), ((8, 4, 6), "gelu")):
        family = Sinusoid(shots=9, hidden=hidden)
        problem = family.problem()
        if act != "relu":  # the same family, another activation
            from trajviz.problem import models
            model = models.mlp((1, *hidden, 1), activation=act)
            problem = Problem(model, mse_loss(model))
        tasks = family.sample(seed=0, n_tasks=2)
        slc = random_slice(problem, seed=4)
        fused = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (8, 9),
                                 method="fused")
        plain = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (8, 9),
                                 method="vmap")
        np.testing.assert_allclose(fused.loss, plain.loss, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rows", [0, 10**9], ids=["feature-major", "sample-major"])
def test_fused_path_with_some_layers_bias_free_and_activations_that_move_one(monkeypatch, rows):
    # the feature-major layout folds biases into the GEMMs with a row of ones, which tanh
    # and softplus would change (tanh(1) != 1): the ones must be restored, and skipped where
    # the next layer has no bias
    monkeypatch.setattr(mlp_plan, "FEATURE_MAJOR_ROWS", rows)
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(1, 7, bias=False), nn.Tanh(), nn.Linear(7, 5), nn.Softplus(),
                           nn.Linear(5, 6, bias=False), nn.Tanh(), nn.Linear(6, 1))
    model = from_module("mixed", module)
    problem = Problem(model, mse_loss(model))
    assert mlp_plan.mlp_layers(problem) is not None  # the fused path applies
    tasks = Sinusoid(shots=11).sample(seed=1, n_tasks=2)
    slc = random_slice(problem, seed=2)
    fused = evaluate_surface(problem, slc, tasks.to("cpu", torch.float64), (6, 7), method="fused")
    for (i, j) in ((0, 0), (3, 5), (6, 2)):
        a, b = fused.alpha[j], fused.beta[i]
        for t in range(2):
            want = direct_loss(problem, slc, a, b, task_batch(tasks, t), torch.float64)
            assert fused.loss[t, i, j] == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("rows", [0, 10**9], ids=["feature-major", "sample-major"])
def test_fused_path_on_a_bias_free_linear_model(monkeypatch, rows):
    monkeypatch.setattr(mlp_plan, "FEATURE_MAJOR_ROWS", rows)
    family = Linear2D(shots=15)
    problem, tasks = family.problem(), family.sample(seed=0, n_tasks=4)
    slc = identity_slice()
    fused = evaluate_surface(problem, slc, tasks, (7, 7), method="fused")
    plain = evaluate_surface(problem, slc, tasks, (7, 7), method="vmap")
    np.testing.assert_allclose(fused.loss, plain.loss, rtol=1e-5)
    w = tasks.info["w"].numpy()
    # the loss vanishes at each task's own weights: put a grid point there
    slc_w = Slice("exact", np.zeros(2), np.eye(2), np.full(2, np.nan),
                  (w[0, 0] - 1.0, w[0, 0] + 1.0, w[0, 1] - 1.0, w[0, 1] + 1.0))
    at_w = evaluate_surface(problem, slc_w, tasks.to("cpu", torch.float64), (3, 3))
    assert at_w.loss[0, 1, 1] == pytest.approx(0.0, abs=1e-12)


def test_fused_is_refused_where_it_does_not_apply():
    quad = Quadratic(dim=3)
    problem, tasks = quad.problem(), quad.sample(seed=0, n_tasks=2)
    origin, basis = torch.zeros(3), torch.eye(3)[:2]
    coords = torch.tensor([[0.5, -1.0]])
    with pytest.raises(ValueError, match="fused"):
        evaluate_chunk(problem, origin, basis, coords, tasks.support, method="fused")
    # a hand-written loss over the same MLP is evaluated by vmap, not mistaken for mse_loss
    family = Sinusoid(shots=5, hidden=(4,))
    model = family.problem().model
    problem = Problem(model, lambda p, b: (model.apply(p, b["x"]) - b["y"]).abs().mean())
    with pytest.raises(ValueError, match="fused"):
        evaluate_chunk(problem, torch.zeros(model.spec.size), torch.eye(model.spec.size)[:2],
                       coords, family.sample(0, 1).support, method="fused")


def test_generic_models_quadratic_bowls():
    quad = Quadratic(dim=2)
    problem, tasks = quad.problem(), quad.sample(seed=5, n_tasks=3)
    surf = evaluate_surface(problem, identity_slice((-3.0, 3.0, -3.0, 3.0)),
                            tasks.to("cpu", torch.float64), (13, 13), work=Work(chunk=10))
    a_mat, c = tasks.support["A"].double(), tasks.support["c"].double()
    for t in range(3):
        for j, i in ((0, 0), (6, 3), (12, 12)):
            d = torch.tensor([surf.alpha[i], surf.beta[j]], dtype=torch.float64) - c[t]
            assert surf.loss[t, j, i] == pytest.approx(float(0.5 * d @ a_mat[t] @ d), rel=1e-12)


def test_convnet_takes_the_vmap_path():
    from trajviz.problem import models
    from trajviz.problem.tasks.base import cross_entropy_loss
    model = models.convnet(3, channels=4, image_size=8)
    problem = Problem(model, cross_entropy_loss(model))
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 1, 8, 8, generator=gen)
    y = torch.randint(0, 3, (2, 6), generator=gen)
    slc = random_slice(problem, extent=(-0.5, 0.5, -0.5, 0.5))
    origin = torch.as_tensor(slc.origin, dtype=torch.float32)
    basis = torch.as_tensor(slc.basis, dtype=torch.float32)
    coords = torch.tensor([[0.1, -0.2], [0.4, 0.3], [-0.5, 0.0]])
    got = evaluate_chunk(problem, origin, basis, coords, {"x": x, "y": y})
    assert got.shape == (3, 2)
    for g in range(3):
        params = unflatten(origin + coords[g] @ basis, model.spec)
        for t in range(2):
            want = torch.nn.functional.cross_entropy(model.apply(params, x[t]), y[t])
            assert float(got[g, t]) == pytest.approx(float(want), rel=1e-5)


def test_progress_reports_every_chunk(sinusoid):
    problem, tasks = sinusoid
    calls = []
    evaluate_surface(problem, random_slice(problem), tasks, (5, 4),
                     work=Work(progress=lambda done, total: calls.append((done, total)), chunk=6))
    assert calls == [(6, 20), (12, 20), (18, 20), (20, 20)]


def test_evaluate_chunk_does_not_track_gradients(sinusoid):
    problem, tasks = sinusoid
    slc = random_slice(problem)
    origin = torch.as_tensor(slc.origin, dtype=torch.float32).requires_grad_(True)
    basis = torch.as_tensor(slc.basis, dtype=torch.float32)
    for method in ("auto", "fused", "vmap"):
        out = evaluate_chunk(problem, origin, basis, torch.zeros(4, 2), tasks.support,
                             method=method)
        assert out.shape == (4, 3) and not out.requires_grad


def test_choose_chunk_scales_with_model_and_data():
    small, large = Sinusoid(shots=10), Sinusoid(shots=1000)
    problem = small.problem()
    size = problem.model.spec.size
    few = choose_chunk(problem, small.sample(0, 1), size)
    many = choose_chunk(problem, large.sample(0, 1), size)
    assert few > many >= 1
    assert choose_chunk(problem, large.sample(0, 4), size) <= many
    budget = 2**20
    chunk = choose_chunk(problem, small.sample(0, 1), size, budget_bytes=budget)
    # bytes per point: P parameters plus a few of the widest activation (10 points × 40 units)
    assert 4 * size * chunk <= budget
    assert chunk * 4 * (size + 10 * 40) >= budget // 4
    assert choose_chunk(problem, large.sample(0, 1), size, budget_bytes=1) == 1
    with pytest.raises(ValueError, match="budget_bytes"):
        choose_chunk(problem, small.sample(0, 1), size, budget_bytes=0)


def test_plane_losses_equal_direct_evaluation(sinusoid):
    problem, tasks = sinusoid
    slc = random_slice(problem, seed=6)
    rng = np.random.default_rng(0)
    coords = rng.uniform(-1.0, 1.0, size=(3, 5, 2))
    coords[1, 2] = [np.nan, 0.3]
    coords[2, 4] = np.nan
    for chunk in (None, 1, 4):
        got = plane_losses(problem, slc, coords, tasks, chunk=chunk)
        assert got.shape == (3, 5)
        assert np.isnan(got[1, 2]) and np.isnan(got[2, 4])
        assert np.isfinite(got).sum() == 13
        for r in range(3):
            for k in range(5):
                if np.isnan(coords[r, k]).any():
                    continue
                want = direct_loss(problem, slc, *coords[r, k], task_batch(tasks, r))
                assert got[r, k] == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_plane_losses_on_the_identity_plane_equal_the_recorded_losses():
    family = Linear2D(shots=20)
    problem, tasks = family.problem(), family.sample(seed=2, n_tasks=4)
    theta0 = {"weight": torch.tensor([[-0.5, 0.8]])}
    result = inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(0.1), 5)), theta0, record=True)
    path = result.trajectory
    assert path.params.shape == (4, 6, 2)
    got = plane_losses(problem, identity_slice(), path.params.numpy(), tasks)
    np.testing.assert_allclose(got, path.losses.numpy(), rtol=1e-5, atol=1e-7)
    # and the recorded losses fall, so this compares more than the start point
    assert (np.diff(path.losses.numpy(), axis=1) < 0).all()


@pytest.mark.parametrize("resolution, match", [
    ((1, 10), "2..500"), ((10, 501), "2..500"), ((600, 600), "2..500"),
    ((10,), "pair"), ((10.0, 10), "integer"), ((True, 10), "integer"),
])
def test_bad_resolution_is_refused(sinusoid, resolution, match):
    problem, tasks = sinusoid
    with pytest.raises(ValueError, match=match):
        evaluate_surface(problem, random_slice(problem), tasks, resolution)


@pytest.mark.parametrize("n, accepted", [(1, False), (2, True), (61, True), (500, True),
                                         (501, False)])
def test_surface_accepts_exactly_the_resolutions_the_config_accepts(n, accepted):
    """One bound, inclusive at both ends, in the config layer and the surface alike."""
    from trajviz.spec.config import from_dict
    for check in (lambda: check_resolution((n, n)),
                  lambda: from_dict({"slices": {"resolution": n}})):
        if accepted:
            check()
        else:
            with pytest.raises(ValueError, match=r"2\.\.500"):
                check()
    assert n * n <= MAX_POINTS or not accepted


def test_bad_inputs_are_refused(sinusoid):
    problem, tasks = sinusoid
    slc = random_slice(problem)
    with pytest.raises(ValueError, match="chunk"):
        evaluate_surface(problem, slc, tasks, (4, 4), work=Work(chunk=0))
    with pytest.raises(ValueError, match="method"):
        evaluate_surface(problem, slc, tasks, (4, 4), method="fast")
    with pytest.raises(ValueError, match="extent"):
        evaluate_surface(problem,
                         Slice("random", slc.origin, slc.basis, slc.explained_variance,
                                        (1.0, -1.0, 0.0, 1.0)),
                         tasks, (4, 4))
    with pytest.raises(ValueError, match="parameters"):
        evaluate_surface(problem, identity_slice(), tasks, (4, 4))
    with pytest.raises(ValueError, match="rollouts"):
        plane_losses(problem, slc, np.zeros((2, 3, 2)), tasks)
    with pytest.raises(ValueError, match=r"\[R, K\+1, 2\]"):
        plane_losses(problem, slc, np.zeros((3, 2)), tasks)


def test_a_module_is_never_mutated(sinusoid):
    problem, tasks = sinusoid
    before = {k: v.clone() for k, v in problem.model.module.state_dict().items()}
    evaluate_surface(problem, random_slice(problem), tasks, (4, 4))
    after = problem.model.module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_custom_module_goes_through_vmap():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(1))
            self.t = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return self.s * x + self.t

    model = from_module("scale", Scale())
    problem = Problem(model, mse_loss(model))
    x = torch.linspace(-1, 1, 7).reshape(1, 7, 1)
    tasks_support = {"x": x, "y": 2 * x + 1}
    coords = torch.tensor([[2.0, 1.0], [1.0, 0.0]])
    got = evaluate_chunk(problem, torch.zeros(2), torch.eye(2), coords, tasks_support)
    assert got[0, 0] == pytest.approx(0.0, abs=1e-12)
    assert got[1, 0] == pytest.approx(float(((x + 1) ** 2).mean()), rel=1e-6)
