"""The package's front door: the docstring example runs as written in a fresh interpreter,
and the console script finds a plugin in the current directory like ``python -m`` does."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import trajviz

ROOT = Path(__file__).resolve().parents[1]


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose only path entry is a folder holding this checkout's trajviz
    (not the checkout itself, so ``demos`` is importable only from the current directory)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "trajviz").symlink_to(ROOT / "trajviz")
    return {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}


def test_the_package_docstring_example_runs(tmp_path):
    block = re.search(r"::\n\n((?:    .*\n)+)", trajviz.__doc__).group(1)
    code = "\n".join(line[4:] for line in block.splitlines())
    assert "trajviz.config.from_dict" in code and "run_experiment" in code
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_fresh_env(tmp_path),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    mean, lo, hi = json.loads(out.stdout.strip())
    assert lo <= mean <= hi and mean > 0


def test_console_script_loads_a_plugin_from_the_repository_root(tmp_path):
    script = shutil.which("trajviz")
    if script is None:
        pytest.skip("the trajviz console script is not installed")
    runs = tmp_path / "runs"
    argv = [script, "run", "--family", "demos.plugin_example:make_family", "--trust-plugin",
            "demos.plugin_example:make_family", "--learners", "random",
            "--steps", "2", "--meta-steps", "1", "--set", "heldout_tasks=3",
            "--set", "slices.resolution=5", "--out", str(runs), "--quiet"]
    env = _fresh_env(tmp_path)
    out = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    run = json.loads((Path(out.stdout.strip()) / "run.json").read_text())
    assert run["config"]["family"] == "demos.plugin_example:make_family"
    assert run["info"]["model"] == "cubic" and run["info"]["param_count"] == 4
    # from elsewhere the module is not found, and the message says so in one line
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip() == ("trajviz: error: cannot import plugin module "
                                  "'demos.plugin_example': No module named 'demos'")
