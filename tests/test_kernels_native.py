"""The dispatch, the C kernels' boundary and build, NaN as torch has it, and a machine without a
compiler (simulated, never skipped). Numbers are compared with the plain autograd / vmap path."""
from __future__ import annotations

import ctypes
import subprocess
import threading

import numpy as np
import pytest
import torch
from test_kernels import HAVE_CC, assert_close, mlp_problem, task_set
from torch import nn

from trajviz.data.run import Slice, View
from trajviz.engine.inner import InnerSpec, inner_loop
from trajviz.engine.learners import MAML, Leap, Reptile
from trajviz.engine.surface import evaluate_chunk, evaluate_surface
from trajviz.kernels import (
    cache,
    calibrate,
    choose_birth,
    choose_plane,
    choose_step,
    kernels,
    native,
    native_birth,
    recording,
    requested,
)
from trajviz.kernels.mlp_plan import mlp_layers
from trajviz.pipeline.birthmap import compute_birth_map, rollout_statistics
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import flatten, from_module
from trajviz.problem.optim import InnerOptimizer, make_optimizer, sgd
from trajviz.problem.tasks import Problem, TaskSet, make_family
from trajviz.problem.tasks.base import mse_loss
from trajviz.spec.config import BirthmapConfig

needs_cc = pytest.mark.skipif(not HAVE_CC, reason="needs a C compiler (the no-compiler path "
                              "is tested below by simulating one)")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """Kernels built afresh into an empty cache, timings forgotten (restored after)."""
    monkeypatch.setenv("TRAJVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(cache, "_notified", set())
    native.library.cache_clear()
    calibrate.forget()
    yield tmp_path
    native.library.cache_clear()
    calibrate.forget()


def problem_of(module: nn.Module) -> Problem:
    torch.manual_seed(0)
    model = from_module("net", module)
    return Problem(model, mse_loss(model))


def plane_of(problem: Problem, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    origin = flatten(problem.model.init(seed=seed), problem.model.spec).float()
    return origin, 0.3 * torch.randn(2, origin.numel(), generator=g)


def batch_of(problem: Problem, n_tasks: int, n: int) -> dict[str, torch.Tensor]:
    """Random inputs and targets, [n_tasks, n, in] and [n_tasks, n, out], for the MLP."""
    layers = mlp_layers(problem)
    last = [x for x in layers if hasattr(x, "out_features")][-1]
    g = torch.Generator().manual_seed(0)
    return {"x": torch.randn(n_tasks, n, layers[0].in_features, generator=g),
            "y": torch.randn(n_tasks, n, last.out_features, generator=g)}


def coords(count: int, seed: int = 1) -> torch.Tensor:
    return 2 * torch.rand(count, 2, generator=torch.Generator().manual_seed(seed)) - 1


# ---------------------------------------------------------------- the request

def test_the_request_comes_from_the_context_then_the_environment(monkeypatch):
    monkeypatch.delenv("TRAJVIZ_KERNELS", raising=False)
    assert requested() == "auto"
    monkeypatch.setenv("TRAJVIZ_KERNELS", "torch")
    assert requested() == "torch"
    with kernels("plain"):
        assert requested() == "plain"
        with kernels(None):
            assert requested() == "plain"
    assert requested() == "torch"
    monkeypatch.setenv("TRAJVIZ_KERNELS", "fast")
    with pytest.raises(ValueError, match=r"TRAJVIZ_KERNELS=.fast. is not a kernels request; accepted: auto \| plain"):
        requested()


def test_a_request_is_per_thread_not_process_wide(monkeypatch):
    monkeypatch.delenv("TRAJVIZ_KERNELS", raising=False)
    seen, inside = {}, threading.Event()
    release = threading.Event()

    def other():
        with kernels("plain"):
            inside.set()
            release.wait(10)
            seen["other"] = requested()

    t = threading.Thread(target=other)
    t.start()
    inside.wait(10)
    seen["main"] = requested()  # while the other thread holds "plain"
    release.set()
    t.join()
    assert seen == {"main": "auto", "other": "plain"}


def test_recordings_nest_and_name_every_op():
    problem, tasks = mlp_problem("relu"), task_set(2, 5, torch.float32)
    spec = InnerSpec(sgd(0.1), 2)
    with recording() as outer:
        with kernels("torch"), recording() as inner:
            inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0))
        with kernels("plain"):
            inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0))
    assert inner == {"step": {"torch"}} and outer == {"step": {"plain", "torch"}}


