"""Paper figures (fixed sizes and fonts, cursor at the end) and the summary table figure."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trajviz.figures.meta import meta_curve_traces, meta_figure
from trajviz.figures.panels import metrics_figure, metrics_rows
from trajviz.figures.plane import path_group, surface_trace
from trajviz.figures.style import PAPER_FONT, PAPER_WIDTH, base_layout, learner_colour, tint
from trajviz.viewmodel.axes import meta_curve_ranges, meta_step_range
from trajviz.viewmodel.honesty import honesty_line
from trajviz.viewmodel.selection import (
    META_CURVES,
    SUMMARY_COLUMNS,
    MetaSelection,
    Selection,
    fmt,
    slice_name,
    value_range,
)
from trajviz.viewmodel.summary import coverage

#: Height of one row of the paper metrics figure (two rows: 470 px).
PAPER_METRICS_ROW = 235


def paper_surface_figure(sel: Selection) -> go.Figure:
    """Small multiples, one panel per learner, on one shared colour scale and axes:
    the surface of ``sel`` with that learner's full path, start and end."""
    n = max(1, len(sel.learners))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(sel.learners),
                        horizontal_spacing=0.06, vertical_spacing=0.12 if rows > 1 else 0.08)
    zr = value_range([sel.colour_of(sel.z)], pad=0.0)
    x0, x1, y0, y1 = sel.view_box
    for i, name in enumerate(sel.learners):
        r, c = divmod(i, cols)
        fig.add_trace(surface_trace(sel, zmin=zr[0], zmax=zr[1], ncontours=18,
                                    showscale=i == 0), row=r + 1, col=c + 1)
        for t in path_group(name, sel.coords[name], None, sel.steps, "step",
                            np.arange(sel.steps + 1))[:3]:  # path, start, end: no legend
            t.opacity = 1.0 if t.name != name else 0.9
            fig.add_trace(t, row=r + 1, col=c + 1)
        if name in sel.diagnosis.diverged:  # its ✕ at the last good point
            i, text = sel.diagnosis.diverged[name]
            xy = sel.coords[name][i]
            fig.add_trace(go.Scatter(x=[xy[0]], y=[xy[1]], mode="markers", name="diverged",
                                     text=[text], hovertemplate="%{text}<extra></extra>",
                                     marker={"symbol": "x", "size": 11,
                                             "color": learner_colour(name)}),
                          row=r + 1, col=c + 1)
        fig.update_xaxes(range=[x0, x1], autorange=False, row=r + 1, col=c + 1, mirror=True,
                         ticks="outside",
                         title={"text": sel.axis_titles[0] if r == rows - 1 else ""})
        fig.update_yaxes(range=[y0, y1], autorange=False, row=r + 1, col=c + 1, mirror=True,
                         ticks="outside", title={"text": sel.axis_titles[1] if c == 0 else ""})
    for i in range(n):
        r, c = divmod(i, cols)
        suffix = "" if i == 0 else str(i + 1)
        fig.update_yaxes(scaleanchor=f"x{suffix}", scaleratio=1, constrain="domain",
                         row=r + 1, col=c + 1)
    base_layout(fig, True)
    fig.update_layout(
        title={"text": f"{slice_name(sel.slice_kind)} · {sel.task_label}",
               "subtitle": {"text": honesty_line(sel)}, "x": 0.01, "xanchor": "left"},
        width=PAPER_WIDTH, height=_panel_height(sel.view_box, cols, rows), showlegend=False,
        margin={"l": 60, "r": 20, "t": 95, "b": 50})
    fig.update_annotations(font_size=PAPER_FONT["size"] + 1)
    return fig


