"""The app's side of a warm worker (``trajviz.cli.worker``), torch-free.

``WorkerClient(run_path)`` starts ``python -m trajviz.cli.worker RUN_PATH`` once and
sends it requests (``call``), one at a time; ``WorkerPool`` keeps one warm
worker per run (the least recently used is stopped beyond ``size``): the
what-if's pool (``whatif.py``) and the launches' (``launches.py``), apart, so a
launch never waits behind a slider's recomputation.
``LatestWins`` runs one computation at a time and lets a newer request replace
a pending one: a request overtaken while it waited returns ``SUPERSEDED`` at
once, so the page never works through a queue that lags behind a slider.
``call(..., on_progress=f)`` hears the worker's progress frames while it works, and
``cancel()`` stops the request running (SIGUSR1: the worker stays warm; killed if it
has not answered within ``CANCEL_GRACE_S``): that call raises ``WorkerCancelled``.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Seconds a worker may take to start (import torch, load the run) or to answer one request
# before it is stopped: far above a busy 2-core machine's 20 s start and a sinusoid what-if
# with full diagnostics (5 s), so only a hung worker meets it.
TIMEOUT_S = 120.0
CANCEL_GRACE_S = 5.0  # a cancelled request answers within a few torch operations


def _wait_readable(stream, timeout: float) -> bool:
    """Whether ``stream``'s pipe has data within ``timeout`` s (True where it cannot be
    watched: a frame is only read after a request, so nothing waits in its buffer)."""
    try:
        return bool(select.select([stream], [], [], timeout)[0])
    except (OSError, ValueError, TypeError):
        return True


def _read_frame(stream) -> tuple[dict, bytes] | None:
    line = stream.readline()
    if not line:
        return None
    header = json.loads(line)
    size = int(header.get("bytes", 0))
    return header, (stream.read(size) if size else b"")


class WorkerError(ValueError):
    """The worker refused a request or died: one line."""


class WorkerCancelled(WorkerError):
    """The request was cancelled (``WorkerClient.cancel``)."""


class WorkerClient:
    """One worker process for one run; ``call`` is serialised by a lock. ``warm``: the
    work it is for, what-if or launch (``trajviz.cli.worker``'s ``--warm``)."""

    def __init__(self, run_path: Path, warm: str = "whatif", timeout: float = TIMEOUT_S):
        self.run_path, self.timeout = Path(run_path), timeout
        self._lock = threading.Lock()
        self._calls, self._running = 0, None  # which call is in flight (for cancel)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trajviz.cli.worker", str(self.run_path), "--warm", warm],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        ready = _read_frame(self.process.stdout) if _wait_readable(self.process.stdout, timeout) \
            else None
        if ready is None or not ready[0].get("ok"):
            self.close()
            reason = "it exited" if ready is None else ready[0].get("error", "")
            raise WorkerError(f"the worker for {self.run_path.name} did not start: {reason}")

    def call(self, kind: str, payload: bytes = b"", on_progress: Callable[[dict], None] | None = None,
             **header: Any) -> tuple[dict, bytes]:
        """Send one request and wait for its reply; WorkerError (one line) if refused,
        WorkerCancelled if ``cancel`` stopped it. ``on_progress(frame)`` is called with each
        progress frame ({"stage", "elapsed"}); ``timeout`` is the longest silence allowed."""
        header["progress"] = True  # heartbeats: a long request is not taken for a hung one
        with self._lock:
            if self.process.poll() is not None:
                raise WorkerError(f"the worker for {self.run_path.name} has stopped")
            line = json.dumps({**header, "kind": kind, "bytes": len(payload)}, allow_nan=False)
            self._calls += 1
            self._running = self._calls
            try:
                self.process.stdin.write(line.encode() + b"\n" + payload)
                self.process.stdin.flush()
                reply = self._reply(on_progress)
            except WorkerError:
                raise
            except (OSError, ValueError) as exc:
                raise WorkerError(f"the worker for {self.run_path.name} failed: {exc}") from None
            finally:
                self._running = None
        if reply is None:
            raise WorkerError(f"the worker for {self.run_path.name} exited")
        if reply[0].get("cancelled"):
            raise WorkerCancelled(reply[0].get("error", "cancelled"))
        if not reply[0].get("ok"):
            raise WorkerError(reply[0].get("error", "the worker refused the request"))
        return reply

    def _reply(self, on_progress) -> tuple[dict, bytes] | None:
        """The reply frame, handing progress frames to ``on_progress`` on the way."""
        while True:
            if not _wait_readable(self.process.stdout, self.timeout):
                self.process.kill()  # hung: the next request starts a fresh worker
                raise WorkerError(f"the worker for {self.run_path.name} did not answer within "
                                  f"{self.timeout:.0f} s and was stopped; try again")
            frame = _read_frame(self.process.stdout)
            if frame is None or not frame[0].get("progress"):
                return frame
            if on_progress is not None:
                on_progress(frame[0])

    def cancel(self) -> bool:
        """Stop the request running, if any (False: nothing was running). The worker
        answers it as cancelled and stays warm; one that has not within
        ``CANCEL_GRACE_S`` is killed (the next request starts a fresh one)."""
        running = self._running
        if running is None or self.process.poll() is not None:
            return False
        try:
            os.kill(self.process.pid, getattr(signal, "SIGUSR1", signal.SIGTERM))
        except OSError:
            return False

        def stop_if_still_running() -> None:
            if self._running == running and self.process.poll() is None:
                self.process.kill()

        timer = threading.Timer(CANCEL_GRACE_S, stop_if_still_running)
        timer.daemon = True
        timer.start()
        return True

    def close(self) -> None:
        close_process(self.process)


def close_process(process: subprocess.Popen) -> None:
    """End a worker: close its stdin (it exits when the pipe closes), else kill it after 5 s."""
    if process.poll() is None:
        try:
            process.stdin.close()
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()


class WorkerPool:
    """Warm workers by run id (at most ``size``) for ``warm`` work (see ``WorkerClient``),
    restarted when the run folder changes if ``follow`` (a what-if draws the run as it is
    now; a launch needs only its slices and tasks, which a kept point does not change)."""

    def __init__(self, size: int = 2, warm: str = "whatif", follow: bool = True):
        self.size, self.warm, self.follow = size, warm, follow
        self._workers: OrderedDict[str, tuple[float, WorkerClient]] = OrderedDict()
        self._lock = threading.Lock()
        self._starting = threading.Lock()
        self._wanted: tuple[str, Path] | None = None  # the latest prewarm not yet started
        self._prewarming = False
        self.started = 0  # worker processes this pool has started

    def get(self, run_id: str, path: Path) -> WorkerClient:
        # replace_run swaps the folder, so its inode tells a rewritten run
        stamp = path.stat().st_ino if self.follow and path.exists() else -1
        with self._starting:  # one start at a time: two requests never start two workers
            with self._lock:
                found = self._workers.get(run_id)
                if found and found[0] == stamp and found[1].process.poll() is None:
                    self._workers.move_to_end(run_id)
                    return found[1]
            self.started += 1
            worker = WorkerClient(path, self.warm)
            self._put(run_id, stamp, worker)
        return worker

    def is_warm(self, run_id: str) -> bool:
        """Whether a live worker for ``run_id`` is held (a request then pays no start)."""
        with self._lock:
            found = self._workers.get(run_id)
            return bool(found and found[1].process.poll() is None)

    def _put(self, run_id: str, stamp: int, worker: WorkerClient) -> None:
        with self._lock:
            old = self._workers.pop(run_id, None)
            self._workers[run_id] = (stamp, worker)
            extra = [self._workers.popitem(last=False)[1][1] for _ in range(len(self._workers) - self.size)]
        for w in ([old[1]] if old else []) + extra:
            w.close()

    def prewarm(self, run_id: str, path: Path) -> None:
        """Start the run's worker in the background (the first request then finds it warm).
        One background start at a time, for the latest run asked: a burst of picks starts
        at most two workers (the first and the last), never one per request."""
        with self._lock:
            self._wanted = (run_id, path)
            if self._prewarming:
                return
            self._prewarming = True

        def start():
            while True:
                with self._lock:
                    wanted, self._wanted = self._wanted, None
                    if wanted is None:
                        self._prewarming = False
                        return
                try:
                    self.get(*wanted)
                except (OSError, ValueError):
                    pass  # the request that needs it will report why
        threading.Thread(target=start, daemon=True).start()

    def shutdown(self) -> None:
        with self._lock:
            workers = [w for _, w in self._workers.values()]
            self._workers.clear()
        for w in workers:
            w.close()


SUPERSEDED = object()


class LatestWins:
    """One computation at a time; a newer request replaces the pending one.

    ``run(fn)`` returns ``fn()`` or ``SUPERSEDED`` when a newer request came while this
    one waited. ``computed``, ``superseded`` and ``max_in_flight`` count what happened.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._ticket = 0
        self._busy = False
        self.computed = 0
        self.superseded = 0
        self.max_in_flight = 0
        self._in_flight = 0

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._cond:
            self._ticket += 1
            mine = self._ticket
            self._cond.notify_all()  # older waiters now know they are overtaken
            while self._busy and self._ticket == mine:
                self._cond.wait()
            if self._ticket != mine:
                self.superseded += 1
                return SUPERSEDED
            self._busy = True
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            return fn()
        finally:
            with self._cond:
                self._busy = False
                self._in_flight -= 1
                self.computed += 1
                self._cond.notify_all()


__all__ = ["SUPERSEDED", "LatestWins", "WorkerCancelled", "WorkerClient", "WorkerError", "WorkerPool"]
