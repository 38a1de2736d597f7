"""The inner loop: K steps give K+1 recorded points, values that match a direct evaluation,
minibatches that are disjoint, vectorisation that changes nothing, divergence that is recorded."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import grad

from trajviz.engine.inner import (
    InnerSpec,
    all_batches,
    inner_loop,
    minibatch_indices,
    pair_theta0_with_tasks,
)
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten, unflatten
from trajviz.problem.optim import adam, momentum, sgd
from trajviz.problem.tasks import Linear2D, Quadratic, Sinusoid, TaskSet

F64 = torch.float64


def _sinusoid(n_tasks=3, shots=24, hidden=(5,)):
    family = Sinusoid(shots=shots, query_shots=7, hidden=hidden)
    return family.problem(), family.sample(2, n_tasks).to("cpu", F64)


@pytest.mark.parametrize("steps", [1, 4])
def test_k_steps_give_k_plus_1_points(steps):
    problem, tasks = _sinusoid()
    theta0 = problem.model.init(0, dtype=F64)
    result = inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(0.05), steps, batch_size=4)),
                        theta0, record=True)
    traj, p = result.trajectory, problem.model.spec.size
    assert traj.params.shape == (3, steps + 1, p) and traj.grads.shape == (3, steps + 1, p)
    assert traj.losses.shape == traj.query_losses.shape == (3, steps + 1)
    assert traj.steps == steps
    assert traj.diverged_at.tolist() == [-1, -1, -1] and traj.task_ids.tolist() == [0, 1, 2]
    # θ_0 is the initialisation, θ_K is the returned final point with its loss
    torch.testing.assert_close(traj.params[:, 0], flatten(theta0, problem.model.spec).expand(3, -1),
                               rtol=0, atol=0)
    torch.testing.assert_close(traj.params[:, -1], flatten(result.final, problem.model.spec),
                               rtol=0, atol=0)
    torch.testing.assert_close(traj.losses[:, -1], result.final_loss, rtol=0, atol=0)


def test_on_segment_sees_every_segment_once_in_order():
    problem, tasks = _sinusoid()
    theta0 = problem.model.init(0, dtype=F64)
    spec = InnerSpec(sgd(0.05), 5, batch_size=4)
    traj = inner_loop(Rollouts(problem, tasks, spec), theta0, record=True).trajectory

    def fold(acc, prev, curr):
        acc.append((flatten(prev.params, problem.model.spec).clone(), prev.loss.clone(),
                    flatten(curr.params, problem.model.spec).clone(), curr.loss.clone()))
        return acc

    segments = inner_loop(Rollouts(problem, tasks, spec), theta0, on_segment=fold,
                          initial=[]).accumulated
    assert len(segments) == 5  # K segments, the last one θ_4 → θ_5 included
    for i, (p0, f0, p1, f1) in enumerate(segments):
        torch.testing.assert_close(p0, traj.params[:, i], rtol=0, atol=0)
        torch.testing.assert_close(p1, traj.params[:, i + 1], rtol=0, atol=0)
        torch.testing.assert_close(f0, traj.losses[:, i], rtol=0, atol=0)
        torch.testing.assert_close(f1, traj.losses[:, i + 1], rtol=0, atol=0)


@pytest.mark.parametrize("opt", [sgd(0.05), momentum(0.03, 0.9), adam(0.02)], ids=["sgd", "mom", "adam"])
def test_recorded_values_equal_direct_evaluation(opt):
    """losses[r, i], grads[r, i] = f, ∇f at the recorded θ_i on step i's minibatch; query
    losses on the query set; and the path obeys the optimiser's own update rule."""
    problem, tasks = _sinusoid()
    spec = InnerSpec(opt, 4, batch_size=5)
    theta0 = problem.model.init(1, dtype=F64)
    traj = inner_loop(Rollouts(problem, tasks, spec, 9), theta0, record=True).trajectory
    indices = minibatch_indices(tasks, spec, seed=9)
    model_spec = problem.model.spec
    for r in range(len(tasks)):
        state = opt.init(theta0)
        params = theta0
        for i in range(spec.steps + 1):
            idx = torch.from_numpy(indices[r, i])
            batch = {k: v[r, idx] for k, v in tasks.support.items()}
            recorded = unflatten(traj.params[r, i], model_spec)
            assert float(traj.losses[r, i]) == pytest.approx(float(problem.loss(recorded, batch)),
                                                             rel=1e-12, abs=1e-14)
            g = grad(problem.loss)(recorded, batch)
            torch.testing.assert_close(traj.grads[r, i], flatten(g, model_spec), rtol=0, atol=1e-12)
            query = {k: v[r] for k, v in tasks.query.items()}
            assert float(traj.query_losses[r, i]) == pytest.approx(
                float(problem.loss(recorded, query)), rel=1e-12)
            # independent replay of the optimiser from θ_0
            torch.testing.assert_close(flatten(params, model_spec), traj.params[r, i],
                                       rtol=0, atol=1e-12)
            g_here = grad(problem.loss)(params, batch)
            updates, state = opt.update(g_here, state, params)
            params = {k: params[k] + updates[k] for k in params}


