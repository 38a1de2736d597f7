"""The warm worker's launch requests, in process (frames through byte streams): a launch
equals ``launch.launch`` from the same point, NaN included; keep stores it; bad requests
are one line and the worker keeps serving."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from birth_fixtures import make_birth_run

from trajviz.app.launches import decode_launch
from trajviz.app.worker_client import WorkerClient, WorkerError
from trajviz.cli.worker import main, read_frame, serve, write_frame
from trajviz.data.jsonfloats import restore_nonfinite
from trajviz.pipeline.launch import launch, launch_context, point_on_view
from trajviz.store import load_run


def test_the_worker_launches_keeps_and_refuses_in_one_line(tmp_path):
    path = make_birth_run(tmp_path / "runs")
    requests = io.BytesIO()
    for header in ({"kind": "ping"},
                   {"kind": "launch", "view": "exact", "a": 0.3, "b": -0.2, "name": "click-1"},
                   {"kind": "keep_launch", "name": "click-9", "as": "mine"},
                   {"kind": "keep_launch", "name": "click-1", "as": "bad name!"},
                   {"kind": "keep_launch", "name": "click-1", "as": "mine"},
                   {"kind": "bogus"}):
        write_frame(requests, header)
    requests.seek(0)
    replies = io.BytesIO()
    assert serve(path, requests, replies, warm="launch") == 0
    replies.seek(0)
    frames = []
    while (frame := read_frame(replies)) is not None:
        if not frame[0].get("progress"):  # a slow warm-up's heartbeats
            frames.append(frame[0])
    ready, ping, launched, unknown, bad_name, kept, bogus = frames
    assert ready["ready"] and ping["ok"]

    restore_nonfinite(launched["launch"], launched["nonfinite"])
    got = decode_launch(launched["launch"]).record
    ctx = launch_context(load_run(path))
    want = launch(ctx, point_on_view(ctx, "exact", 0.3, -0.2), name="click-1", diagnostics="norms")
    np.testing.assert_array_equal(got.losses, want.record.losses)
    np.testing.assert_array_equal(got.theta0, want.record.theta0)
    assert np.isnan(got.diagnostics["sharpness"]).all()  # NaN crossed the strict-JSON frame
    assert got.params.shape[-1] == 0  # light: no [.., P] arrays

    assert not unknown["ok"] and "no launch named 'click-9'" in unknown["error"]
    assert not bad_name["ok"] and "\n" not in bad_name["error"]
    assert kept == {"ok": True, "name": "mine", "bytes": 0}
    stored = load_run(path).learners["mine"]
    np.testing.assert_array_equal(stored.losses, want.record.losses)
    assert not bogus["ok"] and "unknown request 'bogus'" in bogus["error"]


def test_worker_and_birth_job_usage_errors_exit_2(capsys):
    from trajviz.cli import birthjob

    assert main([]) == 2 and main(["run", "--warm", "everything"]) == 2
    assert "usage: python -m trajviz.cli.worker RUN_PATH [--warm whatif|launch]" in capsys.readouterr().err
    assert birthjob.main(["run", "pca"]) == 2
    assert "usage: python -m trajviz.cli.birthjob RUN_PATH VIEW GRID TASKS" in capsys.readouterr().err


def test_a_worker_that_does_not_answer_is_stopped_with_one_line(tmp_path):
    client = WorkerClient.__new__(WorkerClient)  # a "worker" that reads and never answers
    client.run_path, client.timeout, client._lock = tmp_path / "run", 0.5, threading.Lock()
    client._calls, client._running = 0, None
    client.process = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; sys.stdin.readline(); time.sleep(60)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with pytest.raises(WorkerError, match=r"did not answer within 0 s and was stopped; try again$"):
        client.call("ping")
    assert client.process.wait(timeout=10) != 0  # killed, so a pool starts a fresh one


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="niceness is a POSIX notion")
def test_a_worker_runs_below_the_page(tmp_path):
    """A worker warming up (importing torch) must not slow the page's draw: it runs
    WORKER_NICE lower than the app that started it."""
    from trajviz.spec.priority import WORKER_NICE

    worker = WorkerClient(make_birth_run(tmp_path / "runs"), "whatif")
    try:
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, worker.process.pid) == min(19, mine + WORKER_NICE)
        assert worker.call("ping")[0]["ok"]
    finally:
        worker.close()
