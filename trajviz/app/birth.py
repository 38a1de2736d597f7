"""The birth map card and click-to-launch: components, thin steps and their callbacks.

Launches and birth-map jobs run in worker processes (``launches.py``); this
module only parses the page's values, asks them, and draws from
``trajviz.viewmodel.birthview`` with ``figures.birthmap``. ``register_birth(app, state)``
wires it; the inner-loop ``draw`` adds the latest launch through
``state.launches.over``.
"""
from __future__ import annotations

import time

from dash import Input, Output, State, ctx, dcc, html, no_update

from trajviz.app import ids
from trajviz.app.actions import PROGRESS_KEYS, poll_action, progress_wiring
from trajviz.app.components import BLANK, GRAPH_CONFIG, empty_figure, explain, field, progress_row
from trajviz.app.estimate import birth_estimate, launch_estimate
from trajviz.figures.birthmap import birth_figure
from trajviz.store import RunError
from trajviz.viewmodel.birthview import BIRTH_CHOICES, select_birth
from trajviz.viewmodel.palette import learner_colour
from trajviz.viewmodel.selection import fmt

HIDE = {"display": "none"}
SHOW: dict[str, str] = {}
# The CLI's default grid: with the native kernel a 41×41 map of the sinusoid demo takes
# about 1-2 s on 2 cores (linear2d, exact path: 0.5 s); the job adds the worker's start.
BIRTH_GRID = 41
BIRTH_TASKS = 8
BIRTH_NOTE = (f"{BIRTH_GRID}×{BIRTH_GRID} points × up to {BIRTH_TASKS} held-out tasks, in the "
              "background; it is stored in the run.")


# ---------------------------------------------------------------------------- components

def launch_hint(mode: str | None) -> str:
    """What a click on the main graph does in surface ``mode`` ("2d" or "3d"): in 3D a drag
    turns the scene and a click launches nothing (assets/surface_click.js reads 2D clicks)."""
    if mode == "3d":
        return ("In 3D, dragging turns the surface; to train from a point, switch to "
                "2D contour and click anywhere on it (or on the birth map).")
    return "Click anywhere on the surface or the birth map to train from that point."


def launch_bar() -> html.Div:
    """Under the surface: what a click does, the running notice, and "keep as"."""
    return html.Div(className="tv-launch", children=[
        html.Div(id=ids.LAUNCH_STATUS, className="tv-hint", children=launch_hint("2d")),
        progress_row(ids.LAUNCH_PROGRESS),
        html.Div(className="tv-run-row", children=[
            dcc.Input(id=ids.LAUNCH_NAME, type="text", value="", placeholder="name, e.g. my-init",
                      debounce=False),
            html.Button("Keep the point in the run", id=ids.LAUNCH_KEEP, className="tv-btn"),
        ]),
        explain("launch"),
        dcc.Store(id=ids.LAUNCHED),
    ])


def birth_card() -> html.Div:
    """The birth map: statistic picker, map, explanation lines, learner table, compute job."""
    return html.Div(id=ids.BIRTH_CARD, className="tv-card tv-birth", children=[
        explain("birthmap", heading=True),
        html.Div(id=ids.BIRTH_GRAPH_ROW, style=HIDE, children=[
            field("Colour by", dcc.Dropdown(
                id=ids.BIRTH_STAT, clearable=False, value="auc",
                options=[{"label": v, "value": k} for k, v in BIRTH_CHOICES.items()])),
            dcc.Graph(figure=BLANK, id=ids.BIRTH_GRAPH, config=GRAPH_CONFIG,
                      style={"height": "520px"})]),
        html.Div(id=ids.BIRTH_LINES, className="tv-hint"),
        html.Div(id=ids.BIRTH_TABLE),
        html.Div(id=ids.BIRTH_COMPUTE_ROW, style=HIDE, children=[
            html.Button("Compute a birth map for this slice", id=ids.BIRTH_COMPUTE,
                        className="tv-btn tv-primary"),
            html.Div(BIRTH_NOTE, id=ids.BIRTH_ESTIMATE,
                     className="tv-hint"),
            html.Div(className="tv-run-row", children=[
                html.Div(className="tv-progress", style={"flex": "1"}, children=html.Div(
                    id=ids.BIRTH_BAR, className="tv-progress-bar", style={"width": "0%"})),
                html.Button("Cancel", id=ids.BIRTH_CANCEL, className="tv-btn", style=HIDE)]),
        ]),
        html.Div(id=ids.BIRTH_STATUS, className="tv-hint"),
        dcc.Interval(id=ids.BIRTH_POLL, interval=800, disabled=True),
        dcc.Store(id=ids.BIRTH_JOB),
        dcc.Store(id=ids.BIRTH_VERSION, data=0),
    ])


