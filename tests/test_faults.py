"""Faults (issue 11): SIGKILL, SIGINT and SIGTERM at several moments of ``trajviz run``
and of an app job leave no half run, no debris after the next start, a re-run works
and the message is true; 16 concurrent "New run" requests start exactly one job.

``trajviz run`` is driven in a subprocess whose experiment is a fixture run (so each
takes a second, not minutes) and whose store is slowed at one moment: while training,
while saving (before the rename) or just after the rename."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from trajviz.app import callbacks as cb
from trajviz.store import list_runs, load_run, sweep_stale

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

DRIVER = textwrap.dedent("""
    import sys, time, types
    sys.path.insert(0, {tests!r})
    from app_fixtures import make_run
    import trajviz.store.write as W
    from trajviz.cli import main as cli

    moment = sys.argv[1]
    def fake_experiment(config, progress=None, run_id=None, **kw):
        if moment == "training":
            print("AT training", flush=True); time.sleep(60)
        return make_run(run_id=run_id, learners=("leap",), n_tasks=2, steps=4)
    # stands in for trajviz.pipeline.experiment (which would import torch: seconds per process)
    sys.modules["trajviz.pipeline.experiment"] = types.SimpleNamespace(run_experiment=fake_experiment)
    real_npz, real_fsync = W._write_npz, W._fsync_dir
    def slow_npz(path, arrays):
        real_npz(path, arrays)
        if moment == "saving" and path.name == "light.npz":
            print("AT saving", flush=True); time.sleep(60)
    def slow_fsync(path):
        real_fsync(path)
        if moment == "renamed" and not path.name.startswith(".tmp-"):
            print("AT renamed", flush=True); time.sleep(60)
    W._write_npz, W._fsync_dir = slow_npz, slow_fsync
    sys.exit(cli.main(["run", "--family", "linear2d", "--learners", "leap", "--quiet",
                       "--out", sys.argv[2]]))
""").format(tests=str(TESTS))


def _ctrl_c_delivered() -> None:
    """A child's SIGINT as a terminal's foreground process has it (Python then raises
    KeyboardInterrupt): a shell that starts this suite in the background (``cmd &``
    without job control) hands its children SIGINT ignored, and the tests send SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _start(tmp_path: Path, moment: str, runs: Path) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), moment, str(runs)], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_delivered)
    line = proc.stdout.readline()
    assert line.strip() == f"AT {moment}", (line, proc.stderr.read())
    return proc


def _visible(runs: Path) -> list[str]:
    return sorted(p.name for p in runs.iterdir()) if runs.exists() else []


MOMENTS = [(m, s) for m in ("training", "saving") for s in ("SIGINT", "SIGTERM", "SIGKILL")]


