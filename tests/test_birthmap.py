"""Birth map, launch and own initialisations: closed forms and exact reproduction of recorded paths."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from birth_fixtures import RECORDED, tiny  # tests/ is on the path

import trajviz
from trajviz.cli.main import main
from trajviz.data.run import BIRTH_STATISTICS
from trajviz.pipeline.birthmap import add_birth_map, birth_map, birth_point, predicted_auc
from trajviz.pipeline.experiment import run_experiment
from trajviz.pipeline.launch import keep, launch, launch_context, point_on_view
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny linear2d run with minibatches, on disk: (path, run)."""
    path = write_run(run_experiment(tiny(), run_id="tiny"), tmp_path_factory.mktemp("runs"))
    return path, load_run(path)


def geometric_median(points: np.ndarray) -> np.ndarray:
    x = points.mean(axis=0)
    for _ in range(2000):  # Weiszfeld
        w = 1.0 / np.maximum(np.linalg.norm(points - x, axis=1), 1e-12)
        x = (w[:, None] * points).sum(axis=0) / w.sum()
    return x


def test_isotropic_bowls_centroid_and_geometric_median():
    # f_t(θ) = ½‖θ − c_t‖² (condition 1), full-batch SGD: θ_{k+1} − c = (1 − lr)(θ_k − c), so
    # θ_k − c = (1 − lr)^k (θ0 − c). Then f_k = ½(1 − lr)^{2k}‖θ0 − c‖², so AUC_t = C‖θ0 − c_t‖²
    # with C the same for every task and θ0: the mean AUC is smallest at the centroid of the c_t.
    # And ‖Δθ_k‖ = lr(1 − lr)^k‖θ0 − c‖, so param_length_t = (1 − (1 − lr)^K)‖θ0 − c_t‖: the mean
    # is a sum of distances, smallest at the geometric median of the c_t.
    config = from_dict({"family": "quadratic", "family_options": {"dim": 2, "condition": 1.0},
                        "learners": ["random"], "inner": {"steps": 16, "lr": 0.1},
                        "outer": {"meta_steps": 1, "meta_batch": 1, "eval_every": 1, "eval_tasks": 1},
                        "heldout_tasks": 5, "slices": {"kinds": ["exact"], "resolution": 5}, "seed": 2})
    run = run_experiment(config)
    bm = birth_map(run, "exact", grid=41, tasks=5)
    centres = run.task_info["minimiser"].astype(np.float64)
    cell = np.array([bm.alpha[1] - bm.alpha[0], bm.beta[1] - bm.beta[0]])

    def argmin(values):
        row, col = np.unravel_index(np.nanargmin(values), values.shape)
        return np.array([bm.alpha[col], bm.beta[row]])

    centroid, median = centres.mean(axis=0), geometric_median(centres)
    assert np.any(np.abs(centroid - median) > 2 * cell)  # the two answers are told apart
    assert np.all(np.abs(argmin(bm.mean["auc"]) - centroid) <= cell)
    assert np.all(np.abs(argmin(bm.mean["param_length"]) - median) <= cell)
    # closed form of the AUC at a grid point
    k, lr = 16, 0.1
    weights = 0.5 * (1 - lr) ** (2 * np.arange(k + 1))
    c = np.trapezoid(weights) / k
    a, b = np.meshgrid(bm.alpha, bm.beta)
    theta = np.stack([a, b], axis=-1)[..., None, :]
    expected = c * ((theta - centres) ** 2).sum(-1).mean(-1)
    np.testing.assert_allclose(bm.mean["auc"], expected, rtol=2e-5)


def test_map_value_at_a_learners_theta0_is_its_recorded_statistics(saved):
    _, run = saved
    bm = birth_map(run, "pca", grid=5, tasks=3)
    assert bm.learners == ("leap", "random")
    for i, name in enumerate(bm.learners):
        for stat in BIRTH_STATISTICS:
            np.testing.assert_array_equal(bm.learner_tasks[stat][i], run.learners[name].metrics[stat])
        assert bm.learner_table["value"][i] == np.float64(run.learners[name].metrics["auc"].mean())
    row, col = bm.birth_index
    assert bm.birth.tolist() == [bm.alpha[col], bm.beta[row]]
    # ρ is Spearman's, by hand: the Pearson correlation of the ranks over the finite points
    value, predicted = bm.mean[bm.statistic].ravel(), bm.predicted.ravel()
    ok = np.isfinite(value) & np.isfinite(predicted)
    ranks = [np.argsort(np.argsort(x[ok])).astype(float) for x in (predicted, value)]
    assert np.isfinite(bm.rank_correlation)
    assert bm.rank_correlation == pytest.approx(np.corrcoef(*ranks)[0, 1], abs=1e-12)


