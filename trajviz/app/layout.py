"""The page: a header, a left control column, and tabs for inner loops and meta-training.

The layout is static (no disk access); callbacks fill in runs, figures and tables.
"""
from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from .. import figures as F
from . import ids
from .texts import EXPLAIN, HOW_TO_READ, TAGLINE

GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
                "toImageButtonOptions": {"format": "png", "scale": 2}}
SMALL_GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}
SPEEDS = ((900, "slow"), (400, "normal"), (150, "fast"))


def empty_figure(text: str = "") -> dict:
    """A blank figure (no axes), with ``text`` in the middle if given."""
    layout = {"xaxis": {"visible": False}, "yaxis": {"visible": False},
              "paper_bgcolor": "white", "plot_bgcolor": "white",
              "margin": {"l": 0, "r": 0, "t": 0, "b": 0}}
    if text:
        layout["annotations"] = [{"text": text, "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5}]
    return {"data": [], "layout": layout}


#: What a graph shows before its first figure arrives (no stray empty axes).
BLANK = empty_figure()
DEFAULT_SPEED = 400


def explain(key: str, title: str | None = None, heading: bool = False) -> html.Details:
    """A one-click explanation: a '?' summary line that opens a few paragraphs.
    ``heading`` makes the summary a card's title (h3) with the '?' after it."""
    default, paragraphs = EXPLAIN[key]
    text = title or default
    summary = [html.H3(text), html.Span("?", className="tv-q")] if heading \
        else [html.Span("?", className="tv-q"), text]
    return html.Details(
        [html.Summary(summary, className="tv-heading" if heading else None),
         *[html.P(p) for p in paragraphs]],
        className="tv-explain", id=f"explain-{key}")


def player_bar(p: ids.Player, what: str, start_at_end: bool = False) -> html.Div:
    """Play/pause, step back/forward, a scrub slider and speed for one frame index.
    The frame starts at 0, or at the last frame with ``start_at_end`` (the server
    draws the first figures at the frame the Store holds; None means the last)."""
    return html.Div(className="tv-player", children=[
        html.Button("◂ step", id=p.back, className="tv-btn", title=f"one {what} back"),
        html.Button("▶ Play", id=p.play, className="tv-btn tv-play", title="play / pause"),
        html.Button("step ▸", id=p.fwd, className="tv-btn", title=f"one {what} forward"),
        html.Div(dcc.Slider(id=p.slider, min=0, max=1, step=1, value=0, marks=None,
                            updatemode="drag", allow_direct_input=False),
                 className="tv-slider"),
        html.Span(f"{what} 0", id=p.label, className="tv-frame-label"),
        html.Div(className="tv-speed", children=[
            html.Span("speed", className="tv-muted"),
            dcc.RadioItems(id=p.speed, options=[{"label": label, "value": ms}
                                                for ms, label in SPEEDS],
                           value=DEFAULT_SPEED, inline=True, className="tv-radio"),
        ]),
        dcc.Interval(id=p.interval, interval=DEFAULT_SPEED, disabled=True),
        dcc.Store(id=p.frame, data=None if start_at_end else 0),
        dcc.Store(id=p.data),
    ])


def _field(label: str, control, hint: str | None = None, **kwargs) -> html.Div:
    children = [html.Label(label, className="tv-label"), control]
    if hint:
        children.append(html.Div(hint, className="tv-hint"))
    return html.Div(children, className="tv-field", **kwargs)


def controls(families: Sequence[str], learners: Sequence[str]) -> html.Aside:
    return html.Aside(className="tv-controls", children=[
        html.Section(className="tv-box", children=[
            html.Div(className="tv-run-row", children=[
                _field("Run", dcc.Dropdown(id=ids.RUN, options=[], clearable=False,
                                           placeholder="no runs yet", optionHeight=48)),
                html.Button("↻", id=ids.RUNS_REFRESH, className="tv-btn tv-icon",
                            title="look for new runs"),
            ]),
            html.Div(id=ids.RUN_INFO, className="tv-hint"),
            html.Div(id=ids.RUN_FIELDS, children=[
            _field("Held-out task", dcc.Dropdown(id=ids.TASK, options=[], clearable=False),
                   "one task, or the mean over all held-out tasks"),
            _field("Slice", dcc.RadioItems(id=ids.SLICE, options=[], className="tv-radio"),
                   id=ids.SLICE_ROW, style={"display": "none"}),
            _field("Learners", dcc.Checklist(
                id=ids.LEARNERS, options=[learner_option(n, False) for n in learners], value=[],
                className="tv-learners")),
            _field("Surface", dcc.RadioItems(
                id=ids.MODE, options=[{"label": "2D contour", "value": "2d"},
                                      {"label": "3D", "value": "3d"}],
                value="2d", inline=True, className="tv-radio")),
            ]),
        ]),
        html.Section(id=ids.EXPORT_BOX, className="tv-box", children=[
            html.H2("Export"),
            _field("Figure", dcc.RadioItems(
                id=ids.EXPORT_WHAT, options=[{"label": "surface", "value": "surface"},
                                             {"label": "metric panels", "value": "metrics"},
                                             {"label": "meta-training", "value": "meta"}],
                value="surface", className="tv-radio")),
            html.Div(className="tv-export-row", children=[
                html.Button(fmt.upper(), id=ids.EXPORT[fmt], className="tv-btn")
                for fmt in ids.EXPORT_FORMATS]),
            html.Div(id=ids.EXPORT_STATUS, className="tv-hint"),
            html.Div("PNG, SVG and PDF show the current step; HTML is a standalone animation.",
                     className="tv-hint"),
        ]),
        html.Details(id=ids.NEW_RUN, className="tv-box tv-newrun", children=[
            html.Summary(html.H2("New run")),
            html.P(EXPLAIN["newrun"][1][0], className="tv-hint"),
            _field("Task family", dcc.Dropdown(
                id=ids.JOB_FAMILY, options=list(families), clearable=False,
                value="linear2d" if "linear2d" in families else next(iter(families), None))),
            _field("Learners", dcc.Checklist(
                id=ids.JOB_LEARNERS, className="tv-learners",
                options=[learner_option(n) for n in learners],
                value=[n for n in ("leap", "reptile", "random") if n in learners])),
            html.Div(className="tv-grid2", children=[
                _field("Inner steps K", dcc.Input(id=ids.JOB_STEPS, type="number", value=10,
                                                  min=1, max=500, step=1)),
                _field("Meta-steps", dcc.Input(id=ids.JOB_META_STEPS, type="number", value=60,
                                               min=1, max=20000, step=1)),
                _field("Seed", dcc.Input(id=ids.JOB_SEED, type="number", value=0, min=0, step=1)),
                _field("Name", dcc.Input(id=ids.JOB_NAME, type="text", value="",
                                         placeholder="optional")),
            ]),
            html.Button("Start run", id=ids.JOB_START, className="tv-btn tv-primary"),
            html.Div(className="tv-progress", children=html.Div(id=ids.JOB_BAR,
                                                                className="tv-progress-bar",
                                                                style={"width": "0%"})),
            html.Div(id=ids.JOB_STATUS, className="tv-hint"),
            dcc.Interval(id=ids.JOB_POLL, interval=800, disabled=True),
            dcc.Store(id=ids.JOB_STORE),
        ]),
    ])


def learner_option(name: str, present: bool = True) -> dict:
    """A learner's checklist entry: its colour swatch and name; greyed out when the run
    does not hold it. The learner checklist always lists every registered learner, so
    its length never changes: Dash 4.4's renderer fails ("reading 'props'") when a
    checklist whose labels are components grows between updates."""
    return {"label": html.Span([html.Span(className="tv-swatch",
                                          style={"background": F.learner_colour(name)}), name]),
            "value": name, "disabled": not present}


def panel_card(spec: F.PanelSpec) -> html.Div:
    return html.Div(className="tv-card tv-panel", children=[
        explain(spec.key, spec.title, heading=True),
        dcc.Graph(figure=BLANK, id=ids.PANEL_GRAPH[spec.key], config=SMALL_GRAPH_CONFIG,
                  style={"height": "170px"}),
    ])


def inner_tab() -> html.Div:
    return html.Div(className="tv-tab", children=[
        player_bar(ids.INNER, "inner step"),
        html.Div(id=ids.NOTES, className="tv-notes"),
        html.Div(className="tv-stage", children=[
            html.Div(className="tv-card tv-surface", children=[
                dcc.Graph(figure=BLANK, id=ids.MAIN_GRAPH, config=GRAPH_CONFIG,
                          style={"height": "520px"}),
                html.Div(className="tv-legend-key", children=[
                    html.Span("○ start θ0"), html.Span("◆ end (step K)"),
                    html.Span("● current step, with its last few steps as a tail"),
                    html.Span("faint line: the whole path"),
                ]),
                explain("surface"),
            ]),
            html.Div(className="tv-panels", children=[
                *[panel_card(p) for p in F.PANELS],
                html.Div(className="tv-card tv-honesty", children=[
                    explain("slice", "What the slice keeps and hides", heading=True),
                    html.Div(id=ids.HONESTY),
                ]),
            ]),
        ]),
        html.Div(className="tv-card tv-summary", children=[
            explain("summary", "Summary over held-out tasks", heading=True),
            html.Div(id=ids.SUMMARY),
        ]),
    ])


def meta_tab() -> html.Div:
    return html.Div(className="tv-tab", children=[
        player_bar(ids.META, "meta-step", start_at_end=True),
        explain("meta", "How to read the meta-training view"),
        html.Div(className="tv-meta", children=[
            html.Div(dcc.Graph(figure=BLANK, id=ids.META_GRAPH, config=GRAPH_CONFIG,
                               style={"height": "500px"}),
                     className="tv-card"),
            html.Div(dcc.Graph(figure=BLANK, id=ids.META_CURVES, config=GRAPH_CONFIG,
                               style={"height": "500px"}), className="tv-card"),
        ]),
    ])


def build_layout(families: Sequence[str], learners: Sequence[str]) -> html.Div:
    """The whole page. ``families`` and ``learners`` fill the new-run form."""
    return html.Div(className="tv-app", children=[
        dcc.Location(id=ids.URL),
        dcc.Download(id=ids.DOWNLOAD),
        dcc.Store(id=ids.RUNS_VERSION, data={"n": 0, "select": None}),
        html.Header(className="tv-header", children=[
            html.Div(className="tv-title", children=[
                html.H1("trajviz"),
                html.P(TAGLINE, className="tv-tagline"),
            ]),
            html.Details(className="tv-howto", children=[
                html.Summary("How to read this page"),
                *[html.P(p) for p in HOW_TO_READ],
            ]),
        ]),
        html.Div(className="tv-body", children=[
            controls(families, learners),
            html.Main(className="tv-main", children=[
                html.Div(id=ids.RUN_MESSAGE, className="tv-message", style={"display": "none"}),
                html.Div(id=ids.WORKSPACE, children=[
                    dcc.Tabs(id=ids.TABS, value="inner", className="tv-tabs", children=[
                        dcc.Tab(label="Inner loops on the loss surface", value="inner",
                                children=inner_tab()),
                        dcc.Tab(label="Meta-training", value="meta", children=meta_tab()),
                    ]),
                ]),
            ]),
        ]),
    ])