@pytest.mark.parametrize("moment, sig", MOMENTS, ids=[f"{m}-{s}" for m, s in MOMENTS])
def test_run_stopped_before_the_rename_leaves_nothing(moment, sig, tmp_path):
    runs = tmp_path / "runs"
    proc = _start(tmp_path, moment, runs)
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=60)
    assert list_runs(runs) == []
    if sig == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:  # handled like Ctrl-C: the temporary folder is removed and the message is true
        assert proc.returncode == 130
        assert err.strip().splitlines()[-1] == "trajviz: interrupted; nothing was written"
        assert _visible(runs) == []
    # the next start sweeps whatever a killed writer left (its pid is gone)
    sweep_stale(runs)
    assert _visible(runs) == []
    rerun = subprocess.run([sys.executable, str(tmp_path / "driver.py"), "none", str(runs)],
                           cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    (entry,) = list_runs(runs)
    assert entry.ok and _visible(runs) == [entry.run_id]
    assert Path(rerun.stdout.strip()).name == entry.run_id


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_just_after_the_rename_says_the_run_was_written(sig, tmp_path):
    runs = tmp_path / "runs"
    proc = _start(tmp_path, "renamed", runs)
    proc.send_signal(getattr(signal, sig))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    (entry,) = list_runs(runs)
    assert entry.ok and _visible(runs) == [entry.run_id]
    last = err.strip().splitlines()[-1]
    assert last == f"trajviz: interrupted; the run was written completely to {runs / entry.run_id}"
    assert load_run(runs / entry.run_id).learners["leap"].losses.shape == (2, 5)


def test_stale_temp_folders_are_swept_only_when_their_owner_is_gone(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    from trajviz.store.sweep import owner_tag
    mine = runs / f".tmp-r1-{owner_tag()}-0123abcd"       # this live process owns it
    dead = runs / ".tmp-r2-p999999999-s5-0123abcd"         # no such pid
    reused = runs / f".tmp-r3-p{os.getpid()}-s1-0123abcd"  # our pid, another start time
    old = runs / ".tmp-r4-deadbeef"                        # old format, an hour old
    young = runs / ".tmp-r5-deadbeef"                      # old format, just written
    for p in (mine, dead, reused, old, young):
        p.mkdir()
    hour_ago = old.stat().st_mtime - 7200
    os.utime(old, (hour_ago, hour_ago))
    (runs / ".tmp-link").symlink_to(tmp_path)
    assert sorted(sweep_stale(runs)) == [dead.name, reused.name, old.name]
    assert _visible(runs) == sorted([".tmp-link", mine.name, young.name])


def test_a_run_moved_aside_by_a_killed_replace_is_removed_or_restored(tmp_path):
    # replace_run without an atomic swap: old run aside, new run in; a writer killed
    # between the two renames leaves the aside folder as the run's only copy
    from trajviz.store.sweep import owner_tag
    runs = tmp_path / "runs"
    runs.mkdir()
    for run_id in ("kept", "lost", "busy", "legacy"):
        (runs / f"{run_id}-aside").mkdir()
        (runs / f"{run_id}-aside" / "run.json").write_text(run_id)
    (runs / "kept").mkdir()  # its new version made it in
    (runs / "kept-aside").rename(runs / ".old-kept-p999999999-s5-0123abcd")
    (runs / "lost-aside").rename(runs / ".old-lost-p999999999-s5-0123abcd")  # only copy
    (runs / "busy-aside").rename(runs / f".old-busy-{owner_tag()}-0123abcd")  # writer alive
    (runs / "legacy-aside").rename(runs / ".old-legacy-0123abcd")  # no owner, an hour old
    legacy = runs / ".old-legacy-0123abcd"
    os.utime(legacy, (legacy.stat().st_mtime - 7200,) * 2)
    settled = sweep_stale(runs)
    assert sorted(settled) == [".old-kept-p999999999-s5-0123abcd", ".old-legacy-0123abcd",
                               ".old-lost-p999999999-s5-0123abcd"]
    assert (runs / "lost" / "run.json").read_text() == "lost"
    assert (runs / "legacy" / "run.json").read_text() == "legacy"
    assert not (runs / "kept" / "run.json").exists()  # the new version stays, the old is gone
    assert _visible(runs) == sorted(["kept", "legacy", "lost", f".old-busy-{owner_tag()}-0123abcd"])


# ---------------------------------------------------------------------------- app jobs

TINY = dict(family="linear2d", learners=["leap"], steps=5, meta_steps=100_000, seed=0)


def _worker(tmp_path: Path, runs: Path, tag: str, parent_env: bool = True):
    from trajviz.app.jobs import job_config
    from trajviz.spec.config import to_dict

    folder = tmp_path / f"job-{tag}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(to_dict(job_config(**TINY))))
    env = {**_env(), "TRAJVIZ_PARENT_PID": str(os.getpid())}
    return folder, subprocess.Popen(
        [sys.executable, "-m", "trajviz.app.jobs", str(folder / "config.json"), str(runs),
         str(folder / "progress.json")], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=_ctrl_c_delivered)


def _stage(folder: Path) -> dict:
    try:
        return json.loads((folder / "progress.json").read_text())
    except (OSError, ValueError):
        return {}


def test_app_jobs_stopped_by_each_signal_leave_no_run_and_no_debris(tmp_path):
    """Three workers meta-training at once, stopped by SIGINT, SIGTERM and SIGKILL."""
    runs = tmp_path / "runs"
    workers = {s: _worker(tmp_path, runs, s) for s in ("SIGINT", "SIGTERM", "SIGKILL")}
    for folder, proc in workers.values():
        for _ in range(1200):  # bounded polling (about four minutes), not a timing
            stage = _stage(folder).get("stage", "")
            if "meta-training" in stage or "tuning the outer lr" in stage:  # the demo tunes
                break
            assert proc.poll() is None
            time.sleep(0.2)
        else:
            raise AssertionError(f"{folder.name} never reached meta-training")
    for sig, (_, proc) in workers.items():
        proc.send_signal(getattr(signal, sig))
    for sig, (folder, proc) in workers.items():
        code = proc.wait(timeout=60)
        if sig == "SIGKILL":
            assert code == -signal.SIGKILL
        else:
            assert code == 130
            assert _stage(folder) == {"state": "failed", "fraction": 0.0, "stage": "",
                                      "message": "stopped before the run was written; "
                                                 "nothing was saved", "run_id": ""}
    assert list_runs(runs) == []
    sweep_stale(runs)
    assert [p for p in _visible(runs) if p.startswith(".tmp-")] == []


def test_a_worker_dies_with_its_server(tmp_path):
    """The server is SIGKILLed (no atexit, no handler): its worker notices and stops."""
    runs = tmp_path / "runs"
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from trajviz.app.jobs import JobManager, job_config
        jobs = JobManager({str(runs)!r})
        jobs.start(job_config(**{TINY!r}))
        print(next(iter(jobs._jobs.values())).process.pid, flush=True)
        time.sleep(600)
        """)], cwd=ROOT, env=_env(), stdout=subprocess.PIPE, text=True)
    worker = int(server.stdout.readline())
    server.kill()
    server.wait()
    for _ in range(600):  # bounded polling (about two minutes), not a timing
        if not _alive(worker):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the worker outlived its server")
    assert list_runs(runs) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sixteen_concurrent_new_run_requests_start_exactly_one_job(tmp_path):
    state = cb.AppState.for_dir(tmp_path / "runs")
    barrier = threading.Barrier(16)
    results: list[dict] = []

    def click():
        barrier.wait()
        results.append(cb.start_job(state, "linear2d", ["leap"], 5, 100_000, 0, "race"))

    threads = [threading.Thread(target=click) for _ in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        started = [r for r in results if r["status"] == "Starting…"]
        refused = [r["status"] for r in results if r["status"] != "Starting…"]
        assert len(results) == 16 and len(started) == 1 and len(state.jobs._jobs) == 1
        assert all(s in ("Not started: a run is already being made; wait for it to finish",
                         "Not started: another run is being started right now; wait for it "
                         "to finish") for s in refused), refused
        assert cb.start_job(state, "linear2d", ["leap"], 5, 50, 0, "")["status"] == \
            "Not started: a run is already being made; wait for it to finish"
    finally:
        state.jobs.shutdown()