def test_declines_give_reasons_and_an_explicit_request_says_so_once(own_cache, capsys):
    gelu = mlp_problem("gelu")
    batch = task_set(2, 5, torch.float32).support
    choice = choose_step(gelu, batch, "adam", request="torch")
    assert choice.name == "plain" and "activations identity, relu, tanh, sigmoid" in choice.declined[0][1]
    choose_step(gelu, batch, "adam", request="torch")
    err = capsys.readouterr().err
    assert err.count("kernels=torch: torch declines step") == 1
    native_choice = choose_step(mlp_problem("relu"), batch, "sgd", request="native")
    assert native_choice.name == "torch" and "no C inner step" in native_choice.declined[0][1]
    tanh = choose_plane(mlp_problem("tanh"), batch, torch.float32, 10, request="native")
    assert tanh.name == "torch" and "Tanh has no C form" in tanh.declined[0][1]
    double = choose_plane(mlp_problem("relu"), {k: v.double() for k, v in batch.items()},
                          torch.float64, 10, request="native")
    assert double.name == "torch" and "float32" in double.declined[0][1]
    assert choose_step(gelu, batch, "adam", request="auto").name == "plain"  # auto: no line
    assert "kernels=auto" not in capsys.readouterr().err


def test_an_optimiser_outside_the_table_runs_plain_and_not_as_sgd():
    problem, tasks = mlp_problem("relu"), task_set(2, 6, torch.float32)
    base = sgd(0.1)
    halved = InnerOptimizer("halving", (("lr", 0.1),), base.init,
                            lambda g, s, p: base.update({k: v / 2 for k, v in g.items()}, s, p))
    spec = InnerSpec(halved, 3)
    for request in ("native", "torch", "auto"):
        choice = choose_birth(problem, tasks, spec, request=request)
        assert choice.name == "plain" and "'halving'" in choice.declined[-1][1]
    with kernels("native"):
        got = inner_loop(Rollouts(problem, tasks, spec), problem.model.init(0),
                         record=True).trajectory
    plain_sgd = inner_loop(Rollouts(problem, tasks, InnerSpec(sgd(0.05), 3)),
                           problem.model.init(0), record=True).trajectory
    assert_close(got.params, plain_sgd.params, torch.float32)  # halving's steps, lr/2 as SGD


@pytest.mark.parametrize("learner", [MAML(), Reptile(), Leap(), Leap(norm=False)])
def test_learners_meta_gradients_on_the_torch_step_equal_plain(learner):
    family = make_family("sinusoid", {"hidden": (8, 8)})
    problem, tasks = family.problem(), family.sample(0, 3)
    spec = InnerSpec(make_optimizer("adam", 0.01), 4, batch_size=5)
    grads = {}
    for request in ("plain", "torch"):
        with kernels(request), recording() as ran:
            grads[request] = learner.meta_gradient(problem, problem.model.init(1), tasks, spec, 2).grad
        assert ran["step"] == {request}
    for k in grads["plain"]:
        assert_close(grads["torch"][k], grads["plain"][k], torch.float32, rtol32=1e-4)


# ---------------------------------------------------------------- the C boundary

@needs_cc
def test_arguments_are_checked_at_the_boundary_in_one_line():
    t = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"^native kernel argument q must be a contiguous CPU "
                                         r"torch.float32 tensor of shape \(4, 3\); got torch.float64"):
        native.typed(t.double(), torch.float32, (4, 3), "q")
    with pytest.raises(ValueError, match="contiguous=False"):
        native.typed(t.T, torch.float32, (3, 4), "w[1]")
    with pytest.raises(ValueError, match=r"shape \(4, 2\); got torch.float32 \(4, 3\)"):
        native.typed(t, torch.float32, (4, 2), "coords")
    t = torch.arange(12.0).reshape(4, 3)
    pointer = native.typed(t, torch.float32, (None, 3), "x")  # None: any size on that axis
    assert isinstance(pointer, ctypes.POINTER(ctypes.c_float)) and pointer[7] == 7.0


@needs_cc
def test_an_unknown_code_is_refused_by_the_kernel_not_run_as_another(own_cache):
    problem, tasks = mlp_problem("relu"), task_set(2, 6, torch.float32)
    spec = InnerSpec(make_optimizer("sgd", 0.1), 2)
    flat = flatten(problem.model.init(0), problem.model.spec)[None]
    real = native.BirthArgs.__init__

    def with_opt(self, **fields):
        real(self, **{**fields, "opt": 7})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(native.BirthArgs, "__init__", with_opt)
        with pytest.raises(RuntimeError, match="refused its arguments"):
            native_birth.statistics(problem, flat, tasks, spec, 0, repeat=2)
    layers = mlp_layers(problem)
    batch = tasks.support
    prepared = native.NativePlane.build(layers, *plane_of(problem), batch)
    bad = native.NativePlane(prepared.q, prepared.stacks, prepared.dims, (1, 5, 0), prepared.y,
                             prepared.samples)
    with pytest.raises(RuntimeError, match="trajviz_plane_mlp_sse refused"):
        bad.losses(coords(3))


