"""Fused paths give the plain paths' numbers; the fallback is taken where they cannot run."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trajviz.kernels import compiled, fused, fused_leap
from trajviz.engine.inner import InnerSpec, inner_loop, losses_and_grads
from trajviz.engine.learners import MAML, Leap, Reptile
from trajviz.problem.models import flatten, from_module, mlp
from trajviz.problem.optim import adam, sgd
from trajviz.data.run import Slice
from trajviz.engine.surface import evaluate_surface
from trajviz.problem.tasks import Problem, Sinusoid
from trajviz.problem.tasks.base import cross_entropy_loss, mse_loss

torch.set_num_threads(1)


def close(a: dict, b: dict, rtol: float = 1e-5) -> None:
    for k in b:
        scale = max(float(b[k].abs().max()), 1.0)
        assert float((a[k] - b[k]).abs().max()) <= rtol * scale, k


def mlp_problem(sizes, activation="relu", bias=True) -> Problem:
    model = mlp(sizes, activation, bias)
    return Problem(model, mse_loss(model))


@pytest.mark.parametrize("activation,bias", [("relu", True), ("tanh", True), ("relu", False)])
def test_fused_losses_and_grads_match_autograd(activation, bias):
    problem = mlp_problem((3, 7, 5, 2), activation, bias)
    g = torch.Generator().manual_seed(0)
    params = {k: v.expand(4, *v.shape).clone() + 0.1 * torch.randn(4, *v.shape, generator=g)
              for k, v in problem.model.init(0).items()}
    batch = {"x": torch.randn(4, 6, 3, generator=g), "y": torch.randn(4, 6, 2, generator=g)}
    assert fused.path_name(problem, batch) == "fused"
    loss, grad = losses_and_grads(problem, params, batch)
    with fused.plain_only():
        assert fused.path_name(problem, batch) == "plain"
        ref_loss, ref_grad = losses_and_grads(problem, params, batch)
    assert torch.allclose(loss, ref_loss, rtol=1e-5, atol=1e-7)
    close(grad, ref_grad)
    # hand-computed: a 1-1 linear model, f = mean((w·x + c − y)²), ∂f/∂w = mean(2(wx+c−y)x)
    lin = mlp_problem((1, 1))
    p = {"0.weight": torch.tensor([[[2.0]]]), "0.bias": torch.tensor([[0.5]])}
    b = {"x": torch.tensor([[[1.0], [3.0]]]), "y": torch.tensor([[[1.0], [2.0]]])}
    f, gr = fused.mlp_losses_and_grads(fused.mlp_plan(lin), p, b)
    # residuals 1.5, 4.5: f = (2.25 + 20.25)/2; ∂w = (2·1.5·1 + 2·4.5·3)/2; ∂c = (3 + 9)/2
    assert float(f) == pytest.approx(11.25)
    assert float(gr["0.weight"]) == pytest.approx(15.0)
    assert float(gr["0.bias"]) == pytest.approx(6.0)


def test_plain_path_where_fused_does_not_apply(monkeypatch):
    gelu = mlp_problem((1, 4, 1), "gelu")
    batch = {"x": torch.zeros(2, 3, 1), "y": torch.zeros(2, 3, 1)}
    assert fused.mlp_plan(gelu) is None and fused.path_name(gelu, batch) == "plain"
    model = from_module("lin", nn.Linear(2, 3))
    xent = Problem(model, cross_entropy_loss(model))
    assert fused.path_name(xent, {"x": torch.zeros(2, 3, 2), "y": torch.zeros(2, 3, dtype=torch.long)}) == "plain"
    relu = mlp_problem((1, 4, 1))
    assert fused.path_name(relu, batch) == "fused"
    monkeypatch.setenv("TRAJVIZ_FUSED", "0")
    assert fused.path_name(relu, batch) == "plain"


def small_sinusoid(hidden=(8, 8)):
    family = Sinusoid(shots=40, hidden=hidden)
    return family.problem(), family.sample(3, 5), family.problem().model.init(1)


@pytest.mark.parametrize("chunk", [None, 2])
def test_fused_leap_sgd_matches_plain_loop(chunk):
    problem, tasks, theta0 = small_sinusoid()
    spec = InnerSpec(sgd(0.05), 6, batch_size=8)
    leap = Leap()
    assert fused_leap.applies(problem, tasks, spec)
    acc, losses, final = fused_leap.leap_sgd(leap, problem, theta0, tasks, spec, 4, chunk=chunk)
    with fused.plain_only():
        assert not fused_leap.applies(problem, tasks, spec)
        ref = inner_loop(problem, theta0, tasks, spec, seed=4, on_segment=leap.accumulate, record=True)
    close(acc, ref.accumulated)
    assert torch.allclose(losses, ref.trajectory.losses, rtol=1e-5)
    assert torch.allclose(final, ref.final_loss, rtol=1e-5)
    got = leap.meta_gradient(problem, theta0, tasks, spec, 4).grad
    with fused.plain_only():
        want = leap.meta_gradient(problem, theta0, tasks, spec, 4).grad
    close(got, want)


def test_rollouts_chunk_sizes():
    per = fused_leap.ARRAYS_PER_ROLLOUT * 100 * 4  # bytes per rollout of a 100-parameter model
    assert fused_leap.rollouts_chunk(100, 4, 16, budget=16 * per) == 16
    assert fused_leap.rollouts_chunk(100, 4, 16, budget=15 * per) == 8  # 8 + 8, not 15 + 1
    assert fused_leap.rollouts_chunk(100, 4, 16, budget=5 * per) == 4
    assert fused_leap.rollouts_chunk(100, 4, 16, budget=per - 1) == 1


def test_fused_leap_matches_for_every_leap_setting():
    problem, tasks, theta0 = small_sinusoid()
    spec = InnerSpec(sgd(0.05), 4)
    for leap in (Leap(norm=False), Leap(loss=False), Leap(stabilizer=False)):
        got = leap.meta_gradient(problem, theta0, tasks, spec, 0).grad
        with fused.plain_only():
            want = leap.meta_gradient(problem, theta0, tasks, spec, 0).grad
        close(got, want)


@pytest.mark.parametrize("learner", [MAML(), Reptile()])
def test_learners_through_the_fused_step_match_plain(learner):
    problem, tasks, theta0 = small_sinusoid()
    spec = InnerSpec(adam(0.01), 5, batch_size=8)
    got = learner.meta_gradient(problem, theta0, tasks, spec, 2).grad
    with fused.plain_only():
        want = learner.meta_gradient(problem, theta0, tasks, spec, 2).grad
    close(got, want)


def test_same_seed_same_arrays_on_the_fused_path():
    problem, tasks, theta0 = small_sinusoid()
    spec = InnerSpec(sgd(0.05), 5, batch_size=8)
    a = Leap().meta_gradient(problem, theta0, tasks, spec, 9).grad
    b = Leap().meta_gradient(problem, theta0, tasks, spec, 9).grad
    assert all(torch.equal(a[k], b[k]) for k in a)


def surface_case():
    family = Sinusoid(shots=12, hidden=(6, 6))
    problem = family.problem()
    spec = problem.model.spec
    origin = flatten(problem.model.init(0), spec).numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T.astype(np.float32)
    slc = Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 1.0, -1.0, 1.0), "random")
    return problem, slc, family.sample(0, 2)


def test_compiled_surface_falls_back_without_a_compiler(monkeypatch, capsys):
    problem, slc, tasks = surface_case()
    want = evaluate_surface(problem, slc, tasks, (5, 4), method="fused", chunk=3).loss
    monkeypatch.setattr(compiled, "compiler_available", lambda: False)
    monkeypatch.setattr(compiled, "_notified", set())
    compiled.compiled_mlp_mse.cache_clear()
    got = evaluate_surface(problem, slc, tasks, (5, 4), method="compiled", chunk=3).loss
    compiled.compiled_mlp_mse.cache_clear()
    assert np.array_equal(got, want)  # same fused maths; the padded last chunk is cut off
    assert "no C++ compiler" in capsys.readouterr().err


def test_failed_compile_falls_back_once_with_a_notice(monkeypatch, capsys):
    calls = []

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            raise RuntimeError("inductor exploded\nsecond line")
        return run

    monkeypatch.setattr(compiled, "compiler_available", lambda: True)
    monkeypatch.setattr(compiled, "_notified", set())
    monkeypatch.setattr(torch, "compile", broken_compile)
    fn = compiled.compile_or_none(lambda x: x * 2)
    assert fn(torch.tensor(3.0)) == 6.0 and fn(torch.tensor(4.0)) == 8.0
    assert len(calls) == 1  # the compiled version is not retried after failing
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "inductor exploded" in err and "second line" not in err


def test_auto_compiles_only_large_surfaces(monkeypatch):
    problem, slc, tasks = surface_case()
    assert compiled.surface_method("auto", problem, tasks.support, 10**12) == "auto"  # never, as measured
    monkeypatch.setattr(compiled, "COMPILE_MIN_FLOPS", 10**12)
    monkeypatch.setattr(compiled, "compiler_available", lambda: True)
    # forward FLOPs 2·points·T·N·(1·6 + 6·6 + 6·1) = 2304 per point here
    assert compiled.surface_method("auto", problem, tasks.support, 20) == "auto"
    assert compiled.surface_method("auto", problem, tasks.support, 434_027_777) == "auto"
    assert compiled.surface_method("auto", problem, tasks.support, 434_027_778) == "compiled"
    assert compiled.surface_method("vmap", problem, tasks.support, 10**9) == "vmap"
    monkeypatch.setattr(compiled, "compiler_available", lambda: False)
    assert compiled.surface_method("auto", problem, tasks.support, 10**9) == "auto"


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAJVIZ_CACHE", str(tmp_path))
    assert compiled.cache_dir() == tmp_path / "inductor"
    monkeypatch.delenv("TRAJVIZ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiled.cache_dir() == tmp_path / "xdg" / "trajviz" / "inductor"


def test_fused_leap_drops_the_same_diverged_rollouts_as_the_plain_loop():
    """A rollout whose loss grows past divergence_factor·f_0 (finite) is left out on both paths."""
    problem, tasks, theta0 = small_sinusoid()
    spec = InnerSpec(sgd(2.0), 4, divergence_factor=1.5)  # lr 2 overshoots: losses grow
    leap = Leap()
    with fused.plain_only():
        plain = inner_loop(problem, theta0, tasks, spec, seed=0, record=True)
        want = leap.meta_gradient(problem, theta0, tasks, spec, 0)
    assert (plain.diverged_at >= 0).any()
    assert torch.isfinite(plain.trajectory.losses[plain.diverged_at >= 0]).all()
    got = leap.meta_gradient(problem, theta0, tasks, spec, 0)
    assert got.diverged == want.diverged > 0
    close(got.grad, want.grad)
