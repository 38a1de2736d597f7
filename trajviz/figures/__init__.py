"""Pure plotly figure builders, shared by the Dash app and every export.

Data in, ``go.Figure`` out: no Dash, no disk (file output is ``trajviz.figures.export``).
Every builder draws from the view-model in ``trajviz.viewmodel.selection`` (``Selection``,
``MetaSelection``), so the app and the paper figures show the same numbers in
the same colours. Modules, by what they draw:

* ``style``: palette, surface colours, fonts, sizes, base layout;
* ``plane``: the surface (contour or 3D) and each learner's path group;
* ``panels``: time-cursor metric panels, laid out from ``selection.PANELS``;
* ``meta``: θ0 across meta-training and the held-out curves;
* ``paper``: paper figures and the summary table figure;
* ``playback``: the trace-order contract, its indices, and the browser's
  per-frame data (``frame_data``); ``animation``: plotly frames for HTML files.

Every axis range is fixed (no autorange), so playback never rescales, and
every projected view states its explained variance and off-plane residual.
"""
from __future__ import annotations

from trajviz.figures.animation import (
    animated_meta_figure,
    animated_metrics_figure,
    animated_surface_figure,
)
from trajviz.figures.meta import meta_curves_figure, meta_figure
from trajviz.figures.panels import metrics_figure, panel_figure
from trajviz.figures.paper import (
    paper_meta_figure,
    paper_metrics_figure,
    paper_surface_figure,
    summary_table_figure,
)
from trajviz.figures.plane import surface_figure, surface_trace
from trajviz.figures.playback import GROUP, TAIL, frame_data, group_index, meta_frame_data
from trajviz.figures.style import PALETTE, PAPER_FONT, PAPER_WIDTH, learner_colour
from trajviz.viewmodel.axes import panel_axis
from trajviz.viewmodel.honesty import honesty, honesty_line
from trajviz.viewmodel.selection import (
    META_CURVES,
    PANEL_KEYS,
    PANELS,
    SUMMARY_COLUMNS,
    MetaSelection,
    PanelSpec,
    Selection,
    best_learners,
    fmt,
    select,
    select_meta,
    slice_name,
    summary_rows,
    task_label,
)

__all__ = [
    "GROUP", "META_CURVES", "PALETTE", "PANELS", "PANEL_KEYS", "PAPER_FONT", "PAPER_WIDTH",
    "SUMMARY_COLUMNS", "TAIL", "MetaSelection", "PanelSpec", "Selection",
    "animated_meta_figure", "animated_metrics_figure", "animated_surface_figure",
    "best_learners", "fmt", "frame_data", "group_index", "honesty", "honesty_line",
    "learner_colour", "meta_curves_figure", "meta_figure", "meta_frame_data",
    "metrics_figure", "paper_meta_figure", "paper_metrics_figure", "paper_surface_figure",
    "panel_axis", "panel_figure", "select", "select_meta", "slice_name", "summary_rows",
    "summary_table_figure", "surface_figure", "surface_trace", "task_label",
]
