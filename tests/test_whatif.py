"""What if: rerun the held-out inner loops with other inner settings (trajviz.pipeline.whatif),
keep the variant in the run, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from birth_fixtures import RECORDED, tiny  # tests/ is on the path

import trajviz
from trajviz.cli.main import main
from trajviz.data.run import apply_inner_variant
from trajviz.engine.inner import inner_loop
from trajviz.pipeline.experiment import run_experiment
from trajviz.pipeline.heldout import heldout_setup, inner_spec
from trajviz.pipeline.whatif import keep_variant, whatif, whatif_context
from trajviz.problem.batches import Rollouts
from trajviz.problem.models import unflatten
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run
from trajviz.store.inner_variants import variant_from_bytes, variant_to_bytes
from trajviz.viewmodel.selection import select, summary_rows


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = write_run(run_experiment(tiny(), run_id="wi"), tmp_path_factory.mktemp("runs"))
    return path, load_run(path)


def test_own_settings_reproduce_the_stored_paths_exactly(saved):
    _, run = saved
    variant = whatif(run, {"lr": 0.1, "optimizer": "sgd"})
    for name, rec in run.learners.items():
        for field in RECORDED:
            np.testing.assert_array_equal(getattr(variant.learners[name], field), getattr(rec, field))
        for key in rec.diagnostics:
            np.testing.assert_array_equal(variant.learners[name].diagnostics[key], rec.diagnostics[key])
        for key, view in run.views.items():
            np.testing.assert_array_equal(variant.views[key][name].coords, view.coords[name])
            np.testing.assert_array_equal(variant.views[key][name].plane_loss, view.plane_loss[name])
    assert variant.info["summary"] == run.info["summary"]


def test_another_lr_equals_a_fresh_inner_loop_from_the_same_theta0(saved):
    _, run = saved
    config = from_dict(run.config)
    variant = whatif(run, {"inner.lr": 0.02, "steps": 6})
    setup = heldout_setup(config)
    spec = inner_spec(from_dict({**run.config, "inner": {**run.config["inner"], "lr": 0.02,
                                                          "steps": 6}}).inner)
    for name, rec in run.learners.items():
        theta0 = unflatten(torch.as_tensor(rec.theta0), setup.problem.model.spec)
        with torch.no_grad():
            fresh = inner_loop(Rollouts(setup.problem, setup.tasks, spec, setup.seed), theta0,
                               record=True).trajectory
        np.testing.assert_array_equal(variant.learners[name].params, fresh.params.numpy())
        np.testing.assert_array_equal(variant.learners[name].losses, fresh.losses.numpy())
        assert variant.learners[name].params.shape[1] == 7
        # the first four steps of a longer loop use the run's own minibatches: at lr 0.1 vs
        # 0.02 the paths differ, but step 0's loss (θ0 on batch 0) is the stored one
        np.testing.assert_array_equal(variant.learners[name].losses[:, 0], rec.losses[:, 0])
        assert not np.allclose(variant.learners[name].params[:, 1], rec.params[:, 1])
    # the exact slice of a 2-parameter model draws θ itself
    np.testing.assert_allclose(variant.views["exact"]["leap"].coords,
                               variant.learners["leap"].params, atol=1e-6)
    shown = apply_inner_variant(run, variant)
    assert shown.steps == 6 and shown.config["inner"]["lr"] == 0.02
    sel = select(shown, "exact", None, ["leap"])
    assert sel.coords["leap"].shape == (7, 2)
    assert summary_rows(shown) != summary_rows(run)


def test_momentum_and_adam_and_subset_of_learners_and_tasks(saved):
    _, run = saved
    ctx = whatif_context(run)
    mom = whatif(run, {"optimizer": "momentum", "momentum": 0.5}, learners=["leap"], tasks=[2, 0],
                 context=ctx)
    assert list(mom.learners) == ["leap"] and mom.learners["leap"].params.shape[0] == 2
    p, g = mom.learners["leap"].params[0], mom.learners["leap"].grads[0]
    # heavy ball by hand: v1 = g0, θ1 = θ0 − lr·v1; v2 = β v1 + g1, θ2 = θ1 − lr·v2
    v1 = g[0]
    np.testing.assert_allclose(p[1], p[0] - 0.1 * v1, rtol=1e-6)
    np.testing.assert_allclose(p[2], p[1] - 0.1 * (0.5 * v1 + g[1]), rtol=1e-5)
    shown = apply_inner_variant(run, mom)
    np.testing.assert_array_equal(shown.task_ids, run.task_ids[[2, 0]])
    assert shown.views["exact"].surface.loss.shape[0] == 2
    adam = whatif(run, {"optimizer": "adam", "lr": 0.05}, context=ctx, diagnostics="none")
    assert adam.learners["leap"].diagnostics == {} and adam.inner["optimizer"] == "adam"
    norms = whatif(run, {"lr": 0.05}, context=ctx, diagnostics="norms").learners["leap"]
    np.testing.assert_allclose(norms.diagnostics["grad_norm"], np.linalg.norm(norms.grads, axis=-1))
    assert np.isnan(norms.diagnostics["sharpness"]).all()


def test_bad_changes_are_one_line_errors(saved):
    _, run = saved
    with pytest.raises(ValueError, match="cannot change 'batch_size'"):
        whatif(run, {"batch_size": 2})
    with pytest.raises(ValueError, match="inner.lr"):
        whatif(run, {"lr": -1.0})
    with pytest.raises(ValueError, match="unknown learner"):
        whatif(run, {"lr": 0.2}, learners=["maml"])


def test_kept_variant_survives_a_reload_and_is_listed(tmp_path):
    path = write_run(run_experiment(tiny(), run_id="keepme"), tmp_path)
    run = load_run(path)
    variant = trajviz.whatif(run, {"lr": 0.03}, name="slow")
    keep_variant(path, variant)
    again = load_run(path)
    assert list(again.inner_variants) == ["slow"]
    kept = again.inner_variants["slow"]
    assert kept.inner["lr"] == 0.03
    for field in RECORDED:
        np.testing.assert_array_equal(getattr(kept.learners["leap"], field),
                                      getattr(variant.learners["leap"], field))
    np.testing.assert_array_equal(kept.views["pca"]["random"].coords, variant.views["pca"]["random"].coords)
    light = load_run(path, heavy=False).inner_variants["slow"]
    assert light.learners["leap"].params.shape[-1] == 0
    np.testing.assert_array_equal(light.learners["leap"].losses, variant.learners["leap"].losses)
    # the base run is untouched
    np.testing.assert_array_equal(again.learners["leap"].params, run.learners["leap"].params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keepme"]
    # across processes: JSON + raw array bytes, light fields only
    text, data = variant_to_bytes(variant)
    back = variant_from_bytes(text, data, run.learners, run.views)
    np.testing.assert_array_equal(back.learners["leap"].losses, variant.learners["leap"].losses)
    np.testing.assert_array_equal(back.learners["leap"].diverged_at, variant.learners["leap"].diverged_at)
    np.testing.assert_array_equal(back.views["pca"]["random"].coords, variant.views["pca"]["random"].coords)
    assert back.learners["leap"].diverged_at.dtype == variant.learners["leap"].diverged_at.dtype
    assert back.info["summary"] == variant.info["summary"]
    with pytest.raises(ValueError, match="runs past"):
        variant_from_bytes(text, data[:-1], run.learners, run.views)
    doc = json.loads(text)
    doc["arrays"][0][1] = "|O"
    with pytest.raises(ValueError, match="accepted: numbers"):
        variant_from_bytes(json.dumps(doc), data, run.learners, run.views)


def test_cli_whatif_writes_the_variant_and_bad_input_exits_2(tmp_path, capsys):
    path = write_run(run_experiment(tiny(), run_id="cli"), tmp_path)
    assert main(["whatif", str(path), "--set", "inner.lr=0.02"]) == 0
    assert list(load_run(path).inner_variants) == ["lr=0.02"]
    capsys.readouterr()
    for argv, text in [(["--set", "inner.lr=-3"], "inner.lr"),
                       (["--set", "inner.batch_size=2"], "cannot change"),
                       (["--set", "inner.lr"], "KEY=VALUE"),
                       ([], "at least one --set"),
                       (["--set", "inner.lr=0.02"], "already has a variant"),
                       (["--set", "inner.lr=0.5", "--name", "../x"], "variant name")]:
        assert main(["whatif", str(path), *argv]) == 2
        err = capsys.readouterr().err
        assert text in err and len(err.strip().splitlines()) == 1
    assert main(["whatif", str(tmp_path / "nope"), "--set", "inner.lr=0.5"]) == 2
