"""The page's figures from Python: a run and a selection in, a plotly figure out.

``figure(run, "surface", task=0, preset="column")`` draws what the page draws
(``preset`` None: the screen figure; "column" 3.3 in or "page" 6.9 in: a paper
figure with fonts ≥ 7 pt at that size) and ``save(fig, path)`` writes it (PNG
with its DPI, SVG, PDF through kaleido; HTML standalone). Torch-free.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from trajviz.data.run import Run
from trajviz.viewmodel.selection import select, select_meta

WHATS = ("surface", "metrics", "meta", "meta_curves", "panel")


def figure(run: Run, what: str = "surface", *, slice_name: str | None = None,
           task: int | None = 0, learners: Sequence[str] | None = None,
           frame: int | None = None, preset: str | None = None, title: str | None = None,
           three_d: bool = False, zoom: str = "fit", panel: str = "loss") -> go.Figure:
    """One figure of ``run``: ``what`` is surface, metrics (every panel), panel (one,
    ``panel`` names it), meta (θ0 across meta-training) or meta_curves. ``task`` a
    held-out task index, None for the task mean (averaged points, not a path taken);
    ``frame`` the step (None: the last); ``preset`` None, "column" or "page".
    ValueError (one line) for an unknown name or a task out of range."""
    from trajviz import figures as F
    from trajviz.figures import presets as P
    if what not in WHATS:
        raise ValueError(f"unknown figure {what!r}; accepted: {', '.join(WHATS)}")
    if preset is not None:
        P.preset_of(preset)
        if what not in P.WHATS:
            raise ValueError(f"preset figures are {', '.join(P.WHATS)}; got {what!r}")
    if what in ("meta", "meta_curves"):
        meta = select_meta(run, slice_name, learners)
        if preset is not None:
            return P.paper_meta(meta, preset, frame, title)
        return F.meta_figure(meta, frame) if what == "meta" else F.meta_curves_figure(meta, frame)
    sel = select(run, slice_name, task, learners)
    if what == "surface":
        if preset is not None:
            return P.paper_surface(sel, preset, frame, title, zoom)
        fig = F.surface_figure(sel, frame, three_d=three_d, zoom=zoom)
    elif what == "metrics":
        if preset is not None:
            return P.paper_metrics(sel, preset, frame, title)
        fig = F.metrics_figure(sel, frame)
    else:
        fig = F.panel_figure(sel, panel, frame)
    if title is not None:
        fig.update_layout(title={"text": title})
    return fig


def save(fig: go.Figure, path: str | Path, dpi: int = 300) -> Path:
    """Write ``fig`` to ``path`` by its suffix: .png (at ``dpi``, recorded in the file),
    .svg, .pdf (kaleido) or .html (standalone, works offline). Returns the path."""
    from trajviz.figures.formats import figure_bytes, html_page
    from trajviz.figures.presets import CSS_DPI
    from trajviz.store.files import write_file
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt == "html":
        return write_file(path, html_page([fig], path.stem))
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"unknown file type {path.suffix!r}; accepted: .png, .svg, .pdf, .html")
    return write_file(path, figure_bytes(fig, fmt, scale=dpi / CSS_DPI if fmt == "png" else 1))


__all__ = ["figure", "save"]
