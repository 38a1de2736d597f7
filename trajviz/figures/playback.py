"""The browser playback protocol and the trace-order contract it relies on.

Trace order (every builder follows it; the indices below are the only place
they are computed, and ``frame_data`` hands them to ``assets/playback.js``):

* ``plane.surface_figure`` / ``meta.meta_figure``: trace 0 is the surface
  (``contour``, or ``surface`` in 3D); then one group of ``len(GROUP)`` traces
  per learner, in the selection's order: path (full, faint), start (θ0), end
  (θ_K), tail (the last ``TAIL`` segments up to the current step), head (the
  current step): ``group_index(i, part)``. Overlays go after the groups (on the 2D
  screen surface: the divergence ✕ if any, the invisible hover grid, the colour bar).
  The browser moves only the tail and head traces: ``Plotly.animate`` in 2D, their
  own WebGL objects in 3D (``assets/playback.js``), so the surface is drawn once.
* ``panels.panel_figure``: each learner's ``spec.traces_per_learner`` series
  (the loss panel: recorded, then on the plane), then the cursor line, then the
  cursor dots (one per learner): ``panel_cursor_index``; then the panel's
  ``spec.extra_traces`` (a threshold panel: the threshold line, the crossing marks).
* ``spectrum.spectrum_figure`` (the panel whose ``x_axis`` is not the step): see there;
  its ``frame_data`` entry carries ``spectrum`` in place of cursor and dots.
* ``panels.metrics_figure``: the panels it draws (``keys``, PANELS order), as above:
  ``metrics_cursor_indices``.
* ``meta.meta_curves_figure``: per learner, one series per ``META_CURVES``
  entry; then one cursor line per entry: ``meta_cursor_index``.

``frame_data``/``meta_frame_data`` are the compact per-frame data the browser
animates from (no server call per frame): only JSON-safe lists and the indices.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from trajviz.viewmodel.axes import meta_curve_ranges, panel_axis
from trajviz.viewmodel.selection import (
    META_CURVES,
    STEP_PANELS,
    MetaSelection,
    Selection,
    panel_spec,
)

GROUP = ("path", "start", "end", "tail", "head")
TAIL = 3


def group_index(learner_index: int, part: str) -> int:
    """Index of a learner's ``part`` trace in ``surface_figure``/``meta_figure``."""
    return 1 + len(GROUP) * learner_index + GROUP.index(part)


def tail_of(xy: np.ndarray, k: int) -> np.ndarray:
    """The tail at step ``k``: rows k − TAIL .. k of ``xy`` [N, ...]."""
    return xy[max(0, k - TAIL): k + 1]


def panel_cursor_index(key: str, n_learners: int) -> int:
    """Index of a panel's cursor line in ``panel_figure``; the dots follow it."""
    return panel_spec(key).traces_per_learner * n_learners


def metrics_cursor_indices(n_learners: int,
                           keys: tuple[str, ...] | None = None) -> list[tuple[str, int, int]]:
    """[(panel key, cursor index, dots index)] in ``metrics_figure`` drawing the panels
    ``keys`` (default: every panel), in PANELS order."""
    out, start = [], 0
    for p in STEP_PANELS:
        if keys is not None and p.key not in keys:
            continue
        cursor = start + panel_cursor_index(p.key, n_learners)
        out.append((p.key, cursor, cursor + 1))
        start = cursor + 2 + p.extra_traces
    return out


def meta_cursor_index(j: int, n_learners: int) -> int:
    """Index of the cursor of META_CURVES entry ``j`` in ``meta_curves_figure``."""
    return n_learners * len(META_CURVES) + j


def json_list(values: np.ndarray, digits: int = 5) -> list[float | None]:
    """Rounded floats for the browser, None for non-finite (JSON has no NaN)."""
    out = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.append(float(f"{v:.{digits}g}") if math.isfinite(v) else None)
    return out


def _groups(coords: dict[str, np.ndarray], learners: tuple[str, ...],
            z: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    groups = []
    for i, n in enumerate(learners):
        xy = coords[n]
        groups.append({"head": group_index(i, "head"), "tail": group_index(i, "tail"),
                       "x": json_list(xy[:, 0]), "y": json_list(xy[:, 1]),
                       "z": None if z is None else json_list(z[n])})
    return groups


def frame_data(sel: Selection, main_id: str, panel_ids: dict[str, str], three_d: bool = False,
               frame: int | None = None) -> dict[str, Any]:
    """{key, frames, frame, label, xs: cursor x per frame, main: {id, three_d, tail,
    groups: [{head, tail, x, y, z}]}, panels: [{id, cursor, dots, lo, hi, series}]},
    with trace indices following the contract above."""
    z = {n: sel.colour_of(sel.plane[n]) for n in sel.learners} if three_d else None
    panels = []
    for key, gid in panel_ids.items():
        if panel_spec(key).x_axis != "step":  # the spectrum: its curves per kept step
            panels.append(spectrum_frame(sel, gid))
            continue
        cursor = panel_cursor_index(key, len(sel.learners))
        lo, hi = panel_axis(sel, key)["cursor"]
        panels.append({"id": gid, "cursor": cursor, "dots": cursor + 1, "lo": lo, "hi": hi,
                       "series": [json_list(sel.series[key][n]) for n in sel.learners]})
    return {"key": sel.key, "frames": sel.steps + 1, "frame": sel.frame(frame),
            "label": "inner step", "xs": list(range(sel.steps + 1)),
            "main": {"id": main_id, "three_d": bool(three_d), "tail": TAIL,
                     "groups": _groups(sel.coords, sel.learners, z)},
            "panels": panels}


def spectrum_frame(sel: Selection, graph_id: str) -> dict[str, Any]:
    """The spectrum panel's entry in ``frame_data``: {id, spectrum: {traces, label, x, y,
    label_x, curves [learner][kept step][G], index [K+1], texts [K+1]}} following the
    trace order of ``figures.spectrum``; ``spectrum`` is None when the run kept no density."""
    view = sel.spectrum
    if view is None:
        return {"id": graph_id, "spectrum": None}
    curves = [[json_list(row, 4) for row in view.density[m]] if m in view.density else []
              for m in sel.learners]
    return {"id": graph_id, "spectrum": {
        "traces": list(range(len(sel.learners))), "label": len(sel.learners),
        "x": json_list(view.grid), "y": view.label_y(), "label_x": float(view.grid[-1]),
        "curves": curves, "index": [int(i) for i in view.index],
        "texts": [view.label(k) for k in range(sel.steps + 1)]}}


def meta_frame_data(meta: MetaSelection, main_id: str, curves_id: str,
                    frame: int | None = None) -> dict[str, Any]:
    """Like ``frame_data`` for the meta-training tab: θ0 heads and the curves' cursors."""
    n = len(meta.learners)
    panels = [{"id": curves_id, "cursor": meta_cursor_index(j, n), "dots": None, "lo": lo,
               "hi": hi, "series": []}
              for j, (lo, hi) in enumerate(meta_curve_ranges(meta))]
    return {"key": meta.key, "frames": meta.frames, "frame": meta.frame(frame),
            "label": "meta-step", "xs": [int(s) for s in meta.steps],
            "main": {"id": main_id, "three_d": False, "tail": TAIL,
                     "groups": _groups(meta.coords, meta.learners)},
            "panels": panels}