def test_launch_from_a_learners_theta0_reproduces_its_paths(saved):
    path, run = saved
    ctx = launch_context(run)
    result = launch(ctx, run.learners["leap"].theta0, name="again")
    for field in RECORDED:
        np.testing.assert_array_equal(getattr(result.record, field), getattr(run.learners["leap"], field))
    recorded = run.learners["leap"].diagnostics  # the per-step diagnostics too, sharpness included
    assert set(result.record.diagnostics) == set(recorded) and np.isfinite(recorded["sharpness"]).any()
    for key, value in recorded.items():
        np.testing.assert_array_equal(result.record.diagnostics[key], value)
    quick = launch(ctx, run.learners["leap"].theta0, name="quick", diagnostics="norms")
    np.testing.assert_array_equal(quick.record.diagnostics["grad_norm"], recorded["grad_norm"])
    assert np.isnan(quick.record.diagnostics["sharpness"]).all()
    with pytest.raises(ValueError, match="diagnostics must be one of"):
        launch(ctx, run.learners["leap"].theta0, diagnostics="some")
    for key, view in run.views.items():
        np.testing.assert_array_equal(result.views[key].coords, view.coords["leap"])
        np.testing.assert_array_equal(result.views[key].plane_loss, view.plane_loss["leap"])
    # a point given on the exact slice of a 2-parameter model is that θ0
    np.testing.assert_array_equal(point_on_view(ctx, "exact", 0.25, -0.5), [0.25, -0.5])
    by_point = trajviz.launch_at(run, view="exact", point=(0.25, -0.5), name="clicked")
    assert np.allclose(by_point.record.params[:, 0], [0.25, -0.5])


def test_keep_adds_a_named_initialisation_atomically(tmp_path):
    path = write_run(run_experiment(tiny(), run_id="keep"), tmp_path)
    run = load_run(path)
    result = launch(launch_context(run), np.array([0.5, -1.0]), name="mine")
    keep(path, result)
    again = load_run(path)
    assert list(again.learners) == ["leap", "random", "mine"]
    np.testing.assert_array_equal(again.learners["mine"].params, result.record.params)
    assert set(again.views["pca"].coords) == {"leap", "random", "mine"}
    assert again.info["summary"]["mine"]["auc"][0] == pytest.approx(result.record.metrics["auc"].mean())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]  # no temporary folder left
    with pytest.raises(ValueError, match="already has a learner named 'mine'"):
        keep(path, result)
    assert list(load_run(path).learners) == ["leap", "random", "mine"]


def test_a_kept_point_joins_every_birth_maps_learner_table(tmp_path):
    config = tiny(birthmap={"enabled": True, "grid": 5, "tasks": 2})
    path = write_run(run_experiment(config, run_id="kb"), tmp_path)
    run = load_run(path)
    assert set(run.birthmaps) == {"exact", "pca"}
    result = launch(launch_context(run), run.learners["leap"].theta0, name="leap-again")
    keep(path, result)
    again = load_run(path)
    for view, bm in again.birthmaps.items():
        before = run.birthmaps[view]
        assert bm.learners == ("leap", "random", "leap-again")
        # the same θ0 on the same tasks: leap's statistics exactly (its projection on the
        # plane, a matmul over one point instead of two, to the last bit); the rest unchanged
        for column, values in bm.learner_table.items():
            np.testing.assert_array_equal(values[:2], before.learner_table[column])
            np.testing.assert_allclose(values[2], values[0], rtol=1e-12, atol=1e-15, err_msg=column)
        for values in bm.learner_tasks.values():
            np.testing.assert_array_equal(values[2], values[0])
        np.testing.assert_array_equal(bm.mean["auc"], before.mean["auc"])
        assert bm.birth.tolist() == before.birth.tolist()


def test_birth_map_round_trips_and_old_runs_load(tmp_path):
    path = write_run(run_experiment(tiny(), run_id="bm"), tmp_path)
    bm = birth_map(load_run(path), "exact", grid=6, tasks=2, statistic="length")
    add_birth_map(path, bm)
    back = load_run(path, heavy=False).birthmaps["exact"]
    assert back.statistic == "length" and back.learners == bm.learners and back.settings == bm.settings
    assert back.rank_correlation == bm.rank_correlation
    for field in ("alpha", "beta", "task_ids", "specialisation", "predicted", "birth", "birth_index"):
        np.testing.assert_array_equal(getattr(back, field), getattr(bm, field))
    for field in ("mean", "spread", "learner_table", "learner_tasks"):
        assert getattr(back, field).keys() == getattr(bm, field).keys()
        for key in getattr(bm, field):
            np.testing.assert_array_equal(getattr(back, field)[key], getattr(bm, field)[key])
    # a schema-1 run (no birth maps) still loads
    doc = json.loads((path / "run.json").read_text())
    doc["schema_version"] = 1
    del doc["birthmaps"]
    (path / "run.json").write_text(json.dumps(doc))
    assert load_run(path).birthmaps == {}


def test_predicted_auc_is_exact_for_geometric_decay_and_the_birth_rule():
    losses = torch.tensor([[8.0, 4.0, 2.0, 1.0, 0.5, 0.25]])  # halving: the predictor's own model
    np.testing.assert_allclose(predicted_auc(losses, 2), torch.trapezoid(losses) / 5, rtol=1e-6)
    # flat after step 2 once the loss stops falling: rate clamped to 1
    np.testing.assert_allclose(predicted_auc(torch.tensor([[1.0, 2.0, 3.0, 0.0]]), 1),
                               [(1.5 + 2.0 + 2.0) / 3], rtol=1e-6)
    spec = np.array([[0.1, 0.5], [0.2, 0.9]])
    value = np.array([[3.0, 1.0], [2.0, 0.0]])
    assert birth_point(spec, value, 0.5) == (1, 0)  # fastest of the two least specialised
    assert birth_point(spec, value, 1.0) == (1, 1)


