"""The birth map's flat in-place statistics loop gives the plain inner loop's numbers, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trajviz.kernels import birthloop
from trajviz.pipeline.birthmap import rollout_statistics
from trajviz.engine.inner import InnerSpec
from trajviz.problem.optim import make_optimizer
from trajviz.problem.tasks import make_family


def sinusoid(n_tasks=3):
    family = make_family("sinusoid", {})
    return family.problem(), family.sample(0, n_tasks, "heldout").to("cpu", torch.float32)


def inits(problem, n, scale):
    origin = torch.cat([v.reshape(-1) for v in problem.model.init(0).values()])
    noise = torch.randn(n, origin.numel(), generator=torch.Generator().manual_seed(1))
    return origin + scale * noise


@pytest.mark.parametrize("name, options, batch_size", [
    ("sgd", {}, None), ("adam", {}, None), ("adam", {}, 4), ("momentum", {}, None),
    ("momentum", {"nesterov": True}, 4)])
def test_birth_loop_equals_the_plain_inner_loop_bitwise(name, options, batch_size):
    problem, tasks = sinusoid()
    spec = InnerSpec(make_optimizer(name, 0.01, **options), 5, batch_size)
    theta0 = inits(problem, 3, 0.05)
    assert birthloop.fast_plan(problem, tasks, spec) is not None
    fast = rollout_statistics(problem, theta0, tasks, spec, seed=4)
    with birthloop.inner_loop_only():
        assert birthloop.fast_plan(problem, tasks, spec) is None
        plain = rollout_statistics(problem, theta0, tasks, spec, seed=4)
    assert set(fast) == set(plain)
    for key in plain:
        assert fast[key].shape == (3, 3)
        np.testing.assert_array_equal(fast[key].numpy(), plain[key].numpy(), err_msg=key)
    assert np.isfinite(plain["auc"].numpy()).all()  # a real comparison, not NaN against NaN


def test_diverging_rollouts_are_nan_on_both_paths():
    problem, tasks = sinusoid(2)
    spec = InnerSpec(make_optimizer("sgd", 50.0), 8)
    theta0 = inits(problem, 2, 3.0)
    fast = rollout_statistics(problem, theta0, tasks, spec, seed=0)
    with birthloop.inner_loop_only():
        plain = rollout_statistics(problem, theta0, tasks, spec, seed=0)
    assert np.isnan(plain["auc"].numpy()).any()
    for key in plain:
        np.testing.assert_array_equal(fast[key].numpy(), plain[key].numpy(), err_msg=key)


def test_other_models_keep_the_plain_path():
    family = make_family("quadratic", {})
    tasks = family.sample(0, 2, "heldout")
    spec = InnerSpec(make_optimizer("sgd", 0.1), 3)
    assert birthloop.fast_plan(family.problem(), tasks, spec) is None
