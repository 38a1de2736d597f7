"""The what-if sliders' fast path: one JSON route on the app's Flask server, no Dash callback.

``assets/whatif.js`` posts each lr or β slider change to ``ROUTE`` (``fetch``, JSON) and
draws the reply itself: Dash's callback machinery (building the request from the page's
state, the reply's bookkeeping and the summary re-rendered through it) costs more than
the recomputation of a small run. The work is the callback's: ``whatif.answer`` (one
recomputation in flight per run, a newer request replacing a waiting one), then only
the new path data for the figures drawn (``whatif_fast.fast_update``).

The reply is always HTTP 200 with a JSON object (bad input is a message, never a 500):
``{"status": text}`` when nothing was recomputed (the reason); ``{"superseded": true}``
when a newer request replaced this one; ``{"job", "status", "progress"}`` when the
change is slow (``whatif.SYNC_S``) and runs as an action: the browser shows its progress
row (ids in "progress") and the page's poll lands it; else ``{"shown", "status", "summary"}`` (the
summary as Dash component JSON for ``set_props`` and as HTML, ``summary_html``, shown at
once), with ``"fast"`` (``restyle_data``
plus ``shown``) when the drawn figures can be restyled, else the browser draws
``shown`` in full. Only ``application/json`` bodies are read, so a cross-site form
cannot post here; the app's guard (size cap, token) covers this route too.
"""
from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from trajviz.app import ids, inputs
from trajviz.app.inputs import PageInputs
from trajviz.app.whatif import answer, changes_of, summary_children
from trajviz.app.whatif_fast import fast_update
from trajviz.app.worker_client import WorkerError
from trajviz.store import RunError

ROUTE = "/_trajviz/whatif"
FIELDS = "run, lr, beta, opt, steps, view, task, learners, mode, frame, group"
PROGRESS_IDS = {"job": ids.WHATIF_PROGRESS.job, "poll": ids.WHATIF_PROGRESS.poll,
                "row": ids.WHATIF_PROGRESS.row, "text": ids.WHATIF_PROGRESS.text}
_CAMEL = re.compile("([A-Z])")  # marginRight -> margin-right


def _dash(match: re.Match) -> str:
    return "-" + match.group(1)


def plain(value: Any) -> Any:
    """Dash components -> the JSON ``set_props`` takes ({type, namespace, props})."""
    if hasattr(value, "to_plotly_json"):
        d = value.to_plotly_json()
        return {**d, "props": {k: plain(v) for k, v in d["props"].items()}}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def html_of(value: Any) -> str:
    """``plain`` Dash html components -> HTML text (escaped), for the summary shown while a
    slider moves: the browser puts it in place without a React render."""
    if isinstance(value, list):
        return "".join(html_of(v) for v in value)
    if not isinstance(value, dict):
        return "" if value is None else escape(str(value))
    if value.get("namespace") != "dash_html_components":
        raise ValueError(f"cannot write {value.get('type')} as HTML")
    tag, props = value["type"].lower(), value["props"]
    attrs = "".join(f' {name}="{escape(str(props[key]))}"' for key, name in
                    (("className", "class"), ("title", "title")) if props.get(key))
    if props.get("style"):
        css = ";".join(f"{_CAMEL.sub(_dash, k).lower()}:{v}" for k, v in props["style"].items())
        attrs += f' style="{escape(css)}"'
    return f"<{tag}{attrs}>{html_of(props.get('children'))}</{tag}>"


def fast_reply(state, body: Any) -> dict[str, Any]:
    """The reply to one slider change ``body`` (a JSON object with FIELDS)."""
    if not isinstance(body, dict):
        return {"status": f"Not recomputed: the request must be a JSON object with {FIELDS}"}
    try:
        run_id = inputs.run_id(body.get("run"))
        if run_id is None:
            return {"status": "Not recomputed: no run is shown"}
        changes = changes_of(inputs.text(body.get("opt"), "optimiser"), body.get("lr"),
                             body.get("beta"), body.get("steps"))
        out = answer(state, run_id, changes)
    except (RunError, WorkerError, ValueError) as exc:
        return {"status": f"Not recomputed: {inputs.public(str(exc), state.runs_dir)}"}
    if out is None:
        return {"superseded": True}
    if "job" in out:  # slow: an action with progress and Cancel (assets/whatif.js shows it)
        return {"job": out["job"], "status": out["status"], "progress": PROGRESS_IDS}
    summary = plain(summary_children(out["run"]))
    reply = {"shown": out["shown"], "status": out["status"], "summary": summary,
             "summary_html": html_of(summary)}
    if out["shown"] is not None and body.get("mode") != "3d":
        try:  # only the new path data; the full draw follows when the slider rests
            fast = fast_update(state, run_id, out["run"], PageInputs(
                run_id, body.get("view"), body.get("task"), body.get("learners"),
                frame=body.get("frame"), group=body.get("group")))
            reply["fast"] = {**fast, "shown": out["shown"]}
        except (RunError, ValueError):
            pass  # nothing the fast path can restyle: the browser draws in full
    return reply


def register_route(app, state) -> None:
    """Serve ``ROUTE`` on ``app.server`` (the Flask app under Dash)."""
    from flask import Response, request

    @app.server.post(ROUTE)
    def _whatif_fast():
        body = request.get_json(silent=True) if request.is_json else None
        reply = fast_reply(state, body)
        try:
            text = json.dumps(reply, allow_nan=False, separators=(",", ":"))
        except ValueError:  # a non-finite number: no fast path, the full draw shows it
            reply.pop("fast", None)
            text = json.dumps(reply, separators=(",", ":"))
        return Response(text, mimetype="application/json")


__all__ = ["ROUTE", "fast_reply", "html_of", "plain", "register_route"]
