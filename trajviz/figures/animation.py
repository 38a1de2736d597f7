"""Standalone-HTML animations: the page's figures with plotly frames and a player.

The app does not use these (its playback is clientside, see ``playback``); the
frames move the same traces, by the same indices, as the browser does.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from trajviz.figures.meta import meta_figure
from trajviz.figures.panels import cursor_dots, metrics_figure, metrics_keys
from trajviz.figures.plane import surface_figure
from trajviz.figures.playback import group_index, metrics_cursor_indices, tail_of
from trajviz.figures.style import clean
from trajviz.viewmodel.selection import MetaSelection, Selection


def animated_surface_figure(sel: Selection, paper: bool = False) -> go.Figure:
    """``surface_figure`` with plotly frames (one per step) moving the heads and tails, and
    play/pause buttons and a step slider: for standalone HTML files."""
    fig = surface_figure(sel, frame=0, paper=paper)
    fig.frames = _head_frames([sel.coords[n] for n in sel.learners], sel.steps + 1)
    _add_player(fig, sel.steps + 1, "step")
    return fig


def _head_frames(paths: list[np.ndarray], n: int) -> list[go.Frame]:
    """One frame per step moving each path's tail and head (GROUP's trace order)."""
    idx = [group_index(i, part) for i in range(len(paths)) for part in ("tail", "head")]
    frames = []
    for k in range(n):
        data = []
        for xy in paths:
            xy = clean(xy)
            tail = tail_of(xy, k)
            data.append(go.Scatter(x=tail[:, 0], y=tail[:, 1]))
            data.append(go.Scatter(x=xy[k:k + 1, 0], y=xy[k:k + 1, 1]))
        frames.append(go.Frame(data=data, traces=idx, name=str(k)))
    return frames


def animated_metrics_figure(sel: Selection, paper: bool = False) -> go.Figure:
    """``metrics_figure`` with frames moving every panel's cursor together."""
    fig = metrics_figure(sel, frame=0, paper=paper)
    cursors = metrics_cursor_indices(len(sel.learners), metrics_keys(sel))
    frames = []
    for k in range(sel.steps + 1):
        data, traces = [], []
        for key, ci, di in cursors:
            data.append(go.Scatter(x=[k, k]))
            data.append(go.Scatter(x=[k] * len(sel.learners), y=cursor_dots(sel, key, k)))
            traces += [ci, di]
        frames.append(go.Frame(data=data, traces=traces, name=str(k)))
    fig.frames = frames
    _add_player(fig, sel.steps + 1, "step")
    return fig


def animated_meta_figure(meta: MetaSelection, paper: bool = False) -> go.Figure:
    """``meta_figure`` with frames moving each θ0 across meta-steps."""
    fig = meta_figure(meta, frame=0, paper=paper)
    fig.frames = _head_frames([meta.coords[n] for n in meta.learners], meta.frames)
    _add_player(fig, meta.frames, "meta-step", [int(s) for s in meta.steps])
    return fig


def _add_player(fig: go.Figure, n: int, label: str, names: list[int] | None = None) -> None:
    """Play/pause buttons and a slider over the figure's frames. Plotly's redraw-free
    animation keeps only scatter traces, so a figure with a surface redraws each frame."""
    names = names or list(range(n))
    redraw = any(t.type != "scatter" for t in fig.data)
    opts = {"frame": {"duration": 250, "redraw": redraw}, "transition": {"duration": 0},
            "mode": "immediate"}
    fig.update_layout(
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "y": -0.2,
                      "xanchor": "left", "yanchor": "top", "pad": {"t": 10},
                      "buttons": [
                          {"label": "▶ Play", "method": "animate",
                           "args": [None, {**opts, "fromcurrent": True}]},
                          {"label": "❚❚ Pause", "method": "animate",
                           "args": [[None], {**opts, "frame": {"duration": 0,
                                                               "redraw": redraw}}]}]}],
        sliders=[{"active": 0, "x": 0.22, "len": 0.78, "y": -0.2, "yanchor": "top",
                  "currentvalue": {"prefix": f"{label} ", "xanchor": "right"},
                  "pad": {"t": 10},
                  "steps": [{"label": str(names[k]), "method": "animate",
                             "args": [[str(k)], {**opts, "frame": {"duration": 0,
                                                                   "redraw": redraw}}]}
                            for k in range(n)]}],
        margin={"b": 150})