def _panel_height(extent: tuple[float, float, float, float], cols: int, rows: int) -> int:
    """Figure height giving equal-aspect panels of the slice's shape (clamped)."""
    x0, x1, y0, y1 = extent
    aspect = min(1.4, max(0.45, (y1 - y0) / (x1 - x0))) if x1 > x0 else 1.0
    panel = (PAPER_WIDTH - 160) / cols - 10  # minus margins, colour bar and gaps
    return int(95 + 50 + rows * panel * aspect + (rows - 1) * 45)


def paper_meta_figure(meta: MetaSelection) -> go.Figure:
    """θ0 across meta-training on the slice, beside held-out length and AUC curves."""
    fig = make_subplots(rows=1, cols=3, column_widths=[0.4, 0.3, 0.3],
                        subplot_titles=["θ0 across meta-training"] + [t for _, t in META_CURVES],
                        horizontal_spacing=0.09)
    for t in meta_figure(meta, paper=True).data:
        if t.name in meta.learners or t.name == "surface" or \
                str(t.name).endswith((" start", " end")):
            if t.type == "contour":
                t.showscale = False
            t.showlegend = False
            fig.add_trace(t, row=1, col=1)
    for j, t in meta_curve_traces(meta, meta.frames - 1):
        if t.name == "cursor":
            continue
        fig.add_trace(t, row=1, col=j + 2)
    x0, x1, y0, y1 = meta.surface.extent
    fig.update_xaxes(range=[x0, x1], autorange=False, title={"text": meta.surface.axis_titles[0]},
                     row=1, col=1, mirror=True, ticks="outside")
    fig.update_yaxes(range=[y0, y1], autorange=False, title={"text": meta.surface.axis_titles[1]},
                     row=1, col=1, mirror=True, ticks="outside", scaleanchor="x",
                     scaleratio=1, constrain="domain")
    for j, rng in enumerate(meta_curve_ranges(meta)):
        fig.update_xaxes(range=meta_step_range(meta), autorange=False,
                         title={"text": "meta-step"}, row=1, col=j + 2)
        fig.update_yaxes(range=list(rng), autorange=False, row=1, col=j + 2)
    base_layout(fig, True)
    fig.update_layout(width=PAPER_WIDTH, height=320,
                      legend={"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"},
                      margin={"l": 60, "r": 20, "t": 40, "b": 70})
    fig.update_annotations(font_size=PAPER_FONT["size"] + 1)
    return fig


def paper_metrics_figure(sel: Selection) -> go.Figure:
    """``metrics_figure`` at paper size and fonts, cursor at the last step."""
    fig = metrics_figure(sel, paper=True)
    fig.update_layout(width=PAPER_WIDTH, height=PAPER_METRICS_ROW * metrics_rows(sel))
    return fig


def summary_table_figure(rows: list[dict[str, Any]], paper: bool = False) -> go.Figure:
    """The summary as a plotly table (exports): mean [95% interval] per cell."""
    header = ["learner"] + [title for _, title, _ in SUMMARY_COLUMNS] + ["diverged"]
    cells = [[r["learner"] for r in rows]]
    for key, _, _ in SUMMARY_COLUMNS:
        cells.append([f"{fmt(r[key][0])} [{fmt(r[key][1])}, {fmt(r[key][2])}]"
                      + (f" over {coverage(r, key)}" if coverage(r, key) else "") for r in rows])
    cells.append([f"{r['diverged']} of {r['n']}" for r in rows])
    colours = [[tint(r["colour"]) for r in rows]] + [["white"] * len(rows)] * (len(cells) - 1)
    fig = go.Figure(go.Table(
        columnwidth=[0.8] + [1.3] * len(SUMMARY_COLUMNS) + [0.7],
        header={"values": header, "align": "left", "fill": {"color": "#e4e7eb"},
                "font": {"size": 11 if not paper else 9}},
        cells={"values": cells, "align": "left", "fill": {"color": colours},
               "font": {"size": 11 if not paper else 9}, "height": 24}))
    base_layout(fig, paper)
    fig.update_layout(title={"text": "Held-out tasks: mean [95% interval]", "x": 0.01},
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
