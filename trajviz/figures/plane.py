"""The slice's plane: the loss surface (contour or 3D) and each learner's path group.

Trace order follows the contract in ``playback``: the surface, then one group of
``GROUP`` traces per learner. Overlays on the plane (markers, maps) are added
after the groups by their own builders, so the group indices never move.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from trajviz.figures.playback import tail_of
from trajviz.figures.raster import contour_segments, image_uri, in_box, robust_range
from trajviz.figures.style import (
    SURFACE_SCALE,
    Contour,
    Scatter,
    Scatter3d,
    Surface,
    clean,
    learner_colour,
    new_figure,
)
from trajviz.viewmodel.framing import edge_marks, framed_points
from trajviz.viewmodel.honesty import honesty_line
from trajviz.viewmodel.selection import Selection, slice_name, value_range

#: Contour lines drawn on the screen surface, evenly over its fitted colour range.
SCREEN_LEVELS = 14


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
        if sel.log_z:  # heights and colours are log10: the hover gives the loss itself too
            common["customdata"] = clean(sel.z)
            common["hovertemplate"] = (
                f"{ax}: %{{x:.3g}}<br>{ay}: %{{y:.3g}}<br>{what}: %{{customdata:.4g}}"
                f"<br>(height and colour: {unit} %{{z:.3g}})<extra></extra>")
        return Surface(**{**common, "opacity": 0.8, **style})
    return Contour(**{**common, "ncontours": 22,
                         "line": {"width": 0.6, "color": "rgba(60,72,88,0.35)"},
                         "contours": {"coloring": "heatmap", "showlines": True}, **style})


def colour_range(sel: Selection, box: tuple[float, float, float, float]) -> tuple[float, float]:
    """The colour range (colour units) fitted to what the view shows: the 2nd..98th
    percentile of the surface inside ``box``, reaching down to the lowest loss the
    selected paths meet on the plane, so the region the paths cross uses the whole scale."""
    lo, hi = robust_range(in_box(sel.alpha, sel.beta, sel.colour_of(sel.z), box))
    on_paths = [sel.colour_of(sel.plane[n]) for n in sel.learners]
    low = [float(np.nanmin(v)) for v in on_paths if np.isfinite(v).any()]
    if low and min(low) < lo:
        lo = min(low)
    return lo, max(hi, lo + 1e-12)


def screen_surface(fig: go.Figure, sel: Selection, box: tuple[float, float, float, float],
                   what: str = "loss") -> go.Scatter:
    """The 2D surface for the screen: trace 0, the contour lines in one scatter trace, and
    a layout image of the colours below it (scatter and images survive plotly's
    redraw-free animation, a ``contour`` trace does not). Returns the colour bar's
    trace, an overlay the caller adds after the path groups."""
    lo, hi = colour_range(sel, box)
    zc = sel.colour_of(sel.z)
    levels = np.linspace(lo, hi, SCREEN_LEVELS + 2)[1:-1]
    x, y = contour_segments(sel.alpha, sel.beta, zc, levels)
    unit = unit_title(sel, what)
    fig.add_trace(Scatter(
        x=clean(x), y=clean(y), mode="lines", name="surface", hoverinfo="skip",
        showlegend=False, line={"width": 0.7, "color": "rgba(60,72,88,0.45)"}))
    bar = Scatter(
        x=[None, None], y=[None, None], mode="markers", name="colour scale",
        showlegend=False, hoverinfo="skip",
        marker={"color": [lo, hi], "colorscale": SURFACE_SCALE, "cmin": lo, "cmax": hi,
                "showscale": True, "colorbar": {
                    "title": {"text": unit, "side": "right"}, "thickness": 12,
                    "len": 0.9, "outlinewidth": 0, "xpad": 4}})
    a, b = sel.alpha, sel.beta
    da = (a[-1] - a[0]) / max(len(a) - 1, 1)
    db = (b[-1] - b[0]) / max(len(b) - 1, 1)
    fig.add_layout_image(source=image_uri(zc, lo, hi, SURFACE_SCALE), xref="x", yref="y",
                         x=float(a[0] - da / 2), y=float(b[-1] + db / 2),
                         sizex=float(a[-1] - a[0] + da), sizey=float(b[-1] - b[0] + db),
                         sizing="stretch", layer="below", xanchor="left", yanchor="top")
    return bar


def hover_grid(sel: Selection, box: tuple[float, float, float, float]) -> go.Scatter:
    """Per-point hover on the screen surface: one invisible scatter point (mode "none":
    nothing is drawn, plotly still hovers it) per grid point inside ``box`` and one row or
    column beyond, showing (a, b) and the true loss there (``sel.z``, not log colours; where
    the colours are log10, the label says so).
    A scatter trace, so the redraw-free playback leaves it alone."""
    a, b = np.asarray(sel.alpha, float), np.asarray(sel.beta, float)

    def inside(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
        keep = np.flatnonzero((v >= lo) & (v <= hi))
        if not keep.size:
            return np.arange(len(v))
        return np.arange(max(keep[0] - 1, 0), min(keep[-1] + 2, len(v)))

    ia, ib = inside(a, box[0], box[1]), inside(b, box[2], box[3])
    aa, bb = np.meshgrid(a[ia], b[ib])  # [B', A']
    ax, ay = sel.axis_titles
    scale = f" (colour: {unit_title(sel)})" if sel.log_z else ""
    return Scatter(
        x=clean(aa.ravel()), y=clean(bb.ravel()), mode="none", name="surface value",
        showlegend=False, customdata=clean(np.asarray(sel.z)[np.ix_(ib, ia)].ravel()),
        hovertemplate=(f"{ax}: %{{x:.3g}}<br>{ay}: %{{y:.3g}}<br>loss: %{{customdata:.4g}}"
                       f"{scale}<extra></extra>"))


ZOOMS = ("fit", "all", "full")


def zoom_box(sel: Selection, zoom: str) -> tuple[float, float, float, float]:
    """The axis box of ``zoom`` (see ``surface_figure``); ValueError for an unknown one."""
    if zoom not in ZOOMS:
        raise ValueError(f"unknown zoom {zoom!r}; accepted: {', '.join(ZOOMS)}")
    return fit_box(sel) if zoom == "fit" else sel.view_box if zoom == "all" else sel.extent


MIN_CELLS = 12
RING = 5.0  # px a marker grows per learner drawn after it (path_group's rank)


def fit_box(sel: Selection, margin: float = 0.1) -> tuple[float, float, float, float]:
    """The selected paths (this task, these learners) plus ``margin`` of their span on
    each axis, inside the grid's extent; the extent when there is no finite point. A
    learner whose path went far is left out of the fit (``viewmodel.framing``): it is
    drawn clipped at the frame's edge and marked (``edge_annotations``)."""
    pts, _ = framed_points({n: sel.coords[n] for n in sel.learners})
    ext = sel.extent
    if not len(pts):
        return ext
    lo, hi = pts.min(0), pts.max(0)
    full = np.array([ext[1] - ext[0], ext[3] - ext[2]])
    cells = np.maximum([len(sel.alpha) - 1, len(sel.beta) - 1], 1)
    # never less than MIN_CELLS grid cells a side: a path that hardly moves (one learner on
    # the task mean) would otherwise zoom into one cell of one flat colour
    span = np.maximum(hi - lo, full * np.maximum(0.05, MIN_CELLS / cells))
    mid = (lo + hi) / 2
    lo, hi = mid - (0.5 + margin) * span, mid + (0.5 + margin) * span
    x0, x1 = max(lo[0], ext[0]), min(hi[0], ext[1])
    y0, y1 = max(lo[1], ext[2]), min(hi[1], ext[3])
    return (float(x0), float(x1), float(y0), float(y1)) if x1 > x0 and y1 > y0 else ext


