"""Pure plotly figure builders, shared by the Dash app and every export.

Data in, ``go.Figure`` out: no Dash, no disk. ``select`` turns a ``Run`` and
a choice (view, task or the task mean, learners) into a ``Selection`` of
plain arrays; every builder draws from a ``Selection`` (or the run, for the
meta-training views) so the app and the paper figures show the same numbers
in the same colours (``learner_colour``).

Trace order is a contract (the browser's playback and the tests rely on it):

* ``surface_figure``: trace 0 is the surface (``contour``, or ``surface`` in
  3D); then one group of ``len(GROUP)`` traces per learner, in the
  selection's order: path (full, faint), start (θ0), end (θ_K), tail (the
  last ``TAIL`` segments up to the current step), head (the current step).
  ``group_index(i, part)`` gives a trace's index.
* ``meta_figure``: the same layout, over meta-steps instead of inner steps.
* ``panel_figure``: each learner's series (the loss panel has two per
  learner: recorded, then on-the-plane), then the cursor line, then the
  cursor dots (one per learner): the last two traces.
* ``meta_curves_figure``: per learner, one series per ``META_CURVES`` entry;
  then one cursor line per entry.

Every axis range is fixed (no autorange), so playback never rescales, and
every projected view states its explained variance and off-plane residual.
"""
from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .run import Run, View

# ---------------------------------------------------------------------------- style

#: One fixed colour per learner, everywhere (Okabe–Ito, colour-blind safe).
PALETTE: dict[str, str] = {
    "leap": "#D55E00",       # vermillion: the method the tool is built around
    "reptile": "#0072B2",    # blue
    "fomaml": "#009E73",     # bluish green
    "maml": "#CC79A7",       # reddish purple
    "multitask": "#E69F00",  # orange
    "random": "#4D4D4D",     # grey: the baseline
}
EXTRA_COLOURS = ("#56B4E9", "#8C510A", "#762A83", "#1B7837", "#B2182B", "#000000")
#: The surface: light for low loss, slate for high, so coloured paths stay readable.
SURFACE_SCALE = [[0.0, "#FBFCFE"], [0.3, "#E3EAF2"], [0.65, "#B9C6D6"], [1.0, "#7F91A8"]]
FONT_FAMILY = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
APP_FONT = {"family": FONT_FAMILY, "size": 12, "color": "#1f2933"}
PAPER_FONT = {"family": FONT_FAMILY, "size": 10, "color": "#000000"}
#: Paper figure sizes in CSS pixels (96 per inch): 7.5 in wide, a two-column page.
PAPER_WIDTH = 720
CURSOR_COLOUR = "#323F4B"

GROUP = ("path", "start", "end", "tail", "head")
TAIL = 3
MAX_GRID = 101  # contour grids are drawn at most this many points per axis
ON_PLANE = 1e-6  # residuals below this fraction of the paths' spread are rounding noise


def learner_colour(name: str) -> str:
    """The learner's fixed colour: the palette's, or a stable pick for other names."""
    if name in PALETTE:
        return PALETTE[name]
    return EXTRA_COLOURS[zlib.crc32(name.encode()) % len(EXTRA_COLOURS)]


def slice_name(kind: str) -> str:
    """'PCA slice', 'exact slice', 'three-point slice', 'random slice'."""
    return {"pca": "PCA slice", "three_point": "three-point slice"}.get(kind, f"{kind} slice")


def group_index(learner_index: int, part: str) -> int:
    """Index of a learner's ``part`` trace in ``surface_figure``/``meta_figure``."""
    return 1 + len(GROUP) * learner_index + GROUP.index(part)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for people: 3 significant digits, '—' for missing."""
    if x is None or not np.isfinite(x):
        return "—" if x is None or np.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{digits}g}"
    return f"{x:.{max(1, digits - 1)}e}"


# ---------------------------------------------------------------------------- selection

@dataclass(frozen=True)
class PanelSpec:
    """A time-cursor panel: its key, title, y-axis title and fixed range rule."""

    key: str
    title: str
    short: str
    y_title: str
    fixed: tuple[float, float] | None = None


PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("loss", "Loss: recorded (solid) and on the slice (dashed)",
              "Loss: recorded — / on slice - -", "loss"),
    PanelSpec("length", "Path length so far", "Path length so far", "length on the loss manifold"),
    PanelSpec("oscillation", "Oscillation: cosine between successive updates",
              "Cosine between updates", "cos(Δθ<sub>i−1</sub>, Δθ<sub>i</sub>)", (-1.08, 1.08)),
    PanelSpec("monotonicity", "Monotonicity: fraction of steps where loss fell",
              "Fraction of steps loss fell", "fraction so far", (-0.04, 1.04)),
    PanelSpec("residual", "Off-plane residual: what the slice cannot show",
              "Off-plane residual", "‖θ − its projection‖"),
)
PANEL_KEYS = tuple(p.key for p in PANELS)
RUNNING_KEYS = {"length": "cumulative_length", "oscillation": "cosine",
                "monotonicity": "monotone_fraction"}
#: The per-learner summary: metric key, column title, which way is better.
SUMMARY_COLUMNS = (("length", "Path length", "lower"), ("oscillation", "Oscillation", "lower"),
                   ("monotonicity", "Monotonicity", "higher"),
                   ("final_loss", "Final loss", "lower"), ("auc", "Loss AUC", "lower"))
META_CURVES = (("length", "Held-out path length"), ("auc", "Held-out loss AUC"))
FRACTIONS = ("oscillation", "monotonicity")


@dataclass(frozen=True)
class Selection:
    """What one page state draws, as plain arrays.

    task: a held-out task index, or None for the mean over tasks.
    coords: {learner: [K+1, 2]}; series: {panel key: {learner: [K+1]}}, with
    ``plane`` the loss on the slice at each projected point (the loss panel's
    dashed line). z: [B, A] the surface (task or mean); alpha [A], beta [B].
    box: the inner-loop pictures' axis ranges, every held-out path of every learner
    in this view plus a margin, inside the surface's extent (the same for every
    task and learner choice, so pictures compare).
    log_z: whether colours (and 3D heights) are log10 of the loss.
    notes: one-line warnings (diverged paths, missing metrics) to show.
    """

    run_id: str
    view: str
    task: int | None
    task_label: str
    learners: tuple[str, ...]
    steps: int
    alpha: np.ndarray
    beta: np.ndarray
    z: np.ndarray
    log_z: bool
    slice_kind: str
    slice_label: str
    explained: np.ndarray
    axis_titles: tuple[str, str]
    coords: dict[str, np.ndarray]
    series: dict[str, dict[str, np.ndarray]]
    plane: dict[str, np.ndarray]
    notes: tuple[str, ...]
    box: tuple[float, float, float, float] = (math.nan,) * 4

    @property
    def key(self) -> str:
        """Identifies what is drawn; the browser only animates a figure with the same key."""
        task = "mean" if self.task is None else str(self.task)
        return f"{self.run_id}|{self.view}|{task}|{','.join(self.learners)}"

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """The surface grid's extent (a_min, a_max, b_min, b_max)."""
        return (float(self.alpha[0]), float(self.alpha[-1]),
                float(self.beta[0]), float(self.beta[-1]))

    @property
    def view_box(self) -> tuple[float, float, float, float]:
        """The axis ranges of the inner-loop pictures: ``box`` where set, else the extent."""
        return self.box if np.isfinite(self.box).all() else self.extent

    def colour_of(self, values: np.ndarray) -> np.ndarray:
        """Loss values in the surface's colour/height units (log10 where ``log_z``)."""
        v = np.asarray(values, dtype=np.float64)
        if not self.log_z:
            return v
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


