"""The birth map: convergence speed over the slice from every grid point taken as θ0.

Trace order: 0 the map (``heatmap``, with its colour bar), 1 the birth point
(a star), then one marker per learner's θ0 (in run order, ``marks``).
Drawn from ``trajviz.viewmodel.birthview.BirthSelection``; pure.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from trajviz.figures.plane import plane_axes
from trajviz.figures.style import base_layout, clean, learner_colour
from trajviz.viewmodel.birthview import BirthSelection
from trajviz.viewmodel.placement import label_positions
from trajviz.viewmodel.selection import slice_name

#: Low (fast, unspecialised) is light, high is dark; the birth star stays visible on both.
BIRTH_SCALE = "YlGnBu"
BIRTH_COLOUR = "#D1495B"


def birth_figure(bs: BirthSelection, kind: str = "") -> go.Figure:
    """The map of ``bs.statistic`` with the birth point and every learner's θ0 marked."""
    unit = f"log<sub>10</sub> {bs.statistic}" if bs.log_z else bs.statistic
    heat = go.Heatmap(
        x=clean(bs.alpha), y=clean(bs.beta), z=clean(bs.z), colorscale=BIRTH_SCALE,
        name="birth map", zsmooth="best",
        colorbar={"title": {"text": unit, "side": "right"}, "thickness": 12, "len": 0.85,
                  "outlinewidth": 0},
        customdata=clean(bs.raw),
        hovertemplate=(f"a: %{{x:.3g}}<br>b: %{{y:.3g}}<br>{bs.statistic}: %{{customdata:.4g}}"
                       "<br>click: train from here<extra></extra>"))
    star = go.Scatter(
        x=[bs.birth[0]], y=[bs.birth[1]], mode="markers+text", name="birth point",
        text=["birth point"], textposition="top center",
        textfont={"color": BIRTH_COLOUR, "size": 12},
        marker={"symbol": "star", "size": 20, "color": BIRTH_COLOUR,
                "line": {"width": 1.5, "color": "white"}},
        hovertemplate=(f"birth point<br>a: %{{x:.3g}}, b: %{{y:.3g}}<br>mean {bs.ranked_by} "
                       f"{bs.birth_value:.4g}<extra></extra>"))
    fig = go.Figure([heat, star])
    # the birth point's label first, then each θ0's, placed so that no two overlap (θ0s of
    # learners that barely moved sit close together)
    where = label_positions(np.array([bs.birth, *[(m.a, m.b) for m in bs.marks]], float),
                            ["birth point", *[m.name for m in bs.marks]],
                            (float(bs.alpha[0]), float(bs.alpha[-1]),
                             float(bs.beta[0]), float(bs.beta[-1])))
    star.textposition, where = where[0], where[1:]
    for i, m in enumerate(bs.marks):
        colour = learner_colour(m.name)
        value = f"<br>mean {bs.ranked_by} at θ0: {m.value:.4g}" if np.isfinite(m.value) else ""
        fig.add_trace(go.Scatter(
            x=[m.a], y=[m.b], mode="markers+text", name=f"{m.name} θ0", text=[m.name],
            textposition=where[i], textfont={"color": colour, "size": 11},
            marker={"symbol": "circle-open", "size": 13, "color": colour,
                    "line": {"width": 3, "color": colour}},
            hovertemplate=f"{m.name} θ0<br>a: %{{x:.3g}}, b: %{{y:.3g}}{value}<extra></extra>"))
    base_layout(fig, False)
    a0, a1 = float(bs.alpha[0]), float(bs.alpha[-1])
    b0, b1 = float(bs.beta[0]), float(bs.beta[-1])
    fig.update_layout(
        title={"text": f"Birth map · {bs.label}", "x": 0.01, "xanchor": "left",
               "subtitle": {"text": f"{slice_name(kind) if kind else bs.view} · lower is "
                                    "faster; ★ the birth point, ○ each learner's θ0"},
               "font": {"size": 15}},
        showlegend=False, meta={"key": bs.key}, uirevision=bs.key,
        margin={"l": 60, "r": 20, "t": 64, "b": 48})
    plane_axes(fig, (a0, a1, b0, b1), ("a (first slice axis)", "b (second slice axis)"),
               grid=False)
    return fig


__all__ = ["BIRTH_COLOUR", "BIRTH_SCALE", "birth_figure"]
