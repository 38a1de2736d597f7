"""What the callbacks of one app share: its runs folder, a locked cache of loaded runs,
and its background jobs. No module-level state: ``create_app`` builds one per folder."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trajviz.app.actions import ActionBoard
from trajviz.app.estimate import Rates
from trajviz.app.jobs import JobManager
from trajviz.app.launches import BirthJobs, LaunchBoard
from trajviz.data.run import Run
from trajviz.store import RunError, load_run
from trajviz.store.safe import run_folder


class RunCache:
    """Light runs (no [.., P] arrays) by run id, reloaded when run.json changes. Only runs
    the listing shows can be named (``checked``): the browser sends ids, not paths."""

    def __init__(self, runs_dir: Path, size: int = 4):
        self.runs_dir = Path(runs_dir)
        self.size = size
        self._runs: OrderedDict[tuple[str, int], Run | RunError] = OrderedDict()
        self._lock = threading.Lock()

    def checked(self, run_id: object) -> tuple[Path, Run]:
        """The folder and the (light) run named ``run_id``: the one check every request that
        names a run passes before any file of it is read or a process started for it.

        First the listing's own check (``store.safe.run_folder``: one plain name, a real
        folder directly inside the runs folder, not a symlink; nothing followed), then
        readable as a run (loaded, cached until run.json changes). RunError (one line)."""
        path = run_folder(self.runs_dir, run_id)
        try:
            stamp = os.lstat(path / "run.json").st_mtime_ns
        except OSError:
            stamp = -1
        key = (str(run_id), stamp)
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                found = self._runs[key]
                if isinstance(found, RunError):
                    raise found
                return path, found
        try:
            found: Run | RunError = load_run(path, heavy=False)
        except RunError as exc:
            found = exc
        except (OSError, ValueError) as exc:
            found = RunError(path, str(exc))
        with self._lock:
            self._runs[key] = found
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        if isinstance(found, RunError):
            raise found
        return path, found

    def path_of(self, run_id: object) -> Path:
        """The folder of a listed, readable run (``checked``): what a worker is started on."""
        return self.checked(run_id)[0]

    def get(self, run_id: object) -> Run:
        """The run, or RunError (one line) if it is not a listed, readable run (``checked``)."""
        return self.checked(run_id)[1]


@dataclass
class AppState:
    """What the callbacks of one app share: its runs folder, loaded runs and jobs."""

    runs_dir: Path
    cache: RunCache
    jobs: JobManager
    whatif: Any = None  # the what-if service (app/whatif.py), set by register_whatif
    launches: LaunchBoard = field(default_factory=LaunchBoard)  # click-to-launch worker
    births: BirthJobs = field(default_factory=BirthJobs)  # birth-map jobs
    demo: str | None = None  # the job training the demo runs behind the page (trajviz demo)
    actions: ActionBoard = field(default_factory=ActionBoard)  # what-ifs and launches running
    rates: Rates = field(default_factory=Rates)  # measured seconds per rollout-step, by run

    @classmethod
    def for_dir(cls, runs_dir: Path) -> AppState:
        runs_dir = Path(runs_dir).resolve()
        return cls(runs_dir, RunCache(runs_dir), JobManager(runs_dir))

    def shutdown(self) -> None:
        """Stop every process this app started: new-run jobs, what-if and launch workers,
        birth-map jobs, running actions (at exit, and when a test's server stops)."""
        for part in (self.actions, self.jobs, self.whatif, self.launches, self.births):
            if part is not None:
                part.shutdown()


__all__ = ["AppState", "RunCache"]
