"""The slice's plane: the loss surface (contour or 3D) and each learner's path group.

Trace order follows the contract in ``playback``: the surface, then one group of
``GROUP`` traces per learner. Overlays on the plane (markers, maps) are added
after the groups by their own builders, so the group indices never move.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from ..honesty import honesty_line
from ..selection import Selection, slice_name, value_range
from .playback import tail_of
from .style import SURFACE_SCALE, base_layout, clean, learner_colour


def unit_title(sel: Selection, what: str = "loss") -> str:
    """The surface's colour unit: 'loss' or 'log<sub>10</sub> loss'."""
    return f"log<sub>10</sub> {what}" if sel.log_z else what


def surface_trace(sel: Selection, three_d: bool = False, what: str = "loss",
                  **style: Any) -> go.Contour | go.Surface:
    """The selection's surface: a ``contour`` (or a 3D ``surface``) in SURFACE_SCALE,
    coloured by ``sel.colour_of`` (log10 where the loss spans decades)."""
    unit = unit_title(sel, what)
    ax, ay = sel.axis_titles
    common = {
        "x": clean(sel.alpha), "y": clean(sel.beta), "z": clean(sel.colour_of(sel.z)),
        "colorscale": SURFACE_SCALE, "name": "surface",
        "colorbar": {"title": {"text": unit, "side": "right"}, "thickness": 12, "len": 0.85,
                     "outlinewidth": 0},
        "hovertemplate": (f"{ax}: %{{x:.3g}}<br>{ay}: %{{y:.3g}}<br>{unit}: %{{z:.3g}}"
                          "<extra></extra>"),
    }
    if three_d:
        return go.Surface(**{**common, "opacity": 0.8, **style})
    return go.Contour(**{**common, "ncontours": 22,
                         "line": {"width": 0.6, "color": "rgba(60,72,88,0.35)"},
                         "contours": {"coloring": "heatmap", "showlines": True}, **style})


def plane_axes(fig: go.Figure, box: tuple[float, float, float, float],
               titles: tuple[str, str], grid: bool | None = None) -> None:
    """Fixed, equal-aspect x/y ranges ``box`` (x0, x1, y0, y1) with mirrored ticks
    (``grid`` False hides the grid lines; None leaves the template's)."""
    x0, x1, y0, y1 = box
    shown = {} if grid is None else {"showgrid": grid}
    fig.update_xaxes(range=[x0, x1], title={"text": titles[0]}, autorange=False, **shown,
                     constrain="domain", mirror=True, ticks="outside")
    fig.update_yaxes(range=[y0, y1], title={"text": titles[1]}, autorange=False, **shown,
                     scaleanchor="x", scaleratio=1, constrain="domain", mirror=True,
                     ticks="outside")


def surface_figure(sel: Selection, frame: int | None = None, three_d: bool = False,
                   paper: bool = False) -> go.Figure:
    """The slice's loss surface with every learner's path: full and faint, start and end
    markers, and a head with a short tail at ``frame`` (default: the last step).
    2D draws a ``contour``; ``three_d`` a ``surface`` with the paths at their plane loss."""
    k = sel.frame(frame)
    fig = go.Figure(surface_trace(sel, three_d))
    unit = unit_title(sel)
    zc = fig.data[0].z
    ax, ay = sel.axis_titles
    for n in sel.learners:
        xy = sel.coords[n]
        zz = sel.colour_of(sel.plane[n]) if three_d else None
        for trace in path_group(n, xy, zz, k, "step", np.arange(len(xy)), three_d):
            fig.add_trace(trace)
    if sel.diagnosis.diverged:  # an overlay: after the groups, so their indices never move
        fig.add_trace(diverged_trace(sel, three_d))
    base_layout(fig, paper)
    title = f"{slice_name(sel.slice_kind)} · {sel.task_label}"
    fig.update_layout(
        title={"text": title, "subtitle": {"text": honesty_line(sel)}, "x": 0.01,
               "xanchor": "left", "font": {"size": 15 if not paper else 11}},
        legend={"orientation": "h", "y": -0.14, "x": 0, "yanchor": "top",
                "itemclick": False, "itemdoubleclick": False},
        meta={"key": sel.key, "frame": k},
        uirevision=sel.key,
    )
    if three_d:
        x0, x1, y0, y1 = sel.extent
        zr = value_range([zc] + [sel.colour_of(sel.plane[n]) for n in sel.learners])
        fig.update_layout(scene={
            "xaxis": {"title": {"text": ax}, "range": [x0, x1]},
            "yaxis": {"title": {"text": ay}, "range": [y0, y1]},
            "zaxis": {"title": {"text": unit}, "range": list(zr)},
            "aspectmode": "manual", "aspectratio": {"x": 1, "y": (y1 - y0) / (x1 - x0), "z": 0.6},
            "camera": {"eye": {"x": 1.4, "y": -1.5, "z": 1.0}},
        }, margin={"l": 0, "r": 0, "t": 56, "b": 40})
    else:
        plane_axes(fig, sel.view_box, sel.axis_titles, grid=False)
    return fig


