"""Page actions that compute (a what-if, a click-to-launch) as background threads the
page polls: progress on screen at once, a Cancel that stops the worker's job, and the
result drawn when it lands.

``ActionBoard.start(kind, run_id, estimate, work)`` runs ``work(report)`` in a thread
and returns an id at once; the page polls ``status(id)`` (state, stage, elapsed, the
estimate, a fraction) and ``cancel(id)`` marks it cancelled and calls the hook ``work``
registered (``report.on_cancel(worker.cancel)``: the worker stops between two torch
operations). A cancelled action's result is dropped even if it arrives: the page keeps
drawing what it drew before. Starting an action of a kind cancels the running one of
the same kind (a newer what-if replaces an older one; so does a newer click).
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trajviz.app.estimate import FEW_S, Estimate, duration
from trajviz.app.worker_client import WorkerCancelled, WorkerError
from trajviz.store import RunError

KEEP = 32  # finished actions remembered (their results are taken once drawn)


@dataclass
class Action:
    """One computation: kind ("whatif", "launch"), the run, the estimate, and how it went
    (state: running | landing | done | failed | cancelled | superseded, a done one replaced
    by a newer request before the page took its result; stage: what it is doing, in words)."""

    action_id: str
    kind: str
    run_id: str
    estimate: Estimate
    started: float = field(default_factory=time.monotonic)
    state: str = "running"
    stage: str = "starting"
    result: Any = None
    error: str = ""
    finished: float | None = None
    cancel_hook: Callable[[], Any] | None = None
    taken: bool = False  # its result was handed to the page (``ActionBoard.result``)


class Report:
    """What ``work`` gets: ``stage(text)``, ``on_cancel(hook)``, ``cancelled``."""

    def __init__(self, action: Action, lock: threading.Lock):
        self._action, self._lock = action, lock

    def stage(self, text: str) -> None:
        with self._lock:
            self._action.stage = str(text)

    def on_cancel(self, hook: Callable[[], Any] | None) -> None:
        with self._lock:
            self._action.cancel_hook = hook
        if hook is not None and self.cancelled:
            hook()  # cancelled before the hook was known

    @property
    def cancelled(self) -> bool:
        return self._action.state == "cancelled"

    def land(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (what makes the result visible, e.g. storing a variant) unless the
        action was cancelled, as one step against ``cancel``: after it, cancel refuses.
        Raises WorkerCancelled when it was cancelled."""
        with self._lock:
            if self._action.state != "running":
                raise WorkerCancelled("cancelled")
            self._action.state = "landing"
            return fn()


