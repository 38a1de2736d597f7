"""The shipped configs parse, and `trajviz demo` builds what demos/*.toml describe."""
from pathlib import Path

import pytest

from trajviz.config import load_toml, to_dict
from trajviz.experiment import demo_configs

DEMOS = Path(__file__).resolve().parents[1] / "demos"


@pytest.mark.parametrize("path", sorted(DEMOS.glob("*.toml")), ids=lambda p: p.name)
def test_demo_config_parses(path):
    config = load_toml(path)
    assert config.name


def test_demo_command_matches_the_toml_files():
    for name, config in demo_configs().items():
        stem = name.removesuffix("-demo")
        assert to_dict(load_toml(DEMOS / f"{stem}.toml")) == to_dict(config)