def test_full_batch_uses_the_whole_support_every_step():
    problem, tasks = _sinusoid(shots=9)
    spec = InnerSpec(sgd(0.1), 3)
    assert minibatch_indices(tasks, spec, 0) is None
    traj = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0, dtype=F64),
                      record=True).trajectory
    for i in range(4):
        direct = torch.vmap(problem.loss)(
            unflatten(traj.params[:, i], problem.model.spec), tasks.support)
        torch.testing.assert_close(traj.losses[:, i], direct, rtol=1e-12, atol=1e-14)


def test_minibatches_are_disjoint_while_the_pool_lasts():
    _, tasks = _sinusoid(n_tasks=4, shots=30)
    spec = InnerSpec(sgd(0.1), 9, batch_size=7)  # 10 batches of 7 from a pool of 30
    idx = minibatch_indices(tasks, spec, seed=3)
    assert idx.shape == (4, 10, 7) and idx.min() >= 0 and idx.max() < 30
    for r in range(4):
        first = idx[r, :4].reshape(-1)  # 28 points: the pool of 30 is not used up yet
        assert len(np.unique(first)) == 28
        for i in range(10):
            if (7 * i) // 30 == (7 * i + 6) // 30:  # batches 4 and 8 span a reshuffle and may repeat
                assert len(np.unique(idx[r, i])) == 7
        # after the pool runs out the walk reshuffles and every point is used again
        assert set(idx[r, :8].reshape(-1).tolist()) == set(range(30))
    assert not np.array_equal(idx[0], idx[1])  # tasks walk their own orders
    assert np.array_equal(idx, minibatch_indices(tasks, spec, seed=3))  # reproducible
    assert not np.array_equal(idx, minibatch_indices(tasks, spec, seed=4))


def test_all_batches_picks_each_runs_points_at_each_step():
    _, tasks = _sinusoid(n_tasks=2, shots=10)
    spec = InnerSpec(sgd(0.1), 2, batch_size=3)
    idx = minibatch_indices(tasks, spec, seed=0)
    batches = all_batches(tasks, idx)
    for r in range(2):
        for step in range(3):
            torch.testing.assert_close(batches["x"][r, step],
                                       tasks.support["x"][r, torch.from_numpy(idx[r, step])])
    assert all_batches(tasks, None) is None


def test_batch_larger_than_pool_is_refused():
    _, tasks = _sinusoid(shots=5)
    with pytest.raises(ValueError, match="batch_size 6 exceeds the 5 support points per task"):
        minibatch_indices(tasks, InnerSpec(sgd(0.1), 2, batch_size=6), 0)


