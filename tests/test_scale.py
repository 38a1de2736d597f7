"""Record policies and streaming (docs/scale.md): a light run keeps no held-out paths and
recomputes them bitwise; slices fitted from the scratch file equal today's in-memory PCA."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from trajviz.data.run import FULL_RECORD, run_is_light
from trajviz.engine.slices import hessian_slice, pca_slice, points_mean, project
from trajviz.pipeline.experiment import run_experiment
from trajviz.pipeline.recompute import recompute_paths
from trajviz.pipeline.record import PathScratch
from trajviz.spec import budget
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run

BASE = {"family": "sinusoid", "learners": ["leap", "random"], "heldout_tasks": 4,
        "outer": {"meta_steps": 3, "meta_batch": 4, "eval_every": 2}, "inner": {"steps": 5},
        "slices": {"kinds": ["pca", "random"], "resolution": 9}}


@pytest.fixture(scope="module")
def pair():
    """The same config recorded full and light."""
    return {p: run_experiment(from_dict({**BASE, "record": p})) for p in ("full", "light")}


def test_light_run_keeps_no_paths_and_says_so(pair):
    full, light = pair["full"], pair["light"]
    assert not run_is_light(full) and run_is_light(light)
    assert light.info["record"]["policy"] == "light" and full.info["record"]["policy"] == "full"
    for name, rec in light.learners.items():
        T, K1, _ = full.learners[name].params.shape
        assert rec.params.shape == rec.grads.shape == (T, K1, 0)
        for field in ("theta0", "losses", "query_losses", "diverged_at"):
            np.testing.assert_array_equal(getattr(rec, field), getattr(full.learners[name], field))
        for key, values in full.learners[name].metrics.items():
            np.testing.assert_array_equal(rec.metrics[key], values)
        for key, values in full.learners[name].diagnostics.items():
            np.testing.assert_array_equal(rec.diagnostics[key], values)


def test_views_of_light_and_full_runs_are_identical(pair):
    full, light = pair["full"], pair["light"]
    for key, view in full.views.items():
        other = light.views[key]
        np.testing.assert_array_equal(other.slice.basis, view.slice.basis)
        np.testing.assert_array_equal(other.slice.origin, view.slice.origin)
        np.testing.assert_array_equal(other.slice.explained_variance, view.slice.explained_variance)
        assert other.slice.extent == view.slice.extent
        np.testing.assert_array_equal(other.surface.loss, view.surface.loss)
        for name in view.coords:
            np.testing.assert_array_equal(other.coords[name], view.coords[name])
            np.testing.assert_array_equal(other.residual[name], view.residual[name])


def test_streamed_pca_equals_the_slice_of_the_recorded_paths(pair):
    """The pca view of a run is the PCA of its recorded paths (today's in-memory fit)."""
    full = pair["full"]
    points = np.concatenate([r.params.reshape(-1, r.params.shape[-1]) for r in full.learners.values()])
    expected = pca_slice(points, origin=None)
    slc = full.views["pca"].slice
    np.testing.assert_allclose(slc.basis, expected.basis, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slc.explained_variance, expected.explained_variance, rtol=1e-12)
    assert slc.explained_variance[0] > slc.explained_variance[1] > 0


def test_recomputed_paths_are_bitwise_the_recorded_ones(pair):
    full, light = pair["full"], pair["light"]
    for name, rec in full.learners.items():
        paths = recompute_paths(light, name)
        assert paths.params.shape == rec.params.shape
        np.testing.assert_array_equal(paths.params, rec.params)
        np.testing.assert_array_equal(paths.grads, rec.grads)
        np.testing.assert_array_equal(paths.losses, rec.losses)
        some = recompute_paths(light, name, tasks=[3, 1])
        np.testing.assert_array_equal(some.params, rec.params[[3, 1]])
    with pytest.raises(ValueError, match="no learner"):
        recompute_paths(light, "maml")
    with pytest.raises(ValueError, match="indices in 0..3"):
        recompute_paths(light, "leap", tasks=[4])


def test_light_run_round_trips_through_the_store(pair, tmp_path):
    light = replace(pair["light"], run_id="light-run")
    path = write_run(light, tmp_path)
    back = load_run(path)
    assert run_is_light(back)
    np.testing.assert_array_equal(recompute_paths(back, "leap").params, pair["full"].learners["leap"].params)
    heavy = (path / "heavy.npz").stat().st_size
    full_path = write_run(replace(pair["full"], run_id="full-run"), tmp_path)
    assert heavy < (full_path / "heavy.npz").stat().st_size / 5


def test_old_runs_migrate_to_full_record(pair, tmp_path):
    path = write_run(replace(pair["full"], run_id="old-run"), tmp_path)
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    doc["schema_version"] = 2
    del doc["info"]["record"]
    (path / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    back = load_run(path)
    assert back.info["record"] == FULL_RECORD and not run_is_light(back)


def test_scratch_rows_read_like_the_array(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    with PathScratch() as scratch:
        scratch.append(torch.from_numpy(rng.standard_normal((2, 7)).astype(np.float32)))
        rows = scratch.append(torch.from_numpy(x))
        np.testing.assert_array_equal(rows.read(), x)
        np.testing.assert_array_equal(rows[1:3], x[1:3])
        flat = rows.reshape(-1, 7)
        np.testing.assert_array_equal(flat[:, 2:5], x.reshape(-1, 7)[:, 2:5])
        keep = np.zeros((3, 5), dtype=bool)
        keep[[0, 2], 1:4] = True
        np.testing.assert_array_equal(rows.select(keep).read(), x[keep])
        np.testing.assert_allclose(points_mean(flat), x.reshape(-1, 7).mean(axis=0), rtol=1e-6)
        a, b = pca_slice(flat), pca_slice(x.reshape(-1, 7))
        np.testing.assert_array_equal(a.basis, b.basis)
        np.testing.assert_array_equal(a.explained_variance, b.explained_variance)
        np.testing.assert_array_equal(project(a, rows)[1], project(a, x)[1])
        vectors = rng.standard_normal((2, 7))
        h, g = hessian_slice(x[0, 0], vectors, flat), _hessian_reference(x[0, 0], vectors, x.reshape(-1, 7))
        np.testing.assert_allclose(h.explained_variance, g, rtol=1e-10)


def _hessian_reference(origin, vectors, points) -> np.ndarray:
    """Explained variance along the orthonormalised vectors, all at once (the old formula)."""
    basis = hessian_slice(origin, vectors, points[:3]).basis
    y = points.astype(np.float64) - points.astype(np.float64).mean(axis=0)
    return ((y @ basis.T) ** 2).sum(axis=0) / (y ** 2).sum()


def test_record_plan_follows_the_budget():
    small = from_dict(BASE)
    plan = budget.record_plan(small, 1761, 2, 4)
    assert plan.policy == "full" and plan.asked == "auto" and plan.chunk_tasks == 4
    big = from_dict({**BASE, "family_options": {"hidden": [1024, 1024]}, "heldout_tasks": 8,
                     "inner": {"steps": 16}})
    plan = budget.record_plan(big, 1_052_673, 6, 1)
    assert plan.policy == "light" and plan.full_bytes == 2 * 6 * 8 * 17 * 1_052_673 * 4
    assert 2 <= plan.meta_points <= budget.LIGHT_META_BYTES // (6 * 1_052_673 * 4) + 1
    assert budget.record_plan(replace(big, record="full"), 1_052_673, 6, 1).policy == "full"
    assert budget.record_plan(replace(small, record="light"), 1761, 2, 4).policy == "light"
    # chunks: a multiple of the inner loop's own chunk, within RECORD_CHUNK_BYTES, never above T
    assert budget.record_chunk(10, 16, 4, 8, 3) == 8  # all fit: one call, as before
    seven = budget.RECORD_CHUNK_BYTES // (2 * 17 * 4 * 7)  # P at which 7 tasks fit
    assert budget.record_chunk(seven, 16, 4, 8, 3) == 6  # rounded down to 2 x 3
    assert budget.record_chunk(seven, 16, 4, 8, 1) == 7
    assert budget.record_chunk(1_052_673, 16, 4, 8, 1) == 1
    assert budget.record_chunk(10**9, 16, 4, 8, 1) == 1
    light_est = budget.estimate(big, budget.family_sizes("sinusoid", big.family_options))
    full_est = budget.estimate(replace(big, record="full"), budget.family_sizes("sinusoid", big.family_options))
    assert light_est.disk_bytes < 150 * 2**20 < 2 * 2**30 < full_est.disk_bytes  # two learners
    assert light_est.memory_bytes < full_est.memory_bytes


def test_record_key_is_checked():
    assert from_dict(BASE).record == "auto"
    with pytest.raises(ValueError, match="record"):
        from_dict({**BASE, "record": "some"})


def test_conv_family_runs_end_to_end_light_and_its_size_scales():
    """The digits convnet (``channels`` option) through a light run, paths recomputed."""
    options = {"net": "conv", "channels": 6, "ways": 3, "shots": 2, "query_shots": 3}
    config = from_dict({**BASE, "family": "digits", "family_options": options, "record": "light",
                        "slices": {"kinds": ["pca"], "resolution": 7}, "heldout_tasks": 3})
    run = run_experiment(config)
    P = 9 * 36 + 11 * 6 + (4 * 6 + 1) * 3
    assert run.info["param_count"] == P == budget.family_sizes("digits", options).param_count
    assert run.info["model"].startswith("conv6")
    view = run.views["pca"]
    for name, rec in run.learners.items():
        assert rec.params.shape == (3, 6, 0)
        assert np.isfinite(view.coords[name]).all()
        paths = recompute_paths(run, name)
        assert paths.params.shape == (3, 6, P)
        np.testing.assert_allclose(project(view.slice, paths.params)[0], view.coords[name], rtol=0, atol=0)
    big = {"net": "conv", "channels": 330}
    assert 0.9e6 < budget.family_sizes("digits", big).param_count < 1.1e6


def test_gpu_smoke_script_runs_the_device_path_on_cpu(capsys):
    """bench/bench_gpu_smoke.py's code on the CPU with a tiny model; without CUDA, its
    default says it skipped."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_gpu_smoke", Path(__file__).resolve().parent.parent / "bench" / "bench_gpu_smoke.py")
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    assert smoke.main(["--device", "cpu", "--hidden", "8,8", "--meta-steps", "1", "--resolution", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cpu: P=97 ") and "finite True" in out and "recomputed path equal True" in out
    if not torch.cuda.is_available():
        assert smoke.main([]) == 0
        assert capsys.readouterr().out.startswith("skipped: torch sees no CUDA device")


def test_maml_in_chunks_gives_the_meta_gradient_of_the_whole_batch(monkeypatch):
    """A meta-batch differentiated one rollout at a time (a large model's memory) gives the
    same mean meta-gradient as all at once."""
    from trajviz.engine.learners import maml as maml_module
    from trajviz.pipeline.heldout import heldout_setup
    from trajviz.spec import budget as budget_module

    setup = heldout_setup(from_dict({**BASE, "heldout_tasks": 4}))
    theta0 = setup.problem.model.init(0, "cpu", torch.float32)
    learner = maml_module.MAML()
    whole = learner.meta_gradient(setup.problem, theta0, setup.tasks, setup.spec, 7)
    monkeypatch.setattr(budget_module, "MAML_CHUNK_BYTES", 1)
    assert budget_module.maml_chunk(97, 5, 4, 4) == 1
    chunked = learner.meta_gradient(setup.problem, theta0, setup.tasks, setup.spec, 7)
    assert chunked.diverged == whole.diverged
    for key, value in whole.grad.items():
        torch.testing.assert_close(chunked.grad[key], value, rtol=1e-5, atol=1e-7)
    assert any(v.abs().max() > 0 for v in whole.grad.values())
