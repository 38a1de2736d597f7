"""Meta-learners: meta-gradients against hand computations, finite differences and each other.

Leap's reference semantics (amzn/metalearn-leap, ``Updater.increment_grad``): segment i adds
    −(Δθ_i + Δf̃_i·∇f_i(θ_i)) / √(Δf_i² + ‖Δθ_i‖²)     (norm=True; ‖Δθ_i‖ alone when loss=False)
    −(Δθ_i + Δf̃_i·∇f_i(θ_i))                           (norm=False)
with Δf̃ = −|Δf| under the stabilizer and no Δf terms when loss=False; K steps give K segments
(the last one included), summed, then averaged over tasks.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from trajviz.engine.inner import InnerSpec, inner_loop, minibatch_indices, query_losses
from trajviz.engine.learners import (
    FOMAML,
    LEARNERS,
    MAML,
    Leap,
    Multitask,
    OuterSpec,
    RandomInit,
    Reptile,
    Training,
    make_learner,
    meta_train,
    step_seed,
)
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten, mlp, unflatten
from trajviz.problem.optim import adam, momentum, sgd
from trajviz.problem.tasks import Linear2D, Problem, Quadratic, Sinusoid, TaskSet
from trajviz.problem.tasks.base import mse_loss

F64 = torch.float64
COMBOS = list(itertools.product([True, False], repeat=3))  # (norm, loss, stabilizer)
COMBO_IDS = [f"norm={n}-loss={lo}-stab={s}" for n, lo, s in COMBOS]


def _bowls(a: list, c: list) -> tuple[Problem, TaskSet]:
    """Quadratic bowls ½(θ−c)ᵀA(θ−c), one per task, in float64."""
    problem = Quadratic(dim=len(c[0])).problem()
    bowl = {"A": torch.tensor(a, dtype=F64), "c": torch.tensor(c, dtype=F64)}
    return problem, TaskSet(bowl, dict(bowl), torch.arange(len(c)), minibatchable=False)


def _grad(learner, problem, theta0, tasks, spec, seed=0) -> np.ndarray:
    meta = learner.meta_gradient(problem, theta0, tasks, spec, seed)
    return flatten(meta.grad, problem.model.spec).numpy()


# ---------------------------------------------------------------- Leap, one segment, by hand

# Bowl A = diag(1, 4), c = (1, −1), θ0 = (0, 0), one SGD step with lr 0.6:
#   ∇f(θ0) = A(θ0 − c) = (−1, 4),  θ1 = θ0 − 0.6·(−1, 4) = (0.6, −2.4),  Δθ = (0.6, −2.4)
#   f0 = ½(1·1 + 4·1) = 2.5,  θ1 − c = (−0.4, −1.4),  f1 = ½(0.16 + 4·1.96) = 4.0
#   Δf = +1.5: the step is too large along the steep axis and the loss RISES.
#   ‖Δθ‖² = 0.36 + 5.76 = 6.12;  Δf² + ‖Δθ‖² = 2.25 + 6.12 = 8.37
#   loss=False:         −Δθ                        = (−0.6, 2.4)
#   loss, no stabilizer: −(Δθ + 1.5·(−1, 4))        = −(−0.9, 3.6) = (0.9, −3.6)
#   loss, stabilizer:    Δf̃ = −1.5: −(Δθ − 1.5·(−1, 4)) = −(2.1, −8.4) = (−2.1, 8.4)
RISING = {
    (False, False): [-0.6, 2.4],
    (False, True, False): [0.9, -3.6],
    (False, True, True): [-2.1, 8.4],
    (True, False): [-0.6 / math.sqrt(6.12), 2.4 / math.sqrt(6.12)],
    (True, True, False): [0.9 / math.sqrt(8.37), -3.6 / math.sqrt(8.37)],
    (True, True, True): [-2.1 / math.sqrt(8.37), 8.4 / math.sqrt(8.37)],
}

# Bowl A = I, c = (1, −1), θ0 = (0, 0), lr 0.6: ∇f(θ0) = (−1, 1), θ1 = (0.6, −0.6),
#   f0 = 1, f1 = ½(0.16 + 0.16) = 0.16, Δf = −0.84 (falls: the stabilizer changes nothing).
#   ‖Δθ‖² = 0.72;  Δf² + ‖Δθ‖² = 0.7056 + 0.72 = 1.4256
#   loss=False: (−0.6, 0.6);  loss: −(Δθ − 0.84·(−1, 1)) = −(1.44, −1.44) = (−1.44, 1.44)
FALLING = {
    (False, False): [-0.6, 0.6],
    (False, True, False): [-1.44, 1.44],
    (False, True, True): [-1.44, 1.44],
    (True, False): [-0.6 / math.sqrt(0.72), 0.6 / math.sqrt(0.72)],
    (True, True, False): [-1.44 / math.sqrt(1.4256), 1.44 / math.sqrt(1.4256)],
    (True, True, True): [-1.44 / math.sqrt(1.4256), 1.44 / math.sqrt(1.4256)],
}


def _expected(table, norm, loss, stabilizer):
    return np.array(table[(norm, loss, stabilizer) if loss else (norm, loss)])


@pytest.mark.parametrize("curvature, table", [(4, RISING), (1, FALLING)], ids=["rising", "falling"])
@pytest.mark.parametrize("norm, loss, stabilizer", COMBOS, ids=COMBO_IDS)
def test_leap_one_segment_by_hand(curvature, table, norm, loss, stabilizer):
    """One SGD step (lr 0.6) on the bowl diag(1, curvature): the loss rises for 4, falls for 1."""
    problem, tasks = _bowls([[[1, 0], [0, curvature]]], [[1, -1]])
    theta0 = {"theta": torch.zeros(2, dtype=F64)}
    got = _grad(Leap(norm, loss, stabilizer), problem, theta0, tasks, InnerSpec(sgd(0.6), 1))
    np.testing.assert_allclose(got, _expected(table, norm, loss, stabilizer), rtol=0, atol=1e-12)


@pytest.mark.parametrize("norm, loss, stabilizer", COMBOS, ids=COMBO_IDS)
def test_leap_averages_over_tasks(norm, loss, stabilizer):
    """Both bowls in one meta-batch: the mean of the two hand-computed increments."""
    problem, tasks = _bowls([[[1, 0], [0, 4]], [[1, 0], [0, 1]]], [[1, -1], [1, -1]])
    theta0 = {"theta": torch.zeros(2, dtype=F64)}
    got = _grad(Leap(norm, loss, stabilizer), problem, theta0, tasks, InnerSpec(sgd(0.6), 1))
    expected = 0.5 * (_expected(RISING, norm, loss, stabilizer)
                      + _expected(FALLING, norm, loss, stabilizer))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


# ------------------------------------------------- Leap, several segments, worked in numpy

def _leap_numpy(thetas, losses, grads, norm, loss, stabilizer) -> np.ndarray:
    """Σ_i increment_i for one task's path θ_0..θ_K (arrays [K+1, P], [K+1], [K+1, P])."""
    total = np.zeros_like(thetas[0])
    for i in range(len(thetas) - 1):
        d_theta = thetas[i + 1] - thetas[i]
        d_f = losses[i + 1] - losses[i]
        if stabilizer and d_f > 0:
            d_f = -d_f
        inc = -d_theta
        sq = d_theta @ d_theta
        if loss:
            inc = inc - d_f * grads[i]
            sq = sq + d_f ** 2
        if norm:
            inc = inc / math.sqrt(sq)
        total += inc
    return total