def save_npz(file, theta0, names, shapes):
    arrays, start = {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        arrays[name] = theta0[start:start + size].reshape(shape)
        start += size
    np.savez(file, **arrays)
    return arrays


TINY = ["--meta-steps", "2", "--set", "outer.meta_batch=2", "--set", "heldout_tasks=2",
        "--steps", "3", "--set", "slices.resolution=5", "--set", "outer.eval_tasks=2",
        "--family", "sinusoid", "--learners", "leap,random", "--quiet"]


def test_init_files_reproduce_a_learners_paths_and_bad_files_exit_2(tmp_path, capsys):
    from safetensors.numpy import save_file

    assert main(["run", *TINY, "--out", str(tmp_path / "a")]) == 0
    first = load_run(next((tmp_path / "a").iterdir()))
    names, shapes = first.info["param_names"], first.info["param_shapes"]
    theta0 = first.learners["leap"].theta0
    arrays = save_npz(tmp_path / "leap.npz", theta0, names, shapes)
    save_file(arrays, str(tmp_path / "leap.safetensors"))
    torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, tmp_path / "leap.pt")
    capsys.readouterr()
    assert main(["run", *TINY, "--out", str(tmp_path / "b"), "--init", f"mine={tmp_path / 'leap.npz'}",
                 "--init", f"st={tmp_path / 'leap.safetensors'}", "--init", f"pt={tmp_path / 'leap.pt'}"]) == 0
    second = load_run(next((tmp_path / "b").iterdir()))
    assert list(second.learners) == ["leap", "random", "mine", "st", "pt"]
    for name in ("mine", "st", "pt"):
        for field in RECORDED:
            np.testing.assert_array_equal(getattr(second.learners[name], field),
                                          getattr(first.learners["leap"], field))
    bad_shape = dict(arrays, **{names[0]: np.zeros((2, 3), np.float32)})
    np.savez(tmp_path / "shape.npz", **bad_shape)
    np.savez(tmp_path / "extra.npz", **arrays, surplus=np.zeros(3))
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != names[-1]})
    np.savez(tmp_path / "pickled.npz", obj=np.array([{"a": 1}], dtype=object))
    (tmp_path / "w.txt").write_text("1 2 3")
    cases = [("shape.npz", f"parameter '{names[0]}' has shape [2, 3], the model expects {shapes[0]}"),
             ("extra.npz", "has array 'surplus'"), ("missing.npz", f"lacks parameter '{names[-1]}'"),
             ("pickled.npz", "cannot read init file"), ("w.txt", "accepted: .safetensors, .npz")]
    for file, needle in cases:
        assert main(["run", *TINY, "--out", str(tmp_path / "c"), "--init", f"x={tmp_path / file}"]) == 2
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1, err
    assert main(["run", *TINY, "--out", str(tmp_path / "c"), "--init", "noequals"]) == 2
    assert "NAME=FILE" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_birthmap_cli_writes_into_the_run_and_config_key(tmp_path, capsys):
    assert main(["run", *TINY, "--out", str(tmp_path), "--set", "birthmap.enabled=true",
                 "--set", "birthmap.grid=4", "--set", "birthmap.tasks=2"]) == 0
    path = next(tmp_path.iterdir())
    assert list(load_run(path).birthmaps) == ["pca"]
    assert main(["birthmap", str(path), "--grid", "5", "--tasks", "2", "--statistic", "final_loss",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Spearman rank correlation" in out and "birth point" in out and "leap" in out
    bm = load_run(path).birthmaps["pca"]
    assert bm.statistic == "final_loss" and bm.mean["auc"].shape == (5, 5)
    for argv, needle in ((["--grid", "1"], "--grid must be an integer in 2..201"),
                         (["--statistic", "speed"], "unknown value 'speed'"),
                         (["--slice", "nope"], "run has no view 'nope'")):
        assert main(["birthmap", str(path), "--quiet", *argv]) == 2
        assert needle in capsys.readouterr().err
    assert main(["run", *TINY, "--out", str(tmp_path / "x"), "--set", "birthmap.grid=500"]) == 2
    assert "birthmap.grid" in capsys.readouterr().err


def test_replace_run_failure_leaves_the_old_run_whole(tmp_path):
    from dataclasses import replace

    from trajviz.store.rewrite import replace_run

    path = write_run(run_experiment(tiny(), run_id="whole"), tmp_path)
    run = load_run(path)
    broken = replace(run, task_info={"bad": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="never objects"):
        replace_run(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whole"]
    np.testing.assert_array_equal(load_run(path).learners["leap"].params, run.learners["leap"].params)
    with pytest.raises(ValueError, match="does not exist"):
        replace_run(replace(run, run_id="other"), tmp_path)
