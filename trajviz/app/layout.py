"""The page: a header, a left control column, and tabs for inner loops and meta-training.

The layout is static (no disk access); callbacks fill in runs, figures and tables.
"""
from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from ..selection import PANEL_GROUPS, PANELS, PanelSpec
from . import ids
from .birth import birth_card, launch_bar
from .components import (BLANK, GRAPH_CONFIG, SMALL_GRAPH_CONFIG, explain, field,
                         learner_option, panel_style, player_bar)
from .texts import EXPLAIN, HOW_TO_READ, TAGLINE


def controls(families: Sequence[str], learners: Sequence[str]) -> html.Aside:
    return html.Aside(className="tv-controls", children=[
        html.Section(className="tv-box", children=[
            html.Div(className="tv-run-row", children=[
                field("Run", dcc.Dropdown(id=ids.RUN, options=[], clearable=False,
                                           placeholder="no runs yet", optionHeight=48)),
                html.Button("↻", id=ids.RUNS_REFRESH, className="tv-btn tv-icon",
                            title="look for new runs"),
            ]),
            html.Div(id=ids.RUN_INFO, className="tv-hint"),
            html.Div(id=ids.RUN_FIELDS, children=[
            field("Held-out task", dcc.Dropdown(id=ids.TASK, options=[], clearable=False),
                   "one task, or the mean over all held-out tasks"),
            field("Slice", dcc.RadioItems(id=ids.SLICE, options=[], className="tv-radio"),
                   id=ids.SLICE_ROW, style={"display": "none"}),
            field("Learners", dcc.Checklist(
                id=ids.LEARNERS, options=[learner_option(n, False) for n in learners], value=[],
                className="tv-learners")),
            field("Surface", dcc.RadioItems(
                id=ids.MODE, options=[{"label": "2D contour", "value": "2d"},
                                      {"label": "3D", "value": "3d"}],
                value="2d", inline=True, className="tv-radio")),
            ]),
        ]),
        html.Section(id=ids.EXPORT_BOX, className="tv-box", children=[
            html.H2("Export"),
            field("Figure", dcc.RadioItems(
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
            field("Task family", dcc.Dropdown(
                id=ids.JOB_FAMILY, options=list(families), clearable=False,
                value="linear2d" if "linear2d" in families else next(iter(families), None))),
            field("Learners", dcc.Checklist(
                id=ids.JOB_LEARNERS, className="tv-learners",
                options=[learner_option(n) for n in learners],
                value=[n for n in ("leap", "reptile", "random") if n in learners])),
            html.Div(className="tv-grid2", children=[
                field("Inner steps K", dcc.Input(id=ids.JOB_STEPS, type="number", value=10,
                                                  min=1, max=500, step=1)),
                field("Meta-steps", dcc.Input(id=ids.JOB_META_STEPS, type="number", value=60,
                                               min=1, max=20000, step=1)),
                field("Seed", dcc.Input(id=ids.JOB_SEED, type="number", value=0, min=0, step=1)),
                field("Name", dcc.Input(id=ids.JOB_NAME, type="text", value="",
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


def panel_card(spec: PanelSpec) -> html.Div:
    return html.Div(className="tv-card tv-panel", id=ids.PANEL_CARD[spec.key],
                    style=panel_style(spec, PANEL_GROUPS[0][0]), children=[
        explain(spec.key, spec.title, heading=True),
        dcc.Graph(figure=BLANK, id=ids.PANEL_GRAPH[spec.key], config=SMALL_GRAPH_CONFIG,
                  style={"height": "170px"}),
        html.Div(id=ids.PANEL_NOTE[spec.key], className="tv-hint"),
    ])


def panel_picker() -> html.Div:
    """Which set of panels the page shows (a second set keeps the column one screen tall)."""
    return html.Div(className="tv-panel-set", children=[
        html.Span("Panels", className="tv-label", style={"display": "inline-block",
                                                          "marginRight": "10px"}),
        dcc.RadioItems(id=ids.PANEL_SET, value=PANEL_GROUPS[0][0], inline=True,
                       className="tv-radio", style={"display": "inline-block"},
                       options=[{"label": label, "value": key} for key, label in PANEL_GROUPS]),
    ])


def inner_tab() -> html.Div:
    return html.Div(className="tv-tab", children=[
        player_bar(ids.INNER, "inner step"),
        html.Div(id=ids.NOTES, className="tv-notes"),
        html.Div(className="tv-stage", children=[
            html.Div(className="tv-card tv-surface", children=[
                dcc.Graph(figure=BLANK, id=ids.MAIN_GRAPH, config=GRAPH_CONFIG,
                          style={"height": "520px"}),
                launch_bar(),
                html.Div(className="tv-legend-key", children=[
                    html.Span("○ start θ0"), html.Span("◆ end (step K)"),
                    html.Span("● current step, with its last few steps as a tail"),
                    html.Span("faint line: the whole path"),
                ]),
                explain("surface"),
            ]),
            html.Div(className="tv-panels", children=[
                panel_picker(),
                *[panel_card(p) for p in PANELS],
                html.Div(className="tv-card tv-honesty", children=[
                    explain("slice", "What the slice keeps and hides", heading=True),
                    html.Div(id=ids.HONESTY),
                ]),
            ]),
        ]),
        birth_card(),
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
