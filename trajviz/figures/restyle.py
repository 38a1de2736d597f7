"""The browser's fast redraw after a what-if: new path data for figures already drawn.

A what-if (``trajviz.app.whatif``) changes the paths but not the surface, so the page
need not rebuild and re-send every figure (hundreds of kB, about a second of plotly
validation, then a full ``Plotly.react`` of every graph). ``restyle_data`` gives, for
figures drawn by ``plane.surface_figure`` (2D) and ``panels.panel_figure`` for the same
selection key and number of steps, only what the paths changed: each learner's path,
start and end on the plane, each panel's series, fixed y range and threshold line, and
the new playback ``frame_data`` (which moves heads, tails, cursors and dots). Trace
indices follow the contract in ``playback``. ``assets/whatif.js`` applies it; what it
leaves alone (the surface's colour range, the view box, the honesty line, notes) is
redrawn exactly by a full draw once the controls settle. JSON-safe; no plotly here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from trajviz.figures.playback import frame_data, group_index, json_list, panel_cursor_index
from trajviz.figures.spectrum import spectrum_axes
from trajviz.viewmodel.axes import panel_axis
from trajviz.viewmodel.selection import Selection, panel_spec
from trajviz.viewmodel.ticks import log_axis


def _points(xy: np.ndarray) -> dict[str, list]:
    return {"x": json_list(xy[:, 0]), "y": json_list(xy[:, 1])}


def main_restyle(sel: Selection) -> dict[str, Any]:
    """{traces, data}: each learner's path, start and end traces on the plane (2D)."""
    traces, data = [], []
    for i, n in enumerate(sel.learners):
        xy = np.asarray(sel.coords[n], dtype=np.float64)
        finite = np.flatnonzero(np.isfinite(xy).all(1))
        last = int(finite[-1]) if finite.size else 0
        traces += [group_index(i, "path"), group_index(i, "start"), group_index(i, "end")]
        data += [_points(xy), _points(xy[:1]), _points(xy[last:last + 1])]
    return {"traces": traces, "data": data}


def threshold_line(sel: Selection, key: str) -> dict[str, list]:
    """A threshold panel's dashed line: x, y (empty when the run states no threshold)."""
    thr = sel.diagnosis.thresholds.get(key)
    return {"x": [0, sel.steps] if thr is not None else [],
            "y": [thr, thr] if thr is not None else []}


def panel_restyle(sel: Selection, key: str) -> dict[str, Any]:
    """{traces, data, layout}: one panel's series (and threshold line) and y axis (its
    type, range and ticks, as ``Plotly.relayout`` keys)."""
    spec = panel_spec(key)
    if spec.x_axis != "step":  # the spectrum: its new curves travel in the frame data
        return {"traces": [], "data": [], "layout": spectrum_axes(sel)}
    per = spec.traces_per_learner
    traces, data = [], []
    for i, n in enumerate(sel.learners):
        traces.append(per * i)
        data.append({"y": json_list(sel.series[key][n])})
        if key == "loss":
            traces.append(per * i + 1)
            data.append({"y": json_list(sel.plane[n])})
        if key == "straight":  # the path's own loss, the segment on the slice
            traces += [per * i + 1, per * i + 2]
            data += [{"y": json_list(sel.series["loss"][n])}, {"y": json_list(sel.straight.plane[n])}]
    if spec.threshold:
        traces.append(panel_cursor_index(key, len(sel.learners)) + 2)
        data.append(threshold_line(sel, key))
    pa = panel_axis(sel, key)
    ticks = log_axis(pa["range"]) if pa["log"] else {"tickmode": None, "tickvals": None,
                                                      "ticktext": None}  # None: plotly's own
    layout = {"yaxis.type": "log" if pa["log"] else "linear",
              "yaxis.range": [float(v) for v in pa["range"]],
              **{f"yaxis.{k}": v for k, v in ticks.items()}}
    return {"traces": traces, "data": data, "layout": layout}


def restyle_data(sel: Selection, main_id: str, panel_ids: dict[str, str],
                 frame: int | None = None) -> dict[str, Any]:
    """{key, frames, frame_data, main: {id, traces, data}, panels: [{id, traces, data,
    layout}]}: what ``assets/whatif.js`` restyles on the figures drawn for ``sel.key``."""
    return {"key": sel.key, "frames": sel.steps + 1,
            "frame_data": frame_data(sel, main_id, panel_ids, frame=frame),
            "main": {"id": main_id, **main_restyle(sel)},
            "panels": [{"id": gid, **panel_restyle(sel, key)} for key, gid in panel_ids.items()]}


__all__ = ["main_restyle", "panel_restyle", "restyle_data", "threshold_line"]