def birth_table(rows) -> html.Table:
    """The learners' θ0s on the map: value there, gap to the birth point."""
    head = html.Tr([html.Th(h) for h in ("learner", "θ0 on the slice (a, b)", "off-plane",
                                         "value at θ0", "Δ value to birth", "gap on the slice",
                                         "gap in θ", "specialisation")])
    body = [html.Tr([
        html.Td([html.Span(className="tv-swatch", style={"background": learner_colour(r["learner"])}),
                 r["learner"]]),
        html.Td(f"({fmt(r['a'])}, {fmt(r['b'])})"), html.Td(fmt(r["residual"])),
        html.Td(fmt(r["value"])), html.Td(fmt(r["value_gap"])), html.Td(fmt(r["plane_gap"])),
        html.Td(fmt(r["param_gap"])), html.Td(fmt(r["specialisation"]))]) for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="tv-table")


# ---------------------------------------------------------------------------- steps

def birth_panel(state, run_id: str | None, view: str | None, statistic: str | None) -> dict:
    """The birth card's figure, lines, table and whether to offer the compute button."""
    out = {"figure": empty_figure(), "lines": [], "table": [], "compute": HIDE,
           "graph": HIDE, "estimate": BIRTH_NOTE}  # no map: no empty 520 px box, just the line and the button
    if run_id is None:
        return out
    try:
        run = state.cache.get(run_id)
    except RunError as exc:
        return {**out, "lines": [exc.reason]}
    view = view if view in run.views else next(iter(run.views), None)
    if view not in run.birthmaps:
        est = birth_estimate(run, state.cache.path_of(run_id), BIRTH_GRID,
                             min(BIRTH_TASKS, len(run.task_ids))).text()
        return {**out, "compute": SHOW, "estimate": BIRTH_NOTE + (f" It takes {est}." if est else ""),
                "lines": [html.P("No birth map on this slice yet: compute one below "
                                 "(or `trajviz birthmap RUN`).")]}
    try:
        bs = select_birth(run, view, statistic)
    except ValueError as exc:
        return {**out, "lines": [str(exc)]}
    kind = run.views[view].slice.kind
    return {**out, "figure": birth_figure(bs, kind), "graph": SHOW,
            "lines": [html.P(line) for line in bs.lines],
            "table": birth_table(bs.rows)}


def warm_launch(state, run_id: str | None, mode: str | None):
    """A run was picked: start its launch worker in the background, only for a listed,
    readable run (``state.cache.path_of``); the launch hint, or no update."""
    try:
        state.launches.warm(state.cache.path_of(run_id))
    except ValueError:  # RunError: not a run of this app; no process is started
        return no_update
    return launch_hint(mode) + ("" if mode == "3d" else launch_estimate_text(state, run_id))


def parse_click(click: dict | None) -> tuple[float, float] | None:
    """A plotly clickData's first point as (a, b), or None."""
    try:
        point = (click or {})["points"][0]
        a, b = float(point["x"]), float(point["y"])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return a, b


def launch_estimate_text(state, run_id: str | None) -> str:
    """'A click takes about 40 s (…)' when a launch on this run is slow, else ''."""
    try:
        run = state.cache.get(run_id)
        path = state.cache.path_of(run_id)
    except (RunError, TypeError):
        return ""
    est = launch_estimate(run, run_id, path, state.rates, state.launches.is_warm(path))
    return f" A click takes {est.text()}." if est.text() else ""


def click_launch(state, run_id: str | None, view: str | None, click: dict | None) -> dict:
    """Start training from the clicked point, as an action (progress, Cancel; a newer
    click replaces it): {"job": {"id", "run", "a", "b"}, "status": what runs, how long}."""
    point = parse_click(click)
    if run_id is None or point is None:
        return {"job": no_update, "status": no_update}
    try:
        run = state.cache.get(run_id)
        path = state.cache.path_of(run_id)
        view = view if view in run.views else next(iter(run.views))
    except (RunError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, RunError) else str(exc)
        return {"job": no_update, "status": f"Not launched: {reason}"}
    est = launch_estimate(run, run_id, path, state.rates, state.launches.is_warm(path))

    def work(report):
        started = time.perf_counter()
        result = state.launches.launch(run_id, path, view, *point, report=report)
        steps = int(run.config.get("inner", {}).get("steps", 16)) + 1
        state.rates.record(run_id, result.seconds, len(run.task_ids) * steps)
        return {"result": result, "server": time.perf_counter() - started}

    job = state.actions.start("launch", run_id, est, work)
    when = est.text()
    return {"job": {"id": job, "run": run_id, "a": point[0], "b": point[1]},
            "status": (f"Training from (a, b) = ({point[0]:.3g}, {point[1]:.3g}) on "
                       f"{len(run.task_ids)} held-out tasks" + (f": {when}." if when else "…"))}


