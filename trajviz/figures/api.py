"""The page's figures from Python: a run and a selection in, a plotly figure out.

``figure(run, "surface", task=0, preset="column")`` draws what the page draws
(``preset`` None: the screen figure; "column" 3.3 in or "page" 6.9 in: a paper
figure with fonts ≥ 7 pt at that size) and ``save(fig, path)`` writes it (PNG
with its DPI, SVG, PDF through kaleido; HTML standalone). Torch-free.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from trajviz.data.run import Run
from trajviz.figures.options import FigureOptions, figure_options
from trajviz.viewmodel.selection import select, select_meta

WHATS = ("surface", "metrics", "meta", "meta_curves", "panel", "straight")


def figure(run: Run, what: str = "surface", options: FigureOptions | None = None,
           **keywords: Any) -> go.Figure:
    """One figure of ``run``: ``what`` is surface, metrics (every panel), panel (one,
    ``panel`` names it), straight (the line θ0 → θ_K beside the path), meta (θ0 across
    meta-training) or meta_curves. ``options`` (a ``FigureOptions``) and/or its fields as
    keywords (they win): ``slice_name``, ``task`` a held-out task index, None for the task
    mean (averaged points, not a path taken); ``learners``; ``frame`` the step (None: the
    last); ``preset`` None, "column" or "page"; ``title``; ``three_d``; ``zoom``; ``panel``.
    ValueError (one line) for an unknown name or a task out of range."""
    o = figure_options(options, keywords)
    slice_name, task, learners, frame = o.slice_name, o.task, o.learners, o.frame
    preset, title, three_d, zoom, panel = o.preset, o.title, o.three_d, o.zoom, o.panel
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
    elif what == "straight":
        if preset is not None:
            return P.paper_straight(sel, preset, frame, title)
        fig = F.panel_figure(sel, "straight", frame)
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


__all__ = ["FigureOptions", "figure", "save"]
