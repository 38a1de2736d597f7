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
    assert configs == {c.name: c for c in map(load_toml, (DEMOS / f"{s}.toml" for s in DEMO_FILES))}


def test_pyproject_ships_the_demo_configs_as_package_data():
    import tomllib
    project = tomllib.loads((DEMOS.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert project["package-data"]["trajviz"] == ["demos/*.toml"]