def task_label(run: Run, task: int | None) -> str:
    """'mean of 8 held-out tasks' or 'task 3 · amplitude 2.1, phase 0.4'."""
    n = len(run.task_ids)
    if task is None:
        return f"mean of {n} held-out tasks"
    parts = []
    for key, values in run.task_info.items():
        v = np.asarray(values)
        if v.ndim == 1 and v.shape[0] == n and v.dtype.kind in "biuf":
            parts.append(f"{key} {fmt(float(v[task]), 2)}")
    label = f"task {task}"
    if str(run.task_ids[task]) != str(task):
        label += f" (id {run.task_ids[task]})"
    return label + (" · " + ", ".join(parts[:3]) if parts else "")


def axis_titles(run: Run, view: View) -> tuple[str, str]:
    """Axis titles that state what each axis is and how much of the paths it explains."""
    slc = view.slice
    ev = np.asarray(slc.explained_variance, dtype=float).ravel()
    names = list(run.info.get("param_names") or [])
    titles = []
    for i in range(2):
        if slc.kind == "pca":
            share = f" ({100 * ev[i]:.1f}% var.)" if ev.size > i and np.isfinite(ev[i]) else ""
            titles.append(f"PC{i + 1}{share}")
        elif slc.kind == "exact":
            name = names[i] if len(names) == 2 else f"θ[{i}]"
            titles.append(f"{name} (exact parameter axis)")
        elif slc.kind == "three_point":
            titles.append(f"direction {i + 1} (plane through three θ0)")
        else:
            titles.append(f"{slc.kind} direction {i + 1}")
    return titles[0], titles[1]


def _pick(values: np.ndarray, task: int | None) -> np.ndarray:
    """[T, ...] -> the task's row, or the mean over finite tasks (float64, non-finite as NaN)."""
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nan)
    if task is not None:
        return v[task]
    with _quiet():
        return np.nanmean(v, axis=0)


