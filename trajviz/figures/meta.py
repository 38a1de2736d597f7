"""The meta-training view: each learner's θ0 across meta-steps on the slice, and the
held-out curves (path length, loss AUC) against meta-step.

Trace order follows the contract in ``playback`` (``meta_figure`` as the plane's
surface figure; ``meta_curves_figure``: series per learner, then cursors).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trajviz.figures.plane import path_group, plane_axes, screen_surface, surface_trace
from trajviz.figures.style import CURSOR_COLOUR, GRID_COLOUR, base_layout, clean, learner_colour
from trajviz.viewmodel.axes import meta_cursor_x, meta_curve_ranges, meta_step_range
from trajviz.viewmodel.honesty import meta_plane_note
from trajviz.viewmodel.selection import META_CURVES, MetaSelection, slice_name


def meta_figure(meta: MetaSelection, frame: int | None = None, paper: bool = False) -> go.Figure:
    """Each learner's θ0 across meta-training on the slice (task-mean surface below)."""
    sel = meta.surface
    k = meta.frame(frame)
    fig = go.Figure()
    bar = None
    if paper:
        fig.add_trace(surface_trace(sel, what="mean loss"))
    else:  # an image and contour lines: plotly's redraw-free animation keeps them
        bar = screen_surface(fig, sel, sel.extent, what="mean loss")
    labels = np.asarray(meta.steps)
    for n in meta.learners:
        for trace in path_group(n, meta.coords[n], None, k, "meta-step", labels):
            fig.add_trace(trace)
    if bar is not None:
        fig.add_trace(bar)
    note = meta_plane_note(meta)
    base_layout(fig, paper)
    fig.update_layout(
        title={"text": "θ0 across meta-training", "x": 0.01, "xanchor": "left",
               "subtitle": {"text": f"{slice_name(sel.slice_kind)}, mean of held-out tasks"
                                    f" · {note}"}},
        legend={"orientation": "h", "y": -0.14, "x": 0, "yanchor": "top",
                "itemclick": False, "itemdoubleclick": False},
        meta={"key": meta.key, "frame": k}, uirevision=meta.key)
    plane_axes(fig, sel.extent, sel.axis_titles, grid=False if not paper else None)
    return fig


def meta_curve_traces(meta: MetaSelection, k: int) -> list[tuple[int, Any]]:
    """[(META_CURVES column, trace)]: every learner's curves, then one cursor per column
    at frame ``k`` (the contract in ``playback``)."""
    out: list[tuple[int, Any]] = []
    for n in meta.learners:
        colour = learner_colour(n)
        for j, (m, title) in enumerate(META_CURVES):
            x, y = meta.evals[n].get(m, (np.array([]), np.array([])))
            out.append((j, go.Scatter(
                x=x, y=clean(y), mode="lines+markers", name=n, legendgroup=n,
                showlegend=j == 0, line={"color": colour, "width": 2}, marker={"size": 5},
                hovertemplate=f"{n}<br>meta-step %{{x}}<br>{title}: %{{y:.4g}}<extra></extra>")))
    step = meta_cursor_x(meta, k)
    for j, (lo, hi) in enumerate(meta_curve_ranges(meta)):
        out.append((j, go.Scatter(x=[step, step], y=[lo, hi], mode="lines", name="cursor",
                                  showlegend=False, hoverinfo="skip",
                                  line={"color": CURSOR_COLOUR, "width": 1.2, "dash": "dot"})))
    return out


def meta_curves_figure(meta: MetaSelection, frame: int | None = None,
                       paper: bool = False) -> go.Figure:
    """Held-out path length and loss AUC against meta-step, one line per learner."""
    k = meta.frame(frame)
    fig = make_subplots(rows=1, cols=len(META_CURVES), subplot_titles=[t for _, t in META_CURVES],
                        horizontal_spacing=0.14)
    for j, t in meta_curve_traces(meta, k):
        fig.add_trace(t, row=1, col=j + 1)
    for j, rng in enumerate(meta_curve_ranges(meta)):
        fig.update_xaxes(range=meta_step_range(meta), autorange=False,
                         title={"text": "meta-step"}, showgrid=True, gridcolor=GRID_COLOUR,
                         row=1, col=j + 1)
        fig.update_yaxes(range=list(rng), autorange=False, showgrid=True, gridcolor=GRID_COLOUR,
                         row=1, col=j + 1)
    for j, (m, _) in enumerate(META_CURVES):
        if any(m in meta.evals[n] for n in meta.learners):
            continue
        fig.add_annotation(text=f"the run recorded no held-out '{m}'", showarrow=False,
                           xref=f"x{j + 1 if j else ''} domain",
                           yref=f"y{j + 1 if j else ''} domain",
                           x=0.5, y=0.5)
    base_layout(fig, paper)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"},
                      meta={"key": meta.key, "frame": k},
                      margin={"l": 56, "r": 16, "t": 36, "b": 50},
                      uirevision=meta.key)
    return fig