@pytest.mark.parametrize("norm, loss, stabilizer", COMBOS, ids=COMBO_IDS)
def test_leap_three_sgd_steps_on_linear2d_minibatches(norm, loss, stabilizer):
    """Linear regression y = x·w, θ = w ∈ R²; f_i = mean((X_i θ_i − y_i)²) on batch i,
    ∇f_i = 2/B·X_iᵀ(X_i θ_i − y_i), θ_{i+1} = θ_i − lr·∇f_i; f_{i+1} is on batch i+1."""
    family = Linear2D(shots=12, query_shots=3, fixed=True)
    problem, tasks = family.problem(), family.sample(0, 3).to("cpu", F64)
    lr, steps, batch = 0.8, 3, 4  # large enough that some segments rise
    spec = InnerSpec(sgd(lr), steps, batch_size=batch)
    theta0 = np.array([0.2, -0.3])
    idx = minibatch_indices(tasks, spec, seed=4)
    per_task, signs = [], []
    for t in range(3):
        x_all, y_all = tasks.support["x"][t].numpy(), tasks.support["y"][t, :, 0].numpy()
        thetas, losses, grads = [theta0], [], []
        for i in range(steps + 1):
            x, y = x_all[idx[t, i]], y_all[idx[t, i]]
            residual = x @ thetas[i] - y
            losses.append(np.mean(residual ** 2))
            grads.append(2.0 / batch * x.T @ residual)
            if i < steps:
                thetas.append(thetas[i] - lr * grads[i])
        signs += list(np.sign(np.diff(losses)))
        per_task.append(_leap_numpy(np.array(thetas), np.array(losses), np.array(grads),
                                    norm, loss, stabilizer))
    assert 1.0 in signs and -1.0 in signs  # the case covers rising and falling segments
    got = _grad(Leap(norm, loss, stabilizer), problem,
                {"weight": torch.tensor(theta0[None], dtype=F64)}, tasks, spec, seed=4)
    np.testing.assert_allclose(got, np.mean(per_task, axis=0), rtol=1e-10, atol=1e-12)


