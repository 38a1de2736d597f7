"""Divergence done right, in the engine and the store: a linear2d run with inner.lr = 3."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from trajviz.data.run import SCHEMA_VERSION
from trajviz.data.stability import crossings, good_prefix
from trajviz.engine.curvature_path import CURVATURE_NAMES
from trajviz.pipeline.experiment import run_experiment
from trajviz.spec.config import from_dict
from trajviz.store import load_run, write_run

LEARNERS = ["leap", "reptile", "random"]


@pytest.fixture(scope="module")
def blown_up():
    config = from_dict({
        "family": "linear2d", "learners": LEARNERS, "seed": 0, "heldout_tasks": 4,
        "inner": {"steps": 12, "lr": 3.0},
        "outer": {"meta_steps": 2, "meta_batch": 2, "eval_every": 1, "eval_tasks": 2, "lr": 0.01},
        "slices": {"kinds": ["exact", "pca", "hessian"], "resolution": 7}})
    return run_experiment(config, run_id="linear2d-lr3")


def _refuse(token: str):
    raise ValueError(f"non-standard JSON token {token}")


def test_every_learner_diverges_on_every_task_at_its_first_bad_step(blown_up):
    run = blown_up
    report = run.info["divergence"]
    assert report["factor"] == 1e6 and report["tasks"] == 4
    for name, rec in run.learners.items():
        f = rec.losses.astype(np.float64)
        bad = ~np.isfinite(f) | (np.abs(f) > 1e6 * np.abs(f[:, :1])) | ~np.isfinite(rec.params).all(-1)
        first = bad.argmax(axis=1)
        assert bad.any(axis=1).all(), name
        np.testing.assert_array_equal(rec.diverged_at, first)
        assert (first > 0).all()
        assert report["learners"][name] == {"count": 4, "tasks": [0, 1, 2, 3], "steps": first.tolist()}
        # metrics never average a blow-up: every per-task metric is NaN and the summary says so
        assert all(np.isnan(v).all() for v in rec.metrics.values())
        assert run.info["summary_counts"][name]["length"] == [0, 4]
        # running metrics and diagnostics keep the good prefix only
        keep = good_prefix(rec.diverged_at, run.steps)
        for values in (rec.running["cumulative_length"], rec.diagnostics["sharpness"], rec.diagnostics["grad_norm"]):
            assert np.isfinite(values[keep]).all() and np.isnan(values[~keep]).all()
        # lr·λ_max > 2 on every batch Hessian: every path is above 2/lr from step 0
        assert run.info["diagnostics"]["threshold"] == pytest.approx(2 / 3)
        assert crossings(rec.diagnostics["sharpness"], run.info["diagnostics"]["threshold"]).tolist() == [0] * 4


def test_slices_are_fitted_to_the_pre_divergence_points(blown_up):
    run = blown_up
    margin = run.config["slices"]["margin"]
    for kind, view in run.views.items():
        ext = np.array(view.slice.extent)
        assert np.isfinite(ext).all(), kind
        good = np.concatenate([view.coords[n][good_prefix(r.diverged_at, run.steps)]
                               for n, r in run.learners.items()]
                              + [view.meta_coords[n] for n in run.learners])
        lo, hi = good.min(axis=0), good.max(axis=0)
        span = hi - lo
        np.testing.assert_allclose(ext, [lo[0] - margin * span[0], hi[0] + margin * span[0],
                                         lo[1] - margin * span[1], hi[1] + margin * span[1]], rtol=1e-9)
        for n, rec in run.learners.items():  # nothing from the divergence on is drawn
            after = ~good_prefix(rec.diverged_at, run.steps)
            assert np.isnan(view.coords[n][after]).all() and np.isnan(view.plane_loss[n][after]).all()
            # the last good point lies inside the extent
            last = view.coords[n][np.arange(4), rec.diverged_at - 1]
            assert ((last >= ext[[0, 2]]) & (last <= ext[[1, 3]])).all()
        assert np.isfinite(view.surface.mean).all()
    ev = run.views["hessian"].slice.explained_variance
    assert 0 <= ev.sum() <= 1 + 1e-9 and run.views["hessian"].slice.kind == "hessian"


def test_run_json_is_strict_and_round_trips(blown_up, tmp_path: Path):
    path = write_run(blown_up, tmp_path)
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"), parse_constant=_refuse)
    assert doc["schema_version"] == SCHEMA_VERSION == 3
    back = load_run(path)
    assert back.info["divergence"] == blown_up.info["divergence"]
    for name, rec in blown_up.learners.items():
        keys = list(back.learners[name].diagnostics)
        assert keys == list(rec.diagnostics)  # every diagnostic back, in order
        assert keys[:3] == ["grad_norm", "update_norm", "sharpness"]
        assert set(CURVATURE_NAMES) <= set(keys)  # λ_min and the trace with their error bars
        for key, values in rec.diagnostics.items():
            np.testing.assert_array_equal(back.learners[name].diagnostics[key], values)


def test_a_version_1_run_still_loads(blown_up, tmp_path: Path):
    """Written the old way: schema_version 1, bare NaN tokens, no diagnostics entries."""
    path = write_run(blown_up, tmp_path)
    doc = load_run(path).info  # noqa: F841 (the current run loads)
    raw = json.loads((path / "run.json").read_text(encoding="utf-8"))
    for keys, token in raw.pop("nonfinite"):
        node = raw
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = float(token.replace("Infinity", "inf"))
    raw["schema_version"] = 1
    for _, entry in raw["learners"]:
        del entry["diagnostics"]
    text = json.dumps(raw, allow_nan=True)
    assert "NaN" in text
    (path / "run.json").write_text(text, encoding="utf-8")
    old = load_run(path)
    for name, rec in blown_up.learners.items():
        assert old.learners[name].diagnostics == {}
        np.testing.assert_array_equal(old.learners[name].params, rec.params)
    assert np.isnan(old.info["summary"]["leap"]["length"][0])


@pytest.mark.parametrize("factor", [1.0, 0.5, float("inf")])
def test_divergence_factor_is_validated(factor):
    with pytest.raises(ValueError, match="inner.divergence_factor"):
        from_dict({"inner": {"divergence_factor": factor}})
    assert from_dict({"inner": {"divergence_factor": 10}}).inner.divergence_factor == 10.0
