"""What the callbacks of one app share: its runs folder, a locked cache of loaded runs,
and its background jobs. No module-level state: ``create_app`` builds one per folder."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trajviz.data.run import Run
from trajviz.store import RunError, load_run
from trajviz.app.actions import ActionBoard
from trajviz.app.estimate import Rates
from trajviz.app.jobs import JobManager
from trajviz.app.launches import BirthJobs, LaunchBoard


class RunCache:
    """Light runs (no [.., P] arrays) by run id, reloaded when run.json changes.
    Only folders directly inside ``runs_dir`` can be named: the browser sends ids, not paths."""

    def __init__(self, runs_dir: Path, size: int = 4):
        self.runs_dir = Path(runs_dir)
        self.size = size
        self._runs: OrderedDict[tuple[str, int], Run | RunError] = OrderedDict()
        self._lock = threading.Lock()

    def path_of(self, run_id: str) -> Path:
        path = self.runs_dir / str(run_id)
        if (not isinstance(run_id, str) or not run_id or run_id.startswith(".")
                or Path(run_id).name != run_id or path.parent != self.runs_dir):
            raise RunError(path, "is not a run folder of this app")
        return path

    def get(self, run_id: str) -> Run:
        """The run, or RunError (one line) if it is missing or broken."""
        path = self.path_of(run_id)
        try:
            stamp = (path / "run.json").stat().st_mtime_ns
        except OSError:
            if not path.exists():
                raise RunError(path, "does not exist (was it moved or deleted?)") from None
            stamp = -1
        key = (run_id, stamp)
        with self._lock:
            if key in self._runs:
                self._runs.move_to_end(key)
                found = self._runs[key]
                if isinstance(found, RunError):
                    raise found
                return found
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
        return found


@dataclass
class AppState:
    """What the callbacks of one app share: its runs folder, loaded runs and jobs."""

    runs_dir: Path
    cache: RunCache
    jobs: JobManager
    whatif: Any = None  # the what-if service (app/whatif.py), set by register_whatif
    launches: LaunchBoard = field(default_factory=LaunchBoard)  # click-to-launch worker
    births: BirthJobs = field(default_factory=BirthJobs)  # birth-map jobs
    actions: ActionBoard = field(default_factory=ActionBoard)  # what-ifs and launches running
    rates: Rates = field(default_factory=Rates)  # measured seconds per rollout-step, by run

    @classmethod
    def for_dir(cls, runs_dir: Path) -> AppState:
        runs_dir = Path(runs_dir).resolve()
        return cls(runs_dir, RunCache(runs_dir), JobManager(runs_dir))


__all__ = ["AppState", "RunCache"]