def poll_launch(state, job: dict | None, cancel: bool) -> dict:
    """One poll (or the Cancel) of a launch: the progress row, and once it has landed
    {"launched": data for the draw callback, "status": text} (else no_update)."""
    job = job if isinstance(job, dict) else {}
    out = poll_action(state.actions, job.get("id"), cancel)
    out.update(launched=no_update, status=no_update)
    if out["state"] == "done":
        landed = state.actions.result(job.get("id"))
        result, server = landed["result"], landed["server"]
        name = result.record.name
        out["launched"] = {"run": job.get("run"), "name": name, "a": job.get("a"), "b": job.get("b"),
                           "seconds": round(result.seconds, 3), "server": round(server, 3)}
        out["status"] = (f"{name}: trained from (a, b) = ({job.get('a'):.3g}, {job.get('b'):.3g}) "
                         f"on {len(result.record.losses)} held-out tasks in {result.seconds:.2f} s "
                         f"({server:.2f} s with the transfer). Keep it to compare it everywhere.")
    elif out["state"] == "cancelled":
        out["status"] = "Launch cancelled: nothing was trained; the picture is as it was."
    elif out["state"] in ("failed", "unknown"):
        out["status"] = f"Not launched: {out['error']}"
    return out


def keep_launch(state, run_id: str | None, name: str | None, version: dict | None) -> dict:
    """Store the latest launch as ``name``; re-reads the run so every view, summary and
    export holds it (through the runs version store)."""
    if run_id is None:
        return {"status": "There is no run.", "version": no_update}
    try:
        run = state.cache.get(run_id)  # the worker checks the name (trajviz.problem.inits)
        result = state.launches.latest(run_id)
        wanted = (name or "").strip() or (result.record.name if result else "")
        if wanted in run.learners:
            raise ValueError(f"the run already has a learner named {wanted!r}; choose another name")
        kept = state.launches.keep(run_id, state.cache.path_of(run_id), wanted)
    except (RunError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, RunError) else str(exc)
        return {"status": f"Not kept: {reason}", "version": no_update}
    version = dict(version or {"n": 0, "select": None})
    version.update(n=version.get("n", 0) + 1, select=run_id)
    return {"status": f"Kept {kept} in the run: it is now a learner in every view, the summary "
                      "and the exports.", "version": version}


def start_birth(state, run_id: str | None, view: str | None) -> dict:
    if run_id is None:
        return {"job": no_update, "poll": True, "status": "There is no run."}
    try:
        run = state.cache.get(run_id)
        view = view if view in run.views else next(iter(run.views))
        job = state.births.start(run_id, state.cache.path_of(run_id), view, BIRTH_GRID,
                                 min(BIRTH_TASKS, len(run.task_ids)))
    except (RunError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, RunError) else str(exc)
        return {"job": no_update, "poll": True, "status": f"Not started: {reason}"}
    return {"job": {"id": job}, "poll": False, "status": "Starting the birth map…"}


def poll_birth(state, job: dict | None, version: int | None) -> dict:
    s = state.births.status((job or {}).get("id"))
    bar = {"width": f"{100 * max(0.0, min(1.0, s['fraction'])):.0f}%"}
    if s["state"] == "running":
        return {"poll": False, "bar": bar, "status": f"{s['stage']} · {s['elapsed']:.0f} s",
                "version": no_update}
    if s["state"] == "done":
        return {"poll": True, "bar": bar, "status": f"Birth map done in {s['elapsed']:.0f} s.",
                "version": int(version or 0) + 1}
    if s["state"] == "cancelled":
        return {"poll": True, "bar": {"width": "0%"}, "version": no_update,
                "status": "Birth map cancelled: nothing was stored; the run is as it was."}
    return {"poll": True, "bar": {"width": "0%"},
            "status": f"The birth map failed: {s.get('message', '')}", "version": no_update}


# ---------------------------------------------------------------------------- wiring

