"""Thin callbacks: parse the page's values, call the view-model and a builder, return.

Each step is a plain function of an ``AppState`` and the page's values, so the
tests call them without a server; ``register`` wires them to an app. Playback
is not here: one frame index in a ``dcc.Store`` drives every graph from
``assets/playback.js`` (clientside, no server request per frame).

Callbacks are registered on the app they serve (``app.callback``), not in
dash's global registry: an app is built per runs folder by ``create_app``, and
global callbacks would be taken by whichever app served first.
"""
from __future__ import annotations

from typing import Any

from dash import ClientsideFunction, Input, Output, State, ctx, dcc, no_update

from trajviz.app import ids, inputs
from trajviz.app.birth import register_birth
from trajviz.app.components import (
    empty_figure,
    learner_option,
    message,
    run_info,
    run_label,
    summary_children,
    training_note,
)
from trajviz.app.demo import demo_training
from trajviz.app.draw import draw, panel_styles, parts_for  # noqa: F401 - draw, panel_styles re-exported
from trajviz.app.draw import values as draw_values
from trajviz.app.inputs import PageInputs
from trajviz.app.jobsteps import job_on_listing, poll_job, start_job
from trajviz.app.state import AppState, RunCache
from trajviz.app.whatif import shown_run
from trajviz.figures import (
    meta_curves_figure,
    meta_figure,
    meta_frame_data,
)
from trajviz.figures.export import export_current
from trajviz.spec.names import LEARNER_NAMES as LEARNERS
from trajviz.store import RunError, list_runs
from trajviz.viewmodel.selection import (
    PANEL_KEYS,
    select,
    select_meta,
    slice_name,
    task_label,
)

HIDE = {"display": "none"}
SHOW: dict[str, str] = {}
MEAN = "mean"
#: The run the page opens on when it may choose: the demo that shows the most (curved
#: paths on a PCA slice of a real network, six learners); newest first if several.
OPENING_RUN = "sinusoid-demo"


# ---------------------------------------------------------------------------- parsing

def parse_task(value: Any) -> int | None:
    """'mean' (or nothing) -> None; '3' or 3 -> 3; ValueError for 1.5, true or a list."""
    return inputs.task(value)


def run_options(state: AppState, current: str | None,
                select: str | None = None) -> tuple[list[dict], str | None]:
    """The run picker: every run folder (broken ones too, marked) and the value to show:
    ``select`` if given and listed, else ``current`` if still listed, else the most telling
    run: the sinusoid demo (``OPENING_RUN``) if there is one, else the newest run that can
    be read. Values that are not run ids are ignored."""
    current = current if isinstance(current, str) else None
    select = select if isinstance(select, str) else None
    entries = list_runs(state.runs_dir) if state.runs_dir.is_dir() else []
    options = [{"label": run_label(e), "value": e.run_id, "title": e.reason or e.run_id}
               for e in entries]
    values = [e.run_id for e in entries]
    for wanted in (select, current):
        if wanted in values:
            return options, wanted
    ok = [e.run_id for e in entries if e.ok]
    demo = [e.run_id for e in entries if e.ok and e.name == OPENING_RUN]
    return options, (demo[0] if demo else ok[0] if ok else (values[0] if values else None))


# ---------------------------------------------------------------------------- steps

