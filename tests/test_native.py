"""The native surface kernel gives the eager evaluator's numbers; without a compiler, the eager path."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from trajviz.kernels import native
from trajviz.kernels.mlp_plan import mlp_layers, prepare_plane
from trajviz.problem.models import flatten, from_module
from trajviz.data.run import Slice
from trajviz.engine.surface import evaluate_surface
from trajviz.problem.tasks import Problem, Sinusoid
from trajviz.problem.tasks.base import mse_loss

pytestmark = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A kernel built afresh into an empty cache (and the process-wide one restored after)."""
    monkeypatch.setenv("TRAJVIZ_CACHE", str(tmp_path))
    native.library.cache_clear()
    yield tmp_path
    native.library.cache_clear()


def problem_of(module: nn.Module) -> Problem:
    model = from_module("net", module)
    return Problem(model, mse_loss(model))


def plane(problem: Problem, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    origin = flatten(problem.model.init(seed=seed), problem.model.spec).float()
    return origin, 0.3 * torch.randn(2, origin.numel(), generator=g)


def batch_of(n_tasks: int, n: int, d_in: int, d_out: int, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n_tasks, n, d_in, generator=g),
            "y": torch.randn(n_tasks, n, d_out, generator=g)}


def coords(count: int, seed: int = 1) -> torch.Tensor:
    return 2 * torch.rand(count, 2, generator=torch.Generator().manual_seed(seed)) - 1


NETS = {
    # sizes chosen so that rows (tasks × samples) and widths leave remainders against the
    # kernel's 16-sample strips and 6-row register tiles
    "sinusoid": lambda: nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(),
                                      nn.Linear(40, 1)),
    "odd widths": lambda: nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 13),
                                        nn.Identity(), nn.Linear(13, 2), nn.ReLU()),
    "bias-free": lambda: nn.Sequential(nn.Linear(2, 9, bias=False), nn.ReLU(),
                                       nn.Linear(9, 5, bias=False), nn.ReLU(), nn.Linear(5, 3)),
    "one layer": lambda: nn.Linear(4, 2),
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("n_tasks,n", [(1, 1), (3, 37), (2, 1000)])
def test_native_equals_the_eager_fused_evaluator(name, n_tasks, n):
    torch.manual_seed(0)
    problem = problem_of(NETS[name]())
    layers = mlp_layers(problem)
    first, last = layers[0], [x for x in layers if hasattr(x, "out_features")][-1]
    batch = batch_of(n_tasks, n, first.in_features, last.out_features)
    origin, basis = plane(problem, 2)
    at = coords(23)
    got = native.NativePlane.build(layers, origin, basis, batch).losses(at)
    want = prepare_plane(layers, origin.double(), basis.double(),
                         {k: v.double() for k, v in batch.items()}).losses(at.double())
    assert got.shape == (23, n_tasks) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=1e-7)


def test_native_single_layer_is_the_closed_form():
    # f(a, b) = mean over samples and outputs of ((W₀ + aW_u + bW_v)x + c(a, b) − y)²
    problem = problem_of(nn.Linear(2, 1))
    layers = mlp_layers(problem)
    origin = torch.tensor([1.0, -2.0, 0.5])  # w = (1, -2), c = 0.5
    basis = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a moves w₁, b moves c
    batch = {"x": torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]]),
             "y": torch.tensor([[[0.0], [1.0], [-1.0]]])}
    at = torch.tensor([[0.0, 0.0], [1.0, -0.5]])
    got = native.NativePlane.build(layers, origin, basis, batch).losses(at)
    # (0, 0): predictions -0.5, 2.5, -5.5 → residuals -0.5, 1.5, -4.5 → (0.25 + 2.25 + 20.25)/3
    # (1, -0.5): w = (2, -2), c = 0 → predictions 0, 4, -6 → residuals 0, 3, -5 → 34/3
    np.testing.assert_allclose(got[:, 0].numpy(), [22.75 / 3, 34 / 3], rtol=1e-6)


def test_threads_split_the_points_without_changing_a_number():
    problem = problem_of(NETS["sinusoid"]())
    layers = mlp_layers(problem)
    batch = batch_of(2, 50, 1, 1)
    prepared = native.NativePlane.build(layers, *plane(problem, 3), batch)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = prepared.losses(coords(31))
        torch.set_num_threads(3)
        three = prepared.losses(coords(31))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, three)


def test_other_activations_and_float64_keep_the_eager_path():
    tanh = problem_of(nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1)))
    batch = batch_of(1, 5, 1, 1)
    assert not native.native_applies(mlp_layers(tanh), batch)
    assert native.NativePlane.build(mlp_layers(tanh), *plane(tanh, 0), batch) is None
    relu = problem_of(NETS["sinusoid"]())
    double = {k: v.double() for k, v in batch.items()}
    assert native.native_applies(mlp_layers(relu), batch)
    assert not native.native_applies(mlp_layers(relu), double)


def sinusoid_surface(method: str):
    family = Sinusoid(shots=40, hidden=(40, 40))
    problem = family.problem()
    spec = problem.model.spec
    origin = flatten(problem.model.init(seed=0), spec).numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T
    slc = Slice("random", origin.astype(np.float32), basis.astype(np.float32), np.full(2, np.nan),
                (-1.0, 1.0, -1.0, 1.0), "random plane")
    return evaluate_surface(problem, slc, family.sample(seed=1, n_tasks=2), (9, 8), method=method)


def test_surfaces_take_the_kernel_and_agree_with_the_eager_path(own_cache):
    auto, fused = sinusoid_surface("auto"), sinusoid_surface("fused")
    assert list(own_cache.glob("native/plane_native-*.so"))  # "auto" built and used the kernel
    np.testing.assert_allclose(auto.loss, fused.loss, rtol=2e-5)


def test_the_build_is_cached_on_disk(own_cache, monkeypatch):
    assert native.library() is not None
    built = list(own_cache.glob("native/*.so"))
    native.library.cache_clear()

    def no_compiler(*args, **kwargs):
        raise AssertionError("the cached build should have been loaded")
    monkeypatch.setattr(subprocess, "run", no_compiler)
    assert native.library() is not None and list(own_cache.glob("native/*.so")) == built
    assert not list(own_cache.glob("native/*.so.*")) and not list(own_cache.glob("native/tmp*"))


def test_no_compiler_gives_one_notice_and_the_same_surface(own_cache, monkeypatch, capsys):
    want = sinusoid_surface("fused")
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert native.c_compiler() is None and native.library() is None
    got = sinusoid_surface("auto")
    assert not list(own_cache.glob("native/*.so"))
    np.testing.assert_array_equal(got.loss, want.loss)
    err = capsys.readouterr().err
    assert err.count("native kernels skipped: no C compiler") <= 1


def test_a_failing_build_leaves_nothing_behind(own_cache, monkeypatch, capsys):
    def broken(cmd, **kwargs):
        raise subprocess.CalledProcessError(1, cmd)
    monkeypatch.setattr(subprocess, "run", broken)
    assert native.library() is None
    assert not [p for p in own_cache.rglob("*") if p.is_file()]
    np.testing.assert_array_equal(sinusoid_surface("auto").loss, sinusoid_surface("fused").loss)
