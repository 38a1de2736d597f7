"""Paper presets: one figure at a journal's column or page width, fonts ≥ 7 pt there.

``PRESETS`` maps a name to its width in inches; figures are laid out in CSS
pixels (96 per inch), so a preset's width is ``inches × 96`` px and a font of
``FONT_PX`` px prints at ``FONT_PX × 0.75`` pt. ``paper_figure`` draws the
surface (a vector filled ``contour``: no bitmap in SVG/PDF), the metric panels
or the meta-training view at that size, with a marker key in the figure and an
optional title.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from trajviz.figures.meta import meta_figure
from trajviz.figures.panels import panel_traces
from trajviz.figures.plane import colour_range, surface_figure, zoom_box
from trajviz.figures.style import FONT_FAMILY, base_layout, learner_colour, step_dtick, wrap
from trajviz.viewmodel.selection import STEP_PANELS as PANELS
from trajviz.viewmodel.selection import MetaSelection, Selection

CSS_DPI = 96  # plotly's pixels per inch
FONT_PX = 10  # 7.5 pt at the preset's size: the smallest text in a preset figure


@dataclass(frozen=True)
class Preset:
    """A paper size: ``name``, ``inches`` wide; ``px`` is the width in CSS pixels."""

    name: str
    inches: float

    @property
    def px(self) -> int:
        return int(round(self.inches * CSS_DPI))


PRESETS = {"column": Preset("column", 3.3), "page": Preset("page", 6.9)}
WHATS = ("surface", "metrics", "meta", "straight")


def preset_of(name: str) -> Preset:
    """The preset ``name``; ValueError (one line) naming the accepted ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; accepted: {', '.join(PRESETS)}")
    return PRESETS[name]


def paper_fonts(fig: go.Figure, size: int = FONT_PX) -> go.Figure:
    """Every text of ``fig`` at ``size`` px or more (titles one px larger)."""
    font = {"family": FONT_FAMILY, "size": size, "color": "#000000"}
    fig.update_layout(font=font, legend={"font": font})
    fig.update_annotations(font_size=size)
    fig.update_xaxes(tickfont_size=size, title_font_size=size)
    fig.update_yaxes(tickfont_size=size, title_font_size=size)
    for t in fig.data:
        if t.type in ("contour", "surface", "heatmap"):
            t.colorbar.tickfont = {"size": size}
            t.colorbar.title.font = {"size": size}
    return fig


def key_lines(learners: tuple[str, ...], per_line: int) -> list[str]:
    """The key: the learners in their colours, then what the markers mean."""
    names = [f"<span style='color:{learner_colour(n)}'>━ {n}</span>" for n in learners]
    lines = ["   ".join(names[i:i + per_line]) for i in range(0, len(names), per_line)]
    return lines + ["○ start θ0   ◆ end (step K)   ● current step"]


def _title(fig: go.Figure, title: str | None, top: int) -> int:
    if title:
        fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left", "y": 0.99,
                                 "yanchor": "top", "font": {"size": FONT_PX + 1},
                                 "subtitle": {"text": ""}})
        return top + 18
    fig.update_layout(title=None)
    return top


def paper_surface(sel: Selection, preset: str, frame: int | None = None,
                  title: str | None = None, zoom: str = "fit") -> go.Figure:
    """The surface with every selected path, at ``preset`` width: a vector filled contour
    in the fitted colour range, equal-aspect axes framing the paths (``zoom`` "full": the
    grid), the learners and a marker key in the legend below."""
    p = preset_of(preset)
    fig = surface_figure(sel, frame, paper=True, zoom=zoom)
    box = zoom_box(sel, zoom)
    lo, hi = colour_range(sel, box)
    fig.data[0].update(zmin=lo, zmax=hi, autocontour=False,
                       contours={"coloring": "fill", "showlines": True, "start": lo,
                                 "end": hi, "size": (hi - lo) / 12},
                       line={"width": 0.4, "color": "rgba(40,48,60,0.45)"},
                       colorbar={"thickness": 8, "len": 1.0, "xpad": 3, "tickmode": "auto",
                                 "nticks": 5, "tickformat": ".3~g"})
    # axes fill the plot (not to scale, as on the page): a needle-thin box of paths
    # would otherwise leave a strip; the shape is kept between 0.7 and 1.1
    x0, x1, y0, y1 = box
    fig.update_yaxes(scaleanchor=None, constrain=None)
    aspect = float(np.clip((y1 - y0) / (x1 - x0), 0.7, 1.1)) if x1 > x0 else 1.0
    return _plane_layout(fig, p, title, sel.learners, aspect)


def _plane_layout(fig: go.Figure, p: Preset, title: str | None, learners: tuple[str, ...],
                  aspect: float) -> go.Figure:
    """Size, margins, smaller markers, short axis titles and the legend (learners, then
    the marker key) below a plane figure of preset ``p``."""
    small = p.name == "column"
    lines = key_lines(learners, 3 if small else 6)
    for t in fig.data[1:]:
        if t.marker is not None and t.marker.size:
            t.marker.size = max(4, t.marker.size * (0.55 if small else 0.8))
    for ax in (fig.layout.xaxis, fig.layout.yaxis):
        if ax.title.text:
            ax.title.text = ax.title.text.split(" (")[0]
    top = _title(fig, title, 8)
    left, right, bottom = 40, 58, 15 * len(lines) + 44
    plot_w = p.px - left - right
    fig.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0,
                       y=-(bottom - 4) / (plot_w * aspect), xanchor="left", yanchor="bottom",
                       showarrow=False, align="left", font={"size": FONT_PX})
    fig.update_layout(width=p.px, height=int(top + bottom + plot_w * aspect),
                      margin={"l": left, "r": right, "t": top, "b": bottom}, showlegend=False)
    return paper_fonts(fig)


