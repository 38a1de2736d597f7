"""The on-screen surface as plain data a browser moves cheaply: a colour image and
contour lines as one scatter trace.

Why: plotly's redraw-free animation (``Plotly.animate`` with ``redraw: false``,
what the page's playback and the HTML export use) keeps only scatter traces: a
``contour`` trace is dropped on every frame, and restyling a figure that holds one
redraws the whole contour (hundreds of ms on a busy machine). A layout image and
a scatter trace of line segments survive the animation untouched, so playback
moves only the heads and tails. Paper figures keep a vector ``contour`` fill.
"""
from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def robust_range(values: np.ndarray, lo_q: float = 0.02, hi_q: float = 0.98
                 ) -> tuple[float, float]:
    """(lo, hi): the ``lo_q`` and ``hi_q`` quantiles of the finite ``values`` (any shape);
    (0, 1) when none is finite; widened to a nonzero span when they are equal."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if not v.size:
        return 0.0, 1.0
    lo, hi = (float(x) for x in np.quantile(v, [lo_q, hi_q]))
    if not hi > lo:
        pad = abs(hi) * 0.05 or 0.5
        lo, hi = lo - pad, hi + pad
    return lo, hi


def in_box(alpha: np.ndarray, beta: np.ndarray, z: np.ndarray,
           box: tuple[float, float, float, float]) -> np.ndarray:
    """The values of ``z`` [B, A] on grid points inside ``box`` (a0, a1, b0, b1), flat."""
    a = (alpha >= box[0]) & (alpha <= box[1])
    b = (beta >= box[2]) & (beta <= box[3])
    sub = np.asarray(z)[np.ix_(b, a)]
    return sub.ravel() if sub.size else np.asarray(z).ravel()


def colour_map(z: np.ndarray, lo: float, hi: float, scale: list) -> np.ndarray:
    """``z`` [B, A] as RGB bytes [B, A, 3] through the plotly colour ``scale``
    ([[position, '#RRGGBB'], ...]) between ``lo`` and ``hi`` (clipped); NaN as white."""
    t = np.clip((np.asarray(z, float) - lo) / (hi - lo), 0.0, 1.0)
    pos = np.array([p for p, _ in scale], float)
    rgb = np.array([[int(c.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)] for _, c in scale], float)
    out = np.stack([np.interp(np.nan_to_num(t), pos, rgb[:, c]) for c in range(3)], -1)
    out[~np.isfinite(t)] = 255.0
    return np.round(out).astype(np.uint8)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG file of ``rgb`` [H, W, 3] uint8, first row at the top (no dependencies)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + \
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def image_uri(z: np.ndarray, lo: float, hi: float, scale: list) -> str:
    """``z`` [B, A] (row 0 at the lowest beta) as a data: URI PNG with the highest
    beta at the top, as a layout image wants it."""
    return "data:image/png;base64," + base64.b64encode(
        png_bytes(colour_map(np.asarray(z)[::-1], lo, hi, scale))).decode("ascii")


def contour_segments(alpha: np.ndarray, beta: np.ndarray, z: np.ndarray,
                     levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching squares: the iso-lines of ``z`` [B, A] at ``levels`` [L] as segments,
    returned as x, y with a NaN after each segment (one scatter trace draws them all).
    Saddle cells are resolved by joining the two crossings pairwise in edge order."""
    z = np.asarray(z, float)
    xs, ys = [], []
    a, b = np.asarray(alpha, float), np.asarray(beta, float)
    z00, z01, z11, z10 = z[:-1, :-1], z[:-1, 1:], z[1:, 1:], z[1:, :-1]  # [B-1, A-1]
    ok = np.isfinite(z00) & np.isfinite(z01) & np.isfinite(z11) & np.isfinite(z10)
    jj, ii = np.meshgrid(np.arange(len(b) - 1), np.arange(len(a) - 1), indexing="ij")
    # the four edges: (corner values, corner coordinates)
    edges = [(z00, z01, (a[ii], b[jj]), (a[ii + 1], b[jj])),
             (z01, z11, (a[ii + 1], b[jj]), (a[ii + 1], b[jj + 1])),
             (z11, z10, (a[ii + 1], b[jj + 1]), (a[ii], b[jj + 1])),
             (z10, z00, (a[ii], b[jj + 1]), (a[ii], b[jj]))]
    for level in np.asarray(levels, float):
        pts, hit = [], []
        for za, zb, (xa, ya), (xb, yb) in edges:
            cross = ok & ((za < level) != (zb < level))
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(cross, (level - za) / (zb - za), 0.0)
            pts.append((xa + t * (xb - xa), ya + t * (yb - ya)))
            hit.append(cross)
        hit = np.stack(hit)  # [4, B-1, A-1]
        px = np.stack([p[0] for p in pts])
        py = np.stack([p[1] for p in pts])
        order = np.cumsum(hit, axis=0) * hit  # 1st, 2nd, ... crossing of each cell
        for first, second in ((1, 2), (3, 4)):
            sel1 = order == first
            sel2 = order == second
            cells = sel2.any(0)
            if not cells.any():
                continue
            x1 = (px * sel1).sum(0)[cells]
            y1 = (py * sel1).sum(0)[cells]
            x2 = (px * sel2).sum(0)[cells]
            y2 = (py * sel2).sum(0)[cells]
            nan = np.full_like(x1, np.nan)
            xs.append(np.stack([x1, x2, nan], 1).ravel())
            ys.append(np.stack([y1, y2, nan], 1).ravel())
    if not xs:
        return np.empty(0), np.empty(0)
    return np.concatenate(xs), np.concatenate(ys)
