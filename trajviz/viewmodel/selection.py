"""The view-model: what one page state draws, as plain numpy (no plotly, no Dash, no torch).

``select`` turns a ``Run`` and a choice (slice view, task or the task mean,
learners) into a ``Selection``; ``select_meta`` does the same for the
meta-training view. ``honesty`` says how far to trust the slice as a typed
record, with its texts (``honesty_line``, ``honesty_notes``, ``honesty_items``);
``summary_rows``/``best_learners`` are the per-learner table. The app, the
figure builders and the exports all draw from these, so every number is
computed once. ``PANELS`` lists the time-cursor panels: adding a panel is one
entry there (the figures and the page lay them out from the list).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from trajviz.data.run import Run, View
from trajviz.viewmodel.coincide import coincide_notes
from trajviz.viewmodel.diagnosis import Diagnosis, diagnose, divergence_note, upto_divergence
from trajviz.viewmodel.labels import axis_titles, fmt, slice_name, task_label  # noqa: F401 - re-exported
from trajviz.viewmodel.spectrum import SpectrumView, spectrum_view, with_curvature
from trajviz.viewmodel.straight import Straight, straight
from trajviz.viewmodel.summary import FRACTIONS, SUMMARY_COLUMNS, best_learners, summary_rows

MAX_GRID = 101  # contour grids are drawn at most this many points per axis
ON_PLANE = 1e-6  # residuals below this fraction of the paths' spread are rounding noise
LOG_DECADES = 30  # a positive range wider than this ratio is drawn on a log scale


def use_log(values: Sequence[np.ndarray]) -> bool:
    """The one log-scale rule: every finite value positive and spanning > LOG_DECADES×."""
    v = np.concatenate([np.asarray(x, float).ravel() for x in values]) if len(values) \
        else np.array([])
    v = v[np.isfinite(v)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > LOG_DECADES)


def clamp_frame(frame: int | None, last: int) -> int:
    """The one frame rule: None is the last frame; others are clamped to 0..last."""
    return last if frame is None else int(min(max(int(frame), 0), last))


def value_range(values: Sequence[np.ndarray], log: bool = False, pad: float = 0.06,
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


@contextmanager
def quiet():
    """Silence numpy's 'mean of empty slice' warnings (all-NaN columns stay NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ---------------------------------------------------------------------------- panels

@dataclass(frozen=True)
class PanelSpec:
    """A time-cursor panel: its key, titles, fixed y range (None: from the data) and
    ``running``, the ``LearnerRecord.running`` entry it plots (None: built in ``select``).
    ``traces_per_learner``: series each learner draws in it (the loss panel adds the
    loss on the slice); ``zero_line``: draw y = 0. ``diagnostic``: the
    ``LearnerRecord.diagnostics`` entry it plots instead (see ``trajviz.viewmodel.diagnosis``);
    ``threshold``: it draws the run's stability threshold and where paths cross it
    (``EXTRA_TRACES`` more traces after its cursor dots); ``groups``: the page's panel
    sets (``PANEL_GROUPS``) it belongs to; ``error``: the diagnostic holding each value's
    error bar; ``x_axis``: "step" for a time-cursor panel, "eigenvalue" for the spectrum
    panel (its own figure and playback data: ``trajviz.viewmodel.spectrum``)."""

    key: str
    title: str
    short: str
    y_title: str
    fixed: tuple[float, float] | None = None
    running: str | None = None
    traces_per_learner: int = 1
    zero_line: bool = False
    diagnostic: str | None = None
    threshold: bool = False
    groups: tuple[str, ...] = ("shape",)
    error: str | None = None
    x_axis: str = "step"

    @property
    def extra_traces(self) -> int:
        """Traces after the cursor dots: the threshold line and the crossing marks."""
        return 2 if self.threshold else 0


#: The page shows one set of panels at a time: (key, label).
PANEL_GROUPS = (("shape", "Path shape"), ("steps", "Step size"), ("curvature", "Curvature"))