def register_birth(app, state) -> None:
    """Wire the birth card and click-to-launch to ``app``."""

    @app.callback(Output(ids.BIRTH_GRAPH, "figure"), Output(ids.BIRTH_LINES, "children"),
                  Output(ids.BIRTH_TABLE, "children"), Output(ids.BIRTH_COMPUTE_ROW, "style"),
                  Output(ids.BIRTH_GRAPH_ROW, "style"), Output(ids.BIRTH_ESTIMATE, "children"),
                  Input(ids.RUN, "value"), Input(ids.SLICE, "value"),
                  Input(ids.BIRTH_STAT, "value"), Input(ids.BIRTH_VERSION, "data"),
                  Input(ids.RUNS_VERSION, "data"))
    def _birth(run_id, view, statistic, _version, _runs):
        o = birth_panel(state, run_id, view, statistic)
        return o["figure"], o["lines"], o["table"], o["compute"], o["graph"], o["estimate"]

    @app.callback(Output(ids.LAUNCH_STATUS, "children", allow_duplicate=True),
                  Input(ids.RUN, "value"), State(ids.MODE, "value"),
                  prevent_initial_call="initial_duplicate")
    def _warm(run_id, mode):
        return warm_launch(state, run_id, mode)

    @app.callback(Output(ids.LAUNCH_STATUS, "children", allow_duplicate=True),
                  Input(ids.MODE, "value"), prevent_initial_call=True)
    def _hint(mode):
        return launch_hint(mode)

    pids = ids.LAUNCH_PROGRESS

    @app.callback(Output(pids.job, "data"),
                  Output(ids.LAUNCH_STATUS, "children", allow_duplicate=True),
                  Output(pids.poll, "disabled"), Output(pids.row, "style"),
                  Output(pids.text, "children"), Output(pids.bar, "style"),
                  Input(ids.MAIN_GRAPH, "clickData"), Input(ids.BIRTH_GRAPH, "clickData"),
                  State(ids.RUN, "value"), State(ids.SLICE, "value"), State(ids.MODE, "value"),
                  prevent_initial_call=True)
    def _launch(main_click, birth_click, run_id, view, mode):
        # in 3D plotly reports a click on a picked trace point only: no launch (launch_hint)
        click = (birth_click if ctx.triggered_id == ids.BIRTH_GRAPH
                 else None if mode == "3d" else main_click)
        o = click_launch(state, run_id, view, click)
        if o["job"] is no_update:
            return no_update, o["status"], no_update, no_update, no_update, no_update
        return o["job"], o["status"], False, SHOW, o["status"], {"width": "0%"}

    @app.callback(Output(ids.LAUNCHED, "data"),
                  Output(ids.LAUNCH_STATUS, "children", allow_duplicate=True),
                  *progress_wiring(pids), prevent_initial_call=True)
    def _launch_poll(_tick, _cancel, job):
        o = poll_launch(state, job, ctx.triggered_id == pids.cancel)
        return o["launched"], o["status"], *(o[k] for k in PROGRESS_KEYS)

    @app.callback(Output(ids.LAUNCH_STATUS, "children", allow_duplicate=True),
                  Output(ids.RUNS_VERSION, "data", allow_duplicate=True),
                  Input(ids.LAUNCH_KEEP, "n_clicks"), State(ids.RUN, "value"),
                  State(ids.LAUNCH_NAME, "value"), State(ids.RUNS_VERSION, "data"),
                  prevent_initial_call=True)
    def _keep(_n, run_id, name, version):
        o = keep_launch(state, run_id, name, version)
        return o["status"], o["version"]

    @app.callback(Output(ids.BIRTH_JOB, "data"), Output(ids.BIRTH_POLL, "disabled"),
                  Output(ids.BIRTH_STATUS, "children"), Output(ids.BIRTH_BAR, "style"),
                  Output(ids.BIRTH_VERSION, "data"), Output(ids.BIRTH_CANCEL, "style"),
                  Input(ids.BIRTH_COMPUTE, "n_clicks"), Input(ids.BIRTH_POLL, "n_intervals"),
                  Input(ids.BIRTH_CANCEL, "n_clicks"),
                  State(ids.RUN, "value"), State(ids.SLICE, "value"), State(ids.BIRTH_JOB, "data"),
                  State(ids.BIRTH_VERSION, "data"), prevent_initial_call=True)
    def _birth_job(_n, _tick, _cancel, run_id, view, job, version):
        if ctx.triggered_id == ids.BIRTH_COMPUTE:
            o = start_birth(state, run_id, view)
            return (o["job"], o["poll"], o["status"], {"width": "0%"}, no_update,
                    HIDE if o["poll"] else SHOW)
        if ctx.triggered_id == ids.BIRTH_CANCEL:
            state.births.cancel((job or {}).get("id"))
        o = poll_birth(state, job, version)
        return no_update, o["poll"], o["status"], o["bar"], o["version"], HIDE if o["poll"] else SHOW


__all__ = ["birth_card", "birth_panel", "click_launch", "keep_launch", "launch_bar",
           "launch_estimate_text", "parse_click", "poll_birth", "poll_launch", "register_birth",
           "start_birth", "warm_launch"]
