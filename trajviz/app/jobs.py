"""New runs started from the browser, as background processes that never block the server.

``JobManager.start(config)`` launches ``python -m trajviz.app.jobs CONFIG RUNS_DIR PROGRESS``
in its own process; the worker calls ``run_experiment`` with a progress callback
that rewrites a small JSON file (atomically), writes the run with
``store.write_run`` and records the run id. The page polls ``status(job_id)``.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trajviz.spec.priority import lower_priority
from trajviz.store.files import write_json


def job_config(family: str, learners: list[str], steps: int, meta_steps: int, seed: int,
               name: str = ""):
    """A small, quick ExperimentConfig from the browser form; ValueError (one line) if bad.

    Starts from the family's demo config where ``trajviz.spec.config.demo_configs`` has
    one, else from small defaults (8 tasks per meta-step, 6 held-out tasks, a 41×41
    PCA slice, plus the exact slice for 2-parameter models). Every value is checked,
    and bounded, by ``trajviz.spec.config``."""
    from trajviz.spec import budget
    from trajviz.spec.config import ExperimentConfig, demo_configs, from_dict, to_dict

    base = next((c for c in demo_configs().values() if c.family == family), None)
    if base is None:
        sizes = budget.family_sizes(family, {})
        two = sizes is not None and sizes.param_count == 2
        data = to_dict(ExperimentConfig(family=family))
        data["outer"].update({"meta_batch": 8, "eval_tasks": 4})
        data["heldout_tasks"] = 6
        data["slices"].update({"kinds": ["pca", "exact"] if two else ["pca"], "resolution": 41})
    else:
        data = to_dict(base)
    data["learners"] = list(learners)
    data["learner_options"] = {k: v for k, v in data.get("learner_options", {}).items()
                               if k in learners}
    data["inner"]["steps"] = steps
    data["outer"]["meta_steps"] = meta_steps
    data["outer"]["eval_every"] = max(1, meta_steps // 10)
    data["seed"] = seed
    data["name"] = name.strip() or f"{family} from the browser"
    slices = data["slices"]
    if slices.get("origin") not in ("mean", *learners):
        slices["origin"] = "mean"
    if "three_point" in slices["kinds"] and not set(slices["three_point"]) <= set(learners):
        slices["kinds"] = [k for k in slices["kinds"] if k != "three_point"] or ["pca"]
    return from_dict(data)


@dataclass
class Job:
    job_id: str
    folder: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.time)

    @property
    def progress_file(self) -> Path:
        return self.folder / "progress.json"


THREADS_ENV = "TRAJVIZ_JOB_THREADS"  # a job's torch threads (empty: the thread policy's)

# One heavy job at a time in this server process, across every app it serves: the slot
# is taken without waiting, so of concurrent "New run" requests exactly one starts a job
# and the others are refused with a message.
_SLOT = threading.Lock()
_LIVE: list[subprocess.Popen] = []


class JobManager:
    """Background runs of one app; at most one runs at a time, server-wide (runs are
    CPU-heavy). Workers watch the server's pid and stop when it dies (``_watch_parent``)."""

    def __init__(self, runs_dir: Path):
        self.runs_dir = Path(runs_dir)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def running(self) -> str | None:
        """The id of the job still running, if any."""
        with self._lock:
            for job in self._jobs.values():
                if job.process.poll() is None:
                    return job.job_id
        return None

    def start(self, config, threads: int | None = None) -> str:
        """Launch a worker for ``config`` (an ExperimentConfig, or a list of them made one
        after another by the same worker, as ``trajviz demo`` does) on ``threads`` torch
        threads (None: the thread policy's); returns the job id."""
        if not _SLOT.acquire(blocking=False):
            raise ValueError("another run is being started right now; wait for it to finish")
        try:
            _LIVE[:] = [p for p in _LIVE if p.poll() is None]
            if _LIVE or self.running():
                raise ValueError("a run is already being made; wait for it to finish")
            job_id = self._launch(config, threads)
        finally:
            _SLOT.release()
        return job_id

    def _launch(self, config, threads: int | None = None) -> str:
        from trajviz.spec.config import to_dict

        job_id, folder = scratch("job")
        plain = [to_dict(c) for c in config] if isinstance(config, list) else to_dict(config)
        write_json(folder / "config.json", plain)
        if isinstance(config, list) and config:  # the page can say at once what comes first
            write_json(folder / "progress.json", {
                "state": "running", "fraction": 0.0, "stage": "starting", "message": "",
                "run_id": "", "index": 0, "total": len(config), "name": config[0].name,
                "runs": []})
        process = spawn(folder, ["trajviz.app.jobs", str(folder / "config.json"), str(self.runs_dir),
                                 str(folder / "progress.json")],
                        {"TRAJVIZ_PARENT_PID": str(os.getpid()),
                         THREADS_ENV: "" if threads is None else str(threads)})
        _LIVE.append(process)
        with self._lock:
            self._jobs[job_id] = Job(job_id, folder, process)
        return job_id

    def status(self, job_id: str | None) -> dict[str, Any]:
        """{state: running|done|failed|unknown, fraction, stage, message, run_id}."""
        with self._lock:
            job = self._jobs.get(job_id or "")
        if job is None:
            return {"state": "unknown", "fraction": 0.0, "stage": "", "message": "no such job",
                    "run_id": ""}
        return {"run_id": "", **job_status(job.folder, job.process, job.started)}

    def shutdown(self) -> None:
        """Stop running workers and remove their scratch folders."""
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            stop(job.process, job.folder)


