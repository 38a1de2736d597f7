"""The shipped configs parse, and `trajviz demo` reads its runs from trajviz/demos/*.toml."""
from pathlib import Path

import pytest

from trajviz.spec.config import DEMO_FILES, demo_configs, load_toml

DEMOS = Path(__file__).resolve().parents[1] / "trajviz" / "demos"


@pytest.mark.parametrize("path", sorted(DEMOS.glob("*.toml")), ids=lambda p: p.name)
def test_demo_config_parses(path):
    config = load_toml(path)
    assert config.name


def test_demo_runs_are_the_sinusoid_and_linear2d_files():
    configs = demo_configs()
    assert DEMO_FILES == ("sinusoid", "linear2d")
    assert list(configs) == ["sinusoid-demo", "linear2d-demo"]
    sinusoid, linear2d = configs.values()
    assert (sinusoid.family, sinusoid.inner.optimizer, sinusoid.inner.steps) == ("sinusoid", "adam", 32)
    assert (sinusoid.outer.meta_steps, sinusoid.outer.lr, sinusoid.slices.kinds) == (100, "tune", ("pca",))
    assert sinusoid.outer.lr_grid == (1e-4, 3e-4, 1e-3, 3e-3)
    assert (linear2d.family, linear2d.inner.lr, linear2d.slices.kinds) == ("linear2d", 0.1, ("exact", "pca"))
    assert linear2d.outer.tuned and linear2d.outer.lr_grid == (0.003, 0.01, 0.03, 0.1)
    assert configs == {c.name: c for c in map(load_toml, (DEMOS / f"{s}.toml" for s in DEMO_FILES))}


def test_pyproject_ships_the_demo_configs_as_package_data():
    import tomllib
    project = tomllib.loads((DEMOS.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert project["package-data"]["trajviz"] == ["demos/*.toml"]


def shortened(name: str, meta_steps: int):
    """A demo config with fewer meta-steps (the sweep and the page's flags unchanged);
    bench/demo_tuned.py checks the full demos."""
    from trajviz.spec.config import replace
    return replace(demo_configs()[name], **{"outer.meta_steps": meta_steps,
                                           "outer.eval_every": meta_steps // 2,
                                           "slices.resolution": 5, "slices.kinds": ["pca"]})


def test_the_tuned_linear2d_demo_makes_no_learner_worse():
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.viewmodel.training import meta_checks, tuning_rows, worse_line

    run = run_experiment(shortened("linear2d-demo", 20))
    checks = meta_checks(run)
    assert set(checks) == {"leap", "reptile", "fomaml", "maml", "multitask"}
    for name, check in checks.items():
        assert check.end["final_loss"] < check.start["final_loss"], name
        assert check.end["auc"] < check.start["auc"], name
    assert worse_line(run) == "" and all(r["helped"] for r in tuning_rows(run))


def test_the_tuned_sinusoid_demo_improves_every_learner_but_fomaml_which_the_page_flags():
    # Under its Adam inner loop FOMAML's first-order meta-gradient hurts at every outer lr of
    # the grid (docs/baselines.md): the sweep picks the smallest, and the page says so.
    from trajviz.pipeline.experiment import run_experiment
    from trajviz.viewmodel.training import meta_checks, outer_lr_line, tuning_rows

    run = run_experiment(shortened("sinusoid-demo", 10))
    checks = meta_checks(run)
    for name in ("leap", "reptile", "maml", "multitask"):
        assert checks[name].end["final_loss"] < checks[name].start["final_loss"], name
        assert checks[name].end["auc"] < checks[name].start["auc"], name
    rows = {r["learner"]: r for r in tuning_rows(run)}
    assert rows["fomaml"]["chosen"] == 1e-4 and not rows["fomaml"]["helped"]
    assert "No value in the grid beat the starting θ0 for fomaml" in outer_lr_line(run)
