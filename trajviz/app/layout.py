"""The page: a header, a left control column, and tabs for inner loops and meta-training.

The layout is static (no disk access); callbacks fill in runs, figures and tables.
"""
from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from trajviz.app import ids
from trajviz.app.birth import birth_card, launch_bar
from trajviz.app.components import (
    BLANK,
    GRAPH_CONFIG,
    MAIN_GRAPH_CONFIG,
    SMALL_GRAPH_CONFIG,
    explain,
    field,
    learner_option,
    panel_style,
    player_bar,
    surface_key,
)
from trajviz.app.demo import demo_line
from trajviz.app.texts import EXPLAIN, HOW_TO_READ, TAGLINE
from trajviz.app.whatif import whatif_box
from trajviz.viewmodel.selection import PANEL_GROUPS, PANELS, PanelSpec


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
            demo_line(),
            html.Div(id=ids.RUN_FIELDS, children=[
            field("Held-out task", dcc.Dropdown(id=ids.TASK, options=[], clearable=False),
                   "one task's paths; the mean averages projected points (no learner "
                   "took that path)"),
            field("Slice", dcc.RadioItems(id=ids.SLICE, options=[], className="tv-radio"),
                   id=ids.SLICE_ROW),
            field("Learners", dcc.Checklist(
                id=ids.LEARNERS, options=[learner_option(n, False) for n in learners], value=[],
                className="tv-learners"),
                "double-click a learner to show it alone; again to bring the others back"),
            field("Surface", dcc.RadioItems(
                id=ids.MODE, options=[{"label": "2D contour", "value": "2d"},
                                      {"label": "3D", "value": "3d"}],
                value="2d", inline=True, className="tv-radio")),
            field("View", dcc.RadioItems(
                id=ids.ZOOM, options=[{"label": "fit these paths", "value": "fit"},
                                      {"label": "all tasks", "value": "all"},
                                      {"label": "full grid", "value": "full"}],
                value="fit", inline=True, className="tv-radio"),
                "“all tasks” keeps one box for every task and learner, to compare"),
            ]),
        ]),
        html.Section(id=ids.EXPORT_BOX, className="tv-box", children=[
            html.H2("Export"),
            field("Figure", dcc.RadioItems(
                id=ids.EXPORT_WHAT, options=[{"label": "surface", "value": "surface"},
                                             {"label": "metric panels", "value": "metrics"},
                                             {"label": "meta-training", "value": "meta"}],
                value="surface", className="tv-radio")),
            field("Size", dcc.RadioItems(
                id=ids.EXPORT_PRESET, options=[
                    {"label": "screen", "value": "screen"},
                    {"label": "paper column (3.3 in)", "value": "column"},
                    {"label": "paper page (6.9 in)", "value": "page"}],
                value="screen", className="tv-radio")),
            html.Div(className="tv-export-row", children=[
                html.Button(fmt.upper(), id=ids.EXPORT[fmt], className="tv-btn")
                for fmt in ids.EXPORT_FORMATS]),
            html.Div(id=ids.EXPORT_STATUS, className="tv-hint"),
            html.Div("PNG, SVG and PDF show the current step (paper sizes: the last step, "
                     "fonts ≥ 7 pt); HTML is a standalone animation.",
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
                                                  step=1)),
                field("Meta-steps", dcc.Input(id=ids.JOB_META_STEPS, type="number", value=60,
                                               step=1)),
                field("Seed", dcc.Input(id=ids.JOB_SEED, type="number", value=0, min=0, step=1)),
                field("Name", dcc.Input(id=ids.JOB_NAME, type="text", value="",
                                         placeholder="optional")),
            ]),
            html.Button("Start run", id=ids.JOB_START, className="tv-btn tv-primary"),
            html.Div(className="tv-progress", children=html.Div(id=ids.JOB_BAR,
                                                                className="tv-progress-bar",
                                                                style={"width": "0%"})),
            html.Div(id=ids.JOB_STATUS, className="tv-hint"),
            dcc.Interval(id=ids.JOB_POLL, interval=1500, disabled=True),
            dcc.Store(id=ids.JOB_STORE),
        ]),
    ])