def end_ranks(sel: Selection, box: tuple[float, float, float, float],
              rel_tol: float = 0.03) -> dict[str, int]:
    """Per learner, how many learners drawn after it end within ``rel_tol`` of the view's
    span of its end point: ``path_group`` grows its end marker by that
    many rings, so paths that end on one point stay told apart."""
    tol = rel_tol * max(box[1] - box[0], box[3] - box[2])
    ends = {}
    for n in sel.learners:
        xy = np.asarray(sel.coords[n], float)
        ok = np.flatnonzero(np.isfinite(xy).all(1))
        ends[n] = xy[ok[-1]] if ok.size else None
    names = list(sel.learners)
    return {n: sum(1 for m in names[i + 1:] if ends[n] is not None and ends[m] is not None
                   and float(np.linalg.norm(ends[n] - ends[m])) <= tol)
            for i, n in enumerate(names)}
def edge_annotations(sel: Selection, box: tuple[float, float, float, float]) -> list[dict]:
    """A mark on the frame's edge where each selected learner's path leaves ``box``,
    saying where its farthest point really is."""
    marks = edge_marks({n: sel.coords[n] for n in sel.learners}, box)
    return [{"x": m.a, "y": m.b, "xref": "x", "yref": "y", "showarrow": False,
             "text": f"◆ {m.learner}: {m.count} point{'s' if m.count > 1 else ''} off the frame",
             "hovertext": f"{m.learner}'s farthest point: (a, b) = ({m.true_a:.3g}, {m.true_b:.3g})",
             "font": {"size": 11, "color": learner_colour(m.learner)},
             "bgcolor": "rgba(255,255,255,0.85)",
             "xanchor": "right" if m.a >= box[1] else "left" if m.a <= box[0] else "center",
             "yanchor": "top" if m.b >= box[3] else "bottom" if m.b <= box[2] else "middle"}
            for m in marks]


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
                   paper: bool = False, zoom: str = "fit") -> go.Figure:
    """The slice's loss surface with every learner's path: full and faint, start and end
    markers, and a head with a short tail at ``frame`` (default: the last step).
    2D on screen: a colour image and contour lines (``screen_surface``), axes filling the
    card (not to scale), the colours fitted to the view; ``paper`` draws a vector
    ``contour`` at equal aspect; ``three_d`` a ``surface`` with the paths at their plane
    loss. ``zoom`` "fit" frames these paths, "all" every held-out path of the view (the
    same box for every task and learner choice, so pictures compare), "full" the grid."""
    k = sel.frame(frame)
    box = zoom_box(sel, zoom)
    fig = new_figure(paper=paper)
    bar = None
    traces = []  # added at once: plotly's add_trace re-checks every trace each call
    if three_d or paper:  # 3D: the z axis is the colour's scale, so no colour bar (width)
        traces.append(surface_trace(sel, three_d, **({"showscale": False} if three_d else {})))
    else:
        bar = screen_surface(fig, sel, box)
    unit = unit_title(sel)
    zc = sel.colour_of(sel.z)
    ax, ay = sel.axis_titles
    ranks = end_ranks(sel, box)
    for n in sel.learners:
        xy = sel.coords[n]
        zz = sel.colour_of(sel.plane[n]) if three_d else None
        traces += path_group(n, xy, zz, k, "step", np.arange(len(xy)), rank=ranks[n])
    if sel.diagnosis.diverged:  # an overlay: after the groups, so their indices never move
        traces.append(diverged_trace(sel, three_d))
    marks = [] if three_d else edge_annotations(sel, box)
    if marks:  # paths leaving the frame: marked on its edge (annotations: no trace moves)
        fig.update_layout(annotations=marks)
    if bar is not None:  # the hover grid, then the colour bar: the last overlay
        traces += [hover_grid(sel, box), bar]
    fig.add_traces(traces)
    title = f"{slice_name(sel.slice_kind)} · {sel.task_label}"
    fig.update_layout(
        title={"text": title, "subtitle": {"text": honesty_line(sel)}, "x": 0.01,
               "xanchor": "left", "font": {"size": 15 if not paper else 11}},
        legend={"orientation": "h", "y": -0.1, "x": 0, "yanchor": "top",
                "itemclick": False, "itemdoubleclick": False},
        meta={"key": sel.key, "frame": k},
        uirevision=f"{sel.key}|{zoom}",
    )
    if three_d:
        x0, x1, y0, y1 = sel.extent
        zr = value_range([zc] + [sel.colour_of(sel.plane[n]) for n in sel.learners])
        fig.update_layout(scene={
            # few ticks: seen at an angle, more of them run into each other
            "xaxis": {"title": {"text": ax}, "range": [x0, x1], "nticks": 5},
            "yaxis": {"title": {"text": ay}, "range": [y0, y1], "nticks": 5},
            "zaxis": {"title": {"text": unit}, "range": list(zr), "nticks": 4},
            "aspectmode": "manual", "aspectratio": {"x": 1, "y": (y1 - y0) / (x1 - x0), "z": 0.6},
            # far enough that a narrow card (1024 px screens) keeps the box's corners
            "camera": {"eye": {"x": 1.4, "y": -1.5, "z": 1.0}},
        }, margin={"l": 0, "r": 0, "t": 56, "b": 40})
    elif paper:
        plane_axes(fig, box, sel.axis_titles, grid=False)
    else:
        fig.update_xaxes(range=[box[0], box[1]], autorange=False, title={"text": ax},
                         showgrid=False, mirror=True, ticks="outside", zeroline=False)
        fig.update_yaxes(range=[box[2], box[3]], autorange=False, title={"text": ay},
                         showgrid=False, mirror=True, ticks="outside", zeroline=False)
        # hover the nearest grid point anywhere on the plot; clicks are reported by
        # assets/surface_click.js alone (plotly's own would launch a second time)
        fig.update_layout(margin={"l": 52, "r": 8, "t": 52, "b": 40}, hoverdistance=-1,
                          clickmode="none")
    return fig


