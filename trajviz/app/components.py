"""Reusable pieces of the page (Dash components, no callbacks): messages, the summary
table, the honesty card, the player bar, explanations, learner options, blank figures.

Builders take view-model values (``trajviz.viewmodel.selection``) and return components;
the callbacks wire them, the layout places them.
"""
from __future__ import annotations

from typing import Any

from dash import dcc, html

from trajviz.app import ids
from trajviz.app.texts import EXPLAIN
from trajviz.data.run import Run
from trajviz.viewmodel.honesty import honesty_items
from trajviz.viewmodel.palette import learner_colour
from trajviz.viewmodel.selection import (
    PANEL_GROUPS,
    SUMMARY_COLUMNS,
    PanelSpec,
    Selection,
    best_learners,
    fmt,
)
from trajviz.viewmodel.summary import coverage, not_eligible, summary_rows
from trajviz.viewmodel.training import lr_text, outer_lr_line, tuning_rows, worse_line

#: No "share chart" link (plotly's sendDataToCloud/Chart Studio: it needs the internet).
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False,
                "showSendToCloud": False, "showEditInChartStudio": False,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d",
                                           "sendDataToCloud"],
                "toImageButtonOptions": {"format": "png", "scale": 2}}
SMALL_GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}
#: The main graph: its 3D scene drawn at one WebGL pixel per CSS pixel (plotly's default 2
#: draws four times the pixels; without a GPU, as in headless Chromium's software WebGL, that
#: fill bounds 3D playback: bench/bench_playback.py). 2D is SVG and unaffected.
MAIN_GRAPH_CONFIG = {**GRAPH_CONFIG, "plotGlPixelRatio": 1}
SPEEDS = ((900, "slow"), (400, "normal"), (150, "fast"))
DEFAULT_SPEED = 400


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


def explain(key: str, title: str | None = None, heading: bool = False,
            where: str = "") -> html.Details:
    """A one-click explanation: a '?' summary line that opens a few paragraphs.
    ``heading`` makes the summary a card's title (h3) with the '?' after it; ``where``
    tells apart two copies of one explanation on the page (their ids)."""
    default, paragraphs = EXPLAIN[key]
    text = title or default
    summary = [html.H3(text), html.Span("?", className="tv-q")] if heading \
        else [html.Span("?", className="tv-q"), text]
    return html.Details(
        [html.Summary(summary, className="tv-heading" if heading else None),
         *[html.P(p) for p in paragraphs]],
        className="tv-explain", id=f"explain-{key}-{where}" if where else f"explain-{key}")


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


def panel_style(spec: PanelSpec, group: str | None) -> dict[str, str]:
    """A panel card is shown when it belongs to the chosen set of panels."""
    return {} if (group or PANEL_GROUPS[0][0]) in spec.groups else {"display": "none"}


def field(label: str, control, hint: str | None = None, className: str = "",
          **kwargs) -> html.Div:
    """A labelled control (``className`` adds classes to "tv-field")."""
    children = [html.Label(label, className="tv-label"), control]
    if hint:
        children.append(html.Div(hint, className="tv-hint"))
    return html.Div(children, className=f"tv-field {className}".strip(), **kwargs)


def learner_option(name: str, present: bool = True) -> dict:
    """A learner's checklist entry: its colour swatch and name; greyed out when the run
    does not hold it. The learner checklist always lists every registered learner, so
    its length never changes: Dash 4.4's renderer fails ("reading 'props'") when a
    checklist whose labels are components grows between updates."""
    return {"label": html.Span([html.Span(className="tv-swatch",
                                          style={"background": learner_colour(name)}), name]),
            "value": name, "disabled": not present}


def surface_key(learners: list[str]) -> list:
    """The key over the surface: what each marker means, then each drawn learner's colour
    (HTML, so it wraps at any width and never sits on the plot's axis titles)."""
    marks = [html.Span("○ start θ0"), html.Span("◆ end (■ in 3D)"),
             html.Span("● current step", className="tv-key-now")]
    names = [html.Span([html.Span(className="tv-swatch", style={"background": learner_colour(n)}),
                        n], className="tv-key-learner") for n in learners]
    return [html.Span(marks, className="tv-key-marks"), *names]


def message(title: str, text: str, kind: str = "error") -> html.Div:
    return html.Div([html.Strong(title), html.P(text)], className=f"tv-msg tv-msg-{kind}")


def run_label(entry) -> str:
    """'name · family · 2026-11-30 11:45 · run id': runs with the same name differ."""
    if not entry.ok:
        return f"⚠ {entry.run_id} (cannot be read)"
    created = str(entry.created or "")[:16].replace("T", " ")
    bits = [entry.name or entry.run_id, entry.family, created]
    if entry.name and entry.name != entry.run_id:
        bits.append(entry.run_id)
    return " · ".join(b for b in bits if b)


def run_info(run: Run) -> str:
    cfg = run.config
    inner = cfg.get("inner", {}) if isinstance(cfg.get("inner"), dict) else {}
    outer = cfg.get("outer", {}) if isinstance(cfg.get("outer"), dict) else {}
    bits = [str(cfg.get("family", "?")), f"K = {run.steps} inner steps",
            f"{len(run.task_ids)} held-out tasks"]
    if inner.get("optimizer"):
        bits.append(f"{inner['optimizer']} lr {inner.get('lr', '?')}")
    if outer.get("meta_steps"):
        bits.append(f"{outer['meta_steps']} meta-steps")
    created = str(run.info.get("created", ""))[:16].replace("T", " ")
    if created:
        bits.append(created)
    return " · ".join(bits)