def panel_card(spec: PanelSpec) -> html.Div:
    return html.Div(className="tv-card tv-panel", id=ids.PANEL_CARD[spec.key],
                    style=panel_style(spec, PANEL_GROUPS[0][0]), children=[
        explain(spec.key, spec.title, heading=True),
        dcc.Graph(figure=BLANK, id=ids.PANEL_GRAPH[spec.key], config=SMALL_GRAPH_CONFIG,
                  className="tv-panel-graph", style={"height": "var(--tv-panel-h)"}),
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
    """One screen (``.tv-screen``, sized to the viewport by CSS): the player, the what-if
    strip, then the surface left and the panels in a scrolling column right. Below the
    screen: the birth map (when the run has one) and the summary.

    Where additions go: a metric panel is a ``PanelSpec`` in ``PANELS`` (it lands in
    ``.tv-panels``); a note about the picture (e.g. "got worse") is a child of ``ids.NOTES``
    under the panels; progress or cancel of a what-if goes in the what-if
    strip's status line (``ids.WHATIF_STATUS``); page-wide news (a demo being made, a long
    job) goes in ``ids.RUN_MESSAGE`` above the tabs."""
    return html.Div(className="tv-tab", children=[
        html.Div(className="tv-screen", children=[
            player_bar(ids.INNER, "inner step"),
            whatif_box(),
            html.Div(className="tv-stage", children=[
                html.Div(className="tv-card tv-surface", children=[
                    html.Div(id=ids.SURFACE_KEY, className="tv-legend-key",
                             children=surface_key([])),
                    dcc.Graph(figure=BLANK, id=ids.MAIN_GRAPH, config=MAIN_GRAPH_CONFIG,
                              className="tv-surface-graph"),
                    launch_bar(),
                    explain("surface"),
                ]),
                html.Div(className="tv-side", children=[
                    html.Div(className="tv-panels", children=[panel_picker(),
                                                              *[panel_card(p) for p in PANELS]]),
                    html.Div(id=ids.NOTES, className="tv-notes"),
                    html.Div(className="tv-card tv-honesty", children=[
                        explain("slice", "What the slice keeps and hides", heading=True),
                        html.Div(id=ids.HONESTY),
                    ]),
                ]),
            ]),
        ]),
        birth_card(),
        html.Div(className="tv-card tv-summary", children=[
            explain("summary", "Summary over held-out tasks", heading=True),
            html.Div(id=ids.SUMMARY_LIVE, className="tv-live"),  # filled by assets/whatif.js
            html.Div(id=ids.SUMMARY),
        ]),
    ])


def meta_tab() -> html.Div:
    return html.Div(className="tv-tab", children=[
        player_bar(ids.META, "meta-step", start_at_end=True),
        explain("meta", "How to read the meta-training view"),
        html.Div(id=ids.META_NOTE, className="tv-meta-note"),
        html.Div(className="tv-meta", children=[
            html.Div(dcc.Graph(figure=BLANK, id=ids.META_GRAPH, config=GRAPH_CONFIG,
                               className="tv-meta-graph", style={"height": "var(--tv-meta-h)"}),
                     className="tv-card"),
            html.Div(dcc.Graph(figure=BLANK, id=ids.META_CURVES, config=GRAPH_CONFIG,
                               className="tv-meta-graph", style={"height": "var(--tv-meta-h)"}),
                     className="tv-card"),
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
            html.Div(className="tv-header-tools", children=[
                html.Button("☰ Controls", id=ids.SIDEBAR_TOGGLE, className="tv-btn tv-hbtn",
                            title="fold or unfold the controls"),
                html.Button("▭ Present", id=ids.PRESENT, className="tv-btn tv-hbtn",
                            title="presentation mode: larger type, controls folded"),
                html.Span("Space: play/pause · ←/→: step", className="tv-keys"),
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