@needs_cc
@pytest.mark.parametrize("net", [
    lambda: nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)),
    lambda: nn.Sequential(nn.Linear(3, 7), nn.ReLU(), nn.Linear(7, 13), nn.Identity(),
                          nn.Linear(13, 2), nn.ReLU()),
    lambda: nn.Sequential(nn.Linear(2, 9, bias=False), nn.ReLU(), nn.Linear(9, 5, bias=False),
                          nn.ReLU(), nn.Linear(5, 3)),
    lambda: nn.Linear(4, 2)], ids=["sinusoid", "odd widths", "bias-free", "one layer"])
@pytest.mark.parametrize("n_tasks,n", [(1, 1), (3, 37), (2, 1000)])
def test_native_plane_equals_plain_on_odd_shapes(net, n_tasks, n):
    problem = problem_of(net())
    batch = batch_of(problem, n_tasks, n)
    origin, basis = plane_of(problem)
    got = evaluate_chunk(problem, origin, basis, coords(23), batch, backend="native")
    want = evaluate_chunk(problem, origin.double(), basis.double(), coords(23).double(),
                          {k: v.double() for k, v in batch.items()}, method="vmap")
    assert got.shape == (23, n_tasks) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=1e-7)


@needs_cc
def test_native_single_layer_is_the_closed_form():
    problem = problem_of(nn.Linear(2, 1))
    origin = torch.tensor([1.0, -2.0, 0.5])  # w = (1, -2), c = 0.5
    basis = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a moves w₁, b moves c
    batch = {"x": torch.tensor([[[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]]),
             "y": torch.tensor([[[0.0], [1.0], [-1.0]]])}
    got = evaluate_chunk(problem, origin, basis, torch.tensor([[0.0, 0.0], [1.0, -0.5]]), batch,
                         backend="native")
    # (0, 0): residuals -0.5, 1.5, -4.5 → 22.75/3; (1, -0.5): w = (2, -2), c = 0 → 0, 3, -5 → 34/3
    np.testing.assert_allclose(got[:, 0].numpy(), [22.75 / 3, 34 / 3], rtol=1e-6)


@needs_cc
def test_native_birth_one_linear_layer_by_hand():
    # f(w, c) = mean((w·x + c − y)²) on x = (1, 3), y = (1, 2) from w = 2, c = 0.5: residuals
    # 1.5, 4.5 → f0 = 11.25, ∇ = (15, 6); SGD lr 0.01 → w = 1.85, c = 0.44, |Δθ| = 0.01·√(15² + 6²)
    problem = problem_of(nn.Linear(1, 1))
    tasks = TaskSet({"x": torch.tensor([[[1.0], [3.0]]]), "y": torch.tensor([[[1.0], [2.0]]])},
                    {}, torch.arange(1))
    spec = InnerSpec(make_optimizer("sgd", 0.01), 1, None)
    f, d = native_birth.statistics(problem, torch.tensor([[2.0, 0.5]]), tasks, spec, 0)
    assert f.tolist()[0] == pytest.approx([11.25, (1.29 ** 2 + 3.99 ** 2) / 2], rel=1e-6)
    assert float(d[0, 0]) == pytest.approx(0.01 * np.hypot(15, 6), rel=1e-6)


@needs_cc
def test_native_rollouts_and_points_get_the_same_numbers_however_split():
    problem, tasks = mlp_problem("relu", (2, 40, 40, 1)), task_set(3, 20, torch.float32)
    spec = InnerSpec(make_optimizer("adam", 0.01), 6, 4)
    flat = flatten(problem.model.init(0), problem.model.spec)
    theta = flat + 0.05 * torch.randn(3, flat.numel(), generator=torch.Generator().manual_seed(1))
    paired = tasks.select(torch.arange(3).repeat(3))
    before = torch.get_num_threads()
    try:
        runs = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            runs.append(native_birth.statistics(problem, theta, paired, spec, 3, repeat=3))
        one = native_birth.statistics(problem, theta[1:2], tasks, spec, 3, repeat=3)
        prepared = native.NativePlane.build(mlp_layers(problem), *plane_of(problem), tasks.support)
        planes = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            planes.append(prepared.losses(coords(31)))
    finally:
        torch.set_num_threads(before)
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    assert torch.equal(runs[0][0][3:6], one[0]) and torch.equal(runs[0][1][3:6], one[1])
    assert torch.equal(*planes)


# ---------------------------------------------------------------- NaN and infinity

@pytest.mark.parametrize("request_", ["torch", "native"])
def test_nan_and_inf_in_the_data_go_through_as_torch_has_them(request_):
    problem, tasks = mlp_problem("relu", (2, 40, 40, 1)), task_set(3, 20, torch.float32)
    x = tasks.support["x"].clone()
    x[0, 3, 0] = float("nan")  # ReLU(NaN) is NaN in torch: task 0's loss is NaN everywhere
    x[1, 5, 1] = float("inf")  # ±inf pre-activations: inf, or NaN where inf − inf
    support = {"x": x, "y": tasks.support["y"]}
    origin, basis = plane_of(problem)
    with kernels(request_), recording() as ran:
        got = evaluate_chunk(problem, origin, basis, coords(9), support)
    want = evaluate_chunk(problem, origin, basis, coords(9), support, method="vmap")
    assert ran["plane"] == {"native" if request_ == "native" and HAVE_CC else "torch"}
    assert torch.isnan(want[:, 0]).all()
    np.testing.assert_array_equal(torch.isnan(got).numpy(), torch.isnan(want).numpy())
    np.testing.assert_array_equal(torch.isinf(got).numpy(), torch.isinf(want).numpy())
    ok = torch.isfinite(want)
    np.testing.assert_allclose(got[ok].numpy(), want[ok].numpy(), rtol=1e-5)


@pytest.mark.parametrize("request_", ["torch", "native"])
def test_diverging_rollouts_are_non_finite_on_every_backend(request_):
    problem, tasks = mlp_problem("relu"), task_set(2, 9, torch.float32)
    spec = InnerSpec(make_optimizer("sgd", 40.0), 12, None)
    flat = flatten(problem.model.init(0), problem.model.spec)
    inits = flat + torch.randn(3, flat.numel(), generator=torch.Generator().manual_seed(0))
    out = {}
    for name in ("plain", request_):
        with kernels(name):
            out[name] = rollout_statistics(Rollouts(problem, tasks, spec, 0), inits,
                                           backend=choose_birth(problem, tasks, spec).name)
    diverged = ~np.isfinite(out["plain"]["length"])
    assert diverged.any()
    np.testing.assert_array_equal(~np.isfinite(out[request_]["length"]), diverged)


# ---------------------------------------------------------------- build, cache, no compiler

def sinusoid_surface(method: str = "auto"):
    family = make_family("sinusoid", {"shots": 40, "hidden": (40, 40)})
    problem = family.problem()
    origin = flatten(problem.model.init(seed=0), problem.model.spec).numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(origin.size, 2)))[0].T
    slc = Slice("random", origin.astype(np.float32), basis.astype(np.float32), np.full(2, np.nan),
                (-1.0, 1.0, -1.0, 1.0), "random plane")
    return evaluate_surface(problem, slc, family.sample(seed=1, n_tasks=2), (9, 8), method=method)


