"""The New-run form's steps (plain functions of an ``AppState`` and the page's values, called
by ``callbacks.register``): start a background run, poll it, and end its status once the
run picker lists runs (a poll answer Dash dropped as stale must not leave "starting" up).
"""
from __future__ import annotations

from typing import Any

from dash import no_update

from trajviz.app import inputs
from trajviz.app.jobs import job_config
from trajviz.app.state import AppState


def _bar(fraction: float) -> dict[str, str]:
    return {"width": f"{100 * max(0.0, min(1.0, fraction)):.0f}%"}


def start_job(state: AppState, family: str, learners: list[str], steps: Any, meta_steps: Any,
              seed: Any, name: str | None) -> dict[str, Any]:
    """Validate the form and launch a background run."""
    try:
        family = inputs.family(family)  # only what the form offers: nothing else is run
        learners = inputs.names(learners)
        name = inputs.text(name, "name", limit=inputs.MAX_NAME)
        config = job_config(family, learners, _int(steps, "inner steps"),
                            _int(meta_steps, "meta-steps"), _int(seed, "seed"), name or "")
        job_id = state.jobs.start(config)
    except ValueError as exc:
        return {"job": no_update, "poll_disabled": no_update, "status": f"Not started: {exc}",
                "bar": no_update, "busy": no_update}
    return {"job": {"id": job_id}, "poll_disabled": False, "status": "Starting…",
            "bar": _bar(0.0), "busy": True}


def _int(value: Any, what: str) -> int:
    return inputs.whole(value, what)


def poll_job(state: AppState, job: dict | None, version: dict | None) -> dict[str, Any]:
    """The job's progress; when it ends, stop polling and (if done) announce the new run."""
    try:
        status = state.jobs.status(inputs.job_id(job))
    except ValueError as exc:
        return {"bar": _bar(0.0), "status": str(exc), "poll_disabled": True,
                "version": no_update, "busy": False}
    version = dict(version) if isinstance(version, dict) else {"n": 0, "select": None}
    if not isinstance(version.get("n"), int) or isinstance(version.get("n"), bool):
        version["n"] = 0
    if status["state"] == "running":
        text = f"{status.get('stage') or 'working'} · {status['elapsed']:.0f} s"
        return {"bar": _bar(status["fraction"]), "status": text, "poll_disabled": False,
                "version": no_update, "busy": True}
    if status["state"] == "done":
        version.update(n=version.get("n", 0) + 1, select=status["run_id"])
        return {"bar": _bar(1.0), "status": f"Done: {status['run_id']} is now in the run picker.",
                "poll_disabled": True, "version": version, "busy": False}
    return {"bar": _bar(0.0), "status": f"The run failed: {status.get('message', '')}",
            "poll_disabled": True, "version": no_update, "busy": False}


def job_on_listing(state: AppState, job: dict | None, idle: bool | None) -> dict[str, Any]:
    """The run picker was refreshed (↻, a kept variant, a job's end): a job that has ended
    ends its status and its busy button now, whether or not a poll answered in time (a
    poll answer that comes after the next tick is dropped by Dash as stale, which a busy
    machine makes common). Never announces the run again (that would refresh the
    picker: a loop)."""
    if idle or not job:
        return {"bar": no_update, "status": no_update, "poll_disabled": no_update,
                "version": no_update, "busy": no_update}
    o = poll_job(state, job, None)
    if o["poll_disabled"] is not True:  # still running: let the poll go on
        return {**o, "bar": no_update, "status": no_update, "poll_disabled": no_update,
                "busy": no_update, "version": no_update}
    return {**o, "version": no_update}


__all__ = ["job_on_listing", "poll_job", "start_job"]