def summary_table(rows: list[dict[str, Any]]) -> html.Table:
    """The per-learner summary: mean and 95% interval per metric, best mean in bold."""
    best = best_learners(rows)
    head = html.Tr([html.Th("learner")]
                   + [html.Th([title, html.Span(" ↓" if better == "lower" else " ↑",
                                                className="tv-muted",
                                                title=f"{better} is better")])
                      for _, title, better in SUMMARY_COLUMNS]
                   + [html.Th("diverged")])
    body = []
    for r in rows:
        cells = [html.Td([html.Span(className="tv-swatch", style={"background": r["colour"]}),
                          r["learner"]])]
        for key, _, _ in SUMMARY_COLUMNS:
            mean, lo, hi = r[key]
            text = [html.Span(fmt(mean), className="tv-mean")]
            if r.get("covers", {}).get(key, 1) == 0:  # nothing to average: say so, once
                text.append(html.Span(" no finite task", className="tv-ci"))
            else:
                text.append(html.Span(f" [{fmt(lo)}, {fmt(hi)}]", className="tv-ci"))
                if coverage(r, key):
                    text.append(html.Span(f" over {coverage(r, key)}", className="tv-ci"))
            cells.append(html.Td(text, className="tv-best" if best.get(key) == r["learner"]
                                 else None))
        cells.append(html.Td(f"{r['diverged']} of {r['n']}"))
        body.append(html.Tr(cells))
    return html.Table([html.Thead(head), html.Tbody(body)], className="tv-table")


def summary_hint(rows: list[dict[str, Any]]) -> str:
    """The line above the table: what a cell is, and who is never bolded and why."""
    n = rows[0]["n"] if rows else 0
    text = (f"Mean over {n} held-out tasks, with a 95% interval in brackets (“over k of "
            f"{n} tasks” where diverged tasks are left out); best mean in bold.")
    by_reason: dict[str, list[str]] = {}
    for name, why in not_eligible(rows).items():
        by_reason.setdefault(why, []).append(name)
    if by_reason:
        text += " Never bold: " + "; ".join(
            f"{'every learner' if len(names) == len(rows) > 1 else ', '.join(names)} ({why})"
            for why, names in by_reason.items()) + "."
    if not any(r["learner"] == "random" for r in rows):
        text += (" Without the random baseline in this run, a learner that learned nothing "
                 "cannot be told apart, so only diverged learners are left out.")
    return text


def honesty_card(sel: Selection) -> list:
    """The card "What the slice keeps and hides": one line per ``honesty_items`` entry."""
    items = [html.Li([html.Strong(lead), text]) if lead else html.Li(text)
             for lead, text in honesty_items(sel)]
    return [html.Ul(items, className="tv-honesty-list")]


def summary_children(run: Run) -> list:
    """The summary card's contents: what a cell is, how meta-training went, the table.
    One builder for the run's own summary and a what-if setting's (app/whatif.py)."""
    rows = summary_rows(run)
    return [html.P(summary_hint(rows), className="tv-hint"), *training_note(run, "summary"),
            summary_table(rows)]


def training_note(run: Run, where: str, table: bool = False) -> list:
    """How meta-training went, for the summary card and the meta-training tab: the line
    naming learners it made worse (a '?' opens the likely causes), how the outer
    learning rates were chosen, and with ``table`` the tuning sweep's scores."""
    out = []
    line = worse_line(run)
    if line:
        out.append(html.Div(explain("worse", line, where=where), className="tv-worse"))
    lr = outer_lr_line(run)
    if lr:
        out.append(html.P(lr, className="tv-hint tv-outer-lr"))
    rows = tuning_rows(run)
    if table and rows:
        out.append(tuning_table(rows))
    return out


def tuning_table(rows: list[dict[str, Any]]) -> html.Table:
    """The outer-lr sweep: one row per learner, its validation score per grid value,
    the chosen value in bold."""
    grid = rows[0]["grid"]
    head = html.Tr([html.Th(f"validation {'AUC' if rows[0]['metric'] == 'auc' else rows[0]['metric']}"
                            " at outer lr"), html.Th("start θ0")] + [html.Th(lr_text(g)) for g in grid])
    body = [html.Tr([html.Td([html.Span(className="tv-swatch",
                                        style={"background": learner_colour(r["learner"])}),
                              r["learner"]]), html.Td(fmt(r["start"]), className="tv-muted")]
                    + [html.Td(fmt(s), className="tv-best" if g == r["chosen"] else None)
                       for g, s in zip(r["grid"], r["scores"])])
            for r in rows]
    return html.Table([html.Thead(head), html.Tbody(body)], className="tv-table tv-tuning")
def progress_row(pids: ids.Progress) -> html.Div:
    """An action's progress (trajviz.app.actions): a line of text, a bar and Cancel; hidden
    while nothing runs. The poll Interval and the action id Store come with it."""
    return html.Div(children=[
        html.Div(id=pids.row, className="tv-action", style={"display": "none"}, children=[
            html.Div(id=pids.text, className="tv-hint", role="status"),
            html.Div(className="tv-run-row", children=[
                html.Div(className="tv-progress", style={"flex": "1"}, children=html.Div(
                    id=pids.bar, className="tv-progress-bar", style={"width": "0%"})),
                html.Button("Cancel", id=pids.cancel, className="tv-btn")]),
        ]),
        dcc.Interval(id=pids.poll, interval=300, disabled=True),
        dcc.Store(id=pids.job),
    ])
