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
    assert (sinusoid.outer.meta_steps, sinusoid.outer.lr, sinusoid.slices.kinds) == (100, "tune", ("pca",))
    assert sinusoid.outer.lr_grid == (1e-4, 3e-4, 1e-3, 3e-3)
    assert (linear2d.family, linear2d.inner.lr, linear2d.slices.kinds) == ("linear2d", 0.1, ("exact", "pca"))
    assert linear2d.outer.tuned and linear2d.outer.lr_grid == (0.003, 0.01, 0.03, 0.1)
    assert configs == {c.name: c for c in map(load_toml, (DEMOS / f"{s}.toml" for s in DEMO_FILES))}


def test_pyproject_ships_the_demo_configs_as_package_data():
    import tomllib
    project = tomllib.loads((DEMOS.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert project["package-data"]["trajviz"] == ["demos/*.toml"]


# ------------------------------------------------ `trajviz demo`: the page at once, runs behind it

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import replace  # noqa: E402
from types import SimpleNamespace  # noqa: E402

from app_fixtures import make_run, write_run_dir  # noqa: E402
from page_http import demo_line, picker  # noqa: E402

from trajviz.app import create_app  # noqa: E402
from trajviz.app.demo import DemoJob, demo_status  # noqa: E402
from trajviz.app.jobs import job_config, work  # noqa: E402
from trajviz.cli.main import missing_demos  # noqa: E402
from trajviz.store import list_runs  # noqa: E402

ROOT = DEMOS.parents[1]


def _tiny(name: str):
    return job_config("linear2d", ["leap", "random"], 3, 2, 0, name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _until(what, limit_s: float = 300.0, period: float = 0.2):
    """Poll ``what()`` until it is true (a bounded wait, not a timing assertion)."""
    for _ in range(int(limit_s / period)):
        value = what()
        if value:
            return value
        time.sleep(period)
    raise AssertionError(f"still not true after {limit_s:.0f} s: {what}")


def test_missing_demos_are_the_ones_without_a_run_quickest_first(tmp_path):
    assert [c.name for c in missing_demos(tmp_path / "none")] == ["linear2d-demo", "sinusoid-demo"]
    run = make_run()
    write_run_dir(tmp_path, replace(run, config={**run.config, "name": "linear2d-demo"}))
    assert [c.name for c in missing_demos(tmp_path)] == ["sinusoid-demo"]  # a second start


class _Jobs:
    def __init__(self, status):
        self.value = status

    def status(self, job_id):
        assert job_id == "job"
        return {"run_id": "", "elapsed": 12.4, "message": "", **self.value}


def test_the_demo_line_says_what_is_training_and_how_far():
    state = SimpleNamespace(demo="job", jobs=_Jobs({
        "state": "running", "fraction": 0.5, "stage": "meta-training leap: step 50/100",
        "index": 1, "total": 2, "name": "sinusoid-demo", "runs": ["r1"]}))
    o = demo_status(state, 0)
    assert o["text"] == ("Training the demo runs behind this page (first start only): 2 of 2, "
                         "sinusoid-demo: meta-training leap: step 50/100 · 12 s; "
                         "1 ready in the picker")
    assert o["fraction"] == pytest.approx(0.75) and o["style"] == {}
    assert (o["announce"], o["seen"], o["poll_disabled"]) == (True, 1, False)
    assert demo_status(state, 1)["announce"] is False  # told of r1 already
    state.jobs.value = {"state": "done", "fraction": 1.0, "stage": "done", "index": 1,
                        "total": 2, "name": "sinusoid-demo", "runs": ["r1", "r2"]}
    o = demo_status(state, 1)
    assert (o["text"], o["fraction"], o["announce"], o["poll_disabled"]) == \
        ("The demo runs are ready: 2 in the picker.", 1.0, True, True)
    state.jobs.value = {"state": "failed", "fraction": 0.0, "message": "OSError: disk full",
                        "index": 1, "total": 2, "name": "sinusoid-demo", "runs": ["r1"]}
    o = demo_status(state, "not a count")
    assert o["text"].startswith("Making sinusoid-demo failed: OSError: disk full. ")
    assert o["poll_disabled"] is True and o["announce"] is True
    hidden = demo_status(SimpleNamespace(demo=None), 0)
    assert hidden["style"] == {"display": "none"} and hidden["poll_disabled"] is True


def test_a_job_of_several_configs_writes_each_run_in_order(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        [json.loads(json.dumps(_to_dict(_tiny(n)))) for n in ("tiny-a", "tiny-b")]))
    assert work(tmp_path / "config.json", tmp_path / "runs", tmp_path / "progress.json") == 0
    status = json.loads((tmp_path / "progress.json").read_text())
    assert (status["state"], status["index"], status["total"], status["name"]) == \
        ("done", 1, 2, "tiny-b")
    entries = {e.run_id: e.name for e in list_runs(tmp_path / "runs")}
    assert [entries[r] for r in status["runs"]] == ["tiny-a", "tiny-b"]
    assert status["run_id"] == status["runs"][-1]


def _to_dict(config):
    from trajviz.spec.config import to_dict
    return to_dict(config)


def test_the_page_answers_at_once_and_its_picker_fills_as_the_runs_are_written(tmp_path):
    from werkzeug.serving import make_server

    app = create_app(tmp_path / "runs", demo=DemoJob((_tiny("tiny-a"), _tiny("tiny-b"))))
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/"
    try:
        with urllib.request.urlopen(url, timeout=60) as reply:
            assert reply.status == 200
        assert picker(url) == ([], None)  # served before any run was written
        assert demo_line(url).startswith("Training the demo runs behind this page "
                                         "(first start only): ")
        seen = []

        def both():
            runs = picker(url)[0]
            if not seen or seen[-1] != runs:
                seen.append(runs)
            return len(runs) == 2
        _until(both)
        names = {e.run_id: e.name for e in list_runs(tmp_path / "runs")}
        listed = [[names[r] for r in runs] for runs in seen if runs]
        assert all("tiny-a" in names_ for names_ in listed)  # tiny-b is never listed first
        assert sorted(listed[-1]) == ["tiny-a", "tiny-b"]
        assert demo_line(url) == "The demo runs are ready: 2 in the picker."
    finally:
        server.shutdown()
        app.trajviz_state.shutdown()  # every worker and job it started


def test_trajviz_demo_serves_the_page_before_the_runs_exist(tmp_path):
    """`trajviz demo` in an empty folder: the page answers while the demo runs are made;
    stopped then, it leaves no half-written run."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "trajviz", "demo", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"

    def answers():
        assert proc.poll() is None, proc.stderr.read()
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return reply.status == 200
        except OSError:
            return False
    try:
        _until(answers, limit_s=180)
        line = demo_line(url)
        assert line.startswith("Training the demo runs behind this page (first start only): "
                               "1 of 2, linear2d-demo"), line
        listed = picker(url)[0]
        assert len(listed) < 2
    finally:
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    assert "making the demo runs linear2d-demo, sinusoid-demo behind the page" in err
    entries = list_runs(tmp_path / "runs") if (tmp_path / "runs").exists() else []
    assert all(e.ok for e in entries) and len(entries) <= 1
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
