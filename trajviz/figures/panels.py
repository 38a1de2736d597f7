"""Time-cursor metric panels, laid out from ``selection.PANELS``.

``panel_figure`` draws one panel (the page has one graph per panel);
``metrics_figure`` puts every panel in one figure, ``METRICS_COLS`` per row,
with the slice's notes in the cell after the last panel. Adding a panel is one
``PanelSpec`` entry in ``selection.PANELS`` (and its series in ``select``):
both figures, the page and the playback data follow the list.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trajviz.figures.restyle import threshold_line
from trajviz.figures.spectrum import spectrum_figure
from trajviz.figures.style import (
    APP_FONT,
    CURSOR_COLOUR,
    GRID_COLOUR,
    PAPER_FONT,
    Scatter,
    base_layout,
    clean,
    learner_colour,
    new_figure,
    step_dtick,
    wrap,
)
from trajviz.viewmodel.axes import panel_axis
from trajviz.viewmodel.diagnosis import NOT_RECORDED
from trajviz.viewmodel.honesty import honesty_notes
from trajviz.viewmodel.selection import STEP_PANELS, Selection, panel_spec
from trajviz.viewmodel.ticks import log_axis

METRICS_COLS = 3
NOTES_TITLE = "What the slice hides"


def panel_traces(sel: Selection, key: str, k: int,
                 legend: bool = False) -> tuple[list[Any], dict[str, Any]]:
    """The series traces of one panel plus its cursor and dots (the contract in
    ``playback``), and its axis settings."""
    steps = np.arange(sel.steps + 1)
    traces: list[Any] = []
    spec = panel_spec(key)
    pa = panel_axis(sel, key)
    rng, log = pa["range"], pa["log"]
    errors = sel.diagnosis.errors.get(key, {})
    for n in sel.learners:
        colour = learner_colour(n)
        err = errors.get(n)
        traces.append(Scatter(
            x=steps, y=clean(sel.series[key][n]), mode="lines+markers", name=n,
            legendgroup=n, showlegend=legend,
            line={"color": colour, "width": 2, "dash": "dot" if key == "straight" else "solid"},
            marker={"size": 4, "color": colour},
            error_y=None if err is None else {"type": "data", "array": clean(err), "width": 0,
                                              "thickness": 1, "color": colour},
            hovertemplate=f"{n}<br>step %{{x}}<br>{spec.y_title}: %{{y:.4g}}<extra></extra>"))
        if key == "straight":
            traces += straight_traces(sel, n, steps, colour)
        if key == "loss":
            traces.append(Scatter(
                x=steps, y=clean(sel.plane[n]), mode="lines", name=f"{n} on the slice",
                legendgroup=n, showlegend=False,
                line={"color": colour, "width": 1.5, "dash": "dash"},
                hovertemplate=f"{n} on the slice<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"))
    lo, hi = pa["cursor"]
    traces.append(Scatter(
        x=[k, k], y=[lo, hi], mode="lines", name="cursor", showlegend=False, hoverinfo="skip",
        line={"color": CURSOR_COLOUR, "width": 1.2, "dash": "dot"}))
    traces.append(Scatter(
        x=[k] * len(sel.learners), y=cursor_dots(sel, key, k),
        mode="markers", name="now", showlegend=False, hoverinfo="skip",
        marker={"size": 9, "color": [learner_colour(n) for n in sel.learners],
                "line": {"width": 1.5, "color": "white"}}))
    if spec.threshold:
        traces += threshold_traces(sel, key)
    axis = {"x": {"range": [-0.3, sel.steps + 0.3], "autorange": False},
            "y": {"range": list(rng), "autorange": False, "type": "log" if log else "linear",
                  "title": {"text": spec.y_title}},
            "on_plane": pa["on_plane"], "missing": key in sel.diagnosis.missing}
    if log:
        axis["y"].update(log_axis(rng))  # decades or ≤ 6 distinct labels
    return traces, axis


def straight_traces(sel: Selection, n: str, steps: np.ndarray, colour: str) -> list[Any]:
    """The straight panel's 2nd and 3rd traces of learner ``n``: the path's own recorded loss
    (solid) and the loss along the plane's straight segment (dash-dot)."""
    return [Scatter(x=steps, y=clean(sel.series["loss"][n]), mode="lines", name=f"{n} path",
                       legendgroup=n, showlegend=False, line={"color": colour, "width": 1.2},
                       opacity=0.6,
                       hovertemplate=f"{n} path<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"),
            Scatter(x=steps, y=clean(sel.straight.plane[n]), mode="lines",
                       name=f"{n} straight on the slice", legendgroup=n, showlegend=False,
                       line={"color": colour, "width": 1, "dash": "dashdot"}, opacity=0.6,
                       hovertemplate=f"{n} straight segment on the slice<br>t = step/K, step "
                                     "%{x}<br>loss %{y:.4g}<extra></extra>")]


def threshold_traces(sel: Selection, key: str) -> list[Any]:
    """The ``spec.extra_traces`` of a threshold panel: the threshold as a horizontal
    dashed line (empty when the run states none), then one × per learner at the step
    where its drawn path first exceeds it (the contract in ``playback``)."""
    line = Scatter(**threshold_line(sel, key), mode="lines",
                      name="stability threshold", showlegend=False,
                      line={"color": "#c0392b", "width": 1.5, "dash": "dash"},
                      hovertemplate="stability threshold %{y:.4g}<extra></extra>")
    xs, ys, colours, texts = [], [], [], []
    for n, step in sel.diagnosis.crossing.get(key, {}).items():
        if step >= 0 and n in sel.learners:
            xs.append(step)
            ys.append(float(clean(sel.series[key][n])[step]))
            colours.append(learner_colour(n))
            texts.append(f"{n} crosses the threshold at step {step}")
    marks = Scatter(x=xs, y=ys, mode="markers", name="crosses threshold", showlegend=False,
                       text=texts, hovertemplate="%{text}<extra></extra>",
                       marker={"symbol": "x-thin", "size": 12, "color": colours or "#c0392b",
                               "line": {"width": 2.5, "color": colours or "#c0392b"}})
    return [line, marks]


def cursor_dots(sel: Selection, key: str, k: int) -> list[float]:
    """Each learner's value of panel ``key`` at step ``k`` (float32-rounded; NaN for gaps)."""
    return [float(clean(sel.series[key][n])[k]) for n in sel.learners]


def panel_figure(sel: Selection, key: str, frame: int | None = None,
                 paper: bool = False) -> go.Figure:
    """One time-cursor panel (``key`` in PANEL_KEYS) for the app's grid."""
    spec = panel_spec(key)
    if spec.x_axis != "step":
        return spectrum_figure(sel, frame, paper)
    k = sel.frame(frame)
    traces, axis = panel_traces(sel, key, k)
    fig = new_figure(traces, paper)
    fig.update_layout(margin={"l": 44, "r": 10, "t": 8, "b": 24}, showlegend=False,
                      meta={"key": sel.key, "frame": k}, uirevision=sel.key)
    axis["y"]["title"] = None  # the page's card title names the panel
    fig.update_xaxes(dtick=step_dtick(sel.steps), showgrid=True, gridcolor=GRID_COLOUR,
                     **axis["x"])
    fig.update_yaxes(showgrid=True, gridcolor=GRID_COLOUR, zeroline=spec.zero_line,
                     zerolinecolor="#9aa5b1", exponentformat="power", **axis["y"])
    if axis["on_plane"]:
        fig.add_annotation(text="0: every point<br>lies on the slice",
                           xref="paper", yref="paper", x=0.5, y=0.72, showarrow=False,
                           font={"color": "#52606d", "size": 11})
    if axis["missing"]:
        fig.add_annotation(text=NOT_RECORDED.capitalize(), xref="paper", yref="paper",
                           x=0.5, y=0.5, showarrow=False, font={"color": "#52606d", "size": 12})
    return fig


def metrics_keys(sel: Selection | None = None) -> tuple[str, ...]:
    """The panels ``metrics_figure`` draws: every step panel of PANELS the run recorded."""
    missing = sel.diagnosis.missing if sel is not None else ()
    return tuple(p.key for p in STEP_PANELS if p.key not in missing)


def metrics_rows(sel: Selection | None = None) -> int:
    """Rows of ``metrics_figure``: its panels plus the notes cell, METRICS_COLS a row."""
    return math.ceil((len(metrics_keys(sel)) + 1) / METRICS_COLS)


def metrics_figure(sel: Selection, frame: int | None = None, paper: bool = False) -> go.Figure:
    """Every recorded time-cursor panel of PANELS in one figure (paper exports), then a
    notes cell (the slice's honesty, the threshold and who crossed it)."""
    k = sel.frame(frame)
    keys = metrics_keys(sel)
    specs = [panel_spec(key) for key in keys]
    rows = metrics_rows(sel)
    titles = [p.short for p in specs] + [NOTES_TITLE]
    fig = make_subplots(rows=rows, cols=METRICS_COLS, subplot_titles=titles,
                        horizontal_spacing=0.09, vertical_spacing=0.4 / rows)
    for i, p in enumerate(specs):
        r, c = divmod(i, METRICS_COLS)
        traces, axis = panel_traces(sel, p.key, k, legend=i == 0)
        for t in traces:
            fig.add_trace(t, row=r + 1, col=c + 1)
        fig.update_xaxes(title={"text": "inner step"}, dtick=step_dtick(sel.steps), row=r + 1,
                         col=c + 1, **axis["x"])
        axis["y"]["title"] = {"text": "loss" if p.key == "loss" else ""}
        fig.update_yaxes(row=r + 1, col=c + 1, exponentformat="power", **axis["y"])
    r, c = divmod(len(specs), METRICS_COLS)
    notes_x = fig.layout[f"xaxis{len(specs) + 1}"].domain[0]
    notes_top = fig.layout[f"yaxis{len(specs) + 1}"].domain[1]
    fig.update_xaxes(visible=False, row=r + 1, col=c + 1)
    fig.update_yaxes(visible=False, row=r + 1, col=c + 1)
    notes = honesty_notes(sel) + [sel.diagnosis.lines[key] for key in keys
                                  if sel.diagnosis.lines.get(key)] \
        + [n.split(". ")[0] + "." for n in sel.notes]  # e.g. who diverged, in one sentence
    fig.add_annotation(text="<br>".join(wrap(s, 40) for s in notes),
                       xref="paper", yref="paper", x=notes_x, y=notes_top, xanchor="left",
                       yanchor="top", showarrow=False, align="left")
    base_layout(fig, paper)
    size = (PAPER_FONT if paper else APP_FONT)["size"]
    fig.update_layout(
        title={"text": f"Inner-loop metrics · {sel.task_label}", "x": 0.01, "xanchor": "left"},
        legend={"orientation": "h", "x": 0, "y": -0.3 / rows, "xanchor": "left",
                "yanchor": "top"},  # below the panels: the notes cell keeps its column
        meta={"key": sel.key, "frame": k},
        margin={"l": 60, "r": 20, "t": 70, "b": 90})
    fig.update_xaxes(title_font_size=size)
    fig.update_yaxes(title_font_size=size)
    fig.update_annotations(font_size=size)
    return fig