def _bowl_path(a, c, theta0, steps, displacement):
    """θ_i, f_i, ∇f_i on one bowl, with Δθ_i = displacement(i, ∇f_i) (the optimiser's step)."""
    thetas, losses, grads = [theta0], [], []
    for i in range(steps + 1):
        d = thetas[i] - c
        losses.append(0.5 * d @ a @ d)
        grads.append(a @ d)
        if i < steps:
            thetas.append(thetas[i] + displacement(i, grads[i]))
    return np.array(thetas), np.array(losses), np.array(grads)


def _momentum_steps(lr, beta):
    buf = [0.0]

    def step(i, g):
        buf[0] = beta * buf[0] + g
        return -lr * buf[0]
    return step


def _adam_steps(lr, b1, b2, eps):
    state = {"m": 0.0, "v": 0.0}

    def step(i, g):
        t = i + 1
        state["m"] = b1 * state["m"] + (1 - b1) * g
        state["v"] = b2 * state["v"] + (1 - b2) * g * g
        m_hat, v_hat = state["m"] / (1 - b1 ** t), state["v"] / (1 - b2 ** t)
        return -lr * m_hat / (np.sqrt(v_hat) + eps)
    return step


@pytest.mark.parametrize("norm, loss, stabilizer", COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize("opt, step_fn", [
    (momentum(0.3, 0.9), lambda: _momentum_steps(0.3, 0.9)),
    (adam(0.4, 0.9, 0.999, 1e-8), lambda: _adam_steps(0.4, 0.9, 0.999, 1e-8)),
], ids=["momentum", "adam"])
def test_leap_uses_the_optimisers_true_displacement(opt, step_fn, norm, loss, stabilizer):
    """With momentum or Adam, Δθ_i is the step the optimiser took (not −lr·∇f_i), while the
    loss term still uses ∇f_i(θ_i). Momentum overshoots here, so the loss rises too."""
    a, c = np.array([[2.0, 0.5], [0.5, 1.0]]), np.array([1.0, -2.0])
    theta0 = np.array([-1.0, 1.5])
    thetas, losses, grads = _bowl_path(a, c, theta0, 4, step_fn())
    if opt.name == "momentum":
        assert (np.diff(losses) > 0).any()
    expected = _leap_numpy(thetas, losses, grads, norm, loss, stabilizer)
    problem, tasks = _bowls([a.tolist()], [c.tolist()])
    got = _grad(Leap(norm, loss, stabilizer), problem, {"theta": torch.tensor(theta0)}, tasks,
                InnerSpec(opt, 4))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # a Leap that assumed plain SGD steps would be wrong: the displacement matters
    naive = _leap_numpy(np.concatenate([[theta0], theta0 - 0.3 * np.cumsum(grads[:-1], 0)]),
                        losses, grads, norm, loss, stabilizer)
    assert not np.allclose(got, naive, atol=1e-6)


@pytest.mark.parametrize("norm, loss, stabilizer", COMBOS, ids=COMBO_IDS)
def test_leap_zero_length_segment_gives_zero_not_nan(norm, loss, stabilizer):
    """Start at a bowl's minimiser: ∇f = 0, so Δθ = 0 and Δf = 0 on every segment; the
    increment is 0 (0/0 guarded). Beside a moving task the mean is half that task's."""
    problem, tasks = _bowls([[[1, 0], [0, 4]], [[1, 0], [0, 4]]], [[0, 0], [1, -1]])
    theta0 = {"theta": torch.zeros(2, dtype=F64)}
    learner, spec = Leap(norm, loss, stabilizer), InnerSpec(sgd(0.6), 1)
    still = learner.meta_gradient(problem, theta0, tasks.select([0]), spec, 0)
    assert still.diverged == 0
    np.testing.assert_array_equal(still.grad["theta"].numpy(), [0.0, 0.0])
    both = _grad(learner, problem, theta0, tasks, spec)
    np.testing.assert_allclose(both, 0.5 * _expected(RISING, norm, loss, stabilizer),
                               rtol=0, atol=1e-12)


def test_leap_segment_increment_matches_accumulate():
    """The pure per-segment increment and the fused in-place fold agree."""
    family = Sinusoid(shots=20, hidden=(6,))
    problem, tasks = family.problem(), family.sample(0, 3).to("cpu", F64)
    spec = InnerSpec(momentum(0.02, 0.8), 4, batch_size=5)
    theta0 = problem.model.init(0, dtype=F64)
    learner = Leap()

    def fold(acc, prev, curr):
        inc = learner.segment_increment(prev, curr)
        return inc if acc is None else {k: acc[k] + inc[k] for k in acc}

    pure = inner_loop(Rollouts(problem, tasks, spec, 2), theta0, on_segment=fold).accumulated
    fused = inner_loop(Rollouts(problem, tasks, spec, 2), theta0,
                       on_segment=learner.accumulate).accumulated
    for k in pure:
        torch.testing.assert_close(fused[k], pure[k], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------- Leap vs Reptile

@pytest.mark.parametrize("opt", [sgd(0.05), momentum(0.02, 0.9), adam(0.01)],
                         ids=["sgd", "momentum", "adam"])
def test_leap_without_loss_or_norm_is_reptile(opt):
    """Σ_i −Δθ_i telescopes to θ_0 − θ_K: Leap(loss=False, norm=False) is Reptile."""
    family = Sinusoid(shots=40, hidden=(8, 8))
    problem, tasks = family.problem(), family.sample(1, 5).to("cpu", F64)
    spec = InnerSpec(opt, 6, batch_size=10)
    theta0 = problem.model.init(2, dtype=F64)
    leap = Leap(norm=False, loss=False).meta_gradient(problem, theta0, tasks, spec, 11)
    reptile = Reptile().meta_gradient(problem, theta0, tasks, spec, 11)
    for k in theta0:
        torch.testing.assert_close(leap.grad[k], reptile.grad[k], rtol=0, atol=1e-12)
    assert float(flatten(reptile.grad, problem.model.spec).abs().max()) > 1e-3


def test_reptile_by_hand_on_bowls():
    """Two SGD steps on A = diag(1, 4): θ_{i+1} − c = (I − lr·A)(θ_i − c)."""
    problem, tasks = _bowls([[[1, 0], [0, 4]], [[2, 0], [0, 1]]], [[1, -1], [0, 2]])
    theta0 = np.array([0.5, 0.5])
    lr = 0.1
    expected = []
    for a, c in (([1, 4], [1, -1]), ([2, 1], [0, 2])):
        shrink = (1 - lr * np.array(a)) ** 2
        theta2 = np.array(c) + shrink * (theta0 - np.array(c))
        expected.append(theta0 - theta2)
    got = _grad(Reptile(), problem, {"theta": torch.tensor(theta0)}, tasks, InnerSpec(sgd(lr), 2))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), rtol=0, atol=1e-14)


# ------------------------------------------------------------------------- MAML, FOMAML

def _tanh_sinusoid(n_tasks=2):
    family = Sinusoid(shots=8, query_shots=6)
    model = mlp((1, 3, 1), activation="tanh")
    return Problem(model, mse_loss(model)), family.sample(4, n_tasks).to("cpu", F64)


def _linear2d(n_tasks=3):
    family = Linear2D(shots=8, query_shots=5)
    return family.problem(), family.sample(6, n_tasks).to("cpu", F64)


def _meta_loss(problem, theta_vec, tasks, spec, seed):
    """Mean query loss after K inner steps from θ0 = theta_vec (no autograd)."""
    theta0 = unflatten(theta_vec, problem.model.spec)
    final = inner_loop(Rollouts(problem, tasks, spec, seed), theta0).final
    return float(query_losses(problem, final, tasks).mean())


@pytest.mark.parametrize("make_problem", [_tanh_sinusoid, _linear2d], ids=["mlp131", "linear2d"])
@pytest.mark.parametrize("spec", [
    InnerSpec(sgd(0.3), 2), InnerSpec(sgd(0.2), 3, batch_size=4),
    InnerSpec(momentum(0.1, 0.9), 3), InnerSpec(momentum(0.1, 0.5, nesterov=True), 2, batch_size=3),
], ids=["sgd-K2", "sgd-K3-mb", "momentum-K3", "nesterov-K2-mb"])
def test_maml_matches_finite_differences(make_problem, spec):
    problem, tasks = make_problem()
    seed = 3
    theta0 = problem.model.init(5, dtype=F64)
    got = _grad(MAML(), problem, theta0, tasks, spec, seed)
    base = flatten(theta0, problem.model.spec)
    eps = 1e-5
    fd = np.zeros(base.numel())
    for j in range(base.numel()):
        e = torch.zeros_like(base)
        e[j] = eps
        fd[j] = (_meta_loss(problem, base + e, tasks, spec, seed)
                 - _meta_loss(problem, base - e, tasks, spec, seed)) / (2 * eps)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    # second order matters: FOMAML's answer is measurably different
    fo = _grad(FOMAML(), problem, theta0, tasks, spec, seed)
    assert np.abs(fo - fd).max() > 1e-4