def test_without_a_compiler_every_request_runs_with_one_line(own_cache, monkeypatch, capsys):
    want = sinusoid_surface("vmap")
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(own_cache / "empty"))  # no cc, gcc or clang anywhere
    assert cache.c_compiler() is None and native.library() is None
    for request in ("native", "auto"):
        with kernels(request), recording() as ran:
            got = sinusoid_surface()
        assert ran["plane"] == {"torch"}
        np.testing.assert_allclose(got.loss, want.loss, rtol=1e-5)
    family = make_family("sinusoid", {})
    tasks = family.sample(0, 2, "heldout")
    spec = InnerSpec(make_optimizer("adam", 0.01), 3)
    choice = choose_birth(family.problem(), tasks, spec, request="native")
    assert choice.name == "torch" and choice.declined == (("native", "no C compiler to build the kernel"),)
    assert not list(own_cache.rglob("*.so"))
    err = capsys.readouterr().err
    assert err.count("native kernels skipped: no C compiler") == 1
    assert "using the torch kernels (same numbers to rounding, slower)" in err


@needs_cc
def test_the_build_and_the_timings_are_cached_together(own_cache, monkeypatch):
    with recording() as ran:
        sinusoid_surface()  # auto: builds the kernel, times native against torch
    assert ran["plane"] <= {"native", "torch"}
    built = list(own_cache.glob("native/plane_native-*.so"))
    key = built[0].name.split("-")[1].removesuffix(".so")
    assert (own_cache / "native" / f"plane-timings-v{calibrate.FORMAT}-{key}.json").exists()
    native.library.cache_clear()
    calibrate.forget()

    def refuse(*args, **kwargs):
        raise AssertionError("kept: neither built nor timed again")
    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(calibrate, "time_backends", refuse)
    with recording() as again:
        sinusoid_surface()
    assert again == ran and list(own_cache.glob("native/plane_native-*.so")) == built
    monkeypatch.setattr(native, "FLAGS", (*native.FLAGS, "-DNEW_BUILD"))  # a new build key
    assert native.build_key("plane_native") != key
    calibrate.forget()
    with pytest.raises(AssertionError, match="kept"):  # a new build is timed (and built) afresh
        with kernels("auto"):
            sinusoid_surface()