@contextmanager
def _quiet():
    """Silence numpy's 'mean of empty slice' warnings (all-NaN columns stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def path_box(view: View, extent: tuple[float, float, float, float],
             margin: float = 0.12) -> tuple[float, float, float, float]:
    """Every held-out path point of the view plus ``margin`` of its span, within ``extent``."""
    pts = np.concatenate([np.asarray(c, float).reshape(-1, 2) for c in view.coords.values()]) \
        if view.coords else np.empty((0, 2))
    pts = pts[np.isfinite(pts).all(1)]
    if not len(pts):
        return extent
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1e-9)
    span = np.maximum(span, 0.25 * span.max())  # keep a thin cloud from a needle-thin view
    mid = (lo + hi) / 2
    lo, hi = mid - (0.5 + margin) * span, mid + (0.5 + margin) * span
    x0, x1 = max(lo[0], extent[0]), min(hi[0], extent[1])
    y0, y1 = max(lo[1], extent[2]), min(hi[1], extent[3])
    if not (x1 > x0 and y1 > y0):
        return extent
    return float(x0), float(x1), float(y0), float(y1)


def _thin(alpha: np.ndarray, beta: np.ndarray, z: np.ndarray):
    """Keep contour grids at most MAX_GRID per axis (plotly redraws them on every restyle)."""
    sa = max(1, math.ceil(len(alpha) / MAX_GRID))
    sb = max(1, math.ceil(len(beta) / MAX_GRID))
    return alpha[::sa], beta[::sb], z[::sb, ::sa]


def select(run: Run, view: str | None = None, task: int | None = None,
           learners: Sequence[str] | None = None) -> Selection:
    """The arrays one page state draws. view defaults to the run's first; task None is
    the mean over held-out tasks; learners defaults to all, kept in run order.
    Raises ValueError (one line) for an unknown view or learner or a task out of range."""
    if not run.learners:
        raise ValueError("the run holds no learners")
    if not run.views:
        raise ValueError("the run holds no slice views")
    view = view or next(iter(run.views))
    if view not in run.views:
        raise ValueError(f"unknown slice {view!r}; this run has {list(run.views)}")
    v = run.views[view]
    n_tasks = len(run.task_ids)
    if task is not None and not (isinstance(task, (int, np.integer)) and 0 <= task < n_tasks):
        raise ValueError(f"task must be 0..{n_tasks - 1} or the task mean, got {task!r}")
    names = list(run.learners) if learners is None else list(learners)
    unknown = [n for n in names if n not in run.learners]
    if unknown:
        raise ValueError(f"unknown learner(s) {unknown}; this run has {list(run.learners)}")
    names = [n for n in run.learners if n in names]

    surf = v.surface
    z = np.asarray(surf.mean if task is None else surf.loss[task], dtype=np.float64)
    alpha, beta, z = _thin(np.asarray(surf.alpha, float), np.asarray(surf.beta, float), z)
    finite = z[np.isfinite(z)]
    log_z = bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > 30)

    coords, series, plane, notes = {}, {p: {} for p in PANEL_KEYS}, {}, []
    for n in names:
        rec = run.learners[n]
        coords[n] = _pick(v.coords[n], task)
        series["loss"][n] = _pick(rec.losses, task)
        plane[n] = _pick(v.plane_loss[n], task)
        series["residual"][n] = _pick(v.residual[n], task)
        for panel, key in RUNNING_KEYS.items():
            if key in rec.running:
                series[panel][n] = _pick(rec.running[key], task)
            else:
                series[panel][n] = np.full(run.steps + 1, np.nan)
                notes.append(f"{n}: the run has no running '{key}', so its "
                             f"{panel} panel is empty")
        div = np.asarray(rec.diverged_at).ravel()
        bad = [int(t) for t in np.flatnonzero(div >= 0)]
        if task is not None and task in bad:
            notes.append(f"{n} diverged at step {int(div[task])} on this task; "
                         "its path stops there")
        elif task is None and bad:
            notes.append(f"{n} diverged on task(s) {bad}; the mean uses the finite tasks "
                         "at each step")
    return Selection(
        box=path_box(v, (float(alpha[0]), float(alpha[-1]), float(beta[0]), float(beta[-1]))),
        run_id=run.run_id, view=view, task=None if task is None else int(task),
        task_label=task_label(run, task), learners=tuple(names), steps=run.steps,
        alpha=alpha, beta=beta, z=z, log_z=log_z, slice_kind=v.slice.kind,
        slice_label=v.slice.label, explained=np.asarray(v.slice.explained_variance, float),
        axis_titles=axis_titles(run, v), coords=coords, series=series, plane=plane,
        notes=tuple(notes))


def honesty(sel: Selection) -> dict[str, float]:
    """How far to trust the slice: explained variance (NaN where it does not apply),
    the largest and median off-plane residual, the paths' spread on the plane for
    scale, and the largest gap between recorded loss and loss on the plane, also as
    a fraction of the recorded losses' range (``loss_gap_rel``); ``on_plane`` when
    every residual is rounding noise (below ON_PLANE × the paths' spread)."""
    res = np.concatenate([sel.series["residual"][n] for n in sel.learners]) if sel.learners \
        else np.array([np.nan])
    pts = np.concatenate([sel.coords[n] for n in sel.learners]) if sel.learners \
        else np.full((1, 2), np.nan)
    gap = np.concatenate([np.abs(sel.series["loss"][n] - sel.plane[n]) for n in sel.learners]) \
        if sel.learners else np.array([np.nan])
    true = np.concatenate([sel.series["loss"][n] for n in sel.learners]) \
        if sel.learners else np.array([np.nan])
    with _quiet():
        spread = float(np.nanmax(np.nanmax(pts, 0) - np.nanmin(pts, 0))) if np.isfinite(pts).any() \
            else math.nan
        scale = float(np.nanmax(true) - np.nanmin(true)) if np.isfinite(true).any() else math.nan
        return {
            "explained": float(np.nansum(sel.explained)) if np.isfinite(sel.explained).any()
            else math.nan,
            "residual_max": float(np.nanmax(res)) if np.isfinite(res).any() else math.nan,
            "residual_median": float(np.nanmedian(res)) if np.isfinite(res).any() else math.nan,
            "spread": spread,
            "loss_gap_max": float(np.nanmax(gap)) if np.isfinite(gap).any() else math.nan,
            "loss_gap_rel": float(np.nanmax(gap)) / scale
            if np.isfinite(gap).any() and scale > 0 else math.nan,
            "on_plane": bool(np.isfinite(res).any()
                             and np.nanmax(res) <= ON_PLANE * (spread if spread > 1 else 1.0)),
        }


def honesty_line(sel: Selection) -> str:
    """One line for a figure's subtitle: how much of the paths the slice holds, and how far
    they stray from it (the loss gap is in the metrics figure and the page's card)."""
    h = honesty(sel)
    parts = []
    if np.isfinite(h["explained"]):
        parts.append(f"the plane holds {100 * h['explained']:.1f}% of the paths' variance")
    elif sel.slice_kind == "exact":
        parts.append("exact parameter plane: nothing is projected")
    if h["on_plane"]:
        parts.append("every point lies on the plane")
    elif np.isfinite(h["residual_max"]):
        parts.append(f"off-plane residual ≤ {fmt(h['residual_max'])}")
    return " · ".join(parts)


# ---------------------------------------------------------------------------- helpers

def _clean(values: np.ndarray) -> np.ndarray:
    """float32-rounded copy with non-finite values as NaN (plotly draws gaps there)."""
    v = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(v), v, np.nan).astype(np.float32)


def _base_layout(fig: go.Figure, paper: bool) -> None:
    fig.update_layout(
        template="simple_white", font=PAPER_FONT if paper else APP_FONT,
        paper_bgcolor="white", plot_bgcolor="white", hovermode="closest",
        margin={"l": 60, "r": 20, "t": 56, "b": 48},
    )


def _range(values: Sequence[np.ndarray], log: bool = False, pad: float = 0.06,
           floor: float | None = None) -> tuple[float, float]:
    """A fixed axis range covering the finite values (log10 units where ``log``)."""
    v = np.concatenate([np.asarray(x, float).ravel() for x in values]) if values else np.array([])
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
        if not v.size:
            return (-1.0, 1.0)
        lo, hi = math.log10(v.min()), math.log10(v.max())
    else:
        if not v.size:
            return (0.0, 1.0)
        lo, hi = float(v.min()), float(v.max())
        if floor is not None:
            lo = min(lo, floor)
    span = hi - lo if hi > lo else (abs(hi) or 1.0)
    return lo - pad * span, hi + pad * span


def _frame(sel: Selection, frame: int | None) -> int:
    return sel.steps if frame is None else int(min(max(frame, 0), sel.steps))


def _tail_xy(xy: np.ndarray, k: int) -> np.ndarray:
    return xy[max(0, k - TAIL): k + 1]


# ---------------------------------------------------------------------------- surface

def _unit(sel: Selection, what: str = "loss") -> str:
    return f"log<sub>10</sub> {what}" if sel.log_z else what