def run_controls(state: AppState, run_id: str | None) -> dict[str, Any]:
    """Pickers, run info, summary table and the run's message for the chosen run."""
    out: dict[str, Any] = {
        "task_options": [], "task": MEAN, "slice_options": [], "slice": None,
        "slice_style": HIDE, "learner_options": [learner_option(n, False) for n in LEARNERS],
        "learners": [], "info": "",
        "summary": [], "meta_note": [], "message": [], "message_style": HIDE, "workspace_style": SHOW,
        "new_run_open": no_update}
    try:
        run_id = inputs.run_id(run_id)
    except ValueError as exc:
        out.update(message=message("No such run", str(exc)), message_style=SHOW,
                   workspace_style=HIDE)
        return out
    if run_id is None and demo_training(state):
        out.update(message=message(
            "The demo runs are being made",
            "Each appears in the run picker as soon as it is written, the quickest first "
            "(the line under the picker says how far).",
            kind="info"), message_style=SHOW, workspace_style=HIDE)
        return out
    if run_id is None:
        out.update(message=message(
            "No runs yet",
            f"There are no runs in {state.runs_dir.name}/. Make the demo runs with `trajviz demo`, "
            "make one with `trajviz run`, or start one under “New run” on the left.",
            kind="info"), message_style=SHOW, workspace_style=HIDE, new_run_open=True)
        return out
    try:
        run = state.cache.get(run_id)
        select(run)  # the run must hold something to draw
    except (RunError, ValueError) as exc:
        reason = inputs.public(exc.reason if isinstance(exc, RunError) else str(exc),
                               state.runs_dir)
        out.update(message=message(
            f"Run {run_id} cannot be shown",
            f"{reason}. The other runs in the picker are not affected; `trajviz list "
            f"{state.runs_dir.name}` lists every run and what is wrong with it."),
            message_style=SHOW, workspace_style=HIDE)
        return out
    tasks = [{"label": task_label(run, None), "value": MEAN}]
    tasks += [{"label": task_label(run, t), "value": str(t)} for t in range(len(run.task_ids))]
    slices = [{"label": slice_name(v.slice.kind), "value": name}
              for name, v in run.views.items()]
    if len(slices) == 1:  # still shown, so the page says which slice it is and why no choice
        slices[0]["label"] += " (the only slice in this run)"
    learners = list(run.learners)
    out.update(
        task_options=tasks, task="0" if len(run.task_ids) else MEAN,
        slice_options=slices, slice=slices[0]["value"],
        slice_style=SHOW if slices else HIDE,
        learner_options=[learner_option(n, n in run.learners)
                         for n in [*LEARNERS, *(n for n in learners if n not in LEARNERS)]],
        learners=learners, info=run_info(run),
        summary=summary_children(run),
        meta_note=training_note(run, "meta", table=True))
    return out


def draw_meta(state: AppState, run_id: str | None, view: str | None,
              learners: list[str] | None, frame: int | None) -> dict[str, Any]:
    """The meta-training tab: θ0 paths on the slice, held-out curves, playback data."""
    blank = {"main": empty_figure(), "curves": empty_figure(), "data": None, "max": 1}
    try:
        run_id, view = inputs.run_id(run_id), inputs.text(view, "slice")
        learners, frame = inputs.names(learners), inputs.frame(frame)
        if run_id is None:
            return blank
        run = state.cache.get(run_id)
        meta = select_meta(run, view if view in run.views else None, learners or [])
    except (RunError, ValueError):
        return blank
    if not meta.learners:
        return {**blank, "main": empty_figure("Tick a learner on the left."),
                "curves": empty_figure("Tick a learner on the left.")}
    k = meta.frame(frame)
    return {"main": meta_figure(meta, k), "curves": meta_curves_figure(meta, k),
            "data": meta_frame_data(meta, ids.META_GRAPH, ids.META_CURVES, frame=k),
            "max": meta.frames - 1}


def export(state: AppState, fmt: str, what: str, page: PageInputs, preset: str | None = None):
    """(download dict or None, status text) for the page's export buttons: the picture on
    screen (``page``), with the what-if that is ``page.shown`` and the clicked point's path
    if drawn."""
    run_id, view, task, learners, mode, frame, shown = (
        page.run_id, page.view, page.task, page.learners, page.mode, page.frame, page.shown)
    try:
        run_id, view = inputs.run_id(run_id), inputs.text(view, "slice")
        what = inputs.text(what, "what to export", empty=False)
        learners, frame = inputs.names(learners), inputs.frame(frame)
        if run_id is None:
            return None, "There is no run to export."
        run, learners = state.launches.over(run_id, shown_run(state, run_id, shown),
                                            learners or [])
        name, data = export_current(run, fmt, what, slice_name=view if view in run.views
                                    else None, task=parse_task(task), learners=learners or [],
                                    frame=frame, three_d=mode == "3d",
                                    preset=None if preset in (None, "screen") else preset)
    except (RunError, ValueError) as exc:
        return None, f"Export failed: {inputs.public(str(exc), state.runs_dir)}"
    return dcc.send_bytes(data, name), f"Saved {name} ({len(data) / 1024:.0f} kB)."


