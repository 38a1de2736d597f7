"""config -> Run: fairness, determinism, honesty of the exact slice, the Python API."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import trajviz
from trajviz.pipeline.experiment import run_experiment, subsample_steps
from trajviz.problem.tasks import make_family
from trajviz.spec.config import from_dict


def tiny(**changes):
    data = {"family": "linear2d", "learners": ["leap", "reptile", "multitask", "random"],
            "inner": {"steps": 4, "lr": 0.1}, "outer": {"meta_steps": 3, "meta_batch": 3, "eval_every": 2,
                                                       "eval_tasks": 2, "lr": 0.01},
            "heldout_tasks": 3, "slices": {"kinds": ["exact", "pca"], "resolution": 9}, "seed": 5}
    data.update(changes)
    return from_dict(data)


@pytest.fixture(scope="module")
def run64():
    return run_experiment(tiny(dtype="float64"))


def arrays_of(run):
    for name, rec in run.learners.items():
        for field in ("theta0", "meta_path", "params", "losses", "grads", "query_losses", "diverged_at"):
            yield f"{name}.{field}", getattr(rec, field)
    for vname, view in run.views.items():
        yield f"{vname}.surface", view.surface.loss
        for name in view.coords:
            yield f"{vname}.coords.{name}", view.coords[name]
            yield f"{vname}.plane.{name}", view.plane_loss[name]


def test_same_config_and_seed_give_bit_identical_arrays():
    a, b = run_experiment(tiny()), run_experiment(tiny())
    for (ka, va), (kb, vb) in zip(arrays_of(a), arrays_of(b), strict=True):
        assert ka == kb and va.dtype == vb.dtype
        assert np.array_equal(va, vb, equal_nan=True), ka
    c = run_experiment(tiny(seed=6))
    assert not np.array_equal(a.learners["leap"].params, c.learners["leap"].params)


def test_exact_slice_reproduces_recorded_losses(run64):
    view = run64.views["exact"]
    for name, rec in run64.learners.items():
        np.testing.assert_allclose(view.coords[name], rec.params, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(view.residual[name], 0.0)
        np.testing.assert_allclose(view.plane_loss[name], rec.losses, rtol=1e-12, atol=1e-12)


def test_every_learner_is_judged_on_the_same_tasks_from_the_same_start(run64):
    family = make_family("linear2d")
    init = family.problem().model.init(5, dtype=torch.float64)
    random = run64.learners["random"]
    np.testing.assert_array_equal(random.theta0, init["weight"].reshape(-1).numpy())
    starts = {n: r.meta_path[0] for n, r in run64.learners.items()}
    for s in starts.values():
        np.testing.assert_array_equal(s, random.theta0)
    np.testing.assert_array_equal(run64.task_ids, [0, 1, 2])
    # every learner's held-out paths start at its own θ0 and have K+1 points
    for rec in run64.learners.values():
        assert rec.params.shape == (3, 5, 2)
        np.testing.assert_array_equal(rec.params[:, 0], np.broadcast_to(rec.theta0, (3, 2)))


def test_run_records_meta_training_and_summary(run64):
    leap = run64.learners["leap"]
    np.testing.assert_array_equal(leap.meta_path_steps, [0, 1, 2, 3])
    np.testing.assert_array_equal(leap.eval_steps, [0, 2, 3])
    assert set(leap.evals) >= {"length", "auc", "final_loss"}
    mean, lo, hi = run64.info["summary"]["leap"]["length"]
    assert lo <= mean <= hi
    assert mean == pytest.approx(float(np.mean(leap.metrics["length"])))
    assert run64.info["param_count"] == 2


def test_pca_view_explains_variance_and_states_residuals(run64):
    view = run64.views["pca"]
    ev = view.slice.explained_variance
    assert 0 < ev[1] <= ev[0] <= 1 and ev.sum() == pytest.approx(1.0)  # 2 parameters: all of it
    for name in run64.learners:
        assert np.nanmax(view.residual[name]) < 1e-9


def test_subsample_keeps_first_and_last():
    np.testing.assert_array_equal(subsample_steps(10, 4), [0, 3, 7, 10])
    np.testing.assert_array_equal(subsample_steps(2, 101), [0, 1, 2])


def test_python_api_round_trip(tmp_path):
    from trajviz.store import write_run
    run = trajviz.run_experiment(tiny(), run_id="api-test")
    path = write_run(run, tmp_path)
    back = trajviz.load_run(path)
    np.testing.assert_array_equal(back.learners["leap"].params, run.learners["leap"].params)
    assert back.config == run.config


@pytest.mark.parametrize("origin", ["mean", "leap", "final:reptile"])
def test_slice_origin_choices(origin):
    run = run_experiment(tiny(slices={"kinds": ["pca"], "resolution": 5, "origin": origin}))
    slc = run.views["pca"].slice
    if origin == "mean":
        points = np.concatenate([r.params.reshape(-1, 2) for r in run.learners.values()])
        expected = points.mean(axis=0)
    elif origin == "leap":
        expected = run.learners["leap"].theta0
    else:
        expected = run.learners["reptile"].params[:, -1].mean(axis=0)
    np.testing.assert_allclose(slc.origin, expected, rtol=1e-6, atol=1e-7)
    assert origin.removeprefix("final:") in slc.label or origin == "mean"


def test_one_run_builds_its_task_family_once(monkeypatch):
    """The family (and so its problem) is built once per run and passed down: thread
    policy, held-out setting, fixed inits, the outer-lr sweep and the birth maps share it."""
    from trajviz.problem.tasks import FAMILIES

    built = []
    real = FAMILIES["linear2d"]

    def counting(**options):
        built.append(options)
        return real(**options)

    monkeypatch.setitem(FAMILIES, "linear2d", counting)
    config = tiny(outer={"meta_steps": 2, "meta_batch": 2, "eval_every": 1, "eval_tasks": 2,
                         "lr": "tune", "lr_grid": [0.01, 0.03], "tune_tasks": 2},
                  birthmap={"enabled": True, "grid": 3, "tasks": 2})
    run = run_experiment(config, inits={"mine": np.array([0.5, -0.5])})
    assert len(built) == 1
    assert set(run.birthmaps) == {"exact", "pca"} and "mine" in run.learners  # all of it ran
