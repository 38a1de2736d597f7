"""Click-to-launch and birth-map jobs for the app, run in worker processes (no torch here).

``LaunchBoard`` keeps one warm ``trajviz.launch_worker`` process for the run
on screen (started when the run is picked, so the first click does not pay
for importing torch and loading the run), sends it one launch at a time, and
holds each run's latest launch (numpy, without the [.., P] arrays) so the
inner-loop view draws it as one more learner (``over``). ``keep`` asks the
worker to store the launch in the run (``launch.keep``, atomic). Birth-map
jobs run in their own short-lived worker process (``BirthJobs``).
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..run import Launch, LearnerRecord, Run, ViewPaths, with_learner
from .jobs import job_status, scratch, spawn, stop
from .worker_client import close_process

READY_SECONDS = 120.0  # loading a run and importing torch on a busy 2-core machine
LAUNCH_SECONDS = 120.0
CLICK_PREFIX = "click"


def _array(spec: dict[str, Any]) -> np.ndarray:
    return np.asarray(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])


def decode_launch(data: dict[str, Any]) -> Launch:
    """The worker's ``light_launch`` JSON back into a ``Launch`` (numpy)."""
    rec = dict(data["record"])
    groups = {g: {k: _array(v) for k, v in rec.pop(g).items()}
              for g in ("evals", "metrics", "running", "diagnostics")}
    name = rec.pop("name")
    record = LearnerRecord(name=name, **{k: _array(v) for k, v in rec.items()}, **groups)
    views = {k: ViewPaths(**{f: _array(v) for f, v in paths.items()})
             for k, paths in data["views"].items()}
    return Launch(record, views, float(data["seconds"]))


class LaunchWorker:
    """One ``python -m trajviz.launch_worker RUN_PATH`` process and its reply queue."""

    def __init__(self, run_path: Path):
        self.run_path = Path(run_path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trajviz.launch_worker", str(self.run_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._errors: list[str] = []
        self.ready = False
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self._replies.put(json.loads(line))
            except ValueError:
                continue
        self._replies.put(None)

    def _read_errors(self) -> None:
        for line in self.process.stderr:
            if line.strip():
                self._errors = [*self._errors[-20:], line.strip()]

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the launch worker did not answer within {timeout:.0f} s") from None
        if reply is None:
            last = self._errors[-1] if self._errors else "no message"
            raise RuntimeError(f"the launch worker stopped: {last}")
        return reply

    def wait_ready(self, timeout: float = READY_SECONDS) -> None:
        if not self.ready:
            self._next(timeout)
            self.ready = True

    def ask(self, request: dict[str, Any], timeout: float = LAUNCH_SECONDS) -> dict[str, Any]:
        self.wait_ready()
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._next(timeout)

    def close(self) -> None:
        close_process(self.process)


class LaunchBoard:
    """The app's launches: one warm worker (for the run on screen), one launch at a time,
    and the latest launch of each run, drawn beside its learners until replaced or kept."""

    def __init__(self):
        self._worker: LaunchWorker | None = None
        self._worker_lock = threading.Lock()
        self._busy = threading.Lock()
        self._latest: dict[str, Launch] = {}
        self._count = 0

    def warm(self, run_path: Path) -> LaunchWorker:
        """The worker for ``run_path``, started (and any other run's stopped) if needed."""
        with self._worker_lock:
            w = self._worker
            if w is None or w.run_path != Path(run_path) or w.process.poll() is not None:
                if w is not None:
                    w.close()
                w = self._worker = LaunchWorker(Path(run_path))
            return w

    def busy(self) -> bool:
        return self._busy.locked()

    def launch(self, run_id: str, run_path: Path, view: str, a: float, b: float) -> Launch:
        """Launch from (a, b) on ``view``; ValueError (one line) if one is running or it failed."""
        if not self._busy.acquire(blocking=False):
            raise ValueError("a launch is already running; wait for it to finish")
        try:
            self._count += 1
            name = f"{CLICK_PREFIX}-{self._count}"
            reply = self.warm(run_path).ask({"op": "launch", "view": view, "a": a, "b": b,
                                             "name": name})
            if not reply.get("ok"):
                raise ValueError(reply.get("error", "the launch failed"))
            result = decode_launch(reply["launch"])
            self._latest[run_id] = result
            return result
        except (TimeoutError, RuntimeError, OSError) as exc:
            raise ValueError(str(exc)) from None
        finally:
            self._busy.release()

    def latest(self, run_id: str) -> Launch | None:
        return self._latest.get(run_id)

    def keep(self, run_id: str, run_path: Path, new_name: str) -> str:
        """Store the run's latest launch in the run as ``new_name``; ValueError if it cannot."""
        result = self._latest.get(run_id)
        if result is None:
            raise ValueError("there is no launch to keep; click a point on the surface first")
        if not self._busy.acquire(blocking=False):
            raise ValueError("a launch is running; keep the point when it has finished")
        try:
            reply = self.warm(run_path).ask({"op": "keep", "name": result.record.name,
                                             "as": new_name})
        except (TimeoutError, RuntimeError, OSError) as exc:
            raise ValueError(str(exc)) from None
        finally:
            self._busy.release()
        if not reply.get("ok"):
            raise ValueError(reply.get("error", "keeping the point failed"))
        self._latest.pop(run_id, None)
        return reply["name"]

    def over(self, run_id: str | None, run: Run, learners: list[str]) -> tuple[Run, list[str]]:
        """``run`` and ``learners`` with the run's latest launch added as one more learner."""
        result = self._latest.get(run_id or "")
        if result is None or result.record.name in run.learners or set(run.views) - set(result.views):
            return run, learners
        return with_learner(run, result), [*learners, result.record.name]

    def shutdown(self) -> None:
        with self._worker_lock:
            if self._worker is not None:
                self._worker.close()
                self._worker = None


@dataclass
class BirthJob:
    run_id: str
    view: str
    folder: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.time)


class BirthJobs:
    """Birth maps computed in the background, one at a time (they are CPU-heavy)."""

    def __init__(self):
        self._jobs: dict[str, BirthJob] = {}
        self._lock = threading.Lock()

    def running(self) -> BirthJob | None:
        with self._lock:
            return next((j for j in self._jobs.values() if j.process.poll() is None), None)

    def start(self, run_id: str, run_path: Path, view: str, grid: int, tasks: int) -> str:
        busy = self.running()
        if busy is not None:
            raise ValueError(f"a birth map is already being computed (run {busy.run_id}); "
                             "wait for it to finish")
        job_id, folder = scratch("birth")
        process = spawn(folder, ["trajviz.launch_worker", "--birthmap", str(run_path), view,
                                 str(grid), str(tasks), str(folder / "progress.json")])
        with self._lock:
            self._jobs[job_id] = BirthJob(run_id, view, folder, process)
        return job_id

    def status(self, job_id: str | None) -> dict[str, Any]:
        """{state: running|done|failed|unknown, fraction, stage, message, elapsed, run_id}."""
        with self._lock:
            job = self._jobs.get(job_id or "")
        if job is None:
            return {"state": "unknown", "fraction": 0.0, "stage": "", "message": "no such job",
                    "elapsed": 0.0, "run_id": ""}
        return {**job_status(job.folder, job.process, job.started), "run_id": job.run_id}

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            stop(job.process, job.folder)


__all__ = ["BirthJobs", "LaunchBoard", "LaunchWorker", "decode_launch"]