PANELS: tuple[PanelSpec, ...] = (
    PanelSpec("loss", "Loss: recorded (solid) and on the slice (dashed)",
              "Loss: recorded — / on slice - -", "loss", traces_per_learner=2,
              groups=("shape", "steps", "curvature")),
    PanelSpec("length", "Path length so far", "Path length so far", "length on the loss manifold",
              running="cumulative_length"),
    PanelSpec("straight", "Straight line θ0 → θ_K (dotted) beside the path's loss",
              "Straight line θ0→θ_K vs path", "loss", traces_per_learner=3),
    PanelSpec("oscillation", "Oscillation: cosine between successive updates",
              "Cosine between updates", "cos(Δθ<sub>i−1</sub>, Δθ<sub>i</sub>)", (-1.08, 1.08),
              running="cosine", zero_line=True),
    PanelSpec("monotonicity", "Monotonicity: fraction of steps where loss fell",
              "Fraction of steps loss fell", "fraction so far", (-0.04, 1.04),
              running="monotone_fraction"),
    PanelSpec("residual", "Off-plane residual: what the slice cannot show",
              "Off-plane residual", "‖θ − its projection‖"),
    PanelSpec("sharpness", "Sharpness λ_max vs the stability threshold",
              "Sharpness λ_max vs threshold", "λ_max(∇²f)", diagnostic="sharpness",
              threshold=True, groups=("steps", "curvature")),
    PanelSpec("lambda_min", "Smallest eigenvalue λ_min: below 0, a saddle", "Smallest eigenvalue λ_min",
              "λ_min(∇²f)", zero_line=True, diagnostic="lambda_min", error="lambda_min_err",
              groups=("curvature",)),
    PanelSpec("trace", "Trace: total curvature, the sum of all eigenvalues", "Hessian trace",
              "tr ∇²f", zero_line=True, diagnostic="hessian_trace", error="hessian_trace_err",
              groups=("curvature",)),
    PanelSpec("spectrum", "Eigenvalue density at the cursor's step", "Eigenvalue density",
              "density", groups=("curvature",), x_axis="eigenvalue"),
    PanelSpec("grad_norm", "Gradient norm at each step", "Gradient norm ‖∇f‖", "‖∇f(θ<sub>i</sub>)‖",
              diagnostic="grad_norm", groups=("steps",)),
    PanelSpec("update_norm", "Update norm: how far each step moves θ", "Update norm ‖Δθ‖",
              "‖θ<sub>i+1</sub> − θ<sub>i</sub>‖", diagnostic="update_norm", groups=("steps",)),
)
PANEL_KEYS = tuple(p.key for p in PANELS)
#: The panels drawn against the inner step (every one but the spectrum).
STEP_PANELS = tuple(p for p in PANELS if p.x_axis == "step")


def panel_spec(key: str) -> PanelSpec:
    """The spec of panel ``key``; ValueError (one line) for an unknown key."""
    for p in PANELS:
        if p.key == key:
            return p
    raise ValueError(f"unknown panel {key!r}; accepted: {list(PANEL_KEYS)}")


# ---------------------------------------------------------------------------- selection

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
    diagnosis: Diagnosis = field(default_factory=lambda: Diagnosis({}, {}, {}, {}, (), {}))
    straight: Straight | None = None
    spectrum: SpectrumView | None = None

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

    def frame(self, frame: int | None) -> int:
        """``frame`` clamped to 0..steps (None: the last step)."""
        return clamp_frame(frame, self.steps)

    def colour_of(self, values: np.ndarray) -> np.ndarray:
        """Loss values in the surface's colour/height units (log10 where ``log_z``)."""
        v = np.asarray(values, dtype=np.float64)
        if not self.log_z:
            return v
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


def _pick(values: np.ndarray, task: int | None) -> np.ndarray:
    """[T, ...] -> the task's row, or the mean over finite tasks (float64, non-finite as NaN)."""
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nan)
    if task is not None:
        return v[task]
    with quiet():
        return np.nanmean(v, axis=0)


def path_box(view: View, extent: tuple[float, float, float, float],
             margin: float = 0.12) -> tuple[float, float, float, float]:
    """Every held-out path point of the view plus ``margin`` of its span, within ``extent``;
    a learner whose path went far is left out (``framing``: drawn clipped and marked)."""
    from trajviz.viewmodel.framing import framed_points

    pts, _ = framed_points(view.coords)
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