def test_first_order_maml_is_fomaml():
    problem, tasks = _tanh_sinusoid(3)
    spec = InnerSpec(momentum(0.1, 0.9), 3, batch_size=4)
    theta0 = problem.model.init(1, dtype=F64)
    a = MAML(first_order=True).meta_gradient(problem, theta0, tasks, spec, 2)
    b = FOMAML().meta_gradient(problem, theta0, tasks, spec, 2)
    for k in theta0:
        torch.testing.assert_close(a.grad[k], b.grad[k], rtol=0, atol=0)


def test_fomaml_by_hand_on_linear2d():
    """FOMAML = mean over tasks of the query gradient 2/M·X_qᵀ(X_q θ_K − y_q) at θ_K."""
    problem, tasks = _linear2d()
    lr, steps = 0.2, 2
    theta0 = np.array([0.1, 0.4])
    expected = []
    for t in range(3):
        xs, ys = tasks.support["x"][t].numpy(), tasks.support["y"][t, :, 0].numpy()
        xq, yq = tasks.query["x"][t].numpy(), tasks.query["y"][t, :, 0].numpy()
        theta = theta0
        for _ in range(steps):
            theta = theta - lr * 2.0 / len(xs) * xs.T @ (xs @ theta - ys)
        expected.append(2.0 / len(xq) * xq.T @ (xq @ theta - yq))
    got = _grad(FOMAML(), problem, {"weight": torch.tensor(theta0[None])}, tasks,
                InnerSpec(sgd(lr), steps))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), rtol=1e-12, atol=1e-14)


def test_multitask_by_hand_on_linear2d():
    """Multitask: ∇ of the mean over tasks of the loss on support ∪ query, at θ0."""
    problem, tasks = _linear2d()
    theta0 = np.array([0.3, -0.1])
    expected = []
    for t in range(3):
        x = np.concatenate([tasks.support["x"][t].numpy(), tasks.query["x"][t].numpy()])
        y = np.concatenate([tasks.support["y"][t, :, 0].numpy(), tasks.query["y"][t, :, 0].numpy()])
        expected.append(2.0 / len(x) * x.T @ (x @ theta0 - y))
    got = _grad(Multitask(), problem, {"weight": torch.tensor(theta0[None])}, tasks,
                InnerSpec(sgd(0.1), 1))
    np.testing.assert_allclose(got, np.mean(expected, axis=0), rtol=1e-12, atol=1e-14)


def test_random_init_does_not_train():
    problem, tasks = _linear2d()
    theta0 = {"weight": torch.tensor([[0.3, -0.1]], dtype=F64)}
    meta = RandomInit().meta_gradient(problem, theta0, tasks, InnerSpec(sgd(0.1), 2), 0)
    assert torch.equal(meta.grad["weight"], torch.zeros(1, 2, dtype=F64))
    assert RandomInit.trains is False
    family = Linear2D()
    trace = meta_train(RandomInit(),
                       Training(problem, family, InnerSpec(sgd(0.1), 2),
                                OuterSpec(meta_steps=3, meta_batch=2)),
                       theta0)
    assert torch.equal(trace.path, theta0["weight"].reshape(1, 2).expand(4, 2))


# -------------------------------------------------------------------- divergence is ignored

