"""The shipped configs parse, and `trajviz demo` reads its runs from trajviz/demos/*.toml."""
from pathlib import Path

import pytest

from trajviz.spec.config import DEMO_FILES, demo_configs, load_toml

DEMOS = Path(__file__).resolve().parents[1] / "trajviz" / "demos"


@pytest.mark.parametrize("path", sorted(DEMOS.glob("*.toml")), ids=lambda p: p.name)
def test_each_shipped_config_runs_end_to_end_at_a_small_size(path):
    """Every shipped config runs as written, its learners, family and slices included, with
    only its sizes cut down (the full runs are bench/bench_demo.py's)."""
    import numpy as np

    from trajviz import run_experiment
    from trajviz.spec.config import from_dict, to_dict

    config = load_toml(path)
    data = to_dict(config)
    data["heldout_tasks"] = 3
    data["inner"]["steps"] = min(config.inner.steps, 4)
    data["outer"].update(meta_steps=2, meta_batch=2, eval_every=1)
    data["slices"]["resolution"] = 5
    small = from_dict(data)
    run = run_experiment(small)
    assert run.config["family"] == config.family
    assert set(run.learners) == set(config.learners)
    assert set(run.views) == set(config.slices.kinds)
    for record in run.learners.values():
        assert record.losses.shape == (3, small.inner.steps + 1)
        assert np.isfinite(record.losses[:, 0]).all()
        assert set(record.metrics) >= {"length", "auc", "final_loss"}


def test_demo_runs_are_the_sinusoid_and_linear2d_files():
    configs = demo_configs()
    assert DEMO_FILES == ("sinusoid", "linear2d")
    assert list(configs) == ["sinusoid-demo", "linear2d-demo"]
    sinusoid, linear2d = configs.values()
    assert (sinusoid.family, sinusoid.inner.optimizer, sinusoid.inner.steps) == ("sinusoid", "adam", 32)
    assert (sinusoid.outer.meta_steps, sinusoid.outer.lr, sinusoid.slices.kinds) == (100, 0.003, ("pca",))
    assert (linear2d.family, linear2d.inner.lr, linear2d.slices.kinds) == ("linear2d", 0.1, ("exact", "pca"))
    assert configs == {c.name: c for c in map(load_toml, (DEMOS / f"{s}.toml" for s in DEMO_FILES))}


def test_pyproject_ships_the_demo_configs_as_package_data():
    import tomllib
    project = tomllib.loads((DEMOS.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert project["package-data"]["trajviz"] == ["demos/*.toml"]
