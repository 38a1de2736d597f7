"""A wheel works on its own: built from this checkout, installed without ``-e`` into a fresh
virtual environment, and used from a folder outside the checkout (an editable install hides
a package missing from the wheel; this does not)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv}: {out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built with this environment's setuptools (no build isolation: no network)."""
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", dist, ROOT], cwd=dist, env=os.environ.copy())
    [built] = dist.glob("trajviz-*.whl")
    return built


def test_the_wheel_holds_every_package_and_its_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix()
                for p in (ROOT / "trajviz").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names
    for data in ("trajviz/app/assets/playback.js", "trajviz/app/assets/style.css",
                 "trajviz/demos/sinusoid.toml", "trajviz/demos/linear2d.toml"):
        assert data in names
    assert any(n.startswith("trajviz/kernels/") and n.endswith(".c") for n in names)
    assert not any(n.startswith(("tests/", "bench/", "demos/")) for n in names)


def test_the_installed_wheel_runs_exports_and_serves_from_elsewhere(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # the dependencies come from this environment's site-packages, as a plain path entry:
    # its .pth files (this checkout's editable install among them) are not processed there
    site = Path(sysconfig.get_paths(vars={"base": str(env_dir), "platbase": str(env_dir)})["purelib"])
    site.mkdir(parents=True, exist_ok=True)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS="1", PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "-q", wheel], cwd=tmp_path, env=env)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([python, "-c", "import trajviz; print(trajviz.__file__)"], work, env).stdout
    assert Path(where.strip()).is_relative_to(env_dir), where  # the wheel, not this checkout

    trajviz = env_dir / "bin" / "trajviz"
    out = _run([trajviz, "run", "--family", "linear2d", "--learners", "leap,random", "--steps",
                "3", "--meta-steps", "2", "--set", "heldout_tasks=3", "--set",
                "slices.resolution=5", "--out", "runs", "--quiet"], work, env)
    run_dir = work / out.stdout.strip().splitlines()[-1]
    assert run_dir.parent == work / "runs"
    assert json.loads((run_dir / "run.json").read_text())["config"]["family"] == "linear2d"
    _run([trajviz, "export", run_dir, "--format", "html", "--view", "surface", "--out", "figs"],
         work, env)
    assert len(list((work / "figs").glob("*.html"))) == 1
    code = ("from trajviz.app import create_app; app = create_app('runs'); "
            "print(app.title, len(app.callback_map) > 0)")
    assert _run([python, "-c", code], work, env).stdout.split() == ["trajviz", "True"]
