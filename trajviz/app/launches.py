"""Click-to-launch and birth-map jobs for the app, run in worker processes (no torch here).

``LaunchBoard`` keeps one warm ``trajviz.cli.worker`` process (``--warm launch``) for
the run on screen, in a ``WorkerPool`` of its own (started when the run is
picked, so the first click does not pay for importing torch and loading the
run), sends it one launch at a time, and holds each run's latest launch (numpy,
without the [.., P] arrays) so the inner-loop view draws it as one more learner
(``over``). ``keep`` asks the worker to store the launch in the run
(``launch.keep``, atomic). Birth-map jobs run in their own short-lived process,
``python -m trajviz.cli.birthjob`` (``BirthJobs``).
"""
from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trajviz.app.actions import Report
from trajviz.app.jobs import job_status, scratch, spawn, stop
from trajviz.app.worker_client import CANCEL_GRACE_S, WorkerCancelled, WorkerPool
from trajviz.data.jsonfloats import restore_nonfinite
from trajviz.data.run import Launch, LearnerRecord, Run, ViewPaths, with_learner

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


def _now(fn):
    return fn()


class LaunchBoard:
    """The app's launches: one warm worker (for the run on screen), one launch at a time,
    and the latest launch of each run, drawn beside its learners until replaced or kept."""

    def __init__(self):
        self._pool = WorkerPool(1, warm="launch", follow=False)
        self._busy = threading.Lock()
        self._latest: dict[str, Launch] = {}
        self._count = 0

    def warm(self, run_path: Path) -> None:
        """Start the worker for ``run_path`` in the background (any other run's is stopped)."""
        self._pool.prewarm(str(run_path), Path(run_path))

    def busy(self) -> bool:
        return self._busy.locked()

    def is_warm(self, run_path: Path) -> bool:
        return self._pool.is_warm(str(run_path))

    def launch(self, run_id: str, run_path: Path, view: str, a: float, b: float,
               report: Report | None = None) -> Launch:
        """Launch from (a, b) on ``view``; ValueError (one line) if one is running or it failed.
        With ``report`` (an action): it waits for a launch being cancelled to end, its stage
        follows the worker, a cancel stops the worker's job (WorkerCancelled), and a
        cancelled launch is not made the run's latest."""
        waited = self._busy.acquire(timeout=CANCEL_GRACE_S + 1) if report is not None \
            else self._busy.acquire(blocking=False)
        if not waited:
            raise ValueError("a launch is already running; wait for it to finish")
        try:
            self._count += 1
            name = f"{CLICK_PREFIX}-{self._count}"
            if report is not None and not self._pool.is_warm(str(run_path)):
                report.stage("starting the worker for this run (importing torch, reading the run)")
            worker = self._pool.get(str(run_path), Path(run_path))
            if report is not None:
                if report.cancelled:  # cancelled while it waited for the worker
                    raise WorkerCancelled("cancelled before it began")
                report.on_cancel(worker.cancel)
                report.stage("waiting for the worker")  # its progress frames say when it has begun

            def progress(frame: dict) -> None:
                if report is not None:
                    report.stage(frame.get("stage", ""))

            reply, _ = worker.call("launch", view=view, a=a, b=b, name=name, on_progress=progress)
            restore_nonfinite(reply["launch"], reply.get("nonfinite", []))  # in place
            result = decode_launch(reply["launch"])
            (report.land if report is not None else _now)(
                lambda: self._latest.__setitem__(run_id, result))
            return result
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
            reply, _ = self._pool.get(str(run_path), Path(run_path)).call(
                "keep_launch", name=result.record.name, **{"as": new_name})
        finally:
            self._busy.release()
        self._latest.pop(run_id, None)
        return reply["name"]

    def over(self, run_id: str | None, run: Run, learners: list[str]) -> tuple[Run, list[str]]:
        """``run`` and ``learners`` with the run's latest launch added as one more learner."""
        result = self._latest.get(run_id or "")
        if result is None or result.record.name in run.learners or set(run.views) - set(result.views):
            return run, learners
        return with_learner(run, result), [*learners, result.record.name]

    def shutdown(self) -> None:
        self._pool.shutdown()


@dataclass
class BirthJob:
    run_id: str
    view: str
    folder: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.time)
    cancelled: bool = False


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
        process = spawn(folder, ["trajviz.cli.birthjob", str(run_path), view, str(grid), str(tasks),
                                 str(folder / "progress.json")])
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
        if job.cancelled:
            return {"state": "cancelled", "fraction": 0.0, "stage": "", "message": "cancelled",
                    "elapsed": 0.0, "run_id": job.run_id}
        return {**job_status(job.folder, job.process, job.started), "run_id": job.run_id}

    def cancel(self, job_id: str | None) -> bool:
        """Stop a running birth-map job (SIGTERM: it writes nothing; the run is unchanged)."""
        with self._lock:
            job = self._jobs.get(job_id or "")
        if job is None or job.process.poll() is not None:
            return False
        job.cancelled = True
        stop(job.process, job.folder)
        return True

    def shutdown(self) -> None:
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            stop(job.process, job.folder)


__all__ = ["BirthJobs", "LaunchBoard", "decode_launch"]