def path_group(name: str, xy: np.ndarray, z: np.ndarray | None, k: int, unit: str,
               labels: np.ndarray, rank: int = 0) -> list[Any]:
    """The five traces of GROUP for one learner's path ``xy`` [N, 2]; ``z`` [N] draws it in
    3D (None: 2D). The head (the step-``k`` dot) carries the learner's legend entry.
    ``rank``: how many learners drawn after this one end on the same point; the end marker
    grows by ``RING`` per rank, so paths that end on one point show as concentric rings
    (the last drawn, smallest, on top; at the last step they frame the current-step dots)
    instead of the last learner hiding the others."""
    three_d = z is not None
    grow = rank * (RING if not three_d else RING / 3)
    colour = learner_colour(name)
    xy = clean(xy)
    scatter = Scatter3d if three_d else Scatter

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
        marker={"symbol": "square" if three_d else "diamond",
                "size": (11 if not three_d else 5) + grow,
                "color": colour, "line": {"width": 1.2, "color": "white"}})
    tail = scatter(
        **xyz(tail_of(xy, k), tail_of(zs, k)), mode="lines", name=f"{name} tail",
        legendgroup=name, showlegend=False, hoverinfo="skip",
        line={"color": colour, "width": 4 if not three_d else 7})
    head = scatter(
        **xyz(xy[k:k + 1], zs[k:k + 1]), mode="markers", name=name, legendgroup=name,
        showlegend=True, customdata=labels[k:k + 1], hovertemplate=hover,
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
        return Scatter3d(**common, z=zs, marker={"symbol": "x", "size": 6, "color": colours})
    return Scatter(**common, marker={"symbol": "x", "size": 15, "color": colours,
                                        "line": {"width": 1.5, "color": "white"}})
