"""The data side runs without torch: a fresh interpreter imports the store, the
view-model, every figure module, the exports and the app (and builds an app on an
empty runs folder), and torch is never loaded."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import trajviz.figures

FIGURE_MODULES = sorted(f"trajviz.figures.{p.stem}" for p in
                        Path(trajviz.figures.__file__).parent.glob("*.py")
                        if p.stem != "__init__")
MODULES = ["trajviz.data.run", "trajviz.spec.names", "trajviz.store", "trajviz.viewmodel.selection",
           "trajviz.viewmodel.honesty", "trajviz.viewmodel.axes", "trajviz.viewmodel.summary", "trajviz.viewmodel.palette",
           "trajviz.figures", *FIGURE_MODULES, "trajviz.figures.export", "trajviz.app",
           "trajviz.app.callbacks", "trajviz.app.components", "trajviz.app.layout",
           "trajviz.app.state", "trajviz.app.jobs", "trajviz.app.whatif",
           "trajviz.app.worker_client", "trajviz.store.inner_variants",
           "trajviz.viewmodel.birthview", "trajviz.app.birth", "trajviz.app.launches"]

SCRIPT = """
import importlib, json, sys, tempfile
for name in {modules!r}:
    importlib.import_module(name)
from trajviz.app import create_app
with tempfile.TemporaryDirectory() as runs:
    app = create_app(runs)
    app.trajviz_state.shutdown()  # every worker and job it started
print(json.dumps({{"torch": sorted(m for m in sys.modules if m == "torch"
                                  or m.startswith("torch."))}}))
"""


def _run(code: str) -> dict:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_data_side_never_imports_torch():
    assert "trajviz.figures.plane" in FIGURE_MODULES and len(FIGURE_MODULES) >= 6
    result = _run(SCRIPT.format(modules=MODULES))
    assert result["torch"] == []


def test_the_view_model_never_imports_plotly():
    code = ("import json, sys; import trajviz.viewmodel.selection, trajviz.viewmodel.summary; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('plotly', 'dash', 'torch'))))")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)}, cwd=root, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == []
