"""The demo runs trained behind the page (``trajviz demo``): a line and a bar under the run
picker say what is training and how far, and the picker fills as each run is written.

The page answers at once: ``create_app(..., demo=configs)`` starts one background job
(``jobs.JobManager``) that makes the runs in order, writing each as it finishes.
``demo_status`` is a plain function of the app's state (the tests call it);
``register_demo`` polls it once a second until the job has ended.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dash import Input, Output, State, dcc, html, no_update

from trajviz.app import ids

HIDE = {"display": "none"}


@dataclass(frozen=True)
class DemoJob:
    """The demo runs to make behind the page: ``configs`` (ExperimentConfigs) in order,
    the quickest first so the picker has a run soonest, on ``threads`` torch threads."""

    configs: tuple
    threads: int | None = None

    def start(self, jobs) -> str:
        """Start it as one background job of ``jobs`` (a ``JobManager``); the job id."""
        return jobs.start(list(self.configs), threads=self.threads)


def demo_line() -> html.Div:
    """The progress line and bar (hidden unless demo runs are being made)."""
    return html.Div(id=ids.DEMO_LINE, style=HIDE, children=[
        html.Div(id=ids.DEMO_TEXT, className="tv-hint"),
        html.Div(className="tv-progress", children=html.Div(
            id=ids.DEMO_BAR, className="tv-progress-bar", style={"width": "0%"})),
        dcc.Interval(id=ids.DEMO_POLL, interval=1000, disabled=True),  # enabled while training
        dcc.Store(id=ids.DEMO_SEEN, data=0),
    ])


def demo_training(state) -> bool:
    """Whether this app's demo runs are still being made."""
    return state.demo is not None and state.jobs.status(state.demo)["state"] == "running"


def demo_status(state, seen: Any) -> dict[str, Any]:
    """What the line says: {style, text, fraction, poll_disabled, seen, announce}.

    ``seen``: how many demo runs the page was told of; ``announce`` is True when more are
    written now (the run picker should look again). Made in order, so run ``index`` of
    ``total`` is training and ``runs`` are the ones written."""
    seen = seen if isinstance(seen, int) and not isinstance(seen, bool) else 0
    if state.demo is None:
        return {"style": HIDE, "text": "", "fraction": 0.0, "poll_disabled": True,
                "seen": seen, "announce": False}
    status = state.jobs.status(state.demo)
    runs = status.get("runs") if isinstance(status.get("runs"), list) else []
    total = max(1, int(status.get("total") or 1))
    index = min(total - 1, max(0, int(status.get("index") or 0)))
    out = {"style": {}, "seen": len(runs), "announce": len(runs) > seen,
           "poll_disabled": status["state"] != "running"}
    if status["state"] == "running":
        ready = f"; {len(runs)} ready in the picker" if runs else ""
        which = f"{index + 1} of {total}, {status['name']}: " if status.get("name") else ""
        text = (f"Training the demo runs behind this page (first start only): {which}"
                f"{status.get('stage') or 'starting'} · {status['elapsed']:.0f} s{ready}")
        return {**out, "text": text, "fraction": (index + float(status["fraction"])) / total}
    if status["state"] == "done":
        return {**out, "text": f"The demo runs are ready: {len(runs)} in the picker.",
                "fraction": 1.0}
    name = status.get("name") or "a demo run"
    return {**out, "fraction": 0.0,
            "text": f"Making {name} failed: {status.get('message') or 'no reason given'}. "
                    "`trajviz run --config trajviz/demos/<name>.toml` shows the whole error."}


def register_demo(app, state) -> None:
    """Poll ``demo_status`` on page load and every second while the demo job runs."""

    @app.callback(Output(ids.DEMO_LINE, "style"), Output(ids.DEMO_TEXT, "children"),
                  Output(ids.DEMO_BAR, "style"), Output(ids.DEMO_POLL, "disabled"),
                  Output(ids.DEMO_SEEN, "data"),
                  Output(ids.RUNS_VERSION, "data", allow_duplicate=True),
                  Input(ids.URL, "pathname"), Input(ids.DEMO_POLL, "n_intervals"),
                  State(ids.DEMO_SEEN, "data"), State(ids.RUNS_VERSION, "data"),
                  prevent_initial_call="initial_duplicate")
    def _demo(_path, _tick, seen, version):
        o = demo_status(state, seen)
        bump = version if isinstance(version, dict) else {}
        n = bump.get("n") if isinstance(bump.get("n"), int) else 0
        return (o["style"], o["text"], {"width": f"{100 * o['fraction']:.0f}%"},
                o["poll_disabled"], o["seen"],
                {"n": n + 1, "select": None} if o["announce"] else no_update)


__all__ = ["DemoJob", "demo_line", "demo_status", "demo_training", "register_demo"]