@pytest.mark.parametrize("learner", [Leap(), Leap(norm=False, loss=False), Reptile(), FOMAML(),
                                     MAML()], ids=["leap", "leap-energy", "reptile", "fomaml", "maml"])
def test_meta_gradient_ignores_diverged_rollouts(learner):
    """SGD with lr 1.5 converges on a gentle bowl and overflows on a steep one (curvature
    1000) at step 49: the meta-gradient over both equals the gentle task's alone."""
    problem, tasks = _bowls([[[1, 0], [0, 1]], [[1, 0], [0, 1000]]], [[1, -1], [0.5, 0.5]])
    theta0 = {"theta": torch.tensor([0.2, 0.1], dtype=F64)}
    spec = InnerSpec(sgd(1.5), 60)
    both = learner.meta_gradient(problem, theta0, tasks, spec, 0)
    gentle = learner.meta_gradient(problem, theta0, tasks.select([0]), spec, 0)
    assert both.diverged == 1 and gentle.diverged == 0
    assert torch.isfinite(both.grad["theta"]).all()
    torch.testing.assert_close(both.grad["theta"], gentle.grad["theta"], rtol=0, atol=1e-12)
    assert float(gentle.grad["theta"].abs().max()) > 0 or learner.name in ("fomaml", "maml")


def test_all_diverged_gives_zero_and_a_count():
    problem, tasks = _bowls([[[1000, 0], [0, 1000]]] * 2, [[1, 1], [2, 2]])
    meta = Leap().meta_gradient(problem, {"theta": torch.zeros(2, dtype=F64)}, tasks,
                                InnerSpec(sgd(1.5), 60), 0)
    assert meta.diverged == 2
    assert torch.equal(meta.grad["theta"], torch.zeros(2, dtype=F64))


# ---------------------------------------------------------------------- the shared outer loop

def test_meta_train_applies_the_outer_optimiser_to_each_meta_gradient():
    family = Linear2D(shots=6, query_shots=4)
    problem = family.problem()
    spec = InnerSpec(sgd(0.1), 2, batch_size=3)
    theta = problem.model.init(0, dtype=F64)
    outer = OuterSpec(meta_steps=3, meta_batch=4, optimizer="sgd", lr=0.5, eval_every=2)
    seen = []

    def evaluate(theta0):
        seen.append(flatten(theta0, problem.model.spec).clone())
        return {"norm": float(theta0["weight"].norm())}

    trace = meta_train(Leap(), Training(problem, family, spec, outer), theta, seed=7,
                       evaluate=evaluate)
    assert trace.learner == "leap" and trace.path.shape == (4, 2)
    # replay: θ_{s+1} = θ_s − lr·g_s on the meta-batch sampled from step_seed(seed, s)
    expected = [flatten(theta, problem.model.spec)]
    for s in range(3):
        seed_s = step_seed(7, s)
        tasks = family.sample(seed_s, 4, "train").to("cpu", F64)
        g = Leap().meta_gradient(problem, unflatten(expected[-1], problem.model.spec), tasks,
                                 spec, seed_s)
        expected.append(expected[-1] - 0.5 * flatten(g.grad, problem.model.spec))
    torch.testing.assert_close(trace.path, torch.stack(expected), rtol=0, atol=1e-12)
    torch.testing.assert_close(flatten(trace.final_theta0, problem.model.spec), expected[-1],
                               rtol=0, atol=0)
    assert trace.eval_steps.tolist() == [0, 2, 3]
    torch.testing.assert_close(torch.stack(seen), torch.stack([expected[i] for i in (0, 2, 3)]))
    assert trace.diverged.tolist() == [0, 0, 0]
    assert trace.evals["norm"].shape == (3,)


class _Spy:
    """Wraps a learner and records what the outer loop hands it at each meta-step:
    task ids, the support and query data, the seed and the minibatches it implies."""

    def __init__(self, learner):
        self.learner, self.name, self.trains, self.seen = learner, learner.name, learner.trains, []

    def meta_gradient(self, problem, theta0, tasks, inner, seed):
        self.seen.append((tasks.ids.tolist(), {k: v.clone() for k, v in tasks.support.items()},
                          {k: v.clone() for k, v in tasks.query.items()}, seed,
                          minibatch_indices(tasks, inner, seed)))
        return self.learner.meta_gradient(problem, theta0, tasks, inner, seed)