def surface_trace(sel: Selection, three_d: bool = False, what: str = "loss",
                  **style: Any) -> go.Contour | go.Surface:
    """The selection's surface: a ``contour`` (or a 3D ``surface``) in SURFACE_SCALE,
    coloured by ``sel.colour_of`` (log10 where the loss spans decades)."""
    unit = _unit(sel, what)
    ax, ay = sel.axis_titles
    common = {
        "x": _clean(sel.alpha), "y": _clean(sel.beta), "z": _clean(sel.colour_of(sel.z)),
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


def surface_figure(sel: Selection, frame: int | None = None, three_d: bool = False,
                   paper: bool = False) -> go.Figure:
    """The slice's loss surface with every learner's path: full and faint, start and end
    markers, and a head with a short tail at ``frame`` (default: the last step).
    2D draws a ``contour``; ``three_d`` a ``surface`` with the paths at their plane loss."""
    k = _frame(sel, frame)
    fig = go.Figure(surface_trace(sel, three_d))
    unit = _unit(sel)
    zc = fig.data[0].z
    ax, ay = sel.axis_titles
    for n in sel.learners:
        xy = sel.coords[n]
        zz = sel.colour_of(sel.plane[n]) if three_d else None
        for trace in _path_group(n, xy, zz, k, "step", np.arange(len(xy)), three_d):
            fig.add_trace(trace)
    _base_layout(fig, paper)
    title = f"{slice_name(sel.slice_kind)} · {sel.task_label}"
    fig.update_layout(
        title={"text": title, "subtitle": {"text": honesty_line(sel)}, "x": 0.01,
               "xanchor": "left", "font": {"size": 15 if not paper else 11}},
        legend={"orientation": "h", "y": -0.14, "x": 0, "yanchor": "top",
                "itemclick": False, "itemdoubleclick": False},
        meta={"key": sel.key, "frame": k},
        uirevision=sel.key,
    )
    x0, x1, y0, y1 = sel.extent if three_d else sel.view_box
    if three_d:
        zr = _range([zc] + [sel.colour_of(sel.plane[n]) for n in sel.learners])
        fig.update_layout(scene={
            "xaxis": {"title": {"text": ax}, "range": [x0, x1]},
            "yaxis": {"title": {"text": ay}, "range": [y0, y1]},
            "zaxis": {"title": {"text": unit}, "range": list(zr)},
            "aspectmode": "manual", "aspectratio": {"x": 1, "y": (y1 - y0) / (x1 - x0), "z": 0.6},
            "camera": {"eye": {"x": 1.4, "y": -1.5, "z": 1.0}},
        }, margin={"l": 0, "r": 0, "t": 56, "b": 40})
    else:
        fig.update_xaxes(range=[x0, x1], title={"text": ax}, autorange=False, showgrid=False,
                         constrain="domain", mirror=True, ticks="outside")
        fig.update_yaxes(range=[y0, y1], title={"text": ay}, autorange=False, showgrid=False,
                         scaleanchor="x", scaleratio=1, constrain="domain", mirror=True,
                         ticks="outside")
    return fig


def _path_group(name: str, xy: np.ndarray, z: np.ndarray | None, k: int, unit: str,
                labels: np.ndarray, three_d: bool, legend: bool = True) -> list[Any]:
    """The five traces of GROUP for one learner's path ``xy`` [N, 2] (z: [N] in 3D)."""
    colour = learner_colour(name)
    xy = _clean(xy)
    scatter = go.Scatter3d if three_d else go.Scatter

    def xyz(points: np.ndarray, zs: np.ndarray | None) -> dict[str, Any]:
        out = {"x": points[:, 0], "y": points[:, 1]}
        if three_d:
            out["z"] = _clean(zs)
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
    tail_pts = _tail_xy(xy, k)
    tail = scatter(
        **xyz(tail_pts, _tail_xy(zs[:, None], k)[:, 0]), mode="lines", name=f"{name} tail",
        legendgroup=name, showlegend=False, hoverinfo="skip",
        line={"color": colour, "width": 4 if not three_d else 7})
    head = scatter(
        **xyz(xy[k:k + 1], zs[k:k + 1]), mode="markers", name=name, legendgroup=name,
        showlegend=legend, customdata=labels[k:k + 1], hovertemplate=hover,
        marker={"color": colour, "size": 13 if not three_d else 6,
                "line": {"width": 2, "color": "white"}})
    return [path, start, end, tail, head]


# ---------------------------------------------------------------------------- panels

def panel_axis(sel: Selection, key: str) -> dict[str, Any]:
    """A panel's fixed y range (log10 units on a log axis), whether it is log, the cursor
    line's ends in data units (``cursor``), and ``on_plane`` for a residual panel whose
    residuals are all rounding noise."""
    values = [sel.series[key][n] for n in sel.learners]
    spec = next(p for p in PANELS if p.key == key)
    log = False
    on_plane = key == "residual" and honesty(sel)["on_plane"]
    if key == "loss":
        both = values + [sel.plane[n] for n in sel.learners]
        pos = np.concatenate([np.asarray(v).ravel() for v in both]) if both else np.array([])
        pos = pos[np.isfinite(pos)]
        log = bool(pos.size and pos.min() > 0 and pos.max() / pos.min() > 30)
        rng = _range(both, log=log)
    elif spec.fixed is not None:
        rng = spec.fixed
    elif on_plane:  # rounding noise only: show a plain 0 line
        rng = (-0.05, 1.0)
    else:
        rng = _range(values, floor=0.0)
    lo, hi = (10 ** rng[0], 10 ** rng[1]) if log else rng
    return {"range": tuple(rng), "log": log, "cursor": (float(lo), float(hi)),
            "on_plane": on_plane}


def _panel_traces(sel: Selection, key: str, k: int,
                  legend: bool = False) -> tuple[list[Any], dict[str, Any]]:
    """The series traces of one panel plus its cursor and dots, and its axis settings."""
    steps = np.arange(sel.steps + 1)
    traces: list[Any] = []
    spec = next(p for p in PANELS if p.key == key)
    pa = panel_axis(sel, key)
    rng, log = pa["range"], pa["log"]
    for n in sel.learners:
        colour = learner_colour(n)
        traces.append(go.Scatter(
            x=steps, y=_clean(sel.series[key][n]), mode="lines+markers", name=n,
            legendgroup=n, showlegend=legend, line={"color": colour, "width": 2},
            marker={"size": 4, "color": colour},
            hovertemplate=f"{n}<br>step %{{x}}<br>{spec.y_title}: %{{y:.4g}}<extra></extra>"))
        if key == "loss":
            traces.append(go.Scatter(
                x=steps, y=_clean(sel.plane[n]), mode="lines", name=f"{n} on the slice",
                legendgroup=n, showlegend=False,
                line={"color": colour, "width": 1.5, "dash": "dash"},
                hovertemplate=f"{n} on the slice<br>step %{{x}}<br>loss %{{y:.4g}}<extra></extra>"))
    lo, hi = pa["cursor"]
    traces.append(go.Scatter(
        x=[k, k], y=[lo, hi], mode="lines", name="cursor", showlegend=False, hoverinfo="skip",
        line={"color": CURSOR_COLOUR, "width": 1.2, "dash": "dot"}))
    traces.append(go.Scatter(
        x=[k] * len(sel.learners), y=[float(_clean(sel.series[key][n])[k]) for n in sel.learners],
        mode="markers", name="now", showlegend=False, hoverinfo="skip",
        marker={"size": 9, "color": [learner_colour(n) for n in sel.learners],
                "line": {"width": 1.5, "color": "white"}}))
    axis = {"x": {"range": [-0.3, sel.steps + 0.3], "autorange": False},
            "y": {"range": list(rng), "autorange": False, "type": "log" if log else "linear",
                  "title": {"text": spec.y_title}},
            "on_plane": pa["on_plane"]}
    if log and rng[1] - rng[0] >= 2:
        axis["y"]["dtick"] = 1 if rng[1] - rng[0] < 6 else 2  # whole decades, no minor labels
    return traces, axis


def panel_figure(sel: Selection, key: str, frame: int | None = None,
                 paper: bool = False) -> go.Figure:
    """One time-cursor panel (``key`` in PANEL_KEYS) for the app's grid."""
    if key not in PANEL_KEYS:
        raise ValueError(f"unknown panel {key!r}; accepted: {list(PANEL_KEYS)}")
    k = _frame(sel, frame)
    traces, axis = _panel_traces(sel, key, k)
    fig = go.Figure(traces)
    _base_layout(fig, paper)
    fig.update_layout(margin={"l": 44, "r": 10, "t": 8, "b": 24}, showlegend=False,
                      meta={"key": sel.key, "frame": k}, uirevision=sel.key)
    axis["y"]["title"] = None  # the page's card title names the panel
    fig.update_xaxes(dtick=_dtick(sel.steps), showgrid=True, gridcolor="#eef1f4", **axis["x"])
    fig.update_yaxes(showgrid=True, gridcolor="#eef1f4", zeroline=key == "oscillation",
                     zerolinecolor="#9aa5b1", exponentformat="power", **axis["y"])
    if axis["on_plane"]:
        fig.add_annotation(text="0: every point<br>lies on the slice",
                           xref="paper", yref="paper", x=0.5, y=0.72, showarrow=False,
                           font={"color": "#52606d", "size": 11})
    return fig


def _dtick(steps: int) -> int:
    """At most about seven step ticks: the panels are narrow, and more get rotated."""
    for d in (1, 2, 5, 10, 20, 50, 100, 200, 500):
        if steps / d <= 6:
            return d
    return 1000


def metrics_figure(sel: Selection, frame: int | None = None, paper: bool = False) -> go.Figure:
    """Every time-cursor panel in one figure (2 × 3 grid; paper exports)."""
    k = _frame(sel, frame)
    titles = [p.short for p in PANELS] + ["What the slice hides"]
    fig = make_subplots(rows=2, cols=3, subplot_titles=titles, horizontal_spacing=0.09,
                        vertical_spacing=0.2)
    for i, p in enumerate(PANELS):
        r, c = divmod(i, 3)
        traces, axis = _panel_traces(sel, p.key, k, legend=i == 0)
        for t in traces:
            fig.add_trace(t, row=r + 1, col=c + 1)
        fig.update_xaxes(title={"text": "inner step"}, dtick=_dtick(sel.steps), row=r + 1,
                         col=c + 1, **axis["x"])
        axis["y"]["title"] = {"text": "loss" if p.key == "loss" else ""}
        fig.update_yaxes(row=r + 1, col=c + 1, exponentformat="power", **axis["y"])
    h = honesty(sel)
    lines = [f"slice: {sel.slice_label or sel.slice_kind}",
             f"explained variance: {fmt(100 * h['explained'])}%" if np.isfinite(h["explained"])
             else "explained variance: n/a for this slice",
             (f"off-plane residual: max {fmt(h['residual_max'])}, "
             f"median {fmt(h['residual_median'])}"),
             f"recorded vs plane loss: max gap {fmt(h['loss_gap_max'])}"]
    fig.update_xaxes(visible=False, row=2, col=3)
    fig.update_yaxes(visible=False, row=2, col=3)
    fig.add_annotation(text="<br>".join(_wrap(s, 40) for s in lines), xref="paper",
                       yref="paper", x=fig.layout.xaxis6.domain[0],
                       y=fig.layout.yaxis6.domain[1], xanchor="left", yanchor="top",
                       showarrow=False, align="left")
    _base_layout(fig, paper)
    size = (PAPER_FONT if paper else APP_FONT)["size"]
    fig.update_layout(
        title={"text": f"Inner-loop metrics · {sel.task_label}", "x": 0.01, "xanchor": "left"},
        legend={"orientation": "h", "x": fig.layout.xaxis6.domain[0], "y": 0.02,
                "xanchor": "left", "yanchor": "bottom"},
        meta={"key": sel.key, "frame": k},
        margin={"l": 60, "r": 20, "t": 70, "b": 40})
    fig.update_xaxes(title_font_size=size)
    fig.update_yaxes(title_font_size=size)
    fig.update_annotations(font_size=size)
    return fig


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "<br>".join(lines)


# ---------------------------------------------------------------------------- meta-training

@dataclass(frozen=True)
class MetaSelection:
    """θ0's meta-training paths on one slice: coords {learner: [S'+1, 2]}, the meta-steps
    [S'+1] of the first learner (the cursor's scale), the task-mean surface."""

    run_id: str
    view: str
    learners: tuple[str, ...]
    steps: np.ndarray
    coords: dict[str, np.ndarray]
    residual: dict[str, np.ndarray]
    evals: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    surface: Selection

    @property
    def key(self) -> str:
        return f"meta|{self.surface.key}"

    @property
    def frames(self) -> int:
        return len(self.steps)


def select_meta(run: Run, view: str | None = None,
                learners: Sequence[str] | None = None) -> MetaSelection:
    """What the meta-training tab draws (ValueError for unknown names, as ``select``)."""
    sel = select(run, view, None, learners)
    v = run.views[sel.view]
    frames = max(len(run.learners[n].meta_path_steps) for n in sel.learners) if sel.learners else 1
    steps = np.arange(frames)
    coords, residual, evals = {}, {}, {}
    for n in sel.learners:
        rec = run.learners[n]
        if len(rec.meta_path_steps) == frames:
            steps = np.asarray(rec.meta_path_steps)
        coords[n] = _pad(np.asarray(v.meta_coords[n], float), frames)
        residual[n] = _pad(np.asarray(v.meta_residual[n], float), frames)
        evals[n] = {m: (np.asarray(rec.eval_steps), np.asarray(rec.evals[m], float))
                    for m, _ in META_CURVES if m in rec.evals}
    return MetaSelection(run.run_id, sel.view, sel.learners, steps, coords, residual, evals, sel)


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """Repeat the last row so every learner has ``n`` meta frames."""
    if len(a) >= n or not len(a):
        return a[:n]
    return np.concatenate([a, np.repeat(a[-1:], n - len(a), axis=0)])


def meta_figure(meta: MetaSelection, frame: int | None = None, paper: bool = False) -> go.Figure:
    """Each learner's θ0 across meta-training on the slice (task-mean surface below)."""
    sel = meta.surface
    k = meta.frames - 1 if frame is None else int(min(max(frame, 0), meta.frames - 1))
    fig = go.Figure(surface_trace(sel, what="mean loss"))
    ax, ay = sel.axis_titles
    labels = np.asarray(meta.steps)
    for n in meta.learners:
        for trace in _path_group(n, meta.coords[n], None, k, "meta-step", labels, False):
            fig.add_trace(trace)
    res = np.concatenate([meta.residual[n] for n in meta.learners]) if meta.learners \
        else np.array([np.nan])
    pts = np.concatenate([meta.coords[n] for n in meta.learners]) if meta.learners \
        else np.full((1, 2), np.nan)
    note = ""
    with _quiet():
        if np.isfinite(res).any():
            spread = float(np.nanmax(np.nanmax(pts, 0) - np.nanmin(pts, 0)))
            top = float(np.nanmax(res))
            note = "θ0 stays on this plane" if top <= ON_PLANE * max(1.0, spread) \
                else f"θ0 lies up to {fmt(top)} off this plane"
    _base_layout(fig, paper)
    x0, x1, y0, y1 = sel.extent
    fig.update_layout(
        title={"text": "θ0 across meta-training", "x": 0.01, "xanchor": "left",
               "subtitle": {"text": f"{slice_name(sel.slice_kind)}, mean of held-out tasks"
                                    f" · {note}"}},
        legend={"orientation": "h", "y": -0.14, "x": 0, "yanchor": "top",
                "itemclick": False, "itemdoubleclick": False},
        meta={"key": meta.key, "frame": k}, uirevision=meta.key)
    fig.update_xaxes(range=[x0, x1], title={"text": ax}, autorange=False, constrain="domain",
                     mirror=True, ticks="outside")
    fig.update_yaxes(range=[y0, y1], title={"text": ay}, autorange=False, scaleanchor="x",
                     scaleratio=1, constrain="domain", mirror=True, ticks="outside")
    return fig


def _meta_curve_traces(meta: MetaSelection, k: int):
    out: list[tuple[int, Any]] = []
    cursors = []
    for n in meta.learners:
        colour = learner_colour(n)
        for j, (m, title) in enumerate(META_CURVES):
            x, y = meta.evals[n].get(m, (np.array([]), np.array([])))
            out.append((j, go.Scatter(
                x=x, y=_clean(y), mode="lines+markers", name=n, legendgroup=n,
                showlegend=j == 0, line={"color": colour, "width": 2}, marker={"size": 5},
                hovertemplate=f"{n}<br>meta-step %{{x}}<br>{title}: %{{y:.4g}}<extra></extra>")))
    ranges = []
    for j, (m, _) in enumerate(META_CURVES):
        ys = [meta.evals[n][m][1] for n in meta.learners if m in meta.evals[n]]
        lo, hi = _range(ys, floor=0.0)
        ranges.append((lo, hi))
        step = float(meta.steps[k]) if len(meta.steps) else 0.0
        cursors.append((j, go.Scatter(x=[step, step], y=[lo, hi], mode="lines", name="cursor",
                                      showlegend=False, hoverinfo="skip",
                                      line={"color": CURSOR_COLOUR, "width": 1.2, "dash": "dot"})))
    return out + cursors, ranges


def meta_curves_figure(meta: MetaSelection, frame: int | None = None,
                       paper: bool = False) -> go.Figure:
    """Held-out path length and loss AUC against meta-step, one line per learner."""
    k = meta.frames - 1 if frame is None else int(min(max(frame, 0), meta.frames - 1))
    fig = make_subplots(rows=1, cols=len(META_CURVES), subplot_titles=[t for _, t in META_CURVES],
                        horizontal_spacing=0.14)
    traces, ranges = _meta_curve_traces(meta, k)
    for j, t in traces:
        fig.add_trace(t, row=1, col=j + 1)
    last = float(meta.steps[-1]) if len(meta.steps) else 1.0
    for j, rng in enumerate(ranges):
        fig.update_xaxes(range=[-0.02 * last, 1.02 * last], autorange=False,
                         title={"text": "meta-step"}, showgrid=True, gridcolor="#eef1f4",
                         row=1, col=j + 1)
        fig.update_yaxes(range=list(rng), autorange=False, showgrid=True, gridcolor="#eef1f4",
                         row=1, col=j + 1)
    missing = [m for m, _ in META_CURVES
               if not any(m in meta.evals[n] for n in meta.learners)]
    for m in missing:
        j = [c for c, _ in META_CURVES].index(m)
        fig.add_annotation(text=f"the run recorded no held-out '{m}'", showarrow=False,
                           xref=f"x{j + 1 if j else ''} domain",
                           yref=f"y{j + 1 if j else ''} domain",
                           x=0.5, y=0.5)
    _base_layout(fig, paper)
    fig.update_layout(legend={"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"},
                      meta={"key": meta.key, "frame": k},
                      margin={"l": 56, "r": 16, "t": 36, "b": 50},
                      uirevision=meta.key)
    return fig


# ---------------------------------------------------------------------------- summary

def summary_rows(run: Run, learners: Sequence[str] | None = None,
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per learner: {'learner', 'colour', 'n', metric: (mean, lo, hi)} over held-out tasks
    (Student-t interval, clipped to the metric's possible range: ≥ 0 where every value is,
    ≤ 1 for fractions; diverged tasks, NaN, are left out and counted in 'diverged')."""
    from .metrics import summarise

    names = [n for n in run.learners if learners is None or n in learners]
    rows = []
    for n in names:
        rec = run.learners[n]
        row: dict[str, Any] = {"learner": n, "colour": learner_colour(n),
                               "diverged": int(np.sum(np.asarray(rec.diverged_at) >= 0)),
                               "n": len(run.task_ids)}
        for key, _, _ in SUMMARY_COLUMNS:
            values = np.asarray(rec.metrics.get(key, np.full(len(run.task_ids), np.nan)), float)
            values = np.where(np.isinf(values), np.nan, values)
            mean, lo, hi = summarise(values, confidence)
            # the t-interval can leave the metric's possible range; clip it there
            if np.isfinite(values).any() and np.nanmin(values) >= 0:
                lo = max(lo, 0.0)
            if key in FRACTIONS:
                hi = min(hi, 1.0)
            row[key] = (mean, lo, hi)
        rows.append(row)
    return rows


def best_learners(rows: list[dict[str, Any]]) -> dict[str, str]:
    """{metric: learner with the best mean} (lower or higher is better per SUMMARY_COLUMNS);
    a metric where the best mean is shared (a tie, to 6 significant digits) has no entry."""
    best = {}
    for key, _, better in SUMMARY_COLUMNS:
        scored = sorted((float(f"{r[key][0]:.6g}"), r["learner"]) for r in rows
                        if np.isfinite(r[key][0]))
        if better == "higher":
            scored.reverse()
        if scored and (len(scored) == 1 or scored[0][0] != scored[1][0]):
            best[key] = scored[0][1]
    return best


def summary_table_figure(rows: list[dict[str, Any]], paper: bool = False) -> go.Figure:
    """The summary as a plotly table (exports): mean [95% interval] per cell."""
    header = ["learner"] + [title for _, title, _ in SUMMARY_COLUMNS] + ["diverged"]
    cells = [[r["learner"] for r in rows]]
    for key, _, _ in SUMMARY_COLUMNS:
        cells.append([f"{fmt(r[key][0])} [{fmt(r[key][1])}, {fmt(r[key][2])}]" for r in rows])
    cells.append([f"{r['diverged']} of {r['n']}" for r in rows])
    colours = [[_tint(r["colour"]) for r in rows]] + [["white"] * len(rows)] * (len(cells) - 1)
    fig = go.Figure(go.Table(
        columnwidth=[0.8] + [1.3] * len(SUMMARY_COLUMNS) + [0.7],
        header={"values": header, "align": "left", "fill": {"color": "#e4e7eb"},
                "font": {"size": 11 if not paper else 9}},
        cells={"values": cells, "align": "left", "fill": {"color": colours},
               "font": {"size": 11 if not paper else 9}, "height": 24}))
    _base_layout(fig, paper)
    fig.update_layout(title={"text": "Held-out tasks: mean [95% interval]", "x": 0.01},
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def _tint(hex_colour: str, alpha: float = 0.18) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


# ---------------------------------------------------------------------------- playback data

def _list(values: np.ndarray, digits: int = 5) -> list[float | None]:
    """Rounded floats for the browser, None for non-finite (JSON has no NaN)."""
    out = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def frame_data(sel: Selection, main_id: str, panel_ids: dict[str, str], three_d: bool = False,
               frame: int | None = None) -> dict[str, Any]:
    """The compact per-frame data the browser animates from (no server call per frame).

    {key, frames, frame, xs: cursor x per frame, main: {id, three_d, tail,
    groups: [{head, tail, x, y, z}]}, panels: [{id, cursor, dots, lo, hi, series}]},
    with trace indices following the module's trace-order contract."""
    groups = []
    for i, n in enumerate(sel.learners):
        xy = sel.coords[n]
        g = {"head": group_index(i, "head"), "tail": group_index(i, "tail"),
             "x": _list(xy[:, 0]), "y": _list(xy[:, 1]), "z": None}
        if three_d:
            g["z"] = _list(sel.colour_of(sel.plane[n]))
        groups.append(g)
    panels = []
    for key, gid in panel_ids.items():
        per = 2 if key == "loss" else 1
        n_series = per * len(sel.learners)
        lo, hi = panel_axis(sel, key)["cursor"]
        panels.append({"id": gid, "cursor": n_series, "dots": n_series + 1, "lo": lo, "hi": hi,
                       "series": [_list(sel.series[key][n]) for n in sel.learners]})
    return {"key": sel.key, "frames": sel.steps + 1, "frame": _frame(sel, frame),
            "label": "inner step", "xs": list(range(sel.steps + 1)),
            "main": {"id": main_id, "three_d": bool(three_d), "tail": TAIL, "groups": groups},
            "panels": panels}


def meta_frame_data(meta: MetaSelection, main_id: str, curves_id: str,
                    frame: int | None = None) -> dict[str, Any]:
    """Like ``frame_data`` for the meta-training tab: θ0 heads and the curves' cursors."""
    groups = []
    for i, n in enumerate(meta.learners):
        xy = meta.coords[n]
        groups.append({"head": group_index(i, "head"), "tail": group_index(i, "tail"),
                       "x": _list(xy[:, 0]), "y": _list(xy[:, 1]), "z": None})
    n_series = len(meta.learners) * len(META_CURVES)
    _, ranges = _meta_curve_traces(meta, 0)
    panels = [{"id": curves_id, "cursor": n_series + j, "dots": None, "lo": lo, "hi": hi,
               "series": []} for j, (lo, hi) in enumerate(ranges)]
    last = meta.frames - 1
    return {"key": meta.key, "frames": meta.frames,
            "frame": last if frame is None else int(min(max(frame, 0), last)),
            "label": "meta-step", "xs": [int(s) for s in meta.steps],
            "main": {"id": main_id, "three_d": False, "tail": TAIL, "groups": groups},
            "panels": panels}


# ---------------------------------------------------------------------------- animation (HTML)

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
            xy = _clean(xy)
            tail = _tail_xy(xy, k)
            data.append(go.Scatter(x=tail[:, 0], y=tail[:, 1]))
            data.append(go.Scatter(x=xy[k:k + 1, 0], y=xy[k:k + 1, 1]))
        frames.append(go.Frame(data=data, traces=idx, name=str(k)))
    return frames


def animated_metrics_figure(sel: Selection, paper: bool = False) -> go.Figure:
    """``metrics_figure`` with frames moving every panel's cursor together."""
    fig = metrics_figure(sel, frame=0, paper=paper)
    # cursor and dots are the last two traces of each panel, in panel order
    cursor_idx, start = [], 0
    for p in PANELS:
        n = len(sel.learners) * (2 if p.key == "loss" else 1)
        cursor_idx.append((p.key, start + n, start + n + 1))
        start += n + 2
    frames = []
    for k in range(sel.steps + 1):
        data, traces = [], []
        for key, ci, di in cursor_idx:
            data.append(go.Scatter(x=[k, k]))
            data.append(go.Scatter(x=[k] * len(sel.learners),
                                   y=[float(_clean(sel.series[key][n])[k]) for n in sel.learners]))
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
        sliders=[{"active": 0, "x": 0.16, "len": 0.84, "y": -0.2, "yanchor": "top",
                  "currentvalue": {"prefix": f"{label} "}, "pad": {"t": 10},
                  "steps": [{"label": str(names[k]), "method": "animate",
                             "args": [[str(k)], {**opts, "frame": {"duration": 0,
                                                                   "redraw": redraw}}]}
                            for k in range(n)]}],
        margin={"b": 150})


# ---------------------------------------------------------------------------- paper figures

def paper_surface_figure(sel: Selection) -> go.Figure:
    """Small multiples, one panel per learner, on one shared colour scale and axes:
    the surface of ``sel`` with that learner's full path, start and end."""
    n = max(1, len(sel.learners))
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(sel.learners),
                        horizontal_spacing=0.06, vertical_spacing=0.12 if rows > 1 else 0.08)
    zr = _range([sel.colour_of(sel.z)], pad=0.0)
    x0, x1, y0, y1 = sel.view_box
    for i, name in enumerate(sel.learners):
        r, c = divmod(i, cols)
        fig.add_trace(surface_trace(sel, zmin=zr[0], zmax=zr[1], ncontours=18,
                                    showscale=i == 0), row=r + 1, col=c + 1)
        for t in _path_group(name, sel.coords[name], None, sel.steps, "step",
                             np.arange(sel.steps + 1), False, legend=False)[:3]:
            t.opacity = 1.0 if t.name != name else 0.9
            fig.add_trace(t, row=r + 1, col=c + 1)
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
    _base_layout(fig, True)
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
    traces, ranges = _meta_curve_traces(meta, meta.frames - 1)
    for j, t in traces:
        if t.name == "cursor":
            continue
        fig.add_trace(t, row=1, col=j + 2)
    x0, x1, y0, y1 = meta.surface.extent
    fig.update_xaxes(range=[x0, x1], autorange=False, title={"text": meta.surface.axis_titles[0]},
                     row=1, col=1, mirror=True, ticks="outside")
    fig.update_yaxes(range=[y0, y1], autorange=False, title={"text": meta.surface.axis_titles[1]},
                     row=1, col=1, mirror=True, ticks="outside", scaleanchor="x",
                     scaleratio=1, constrain="domain")
    last = float(meta.steps[-1]) if len(meta.steps) else 1.0
    for j, rng in enumerate(ranges):
        fig.update_xaxes(range=[-0.02 * last, 1.02 * last], autorange=False,
                         title={"text": "meta-step"}, row=1, col=j + 2)
        fig.update_yaxes(range=list(rng), autorange=False, row=1, col=j + 2)
    _base_layout(fig, True)
    fig.update_layout(width=PAPER_WIDTH, height=320,
                      legend={"orientation": "h", "y": -0.25, "x": 0, "yanchor": "top"},
                      margin={"l": 60, "r": 20, "t": 40, "b": 70})
    fig.update_annotations(font_size=PAPER_FONT["size"] + 1)
    return fig