class ActionBoard:
    """The app's running and recent actions (see the module docstring)."""

    def __init__(self):
        self._actions: OrderedDict[str, Action] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, kind: str, run_id: str, estimate: Estimate,
              work: Callable[[Report], Any]) -> str:
        """Run ``work(report)`` in a thread; returns the action id at once. Any running
        action of ``kind`` is cancelled first."""
        self.cancel_kind(kind)
        action = Action(secrets.token_hex(6), kind, run_id, estimate)
        with self._lock:
            self._actions[action.action_id] = action
            while len(self._actions) > KEEP:
                self._actions.popitem(last=False)
        report = Report(action, self._lock)
        threading.Thread(target=self._run, args=(action, work, report), daemon=True,
                         name=f"trajviz-{kind}").start()
        return action.action_id

    def _running(self, kind: str) -> list[Action]:
        with self._lock:
            return [a for a in self._actions.values() if a.kind == kind and a.state == "running"]

    def _run(self, action: Action, work: Callable[[Report], Any], report: Report) -> None:
        try:
            result, state, error = work(report), "done", ""
        except WorkerCancelled:
            result, state, error = None, "cancelled", ""
        except (RunError, WorkerError, ValueError) as exc:
            result, state, error = None, "failed", " ".join(str(exc).split())
        except Exception as exc:  # noqa: BLE001 - the page shows one line, never a 500
            result, state, error = None, "failed", f"{type(exc).__name__}: {exc}"
        with self._lock:
            action.finished = time.monotonic()
            if action.state in ("running", "landing"):  # a cancelled one keeps its state
                action.state, action.result, action.error = state, result, error

    def cancel(self, action_id: str | None) -> bool:
        """Cancel a running action (False: no such action, or it had finished)."""
        with self._lock:
            action = self._actions.get(action_id or "")
            if action is None or action.state != "running":
                return False
            action.state, action.finished = "cancelled", time.monotonic()
            hook = action.cancel_hook
        if hook is not None:
            hook()
        return True

    def status(self, action_id: str | None) -> dict[str, Any]:
        """{state, kind, run_id, stage, elapsed, estimate (s), estimate_text, fraction, error}.
        ``fraction`` is elapsed over the estimate, at most 0.95 while running (the work
        itself does not count its steps); state "unknown" for an id not held."""
        with self._lock:
            action = self._actions.get(action_id or "")
            if action is None:
                return {"state": "unknown", "kind": "", "run_id": "", "stage": "", "elapsed": 0.0,
                        "estimate": 0.0, "estimate_text": "", "fraction": 0.0,
                        "error": "no such action (the server was restarted?)"}
            end = action.finished if action.finished is not None else time.monotonic()
            elapsed = end - action.started
            est = action.estimate.seconds
            fraction = 1.0 if action.state == "done" else min(0.95, elapsed / est) if est > 0 else 0.0
            state = "running" if action.state == "landing" else action.state
            return {"state": state, "kind": action.kind, "run_id": action.run_id,
                    "stage": action.stage, "elapsed": elapsed, "estimate": est,
                    "estimate_text": action.estimate.text(), "fraction": fraction,
                    "error": action.error}

    def result(self, action_id: str | None) -> Any:
        """The result of a done action (None otherwise)."""
        with self._lock:
            action = self._actions.get(action_id or "")
            if action is None or action.state != "done":
                return None
            action.taken = True
            return action.result

    def cancel_kind(self, kind: str) -> None:
        """A newer request of ``kind`` has replaced every earlier one: cancel those running,
        and drop the results the page has not taken yet of those that finished (else a late
        poll would draw an older change over the newer one)."""
        for action in self._running(kind):
            self.cancel(action.action_id)
        with self._lock:
            for action in self._actions.values():
                if action.kind == kind and action.state == "done" and not action.taken:
                    action.state, action.result = "superseded", None

    def shutdown(self) -> None:
        for action in self._running_all():
            self.cancel(action.action_id)

    def _running_all(self) -> list[Action]:
        with self._lock:
            return [a for a in self._actions.values() if a.state == "running"]


def progress_line(status: dict[str, Any]) -> str:
    """'recomputing the held-out paths · 12 s of about 40 s' for a running action."""
    elapsed = f"{status['elapsed']:.0f} s"
    if status.get("estimate", 0) >= FEW_S:
        elapsed += f" of about {duration(status['estimate'])}"
    return f"{status.get('stage') or 'working'} · {elapsed}"


def poll_action(board: ActionBoard, action_id: str | None, cancel: bool = False) -> dict[str, Any]:
    """One poll of an action for its progress row (``components.progress_row``), after
    cancelling it if ``cancel``: {state, error, row (style), text, bar (style),
    poll_disabled}. The row shows while it runs; the poll stops once it has ended."""
    if cancel:
        board.cancel(action_id)
    s = board.status(action_id)
    running = s["state"] == "running"
    return {"state": s["state"], "error": s["error"], "status": None,
            "row": {} if running else {"display": "none"},
            "text": progress_line(s) if running else "",
            "bar": {"width": f"{100 * s['fraction']:.0f}%"}, "poll_disabled": not running}


def progress_wiring(pids) -> list:
    """The progress row's Outputs (poll disabled, row, text, bar: ``poll_action``'s keys in
    ``PROGRESS_KEYS`` order, duplicates allowed) and its poll and Cancel Inputs and job
    State, for a poll callback ``(tick, cancel, job)``."""
    from dash import Input, Output, State

    return [Output(pids.poll, "disabled", allow_duplicate=True),
            Output(pids.row, "style", allow_duplicate=True),
            Output(pids.text, "children", allow_duplicate=True),
            Output(pids.bar, "style", allow_duplicate=True),
            Input(pids.poll, "n_intervals"), Input(pids.cancel, "n_clicks"),
            State(pids.job, "data")]


PROGRESS_KEYS = ("poll_disabled", "row", "text", "bar")


__all__ = [
    "PROGRESS_KEYS",
    "Action",
    "ActionBoard",
    "Report",
    "poll_action",
    "progress_line",
    "progress_wiring",
]
