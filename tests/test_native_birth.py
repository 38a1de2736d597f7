"""The birth map's native inner loop: the exact loop's numbers to float32 rounding, a hand-computed
case, divergence kept, and the map's learner rows still bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajviz.kernels import birthloop, native, native_birth
from trajviz.pipeline.birthmap import compute_birth_map
from trajviz.engine.inner import InnerSpec, pair_theta0_with_tasks
from trajviz.problem.models import from_module, unflatten
from trajviz.problem.optim import make_optimizer
from trajviz.data.run import Slice, View
from trajviz.problem.tasks import Problem, TaskSet, make_family
from trajviz.problem.tasks.base import mse_loss

pytestmark = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler")


def sinusoid(n_tasks=3):
    family = make_family("sinusoid", {})
    return family.problem(), family.sample(0, n_tasks, "heldout").to("cpu", torch.float32)


def both(problem, theta0, tasks, spec, seed=3):
    """(exact, native) (losses [R, K+1], lengths [R, K]) for rollouts θ0 [I, P] × tasks."""
    _, paired = pair_theta0_with_tasks(unflatten(theta0, problem.model.spec), tasks, problem)
    rows = theta0.repeat_interleave(len(tasks), dim=0)
    exact = birthloop.statistics_loop(birthloop.fast_plan(problem, paired, spec), problem, rows,
                                      paired, spec, seed)
    kernel = native_birth.plan(problem, paired, spec)
    assert kernel is not None
    fast = native_birth.statistics(kernel, rows, paired, spec, seed)
    shared = native_birth.statistics(kernel, theta0, paired, spec, seed, repeat=len(tasks))
    for a, b in zip(fast, shared):  # θ0 rows shared by their tasks, not copied: the same numbers
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    return exact, fast


def near(problem, n, scale=0.05, seed=1):
    origin = torch.cat([v.reshape(-1) for v in problem.model.init(0).values()])
    g = torch.Generator().manual_seed(seed)
    return origin + scale * torch.randn(n, origin.numel(), generator=g)


@pytest.mark.parametrize("name, options, batch_size", [
    ("sgd", {}, None), ("momentum", {}, 4), ("momentum", {"nesterov": True}, None),
    ("adam", {}, None), ("adam", {"beta1": 0.5}, 4)])
def test_native_equals_the_exact_loop_to_rounding(name, options, batch_size):
    problem, tasks = sinusoid()
    spec = InnerSpec(make_optimizer(name, 0.003, **options), 6, batch_size)
    (f, d), (f_n, d_n) = both(problem, near(problem, 4), tasks, spec)
    assert f_n.shape == f.shape == (12, 7) and d_n.shape == d.shape == (12, 6)
    np.testing.assert_allclose(f_n[:, 0], f[:, 0], rtol=2e-6)  # the same θ0: rounding only
    np.testing.assert_allclose(f_n, f, rtol=1e-4)
    np.testing.assert_allclose(d_n, d, rtol=1e-3)


def test_a_rollout_gets_the_same_numbers_alone_or_in_a_batch():
    problem, tasks = sinusoid(3)
    spec = InnerSpec(make_optimizer("adam", 0.01), 8, 4)
    theta = near(problem, 3)
    _, (f, d) = both(problem, theta, tasks, spec)
    _, (f1, d1) = both(problem, theta[1:2], tasks, spec)
    assert torch.equal(f[3:6], f1) and torch.equal(d[3:6], d1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # rollouts split over threads: each still alone
        _, (f4, d4) = both(problem, theta, tasks, spec)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(f, f4) and torch.equal(d, d4)


@pytest.mark.parametrize("layers, optimizer", [
    # odd widths, a bias-free first layer, a 2-wide output (narrow layout, in 16 padded)
    ([nn.Linear(3, 13, bias=False), nn.ReLU(), nn.Linear(13, 9), nn.ReLU(), nn.Linear(9, 2)], "adam"),
    # a narrow hidden layer with ReLU (8 → 4) between wide ones, a bias-free 3-wide output
    ([nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3, bias=False)], "momentum"),
    # narrow from the input on (8 → 2 → 1), no ReLU between
    ([nn.Linear(8, 2), nn.Linear(2, 1)], "adam"),
])
def test_odd_widths_narrow_layers_bias_free_layers_and_several_outputs(layers, optimizer):
    torch.manual_seed(0)
    model = from_module("odd", nn.Sequential(*layers))
    problem = Problem(model, mse_loss(model))
    d_in, d_out = layers[0].in_features, layers[-1].out_features
    g = torch.Generator().manual_seed(2)
    tasks = TaskSet({"x": torch.randn(3, 11, d_in, generator=g), "y": torch.randn(3, 11, d_out, generator=g)},
                    {}, torch.arange(3))
    spec = InnerSpec(make_optimizer(optimizer, 0.01, **({"nesterov": True} if optimizer == "momentum" else {})),
                     5, None)
    (f, d), (f_n, d_n) = both(problem, near(problem, 2, 0.1), tasks, spec)
    np.testing.assert_allclose(f_n, f, rtol=1e-4)
    np.testing.assert_allclose(d_n, d, rtol=1e-3)
    assert d_n.min() > 0  # every rollout moved: the comparison is not of zeros


def test_one_linear_layer_by_hand():
    # f(w, c) = mean((w·x + c − y)²) on x = (1, 3), y = (1, 2) from w = 2, c = 0.5:
    # residuals 1.5, 4.5 → f0 = 11.25, ∇ = (15, 6); SGD lr 0.01 → w = 1.85, c = 0.44,
    # |Δθ| = 0.01·√(15² + 6²); residuals 1.29, 3.99 → f1 = (1.29² + 3.99²) / 2
    model = from_module("lin", nn.Linear(1, 1))
    problem = Problem(model, mse_loss(model))
    tasks = TaskSet({"x": torch.tensor([[[1.0], [3.0]]]), "y": torch.tensor([[[1.0], [2.0]]])},
                    {}, torch.arange(1))
    spec = InnerSpec(make_optimizer("sgd", 0.01), 1, None)
    _, paired = pair_theta0_with_tasks(unflatten(torch.tensor([[2.0, 0.5]]), model.spec), tasks,
                                       problem)
    f, d = native_birth.statistics(native_birth.plan(problem, paired, spec),
                                   torch.tensor([[2.0, 0.5]]), paired, spec, 0)
    assert f.tolist()[0] == pytest.approx([11.25, (1.29 ** 2 + 3.99 ** 2) / 2], rel=1e-6)
    assert float(d[0, 0]) == pytest.approx(0.01 * np.hypot(15, 6), rel=1e-6)


def test_diverging_rollouts_stay_non_finite():
    problem, tasks = sinusoid(2)
    spec = InnerSpec(make_optimizer("sgd", 5.0), 12, None)
    (f, d), (f_n, d_n) = both(problem, near(problem, 2, 1.0), tasks, spec)
    diverged = ~(torch.isfinite(d).all(1) & torch.isfinite(f).all(1))
    assert diverged.any()
    assert torch.equal(diverged, ~(torch.isfinite(d_n).all(1) & torch.isfinite(f_n).all(1)))


def test_the_map_takes_the_kernel_on_its_grid_and_the_exact_loop_for_learners(monkeypatch):
    problem, tasks = sinusoid(2)
    spec = InnerSpec(make_optimizer("sgd", 0.003), 5, None)
    theta = near(problem, 1)[0].numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(theta.size, 2)))[0].T
    view = View("random", Slice("random", theta.astype(np.float64), basis, np.full(2, np.nan),
                                (-0.5, 0.5, -0.5, 0.5)), None, {}, {}, {}, {}, {})
    calls = []
    real = native_birth.statistics
    monkeypatch.setattr(native_birth, "statistics", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = compute_birth_map(problem, tasks, spec, 3, view, {"me": theta}, grid=5)
    assert calls  # the grid went through the kernel
    monkeypatch.setattr(native_birth, "plan", lambda *a: None)
    exact = compute_birth_map(problem, tasks, spec, 3, view, {"me": theta}, grid=5)
    for stat in fast.mean:
        np.testing.assert_allclose(fast.mean[stat], exact.mean[stat], rtol=1e-4, atol=1e-7)
    for stat in fast.learner_tasks:  # learners: the exact loop on both
        np.testing.assert_array_equal(fast.learner_tasks[stat], exact.learner_tasks[stat])


def test_grid_chunks_are_sized_by_theta0_rows_and_task_data():
    problem, tasks = sinusoid(8)  # P = 1761; a task's support: 10 x and 10 y floats
    full = InnerSpec(make_optimizer("adam", 0.01), 32, None)
    # 2 MiB / (4 · (1761 + 8 · 20)) = 272 points, but at least 8 chunks
    assert native_birth.grid_chunk(problem, tasks, full, 100_000) == 2 * 2**20 // (4 * (1761 + 160))
    assert native_birth.grid_chunk(problem, tasks, full, 1681) == 211  # ⌈1681 / 8⌉
    assert native_birth.grid_chunk(problem, tasks, full, 1681, workers=16) == 27  # ⌈1681 / 64⌉
    # minibatches of 5: every one of the 33 steps' batches is read, 5/10 of a support each
    mini = InnerSpec(make_optimizer("adam", 0.01), 32, 5)
    assert native_birth.grid_chunk(problem, tasks, mini, 100_000) == 2 * 2**20 // (4 * (1761 + 8 * 330))
    tanh = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))
    model = from_module("tanh", tanh)
    assert native_birth.grid_chunk(Problem(model, mse_loss(model)), tasks, full, 1681) is None