def paper_metrics_figure(sel: Selection) -> go.Figure:
    """``metrics_figure`` at paper size and fonts, cursor at the last step."""
    fig = metrics_figure(sel, paper=True)
    fig.update_layout(width=PAPER_WIDTH, height=470)
    return fig


# ---------------------------------------------------------------------------- output

def figure_bytes(fig: go.Figure, fmt_: str, scale: float = 1.0) -> bytes:
    """A static image (png, svg, pdf) of ``fig`` through kaleido, at the figure's own
    size (or 1000 × 640 px where it has none)."""
    width = fig.layout.width or 1000
    height = fig.layout.height or 640
    return pio.to_image(fig, format=fmt_, width=width, height=height, scale=scale)


def write_images(figs: Sequence[go.Figure], paths: Sequence[Any], fmt_: str,
                 scale: float = 1.0) -> None:
    """Several static images in one kaleido session (much faster than one at a time)."""
    pio.write_images(list(figs), [str(p) for p in paths], format=fmt_,
                     width=[f.layout.width or 1000 for f in figs],
                     height=[f.layout.height or 640 for f in figs], scale=scale)


def html_page(figs: Sequence[go.Figure], title: str, notes: str = "") -> str:
    """One standalone HTML page holding ``figs`` (plotly.js inlined once: works offline)."""
    parts = []
    for i, fig in enumerate(figs):
        parts.append(pio.to_html(fig, include_plotlyjs=i == 0, full_html=False,
                                 auto_play=False, config={"displaylogo": False},
                                 default_width="100%",
                                 default_height=f"{fig.layout.height or 620}px"))
    style = ("body{font-family:" + FONT_FAMILY.replace("'", "") + ";margin:24px auto;"
             "max-width:1100px;color:#1f2933}h1{font-size:20px}p{color:#52606d}")
    from html import escape
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>{escape(notes)}</p>{''.join(parts)}</body></html>")