def test_a_failing_build_leaves_nothing_behind(own_cache, monkeypatch):
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails
    assert native.library() is None
    assert not [p for p in own_cache.rglob("*") if p.is_file() and p.suffix == ".so"]
    with recording() as ran:
        np.testing.assert_allclose(sinusoid_surface().loss, sinusoid_surface("vmap").loss, rtol=1e-5)
    assert ran["plane"] == {"torch", "plain"}


# ---------------------------------------------------------------- the birth map

@needs_cc
def test_the_map_runs_its_grid_natively_and_learners_on_the_inner_loop():
    family = make_family("sinusoid", {})
    problem, tasks = family.problem(), family.sample(0, 2, "heldout").to("cpu", torch.float32)
    spec = InnerSpec(make_optimizer("sgd", 0.003), 5, None)
    theta = flatten(problem.model.init(0), problem.model.spec).numpy()
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(theta.size, 2)))[0].T
    view = View("random", Slice("random", theta.astype(np.float64), basis, np.full(2, np.nan),
                                (-0.5, 0.5, -0.5, 0.5)), None, {}, {}, {}, {}, {})
    maps = {}
    for request in ("auto", "plain"):
        with kernels(request), recording() as ran:
            maps[request] = compute_birth_map(Rollouts(problem, tasks, spec, 3), view,
                                              {"me": theta},
                                              BirthmapConfig(grid=5, tasks=len(tasks)))
        assert ran["birth"] == {"native" if request == "auto" else "plain"}
    for stat in maps["auto"].mean:
        np.testing.assert_allclose(maps["auto"].mean[stat], maps["plain"].mean[stat], rtol=1e-4,
                                   atol=1e-7)
    with kernels("torch"):
        torch_map = compute_birth_map(Rollouts(problem, tasks, spec, 3), view, {"me": theta},
                                      BirthmapConfig(grid=5, tasks=len(tasks)))
    for stat in maps["auto"].learner_tasks:  # learners: the inner loop (torch step) on both
        np.testing.assert_array_equal(maps["auto"].learner_tasks[stat], torch_map.learner_tasks[stat])


def test_grid_chunks_are_sized_by_theta0_rows_and_task_data():
    family = make_family("sinusoid", {})
    problem, tasks = family.problem(), family.sample(0, 8, "heldout")  # P = 1761; 20 floats a task
    full = InnerSpec(make_optimizer("adam", 0.01), 32, None)
    assert native_birth.grid_chunk(problem, tasks, full, 100_000) == 2 * 2**20 // (4 * (1761 + 160))
    assert native_birth.grid_chunk(problem, tasks, full, 1681) == 211  # ⌈1681 / 8⌉
    assert native_birth.grid_chunk(problem, tasks, full, 1681, workers=16) == 27  # ⌈1681 / 64⌉
    mini = InnerSpec(make_optimizer("adam", 0.01), 32, 5)  # 33 batches of 5 of the 10 points
    assert native_birth.grid_chunk(problem, tasks, mini, 100_000) == 2 * 2**20 // (4 * (1761 + 8 * 330))


def test_ctypes_structs_mirror_the_c_structs():
    """Field order and types as the C files declare them (a mismatch would misread memory)."""
    import re
    from pathlib import Path
    for struct, c_file in ((native.PlaneArgs, "plane_native.c"), (native.BirthArgs, "birth_native.c")):
        source = (Path(native.__file__).with_name(c_file)).read_text()
        body = re.search(r"typedef struct \{([^{}]*)\} " + struct.__name__, source, re.DOTALL).group(1)
        names = re.findall(r"\*?\s*(?:const\s+)?\*?(\w+)\s*(?=[,;])", body)
        assert [n for n, _ in struct._fields_] == names
        assert ctypes.sizeof(struct) % 8 == 0
