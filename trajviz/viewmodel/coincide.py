"""Paths that coincide on the plane (view-model, numpy only): one would hide the other.

Two learners' paths coincide when, at every step, their projected points are
closer than ``REL_TOL`` of the largest extent of all the selected paths; the
page lists such pairs in its notes, so an unseen learner is not taken for absent.
"""
from __future__ import annotations

import numpy as np

REL_TOL = 0.01


def coinciding(coords: dict[str, np.ndarray], rel_tol: float = REL_TOL) -> list[tuple[str, str]]:
    """Pairs (a, b), in ``coords`` order, whose paths [K+1, 2] stay within ``rel_tol`` ×
    the spread of every path at each step where both are finite (at least one step)."""
    names = list(coords)
    pts = [np.asarray(coords[n], float) for n in names]
    every = np.concatenate([p[np.isfinite(p).all(1)] for p in pts]) if pts else np.empty((0, 2))
    if len(every) < 2:
        return []
    spread = float(np.max(every.max(0) - every.min(0)))
    if not spread > 0:
        return []
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = pts[i], pts[j]
            n = min(len(a), len(b))
            both = np.isfinite(a[:n]).all(1) & np.isfinite(b[:n]).all(1)
            if not both.any():
                continue
            gap = np.linalg.norm(a[:n][both] - b[:n][both], axis=1).max()
            if gap <= rel_tol * spread:
                pairs.append((names[i], names[j]))
    return pairs


def coincide_notes(coords: dict[str, np.ndarray]) -> list[str]:
    """One note per group of learners whose paths coincide, saying how to see each."""
    group = {n: {n} for n in coords}
    for a, b in coinciding(coords):
        merged = group[a] | group[b]
        for n in merged:
            group[n] = merged
    notes, seen = [], set()
    for n in coords:
        g = [m for m in coords if m in group[n]]
        if len(g) < 2 or g[0] in seen:
            continue
        seen.update(g)
        who = ", ".join(g[:-1]) + f" and {g[-1]}"
        notes.append(f"{who} take the same path on this slice (within {REL_TOL:.0%} of the "
                     "view): one hides another; double-click a learner to show it alone")
    return notes