def paper_metrics(sel: Selection, preset: str, frame: int | None = None,
                  title: str | None = None) -> go.Figure:
    """Every panel of PANELS at ``preset`` width: two a row in a column, three on a page,
    the learners in a legend below (the slice's notes belong in the caption)."""
    p = preset_of(preset)
    k = sel.frame(frame)
    cols = 2 if p.name == "column" else 3
    rows = math.ceil(len(PANELS) / cols)
    titles = [wrap(q.short, 24 if cols == 2 else 34) for q in PANELS]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles,
                        horizontal_spacing=0.16 if cols == 2 else 0.09,
                        vertical_spacing=0.5 / rows)
    for i, q in enumerate(PANELS):
        r, c = divmod(i, cols)
        traces, axis = panel_traces(sel, q.key, k, legend=i == 0)
        for t in traces:
            if t.marker is not None and t.marker.size:
                t.marker.size = min(t.marker.size, 5)
            fig.add_trace(t, row=r + 1, col=c + 1)
        fig.update_xaxes(title={"text": "inner step" if r == rows - 1 or i + cols >= len(PANELS)
                                else ""}, dtick=step_dtick(sel.steps) * (2 if cols == 2 else 1),
                         row=r + 1, col=c + 1, **axis["x"])
        axis["y"]["title"] = None  # the panel's title says it; a y title would collide
        fig.update_yaxes(row=r + 1, col=c + 1, exponentformat="power", **axis["y"])
    base_layout(fig, True)
    top = _title(fig, title, 34)
    row_h = int(p.px * (0.42 if cols == 2 else 0.27))
    free = len(PANELS) % cols  # an empty cell in the last row holds the legend
    if free:
        last = fig.layout[f"yaxis{len(PANELS)}"].domain
        legend = {"orientation": "v", "x": free / cols + 0.06, "y": last[1],
                  "yanchor": "top", "xanchor": "left"}
        bottom = 40
    else:
        legend = {"orientation": "h", "x": 0, "y": 0, "yref": "container", "yanchor": "bottom"}
        bottom = 80
    fig.update_layout(width=p.px, height=top + bottom + rows * row_h, meta={"key": sel.key},
                      margin={"l": 40, "r": 10, "t": top, "b": bottom}, legend=legend)
    return paper_fonts(fig)


def paper_straight(sel: Selection, preset: str, frame: int | None = None,
                   title: str | None = None) -> go.Figure:
    """The straight line θ0 → θ_K beside each path's own loss, at ``preset`` width: the
    classic linear-interpolation figure (Goodfellow et al., 2015), with the key and which
    lines are monotone below it."""
    p = preset_of(preset)
    k = sel.frame(frame)
    traces, axis = panel_traces(sel, "straight", k, legend=False)
    fig = go.Figure(traces)
    base_layout(fig, True)
    fig.update_xaxes(title={"text": "inner step i  (straight line: t = i/K)"},
                     dtick=step_dtick(sel.steps), **axis["x"])
    axis["y"]["title"] = {"text": "loss"}
    fig.update_yaxes(exponentformat="power", **axis["y"])
    names = [f"<span style='color:{learner_colour(n)}'>━ {n}</span>" for n in sel.learners]
    per = 3 if p.name == "column" else 6
    lines = ["   ".join(names[i:i + per]) for i in range(0, len(names), per)]
    lines.append("··· straight θ0→θ_K   ━ path taken   -·- straight on the slice")
    words = sel.diagnosis.lines.get("straight", "").split(". ")[-1]
    lines += wrap(words, 52 if p.name == "column" else 110).split("<br>") if words else []
    top = _title(fig, title, 8)
    bottom = 15 * len(lines) + 44
    height = int(p.px * (0.62 if p.name == "column" else 0.4))
    fig.add_annotation(text="<br>".join(lines), xref="paper", yref="paper", x=0,
                       y=-(bottom - 4) / height, xanchor="left", yanchor="bottom",
                       showarrow=False, align="left", font={"size": FONT_PX})
    fig.update_layout(width=p.px, height=top + bottom + height, showlegend=False,
                      margin={"l": 44, "r": 10, "t": top, "b": bottom}, meta={"key": sel.key})
    return paper_fonts(fig)


def paper_meta(meta: MetaSelection, preset: str, frame: int | None = None,
               title: str | None = None) -> go.Figure:
    """θ0 across meta-training on the slice, at ``preset`` width."""
    p = preset_of(preset)
    fig = meta_figure(meta, frame, paper=True)
    for t in fig.data:
        if t.type == "contour":
            t.update(contours={"coloring": "fill", "showlines": True},
                     colorbar={"thickness": 8, "xpad": 3})
    x0, x1, y0, y1 = meta.surface.extent
    aspect = float(np.clip((y1 - y0) / (x1 - x0), 0.7, 1.1)) if x1 > x0 else 1.0
    return _plane_layout(fig, p, title, meta.learners, aspect)