# ------------------------------------------------- the mechanics every background job shares

def scratch(kind: str) -> tuple[str, Path]:
    """A new job id and its private scratch folder (``trajviz-<kind>-<id>-…`` in the temp dir)."""
    job_id = secrets.token_hex(4)
    return job_id, Path(tempfile.mkdtemp(prefix=f"trajviz-{kind}-{job_id}-"))


def spawn(folder: Path, module_args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m <module_args>`` in the background, its output in ``folder``/log.txt."""
    with open(folder / "log.txt", "wb") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", *module_args], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})


def job_status(folder: Path, process: subprocess.Popen, started: float) -> dict[str, Any]:
    """{state, fraction, stage, message, elapsed, ...}: what the job wrote to progress.json,
    "failed" with its last log line when it exited without saying it finished."""
    status = {"state": "running", "fraction": 0.0, "stage": "starting", "message": ""}
    try:
        status.update(json.loads((folder / "progress.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        pass
    code = process.poll()
    if code is not None and status["state"] == "running":
        status.update(state="failed",
                      message=_last_line(folder / "log.txt") or f"the worker exited ({code})")
    status["elapsed"] = time.time() - started
    return status


def stop(process: subprocess.Popen, folder: Path) -> None:
    """End a job (SIGTERM, then SIGKILL after 5 s) and remove its scratch folder."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
    shutil.rmtree(folder, ignore_errors=True)


def _last_line(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


# ---------------------------------------------------------------------------- worker

class _Reporter:
    """Turns run_experiment's progress(stage, done, total) into one overall fraction."""

    def __init__(self, path: Path, learners: list[str], views: list[str],
                 place: dict[str, Any] | None = None):
        self.path, self.learners, self.views = path, learners, views
        self.units = len(learners) + len(views)
        self.place = place or {}  # a job of several runs: index, total, name, runs written
        self._last = 0.0

    def write(self, **status: Any) -> None:
        write_json(self.path, {**status, **self.place})

    def __call__(self, stage: str, done: int, total: int) -> None:
        kind, _, name = stage.partition(":")
        part = done / total if total else 1.0
        if kind in ("meta", "tune") and name in self.learners:  # tune: outer.lr = "tune"
            verb = "meta-training" if kind == "meta" else "tuning the outer lr of"
            base, text = self.learners.index(name), f"{verb} {name}: step {done}/{total}"
        elif kind == "surface" and name in self.views:
            base = len(self.learners) + self.views.index(name)
            text = f"evaluating the {name} surface: {done}/{total}"
        elif kind == "record":
            base, part, text = done, 0.0, f"recorded held-out paths of {done}/{total} learners"
        else:
            return
        now = time.monotonic()
        if now - self._last < 0.25 and done < total:
            return
        self._last = now
        fraction = min(1.0, (base + part) / self.units) if self.units else 0.0
        self.write(state="running", fraction=round(0.98 * fraction, 4), stage=text, message="",
                   run_id="")


def _watch_parent(parent: int, period_s: float = 0.5) -> None:
    """Stop this worker (SIGTERM to itself: cleaned up like Ctrl-C) once ``parent``, the
    server, has died: a worker never outlives its server, even one killed by SIGKILL."""
    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="trajviz-parent-watch", daemon=True).start()


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwinds through write_run, which removes its temporary folder


def work(config_path: Path, runs_dir: Path, progress_path: Path) -> int:
    """The worker: run the experiment of ``config_path`` (one config, or a list of them run
    in order, each run written as it finishes) and write it to ``runs_dir``. A list's
    progress also says which run is being made (index, total, name) and the runs written."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    parent = os.environ.get("TRAJVIZ_PARENT_PID", "")
    if parent.isdigit():
        _watch_parent(int(parent))
    reporter = _Reporter(progress_path, [], [])
    if not progress_path.exists():  # a list's job has said which run comes first (_launch)
        reporter.write(state="running", fraction=0.0, stage="starting", message="", run_id="")
    written: list[str] = []
    run = None
    try:
        data = json.loads(Path(config_path).read_text(encoding="utf-8"))
        several = isinstance(data, list)
        from trajviz.engine.executors import SCHEDULER_ENV
        from trajviz.pipeline.experiment import run_experiment
        from trajviz.spec.config import from_dict
        from trajviz.store import new_run_id, write_run

        configs = [from_dict(d) for d in (data if several else [data])]
        for index, config in enumerate(configs):
            place = {"index": index, "total": len(configs), "name": config.name,
                     "runs": written} if several else None
            reporter = _Reporter(progress_path, list(config.learners), list(config.slices.kinds),
                                 place)
            reporter.write(state="running", fraction=0.0, stage="starting", message="", run_id="")
            run = None
            run = run_experiment(config, progress=reporter, run_id=new_run_id(config.family),
                                 executor=os.environ.get(SCHEDULER_ENV) or None,  # --scheduler
                                 threads=int(os.environ.get(THREADS_ENV) or 0) or None)
            reporter.write(state="running", fraction=0.99, stage="writing the run", message="",
                           run_id="")
            written.append(write_run(run, runs_dir).name)
    except KeyboardInterrupt:
        if run is not None and run.run_id not in written and (Path(runs_dir) / run.run_id).is_dir():
            written.append(run.run_id)  # stopped after the rename: it was written
        if written and len(written) == len(configs):
            reporter.write(state="done", fraction=1.0, stage="done", message="",
                           run_id=written[-1])
        else:
            saved = f"{len(written)} of {len(configs)} runs were saved" if written else \
                "nothing was saved"
            reporter.write(state="failed", fraction=0.0, stage="",
                           message=f"stopped before the run was written; {saved}", run_id="")
        return 130
    except Exception as exc:  # noqa: BLE001 - reported to the page, in one line
        reporter.write(state="failed", fraction=0.0, stage="",
                       message=f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:400],
                       run_id="")
        return 1
    reporter.write(state="done", fraction=1.0, stage="done", message="", run_id=written[-1])
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python -m trajviz.app.jobs CONFIG.json RUNS_DIR PROGRESS.json",
              file=sys.stderr)
        sys.exit(2)
    lower_priority()  # training behind the page never slows the page
    sys.exit(work(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
