"""Plugins: the shipped example loads, samples, and meta-trains; broken plugins are refused."""
from __future__ import annotations

import textwrap

import pytest
import torch

import demos.plugin_example  # noqa: F401 - declares "cubic" (@trajviz.task_family)
from trajviz.engine.inner import InnerSpec
from trajviz.engine.learners import Leap, OuterSpec, Training, meta_train, step_seed
from trajviz.problem.models import flatten
from trajviz.problem.optim import sgd
from trajviz.problem.tasks import TaskFamily, family_options, load_plugin, make_family
from trajviz.spec import plugins

SPEC = "demos.plugin_example:make_family"


def test_example_loads_through_make_family_with_options():
    family = make_family(SPEC, {"shots": 12, "noise": 0.0})
    assert isinstance(family, TaskFamily)
    assert family.name == "cubic"
    assert family_options(family)["shots"] == 12 and family_options(family)["noise"] == 0.0
    problem = family.problem()
    assert problem.model.spec.names == ("coef",) and problem.model.spec.shapes == ((4,),)


def test_example_tasks_are_reproducible_and_exact_cubics():
    family = make_family(SPEC, {"shots": 12, "query_shots": 9, "noise": 0.0})
    a, b = family.sample(3, 5), family.sample(3, 5)
    assert torch.equal(a.support["x"], b.support["x"]) and torch.equal(a.query["y"], b.query["y"])
    assert not torch.equal(a.support["x"], family.sample(4, 5).support["x"])
    assert not torch.equal(a.info["coef"], family.sample(3, 5, "heldout").info["coef"])
    assert a.support["x"].shape == (5, 12, 1) and a.query["y"].shape == (5, 9, 1)
    coef = a.info["coef"].double()
    x = a.support["x"].double()[..., 0]
    y = coef[:, :1] + coef[:, 1:2] * x + coef[:, 2:3] * x ** 2 + coef[:, 3:4] * x ** 3
    torch.testing.assert_close(a.support["y"][..., 0].double(), y, rtol=1e-5, atol=1e-5)
    # the model with the task's own coefficients fits it: zero loss
    problem = family.problem()
    for t in range(5):
        batch = {k: v[t].double() for k, v in a.support.items()}
        assert float(problem.loss({"coef": coef[t]}, batch)) < 1e-12


def test_example_meta_trains_two_leap_steps():
    family = make_family(SPEC, {"shots": 10})
    problem = family.problem()
    spec = InnerSpec(sgd(0.1), 4, batch_size=5)
    theta = problem.model.init(0, dtype=torch.float64)
    outer = OuterSpec(meta_steps=2, meta_batch=3, optimizer="sgd", lr=0.1)
    trace = meta_train(Leap(), Training(problem, family, spec, outer), theta, seed=1)
    assert trace.path.shape == (3, 4) and torch.isfinite(trace.path).all()
    assert trace.diverged.tolist() == [0, 0]
    # step 1 is θ0 − lr·(Leap's meta-gradient on the step's tasks)
    tasks = family.sample(step_seed(1, 0), 3, "train").to("cpu", torch.float64)
    meta = Leap().meta_gradient(problem, theta, tasks, spec, step_seed(1, 0))
    expected = flatten(theta, problem.model.spec) - 0.1 * flatten(meta.grad, problem.model.spec)
    torch.testing.assert_close(trace.path[1], expected, rtol=0, atol=1e-12)
    assert float((trace.path[2] - trace.path[1]).abs().max()) > 1e-6


def _write(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


@pytest.mark.parametrize("module, source, spec_attr, options, match", [
    ("tv_plug_noopt", """
        def make(shots=3):
            raise AssertionError("never called")
     """, "make", {"bogus": 1}, r"does not accept options \['bogus'\]"),
    ("tv_plug_noname", """
        class F:
            def problem(self): ...
            def sample(self, seed, n_tasks, split="train"): ...
        def make():
            return F()
     """, "make", None, r"returned F, which has no str 'name'"),
    ("tv_plug_nosample", """
        class F:
            name = "f"
            def problem(self): ...
        def make():
            return F()
     """, "make", None, r"family has no method sample\('seed', 'n_tasks', 'split'\)"),
    ("tv_plug_badsample", """
        class F:
            name = "f"
            def problem(self): ...
            def sample(self, seed): ...
        def make():
            return F()
     """, "make", None, r"sample must accept \('seed', 'n_tasks', 'split'\)"),
    ("tv_plug_badproblem", """
        class F:
            name = "f"
            def problem(self, size): ...
            def sample(self, seed, n_tasks, split): ...
        def make():
            return F()
     """, "make", None, r"problem must accept \(\)"),
    ("tv_plug_notcallable", """
        make = 3
     """, "make", None, r"has no callable 'make'"),
])
def test_broken_plugins_are_refused(tmp_path, monkeypatch, module, source, spec_attr, options, match):
    _write(tmp_path, monkeypatch, module, source)
    plugins.trust(f"{module}:{spec_attr}")
    with pytest.raises(ValueError, match=match):
        make_family(f"{module}:{spec_attr}", options)


@pytest.mark.parametrize("spec, trusted, match", [
    ("no_such_module_xyz:make", False, r"'no_such_module_xyz:make' is not a declared plugin"),
    ("no_such_module_xyz:make", True, r"cannot import plugin module 'no_such_module_xyz'"),
    ("demos.plugin_example:", False, r"must look like 'package.module:function'"),
    (":make_family", False, r"must look like 'package.module:function'"),
    ("demos.plugin_example:nothing", False, r"is not a declared plugin"),
    ("demos.plugin_example:nothing", True, r"has no callable 'nothing'"),
    ("os:system", False, r"'os:system' is not a declared plugin, so it is neither imported"),
])
def test_bad_plugin_specs_are_refused(spec, trusted, match):
    if trusted:
        plugins.trust(spec)
    with pytest.raises(ValueError, match=match):
        load_plugin(spec)


def test_the_example_is_declared_by_its_decorator_under_both_names():
    assert make_family("cubic", {"shots": 3}).shots == 3
    assert make_family(SPEC, {"shots": 4}).shots == 4
    assert plugins.is_marked(demos.plugin_example.make_family)


def test_example_refuses_bad_options():
    with pytest.raises(ValueError, match="cubic shots must be a positive integer, got 0"):
        make_family(SPEC, {"shots": 0})
    with pytest.raises(ValueError, match=r"unknown split 'test'; accepted: \['train', 'heldout'\]"):
        make_family(SPEC).sample(0, 2, "test")


def test_example_init_is_deterministic():
    problem = make_family(SPEC).problem()
    a, b = problem.model.init(7), problem.model.init(7)
    assert torch.equal(a["coef"], b["coef"]) and not torch.equal(a["coef"], problem.model.init(8)["coef"])