def path_group(name: str, xy: np.ndarray, z: np.ndarray | None, k: int, unit: str,
               labels: np.ndarray, three_d: bool, legend: bool = True) -> list[Any]:
    """The five traces of GROUP for one learner's path ``xy`` [N, 2] (z: [N] in 3D)."""
    colour = learner_colour(name)
    xy = clean(xy)
    scatter = go.Scatter3d if three_d else go.Scatter

    def xyz(points: np.ndarray, zs: np.ndarray | None) -> dict[str, Any]:
        out = {"x": points[:, 0], "y": points[:, 1]}
        if three_d:
            out["z"] = clean(zs)
        return out

    finite = np.flatnonzero(np.isfinite(xy).all(1))
    last = int(finite[-1]) if finite.size else 0
    zs = np.zeros(len(xy)) if z is None else np.asarray(z, float)
    hover = f"{name}<br>{unit} %{{customdata}}<extra></extra>"
    path = scatter(
        **xyz(xy, zs), mode="lines+markers", name=name, legendgroup=name, showlegend=False,
        line={"color": colour, "width": 1.6 if not three_d else 3},
        marker={"color": colour, "size": 4 if not three_d else 2.5}, opacity=0.45,
        customdata=labels, hovertemplate=hover)
    start = scatter(
        **xyz(xy[:1], zs[:1]), mode="markers", name=f"{name} start", legendgroup=name,
        showlegend=False, customdata=labels[:1], hovertemplate=f"{name} start (θ0)<extra></extra>",
        marker={"symbol": "circle-open", "size": 12 if not three_d else 6, "color": colour,
                "line": {"width": 2.5, "color": colour}})
    end = scatter(
        **xyz(xy[last:last + 1], zs[last:last + 1]), mode="markers", name=f"{name} end",
        legendgroup=name, showlegend=False, customdata=labels[last:last + 1],
        hovertemplate=f"{name} end, {unit} %{{customdata}}<extra></extra>",
        marker={"symbol": "square" if three_d else "diamond", "size": 11 if not three_d else 5,
                "color": colour, "line": {"width": 1.2, "color": "white"}})
    tail = scatter(
        **xyz(tail_of(xy, k), tail_of(zs, k)), mode="lines", name=f"{name} tail",
        legendgroup=name, showlegend=False, hoverinfo="skip",
        line={"color": colour, "width": 4 if not three_d else 7})
    head = scatter(
        **xyz(xy[k:k + 1], zs[k:k + 1]), mode="markers", name=name, legendgroup=name,
        showlegend=legend, customdata=labels[k:k + 1], hovertemplate=hover,
        marker={"color": colour, "size": 13 if not three_d else 6,
                "line": {"width": 2, "color": "white"}})
    return [path, start, end, tail, head]


def diverged_trace(sel: Selection, three_d: bool = False) -> go.Scatter | go.Scatter3d:
    """One ✕ per diverged path at its last good point, in its learner's colour, with
    "diverged at step i" on hover (``sel.diagnosis.diverged``)."""
    pts, colours, texts, zs = [], [], [], []
    for n, (i, text) in sel.diagnosis.diverged.items():
        pts.append(clean(sel.coords[n])[i])
        colours.append(learner_colour(n))
        texts.append(text)
        zs.append(float(clean(sel.colour_of(sel.plane[n]))[i]))
    xy = np.asarray(pts, dtype=np.float32).reshape(-1, 2)
    common = {"x": xy[:, 0], "y": xy[:, 1], "mode": "markers", "name": "diverged",
              "showlegend": False, "text": texts, "hovertemplate": "%{text}<extra></extra>"}
    if three_d:
        return go.Scatter3d(**common, z=zs, marker={"symbol": "x", "size": 6, "color": colours})
    return go.Scatter(**common, marker={"symbol": "x", "size": 15, "color": colours,
                                        "line": {"width": 1.5, "color": "white"}})