# ---------------------------------------------------------------------------- wiring

def register(app, state: AppState) -> None:
    """Wire the steps above, and the clientside playback, to ``app``."""

    @app.callback(Output(ids.RUN, "options"), Output(ids.RUN, "value"),
                  Input(ids.URL, "pathname"), Input(ids.RUNS_REFRESH, "n_clicks"),
                  Input(ids.RUNS_VERSION, "data"), State(ids.RUN, "value"),
                  State(ids.URL, "search"))
    def _runs(_path, _clicks, version, current, search):
        version = version if isinstance(version, dict) else {}
        select = version.get("select") if ctx.triggered_id == ids.RUNS_VERSION else None
        if current is None and select is None:  # the page's first look: ?run=<id> picks one
            select = inputs.query_run(search)
        return run_options(state, current, select)

    @app.callback(Output(ids.TASK, "options"), Output(ids.TASK, "value"),
                  Output(ids.SLICE, "options"), Output(ids.SLICE, "value"),
                  Output(ids.SLICE_ROW, "style"), Output(ids.LEARNERS, "options"),
                  Output(ids.LEARNERS, "value"), Output(ids.RUN_INFO, "children"),
                  Output(ids.SUMMARY, "children"), Output(ids.RUN_MESSAGE, "children"),
                  Output(ids.RUN_MESSAGE, "style"), Output(ids.WORKSPACE, "style"),
                  Output(ids.RUN_FIELDS, "style"), Output(ids.EXPORT_BOX, "style"),
                  Output(ids.NEW_RUN, "open"), Output(ids.META_NOTE, "children"),
                  Input(ids.RUN, "value"))
    def _run(run_id):
        o = run_controls(state, run_id)
        return (o["task_options"], o["task"], o["slice_options"], o["slice"], o["slice_style"],
                o["learner_options"], o["learners"], o["info"], o["summary"], o["message"],
                o["message_style"], *[o["workspace_style"]] * 3, o["new_run_open"],
                o["meta_note"])

    @app.callback(Output(ids.MAIN_GRAPH, "figure"),
                  *[Output(ids.PANEL_GRAPH[k], "figure") for k in PANEL_KEYS],
                  Output(ids.INNER.data, "data"), Output(ids.INNER.slider, "max"),
                  Output(ids.HONESTY, "children"), Output(ids.NOTES, "children"),
                  *[Output(ids.PANEL_NOTE[k], "children") for k in PANEL_KEYS],
                  Output(ids.SURFACE_KEY, "children"),
                  *[Output(ids.PANEL_CARD[k], "style") for k in PANEL_KEYS],
                  Input(ids.RUN, "value"), Input(ids.SLICE, "value"), Input(ids.TASK, "value"),
                  Input(ids.LEARNERS, "value"), Input(ids.MODE, "value"),
                  Input(ids.ZOOM, "value"), State(ids.INNER.frame, "data"),
                  Input(ids.WHATIF_SHOWN, "data"), Input(ids.LAUNCHED, "data"),
                  Input(ids.PANEL_SET, "value"))
    def _draw(run_id, view, task, learners, mode, zoom, frame, shown, _launched, group):
        page = PageInputs(run_id, view, task, learners, mode, frame, zoom, shown, group)
        triggered = {t["prop_id"].split(".")[0] for t in ctx.triggered or []} - {""}
        return draw_values(draw(state, page, parts_for(triggered)))

    @app.callback(Output(ids.META_GRAPH, "figure"), Output(ids.META_CURVES, "figure"),
                  Output(ids.META.data, "data"), Output(ids.META.slider, "max"),
                  Input(ids.RUN, "value"), Input(ids.SLICE, "value"),
                  Input(ids.LEARNERS, "value"), State(ids.META.frame, "data"),
                  Input(ids.TABS, "value"))
    def _draw_meta(run_id, view, learners, frame, tab):
        if tab != "meta":  # drawn when its tab is opened: a run switch does not wait for it
            return no_update, no_update, no_update, no_update
        # a new run, or the tab opened, starts at the last meta-step (θ0 as meta-learned)
        o = draw_meta(state, run_id, view, learners,
                      None if ctx.triggered_id in (ids.RUN, ids.TABS) else frame)
        return o["main"], o["curves"], o["data"], o["max"]

    @app.callback(Output(ids.DOWNLOAD, "data"), Output(ids.EXPORT_STATUS, "children"),
                  *[Input(ids.EXPORT[f], "n_clicks") for f in ids.EXPORT_FORMATS],
                  State(ids.EXPORT_WHAT, "value"), State(ids.RUN, "value"),
                  State(ids.SLICE, "value"), State(ids.TASK, "value"),
                  State(ids.LEARNERS, "value"), State(ids.MODE, "value"),
                  State(ids.INNER.frame, "data"), State(ids.EXPORT_PRESET, "value"),
                  State(ids.WHATIF_SHOWN, "data"), prevent_initial_call=True,
                  running=[(Output(ids.EXPORT_STATUS, "children"), "Rendering…", "")])
    def _export(*args):
        what, run_id, view, task, learners, mode, frame, preset, shown = \
            args[len(ids.EXPORT_FORMATS):]
        fmt = next(f for f in ids.EXPORT_FORMATS if ids.EXPORT[f] == ctx.triggered_id)
        data, text = export(state, fmt, what,
                            PageInputs(run_id, view, task, learners, mode, frame, shown=shown),
                            preset)
        return (data if data is not None else no_update), text

    @app.callback(Output(ids.JOB_STORE, "data"), Output(ids.JOB_POLL, "disabled"),
                  Output(ids.JOB_STATUS, "children"), Output(ids.JOB_BAR, "style"),
                  Output(ids.JOB_START, "disabled"), Output(ids.RUNS_VERSION, "data"),
                  Input(ids.JOB_START, "n_clicks"), Input(ids.JOB_POLL, "n_intervals"),
                  Input(ids.RUN, "options"),
                  State(ids.JOB_FAMILY, "value"), State(ids.JOB_LEARNERS, "value"),
                  State(ids.JOB_STEPS, "value"), State(ids.JOB_META_STEPS, "value"),
                  State(ids.JOB_SEED, "value"), State(ids.JOB_NAME, "value"),
                  State(ids.JOB_STORE, "data"), State(ids.RUNS_VERSION, "data"),
                  State(ids.JOB_POLL, "disabled"), prevent_initial_call=True)
    def _job(_start, _tick, _listed, family, learners, steps, meta_steps, seed, name, job,
             version, idle):
        if ctx.triggered_id == ids.JOB_START:
            o = start_job(state, family, learners, steps, meta_steps, seed, name)
            return o["job"], o["poll_disabled"], o["status"], o["bar"], o["busy"], no_update
        o = job_on_listing(state, job, idle) if ctx.triggered_id == ids.RUN \
            else poll_job(state, job, version)
        return no_update, o["poll_disabled"], o["status"], o["bar"], o["busy"], o["version"]

    register_birth(app, state)  # the birth map card and click-to-launch
    for p in (ids.INNER, ids.META):
        app.clientside_callback(
            ClientsideFunction("trajviz", "transport"),
            Output(p.frame, "data"), Output(p.slider, "value"), Output(p.interval, "disabled"),
            Output(p.play, "children"),
            Input(p.play, "n_clicks"), Input(p.interval, "n_intervals"),
            Input(p.back, "n_clicks"), Input(p.fwd, "n_clicks"), Input(p.slider, "value"),
            Input(p.data, "data"), State(p.frame, "data"), State(p.interval, "disabled"),
            State(p.interval, "interval"))
        app.clientside_callback(
            ClientsideFunction("trajviz", "render"), Output(p.label, "children"),
            Input(p.frame, "data"), Input(p.data, "data"))
        app.clientside_callback(
            ClientsideFunction("trajviz", "speed"), Output(p.interval, "interval"),
            Input(p.speed, "value"))


__all__ = [
    "AppState",
    "PageInputs",
    "RunCache",
    "draw",
    "draw_meta",
    "export",
    "job_on_listing",
    "message",
    "panel_styles",
    "parse_task",
    "poll_job",
    "register",
    "run_controls",
    "run_options",
    "start_job",
]