@pytest.mark.parametrize("opt", [sgd(0.05), momentum(0.03, 0.9, nesterov=True), adam(0.02)],
                         ids=["sgd", "nesterov", "adam"])
def test_vectorised_over_tasks_equals_sequential_rollouts(opt):
    problem, tasks = _sinusoid(n_tasks=4)
    spec = InnerSpec(opt, 5, batch_size=4)
    theta0 = problem.model.init(3, dtype=F64)
    together = inner_loop(Rollouts(problem, tasks, spec, 5), theta0, record=True).trajectory
    for t in range(4):
        alone = inner_loop(Rollouts(problem, tasks.select([t]), spec, 5), theta0,
                           record=True).trajectory
        for field in ("params", "losses", "grads", "query_losses"):
            torch.testing.assert_close(getattr(together, field)[t], getattr(alone, field)[0],
                                       rtol=0, atol=1e-12)


def test_pair_theta0_with_tasks_equals_separate_rollouts():
    problem, tasks = _sinusoid(n_tasks=3)
    spec = InnerSpec(momentum(0.03, 0.9), 4, batch_size=6)
    theta0s = [problem.model.init(s, dtype=F64) for s in (0, 1)]
    stacked = {k: torch.stack([t[k] for t in theta0s]) for k in theta0s[0]}
    params, paired = pair_theta0_with_tasks(stacked, tasks, problem)
    assert len(paired) == 6 and paired.ids.tolist() == [0, 1, 2, 0, 1, 2]
    together = inner_loop(Rollouts(problem, paired, spec, 1), params, record=True).trajectory
    for i, theta0 in enumerate(theta0s):
        alone = inner_loop(Rollouts(problem, tasks, spec, 1), theta0, record=True).trajectory
        for field in ("params", "losses", "grads", "query_losses"):
            torch.testing.assert_close(getattr(together, field)[i * 3:(i + 1) * 3],
                                       getattr(alone, field), rtol=0, atol=1e-12)


def test_theta0_with_wrong_batch_shape_is_refused():
    problem, tasks = _sinusoid(n_tasks=3)
    theta0 = {k: v.expand(2, *v.shape) for k, v in problem.model.init(0, dtype=F64).items()}
    with pytest.raises(ValueError, match=r"theta0 has batch shape \(2,\), expected \(\) or \(3,\)"):
        inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(0.1), 2)), theta0)


def _two_bowls() -> tuple:
    """Two 2-d bowls: a gentle one (curvature 1) and a steep one (curvature 1000)."""
    problem = Quadratic(dim=2).problem()
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1000.0]]], dtype=F64)
    c = torch.tensor([[1.0, -1.0], [0.5, 0.5]], dtype=F64)
    bowls = {"A": a, "c": c}
    return problem, TaskSet(bowls, dict(bowls), torch.arange(2), minibatchable=False)


def test_divergence_is_recorded_not_raised():
    """SGD with lr 1.5 contracts the gentle bowl (|1−1.5| < 1) and blows up the steep one
    (×1499 per step along the steep axis): the float64 loss overflows at step 49, and
    with the default divergence factor 1e6 the run has diverged at step 1 already
    (f_1/f_0 = 1499² ≈ 2.2e6 > 1e6)."""
    problem, tasks = _two_bowls()
    theta0 = {"theta": torch.zeros(2, dtype=F64)}
    default = inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(1.5), 60)), theta0, record=True)
    assert default.diverged_at.tolist() == [-1, 1]
    assert default.trajectory.losses[1, 1] / default.trajectory.losses[1, 0] > 1e6
    never = InnerSpec(sgd(1.5), 60, divergence_factor=float("inf"))
    result = inner_loop(Rollouts(problem, tasks, never),
                        theta0, record=True)
    traj = result.trajectory
    d = int(traj.diverged_at[1])
    assert int(traj.diverged_at[0]) == -1 and 0 < d <= 60
    assert torch.isfinite(traj.losses[1, :d]).all() and not torch.isfinite(traj.losses[1, d])
    # f_k = ½·1000·(0.5·1499^k)² (the gentle axis is negligible): the first k with
    # f_k > float64 max is k > (log 1.8e308 − log 125) / (2 log 1499) = 48.2
    f0 = 0.5 * 1000 * 0.5 ** 2
    log_max = np.log(np.finfo(np.float64).max)
    expected = next(k for k in range(200) if np.log(f0) + 2 * k * np.log(1499.0) > log_max)
    assert expected == 49 and d == expected
    assert torch.equal(result.diverged_at, traj.diverged_at)
    # the gentle rollout converged to its minimiser: (θ − c) shrinks by 0.5 per step
    torch.testing.assert_close(traj.params[0, -1], tasks.support["c"][0], rtol=0, atol=1e-12)