def check_choice(run: Run, view: str | None, task: int | None,
                 learners: Sequence[str] | None) -> tuple[str, list[str]]:
    """(view name, learners in run order) for a page choice; ValueError (one line) if bad."""
    if not run.learners:
        raise ValueError("the run holds no learners")
    if not run.views:
        raise ValueError("the run holds no slice views")
    view = view or next(iter(run.views))
    if view not in run.views:
        raise ValueError(f"unknown slice {view!r}; this run has {list(run.views)}")
    n_tasks = len(run.task_ids)
    if task is not None and not (isinstance(task, (int, np.integer)) and 0 <= task < n_tasks):
        raise ValueError(f"task must be 0..{n_tasks - 1} or the task mean, got {task!r}")
    names = list(run.learners) if learners is None else list(learners)
    unknown = [n for n in names if n not in run.learners]
    if unknown:
        raise ValueError(f"unknown learner(s) {unknown}; this run has {list(run.learners)}")
    return view, [n for n in run.learners if n in names]


def select(run: Run, view: str | None = None, task: int | None = None,
           learners: Sequence[str] | None = None) -> Selection:
    """The arrays one page state draws. view defaults to the run's first; task None is
    the mean over held-out tasks; learners defaults to all, kept in run order.
    Raises ValueError (one line) for an unknown view or learner or a task out of range."""
    view, names = check_choice(run, view, task, learners)
    v = run.views[view]
    surf = v.surface
    z = np.asarray(surf.mean if task is None else surf.loss[task], dtype=np.float64)
    alpha, beta, z = _thin(np.asarray(surf.alpha, float), np.asarray(surf.beta, float), z)

    coords, series, plane, notes = {}, {p: {} for p in PANEL_KEYS}, {}, []
    for n in names:
        rec = run.learners[n]
        coords[n] = _pick(v.coords[n], task)
        series["loss"][n] = _pick(upto_divergence(rec.losses, rec.diverged_at), task)
        plane[n] = _pick(v.plane_loss[n], task)
        series["residual"][n] = _pick(v.residual[n], task)
        for p in PANELS:
            if p.running is None or p.diagnostic is not None:
                continue
            if p.running in rec.running:
                series[p.key][n] = _pick(rec.running[p.running], task)
            else:
                series[p.key][n] = np.full(run.steps + 1, np.nan)
                notes.append(f"{n}: the run has no running '{p.running}', so its "
                             f"{p.key} panel is empty")
    diag = diagnose(run, [(p.key, p.diagnostic, p.threshold) for p in PANELS if p.diagnostic],
                    names, task, coords)
    series.update(diag.series)
    line, spectrum = straight(run, view, names, task), spectrum_view(run, names, task)
    series["straight"] = line.line
    diag = with_curvature(diag, run, PANELS, names, task, spectrum, line)
    notes.append(divergence_note(run, names, task))
    notes += coincide_notes(coords)
    return Selection(
        box=path_box(v, (float(alpha[0]), float(alpha[-1]), float(beta[0]), float(beta[-1]))),
        run_id=run.run_id, view=view, task=None if task is None else int(task),
        task_label=task_label(run, task), learners=tuple(names), steps=run.steps,
        alpha=alpha, beta=beta, z=z, log_z=use_log([z]), slice_kind=v.slice.kind,
        slice_label=v.slice.label, explained=np.asarray(v.slice.explained_variance, float),
        axis_titles=axis_titles(run, v), coords=coords, series=series, plane=plane,
        notes=tuple(n for n in notes if n), diagnosis=diag, straight=line, spectrum=spectrum)


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

    def frame(self, frame: int | None) -> int:
        """``frame`` clamped to 0..frames-1 (None: the last meta-step)."""
        return clamp_frame(frame, self.frames - 1)


#: The held-out curves against meta-step: evals key and title.
META_CURVES = (("length", "Held-out path length"), ("auc", "Held-out loss AUC"))


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
