"""Every kernel backend against the PLAIN autograd path, in one parametrised suite.

Each case runs one op (an inner loop's steps, a plane's losses, the birth
map's statistics) under one requested backend, asserts which backend actually
ran (``kernels.recording``), and compares its numbers with the same op under
``kernels("plain")``: autograd and vmap over ``problem.loss``, never another
fast path. Where a backend declines a case (no C form for an activation, no
hand-written derivative, float64 in the C kernels, no compiler here), the case
asserts the fallback the dispatcher must take instead.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from trajviz.data.run import Slice
from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.surface import evaluate_surface
from trajviz.engine.work import Work
from trajviz.kernels import cache, choose_birth, kernels, recording
from trajviz.kernels.tables import ACTIVATIONS, OPTIMIZERS
from trajviz.pipeline.birthmap import rollout_statistics
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import from_module
from trajviz.problem.optim import make_optimizer
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.problem.tasks.base import mse_loss

torch.set_num_threads(1)
HAVE_CC = cache.c_compiler() is not None
ACTS = ("relu", "tanh", "sigmoid", "identity", "gelu")
OPTS = {"sgd": {}, "momentum": {"nesterov": True}, "adam": {"beta1": 0.8}}
DTYPES = (torch.float32, torch.float64)


def mlp_problem(act: str, sizes=(2, 7, 5, 1), bias=True) -> Problem:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[act].module())
    torch.manual_seed(0)
    model = from_module(f"mlp-{act}", nn.Sequential(*layers))
    return Problem(model, mse_loss(model))


def task_set(n_tasks: int, n: int, dtype, seed=1, d_in=2, d_out=1) -> TaskSet:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_tasks, n, d_in, generator=g, dtype=torch.float64)
    y = torch.sin(x.sum(-1, keepdim=True)) + 0.1 * torch.randn(n_tasks, n, d_out, generator=g,
                                                                dtype=torch.float64)
    return TaskSet({"x": x.to(dtype), "y": y.to(dtype)}, {"x": x.to(dtype), "y": y.to(dtype)},
                   torch.arange(n_tasks))


def theta0(problem: Problem, dtype) -> dict:
    return {k: v.to(dtype) for k, v in problem.model.init(0).items()}


def native_takes(act: str, dtype, opt: str | None = None) -> bool:
    return (HAVE_CC and ACTIVATIONS[act].native is not None and dtype == torch.float32
            and (opt is None or OPTIMIZERS[opt].native is not None))


def torch_steps(act: str) -> bool:
    return ACTIVATIONS[act].backward is not None


def expected(op: str, request: str, act: str, dtype, opt: str | None = None) -> str:
    """The backend the dispatcher must run for this case."""
    if request == "native" and op != "step" and native_takes(act, dtype, opt):
        return "native"
    if op in ("step", "birth") and not torch_steps(act):
        return "plain"
    return "torch" if request in ("native", "torch") else "plain"


def assert_close(got, want, dtype, rtol32=2e-4) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
    scale = max(1.0, float(np.abs(want[np.isfinite(want)]).max(initial=0)))
    tol = 1e-9 if dtype == torch.float64 else rtol32
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


# ---------------------------------------------------------------- the equality suite

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("minibatch", [None, 4], ids=["full", "minibatch"])
@pytest.mark.parametrize("opt", list(OPTS))
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("request_", ["torch", "native"])
def test_inner_steps_equal_plain_autograd(request_, act, opt, minibatch, dtype):
    problem, tasks = mlp_problem(act), task_set(3, 9, dtype)
    spec = InnerSpec(make_optimizer(opt, 0.05, **OPTS[opt]), 4, minibatch)
    runs = {}
    for name in ("plain", request_):
        with kernels(name), recording() as ran:
            runs[name] = inner_loop(Rollouts(problem, tasks, spec, 3), theta0(problem, dtype),
                                    record=True).trajectory
        runs[name + ":ran"] = ran["step"]
    assert runs["plain:ran"] == {"plain"}
    assert runs[request_ + ":ran"] == {expected("step", request_, act, dtype)}
    for field in ("params", "losses", "grads", "query_losses"):
        assert_close(getattr(runs[request_], field), getattr(runs["plain"], field), dtype)
    assert runs["plain"].params[:, -1].ne(runs["plain"].params[:, 0]).any()  # it moved


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [3, 40])  # sample-major and feature-major layouts
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("request_", ["torch", "native", "auto"])
def test_plane_losses_equal_plain_vmap(request_, act, n, dtype):
    problem, tasks = mlp_problem(act), task_set(2, n, dtype)
    origin = torch.cat([v.reshape(-1) for v in problem.model.init(0).values()]).double().numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(origin.size, 2)))[0].T
    slc = Slice("random", origin, basis, np.full(2, np.nan), (-1.0, 1.0, -0.5, 0.5))
    out = {}
    for name in ("plain", request_):
        with kernels(name), recording() as ran:
            out[name] = evaluate_surface(problem, slc, tasks.to("cpu", dtype), (7, 5),
                                         work=Work(chunk=6)).loss
        out[name + ":ran"] = ran["plane"]
    assert out["plain:ran"] == {"plain"}
    if request_ == "auto":  # the measured fastest of the eligible fast backends
        assert out["auto:ran"] <= ({"native", "torch"} if native_takes(act, dtype) else {"torch"})
    else:
        assert out[request_ + ":ran"] == {expected("plane", request_, act, dtype)}
    assert_close(out[request_], out["plain"], dtype, rtol32=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("minibatch", [None, 4], ids=["full", "minibatch"])
@pytest.mark.parametrize("opt", list(OPTS))
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("request_", ["torch", "native"])
def test_birth_statistics_equal_plain_autograd(request_, act, opt, minibatch, dtype):
    problem, tasks = mlp_problem(act), task_set(2, 9, dtype)
    spec = InnerSpec(make_optimizer(opt, 0.02, **OPTS[opt]), 5, minibatch)
    flat = torch.cat([v.reshape(-1) for v in theta0(problem, dtype).values()])
    inits = flat + 0.05 * torch.randn(3, flat.numel(), generator=torch.Generator().manual_seed(4),
                                      dtype=torch.float64).to(dtype)
    out = {}
    for name in ("plain", request_):
        with kernels(name), recording() as ran:
            backend = choose_birth(problem, tasks, spec).name
            out[name] = rollout_statistics(Rollouts(problem, tasks, spec, 3), inits,
                                           backend=backend)
        out[name + ":ran"] = ran
    assert out["plain:ran"]["birth"] == {"plain"} and out["plain:ran"]["step"] == {"plain"}
    want = expected("birth", request_, act, dtype, opt)
    assert out[request_ + ":ran"]["birth"] == {want}
    if want != "native":  # the inner loop, on the step backend of the same request
        assert out[request_ + ":ran"]["step"] == {want}
    for stat in ("auc", "length", "param_length", "final_loss", "predicted"):
        assert_close(out[request_][stat], out["plain"][stat], dtype, rtol32=1e-3)