def test_diverged_rollout_does_not_disturb_the_others():
    problem, tasks = _two_bowls()
    theta0 = {"theta": torch.zeros(2, dtype=F64)}
    spec = InnerSpec(sgd(1.5), 60)
    both = inner_loop(Rollouts(problem, tasks, spec), theta0, record=True).trajectory
    gentle = inner_loop(Rollouts(problem, tasks.select([0]), spec), theta0, record=True).trajectory
    torch.testing.assert_close(both.params[0], gentle.params[0], rtol=0, atol=0)


@pytest.mark.parametrize("n_tasks, chunk", [(1, None), (2, 1)], ids=["whole", "chunked"])
def test_differentiable_loop_keeps_the_graph(n_tasks, chunk):
    """With differentiable=True, dθ_K/dθ_0 of SGD on linear2d task t is Π(I − lr·H_t),
    also when the rollouts advance one chunk at a time."""
    family = Linear2D(shots=6, query_shots=3)
    problem, tasks = family.problem(), family.sample(0, n_tasks).to("cpu", F64)
    lr, steps = 0.1, 3
    w0 = torch.tensor([[0.3, -0.2]], dtype=F64, requires_grad=True)
    result = inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(lr), steps)), {"weight": w0},
                        differentiable=True, chunk=chunk)
    assert result.final["weight"].requires_grad
    for t in range(n_tasks):
        final = result.final["weight"][t, 0]
        jac = torch.stack([torch.autograd.grad(final[j], w0, retain_graph=True)[0][0]
                           for j in range(2)])
        x = tasks.support["x"][t].numpy()
        expected = np.linalg.matrix_power(np.eye(2) - lr * 2.0 / len(x) * x.T @ x, steps)
        np.testing.assert_allclose(jac.numpy(), expected, rtol=0, atol=1e-12)


def test_chunked_loop_slices_initial_per_rollout():
    """A fold that starts from per-rollout values {name: [R, ...]} gives the same result
    whether the R rollouts advance together or one chunk at a time: each chunk starts
    from its own rows of ``initial`` (Σ of K steps' θ_{i+1} − θ_i is θ_K − θ_0)."""
    problem, tasks = _sinusoid(n_tasks=3)
    theta0 = problem.model.init(0, dtype=F64)
    spec = InnerSpec(sgd(0.05), 3, batch_size=4)
    start = {k: torch.arange(3, dtype=F64).reshape(3, *([1] * v.dim())) * 10 + torch.zeros_like(v)
             for k, v in theta0.items()}

    def fold(acc, prev, curr):
        return {k: acc[k] + (curr.params[k] - prev.params[k]) for k in acc}

    whole = inner_loop(Rollouts(problem, tasks, spec), theta0, on_segment=fold, initial=start,
                       chunk=3)
    chunked = inner_loop(Rollouts(problem, tasks, spec), theta0, on_segment=fold, initial=start,
                         chunk=1)
    for k, v in theta0.items():
        expected = start[k] + whole.final[k] - v
        torch.testing.assert_close(whole.accumulated[k], expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(chunked.accumulated[k], expected, rtol=0, atol=1e-12)

