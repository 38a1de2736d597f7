"""How far to trust a slice: one typed record and its texts (view-model, no plotly).

``honesty(sel)`` is computed once per selection; the figure subtitles
(``honesty_line``), the metrics figure's notes cell (``honesty_notes``) and the
page's card (``honesty_items``) are all written from it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from trajviz.data.outliers import far_note
from trajviz.viewmodel.framing import framed_points
from trajviz.viewmodel.labels import fmt, slice_name
from trajviz.viewmodel.selection import ON_PLANE, quiet

if TYPE_CHECKING:
    from trajviz.viewmodel.selection import MetaSelection, Selection


@dataclass(frozen=True)
class Honesty:
    """What the slice keeps and hides, over every selected path.

    explained: share of the paths' variance in the plane (NaN where it does not apply);
    residual_max / residual_median: off-plane distances; spread: the paths' largest
    extent on the plane (for scale); loss_gap_max: largest |recorded − on-plane loss|,
    loss_gap_rel: the same as a fraction of the recorded losses' range; on_plane: every
    residual is rounding noise (≤ ON_PLANE × the spread, or × 1 for small spreads);
    left_out: {learner: how many times as far as the others' paths its path reached} for
    the learners left out of the frame's fit (``viewmodel.framing``), drawn clipped."""

    explained: float
    residual_max: float
    residual_median: float
    spread: float
    loss_gap_max: float
    loss_gap_rel: float
    on_plane: bool
    left_out: dict[str, float] = field(default_factory=dict)


def _concat(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty


def honesty(sel: Selection) -> Honesty:
    """The selection's ``Honesty`` record."""
    res = _concat([sel.series["residual"][n] for n in sel.learners], np.array([np.nan]))
    pts = _concat([sel.coords[n] for n in sel.learners], np.full((1, 2), np.nan))
    gap = _concat([np.abs(sel.series["loss"][n] - sel.plane[n]) for n in sel.learners],
                  np.array([np.nan]))
    true = _concat([sel.series["loss"][n] for n in sel.learners], np.array([np.nan]))
    with quiet():
        spread = float(np.nanmax(np.nanmax(pts, 0) - np.nanmin(pts, 0))) if np.isfinite(pts).any() \
            else math.nan
        scale = float(np.nanmax(true) - np.nanmin(true)) if np.isfinite(true).any() else math.nan
        return Honesty(
            explained=float(np.nansum(sel.explained)) if np.isfinite(sel.explained).any()
            else math.nan,
            residual_max=float(np.nanmax(res)) if np.isfinite(res).any() else math.nan,
            residual_median=float(np.nanmedian(res)) if np.isfinite(res).any() else math.nan,
            spread=spread,
            loss_gap_max=float(np.nanmax(gap)) if np.isfinite(gap).any() else math.nan,
            loss_gap_rel=float(np.nanmax(gap)) / scale
            if np.isfinite(gap).any() and scale > 0 else math.nan,
            on_plane=bool(np.isfinite(res).any()
                          and np.nanmax(res) <= ON_PLANE * (spread if spread > 1 else 1.0)),
            left_out=framed_points({n: sel.coords[n] for n in sel.learners})[1],
        )


def honesty_line(sel: Selection, h: Honesty | None = None) -> str:
    """One line for a figure's subtitle: how much of the paths the slice holds, and how far
    they stray from it (the loss gap is in the metrics figure and the page's card)."""
    h = h or honesty(sel)
    parts = []
    if np.isfinite(h.explained):
        parts.append(f"the plane holds {100 * h.explained:.1f}% of the paths' variance")
    elif sel.slice_kind == "exact":
        parts.append("exact parameter plane: nothing is projected")
    if h.on_plane:
        parts.append("every point lies on the plane")
    elif np.isfinite(h.residual_max):
        parts.append(f"off-plane residual ≤ {fmt(h.residual_max)}")
    if h.left_out:
        parts.append(f"left out of the frame's fit, drawn clipped: {', '.join(h.left_out)}")
    return " · ".join(parts)


def honesty_notes(sel: Selection, h: Honesty | None = None) -> list[str]:
    """The metrics figure's notes cell: slice, explained variance, residual, loss gap."""
    h = h or honesty(sel)
    return [f"slice: {sel.slice_label or sel.slice_kind}",
            f"explained variance: {fmt(100 * h.explained)}%" if np.isfinite(h.explained)
            else "explained variance: n/a for this slice",
            f"off-plane residual: max {fmt(h.residual_max)}, median {fmt(h.residual_median)}",
            f"recorded vs plane loss: max gap {fmt(h.loss_gap_max)}",
            *([f"left out of the frame's fit: {far_note(h.left_out)}"] if h.left_out else [])]


def honesty_items(sel: Selection, h: Honesty | None = None) -> list[tuple[str | None, str]]:
    """The page's card as (bold lead or None, text) items, one per line."""
    h = h or honesty(sel)
    items: list[tuple[str | None, str]] = [("Slice: ", sel.slice_label
                                            or slice_name(sel.slice_kind))]
    if np.isfinite(h.explained):
        share = 100 * h.explained
        verdict = "most of" if share >= 80 else ("much of" if share >= 50 else "only part of")
        items.append((f"{share:.1f}% ", f"of the paths' variance lies in this plane: the "
                                        f"picture shows {verdict} the movement."))
    elif sel.slice_kind == "exact":
        items.append((None, "The exact plane of a 2-parameter model: nothing is projected."))
    else:
        items.append((None, "No explained variance for this kind of slice: judge it by the "
                            "residual and the loss gap."))
    if h.on_plane:
        items.append(("Off-plane residual ≈ 0: ", "every recorded point lies on this plane."))
    elif np.isfinite(h.residual_max):
        rel = h.residual_max / h.spread if h.spread and h.spread > 0 else np.nan
        tail = f" ({100 * rel:.0f}% of the paths' extent on the plane)" if np.isfinite(rel) \
            else ""
        items.append(("Off-plane residual ", f"up to {fmt(h.residual_max)}, median "
                                             f"{fmt(h.residual_median)}{tail}."))
    if np.isfinite(h.loss_gap_rel):
        items.append(("Loss gap ", f"recorded vs on the slice: at most {fmt(h.loss_gap_max)} "
                                   f"({100 * h.loss_gap_rel:.0f}% of the loss range)."))
    if h.left_out:
        items.append(("Left out of the frame's fit: ",
                      f"{far_note(h.left_out)}; drawn clipped at the frame's edge and marked ◆."))
    return items


def meta_plane_note(meta: MetaSelection) -> str:
    """'θ0 stays on this plane', 'θ0 lies up to … off this plane', or '' (no residuals)."""
    res = _concat([meta.residual[n] for n in meta.learners], np.array([np.nan]))
    pts = _concat([meta.coords[n] for n in meta.learners], np.full((1, 2), np.nan))
    with quiet():
        if not np.isfinite(res).any():
            return ""
        spread = float(np.nanmax(np.nanmax(pts, 0) - np.nanmin(pts, 0)))
        top = float(np.nanmax(res))
    return "θ0 stays on this plane" if top <= ON_PLANE * max(1.0, spread) \
        else f"θ0 lies up to {fmt(top)} off this plane"
