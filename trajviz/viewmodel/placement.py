"""Where a marker's text label goes so that labels do not overlap (view-model, numpy only).

A greedy placer: markers in order, each label tries plotly's text positions in turn and
takes the first whose box (estimated from the label's length and the plot's size in
pixels) overlaps no label placed before it and no other marker; if none is free, the one
overlapping least. Estimates, not measurements: the browser test checks the drawn boxes.
"""
from __future__ import annotations

import numpy as np

#: plotly textposition values, tried in this order
POSITIONS = ("top center", "bottom center", "middle right", "middle left",
             "top right", "top left", "bottom right", "bottom left")


def _box(pos: str, x: float, y: float, w: float, h: float, gap: float) -> tuple:
    """(x0, y0, x1, y1) of a label at ``pos`` round a marker at (x, y) (pixels, y up)."""
    vert, horiz = pos.split()
    if vert == "top":
        y0 = y + gap
    elif vert == "bottom":
        y0 = y - gap - h
    else:
        y0 = y - h / 2
    if horiz == "center":
        x0 = x - w / 2
    elif horiz == "right":
        x0 = x + (gap if vert == "middle" else 0)
    else:
        x0 = x - w - (gap if vert == "middle" else 0)
    return x0, y0, x0 + w, y0 + h


def _overlap(a: tuple, b: tuple) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(w, 0.0) * max(h, 0.0)


def label_positions(points: np.ndarray, texts: list[str],
                    extent: tuple[float, float, float, float],
                    plot_px: tuple[float, float] = (520.0, 400.0), font_px: float = 11.0,
                    marker_px: float = 13.0) -> list[str]:
    """A plotly textposition per point [n, 2] (data units in ``extent`` = x0, x1, y0, y1)
    for label ``texts``, drawn in a plot of about ``plot_px`` pixels."""
    pts = np.asarray(points, float).reshape(-1, 2)
    x0, x1, y0, y1 = extent
    sx = plot_px[0] / max(x1 - x0, 1e-12)
    sy = plot_px[1] / max(y1 - y0, 1e-12)
    px = np.column_stack([(pts[:, 0] - x0) * sx, (pts[:, 1] - y0) * sy])
    half = marker_px / 2
    markers = [(x - half, y - half, x + half, y + half) for x, y in px]
    placed: list[tuple] = []
    out = []
    for i, ((x, y), text) in enumerate(zip(px, texts)):
        w, h = 0.62 * font_px * max(len(text), 1), 1.25 * font_px
        best, best_cost = POSITIONS[0], np.inf
        for pos in POSITIONS:
            box = _box(pos, x, y, w, h, half + 1)
            cost = sum(_overlap(box, b) for b in placed)
            cost += sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
            if box[0] < 0 or box[2] > plot_px[0] or box[1] < 0 or box[3] > plot_px[1]:
                cost += 0.5 * w * h  # cut by the plot's edge: worse than most overlaps
            if cost < best_cost:
                best, best_cost = pos, cost
            if cost == 0:
                break
        placed.append(_box(best, x, y, w, h, half + 1))
        out.append(best)
    return out


__all__ = ["POSITIONS", "label_positions"]