def test_every_learner_gets_the_same_tasks():
    """Meta-train every registered learner from the same seed: each step hands every
    training learner identical task ids, data, seed and minibatches, a fresh set per step
    (step_seed depends on the seed and the step, never on the learner)."""
    family = Sinusoid(shots=8, query_shots=3, hidden=(4,))
    problem = family.problem()
    spec = InnerSpec(sgd(0.01), 2, batch_size=3)
    outer = OuterSpec(meta_steps=3, meta_batch=2, eval_every=3)
    spies = {name: _Spy(make_learner(name)) for name in LEARNERS}
    for spy in spies.values():
        meta_train(spy, Training(problem, family, spec, outer), problem.model.init(0, dtype=F64),
                   seed=5)
    assert spies.pop("random").seen == []  # a fixed initialisation is never handed tasks
    reference = spies.pop("leap").seen
    assert len(reference) == 3
    assert len({step for _, _, _, step, _ in reference}) == 3  # a new seed every step
    assert not torch.equal(reference[0][1]["y"], reference[1][1]["y"])  # and new tasks
    for step in range(3):
        ids, support, query, seed, batches = reference[step]
        assert seed == step_seed(5, step) and batches.shape == (2, 3, 3)
        for name, spy in spies.items():
            other = spy.seen[step]
            assert other[0] == ids and other[3] == seed, name
            for mine, theirs in ((support, other[1]), (query, other[2])):
                assert all(torch.equal(mine[k], theirs[k]) for k in mine), name
            np.testing.assert_array_equal(other[4], batches)


# --------------------------------------------------------------------------- bad input

def test_registry_names():
    assert sorted(LEARNERS) == ["fomaml", "leap", "maml", "multitask", "random", "reptile"]
    assert make_learner("leap", {"norm": False}) == Leap(norm=False)
    assert make_learner("maml", {"first_order": True}) == MAML(first_order=True)


def test_make_learner_refuses_an_unknown_name():
    with pytest.raises(ValueError, match=(r"unknown learner 'leep'; accepted: \['fomaml', 'leap', "
                                          r"'maml', 'multitask', 'random', 'reptile'\]")):
        make_learner("leep")


def test_maml_through_adam_with_a_dead_relu_stays_finite_and_matches_fd():
    """A gradient entry that is exactly 0 gives Adam's v = 0, where √ has an infinite
    derivative; the meta-gradient must stay finite (and right) anyway."""
    problem, tasks = _linear2d()
    spec = InnerSpec(adam(0.05), 2)
    theta0 = problem.model.init(5, dtype=F64)
    theta0 = {"weight": torch.tensor([[0.3, 0.0]], dtype=F64)}
    # a task whose second input is always 0: ∂f/∂w₂ is exactly 0 at every step
    x = tasks.support["x"].clone()
    x[..., 1] = 0.0
    zeroed = TaskSet({"x": x, "y": tasks.support["y"]}, {"x": x, "y": tasks.support["y"]}, tasks.ids)
    got = _grad(MAML(), problem, theta0, zeroed, spec, 0)
    assert np.isfinite(got).all()
    base = flatten(theta0, problem.model.spec)
    e = torch.tensor([1e-6, 0.0], dtype=F64)
    fd = (_meta_loss(problem, base + e, zeroed, spec, 0) - _meta_loss(problem, base - e, zeroed, spec, 0)) / 2e-6
    assert got[0] == pytest.approx(fd, rel=1e-5)
    assert got[1] == 0.0


def test_outer_loop_skips_a_non_finite_meta_gradient():
    """A NaN meta-gradient would poison θ0 for good: the step is skipped and counted."""
    family = Linear2D(shots=6, query_shots=4)
    problem = family.problem()
    theta = problem.model.init(0, dtype=F64)

    class Broken:
        name, trains = "broken", True

        def meta_gradient(self, problem, theta0, tasks, inner, seed):
            from trajviz.engine.learners import MetaGradient
            return MetaGradient({k: torch.full_like(v, float("nan")) for k, v in theta0.items()})

    trace = meta_train(Broken(),
                       Training(problem, family, InnerSpec(sgd(0.1), 2),
                                OuterSpec(meta_steps=2, meta_batch=3, eval_every=1)),
                       theta)
    assert torch.isfinite(trace.path).all()
    torch.testing.assert_close(trace.path[-1], trace.path[0], rtol=0, atol=0)
    assert trace.diverged.tolist() == [3, 3]
