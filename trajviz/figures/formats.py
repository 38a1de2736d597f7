"""A figure as file bytes: static images through kaleido (PNG with its DPI, SVG, PDF) and
standalone HTML pages (plotly.js inlined once, works offline)."""
from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from trajviz.figures.presets import CSS_DPI
from trajviz.figures.style import FONT_FAMILY


def figure_bytes(fig: go.Figure, fmt_: str, scale: float = 1.0) -> bytes:
    """A static image (png, svg, pdf) of ``fig`` through kaleido, at the figure's own
    size (or 1000 × 640 px where it has none)."""
    width = fig.layout.width or 1000
    height = fig.layout.height or 640
    data = pio.to_image(fig, format=fmt_, width=width, height=height, scale=scale)
    return png_dpi(data, CSS_DPI * scale) if fmt_ == "png" else data


def png_dpi(png: bytes, dpi: float) -> bytes:
    """``png`` with a pHYs chunk saying ``dpi`` (replacing one already there), so a
    figure made at scale s of its CSS size prints at its size in inches."""
    import struct
    import zlib
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    ppm = int(round(dpi / 0.0254))
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    out, pos = [png[:8]], 8
    while pos < len(png):
        n = struct.unpack(">I", png[pos:pos + 4])[0]
        tag = png[pos + 4:pos + 8]
        end = pos + 12 + n
        if tag != b"pHYs":
            out.append(png[pos:end])
        if tag == b"IHDR":
            out.append(chunk)
        pos = end
    return b"".join(out)


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
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{style}</style></head><body><h1>{escape(title)}</h1>"
            f"<p>{escape(notes)}</p>{''.join(parts)}</body></html>")
