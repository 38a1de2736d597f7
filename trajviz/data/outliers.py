"""Which learners' paths went so far that a picture fitted to them would show nothing else.

One learner whose path explodes or jumps far away (FOMAML's path once reached a length
of ~4e4 while the others stayed within a few units) takes over any fit that treats
every point alike: PCA puts its first axis along the jump and the extent spans it, so
every other learner sits on one dot. The rule here is shared by the slice fit
(``engine.slices.robust_rows``, in P dimensions, column block by column block) and the
page's framing (``viewmodel.framing``, on the plane):

- a learner's *spread* is the largest distance of its points from its own
  coordinate-wise median point (its paths' reach, wherever they start);
- a learner is *far* when its spread is more than ``FAR_FACTOR`` times the median
  spread of the other learners (leave-one-out, so two learners are judged fairly);
  nothing is judged with fewer than two learners or when the others do not move;
- the learners that are not far are weighted equally (``equal_weights``).

``FAR_FACTOR`` is large on purpose: a baseline whose paths are ten or a hundred times
longer than Leap's is the comparison the picture exists to show, not an outlier.
Numpy only.
"""
from __future__ import annotations

import numpy as np

FAR_FACTOR = 1000.0


def group_sq_distance(block: np.ndarray, groups: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Squared distance of each valid row of ``block`` [N, D] from its group's
    coordinate-wise median over ``block``'s columns -> [N] (0 for invalid rows). Sum it
    over column blocks for the distance in all D."""
    out = np.zeros(len(block))
    for g in np.unique(groups[valid]):
        rows = valid & (groups == g)
        y = block[rows]
        out[rows] = ((y - np.median(y, axis=0)) ** 2).sum(axis=1)
    return out


def spreads(sq_distance: np.ndarray, groups: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """{group: its largest distance from its median point} from ``group_sq_distance`` totals."""
    return {str(g): float(np.sqrt(sq_distance[valid & (groups == g)].max()))
            for g in dict.fromkeys(groups[valid].tolist())}


def far_groups(spread: dict[str, float], factor: float = FAR_FACTOR) -> dict[str, float]:
    """{far group: its spread over the others' median spread} (see the module docstring)."""
    far = {}
    for name, s in spread.items():
        others = [v for k, v in spread.items() if k != name]
        if not others:
            continue
        ref = float(np.median(others))
        if ref > 0 and s > factor * ref:
            far[name] = s / ref
    return far


def equal_weights(groups: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """[N] row weights: every kept group's rows share 1/G equally (G kept groups); 0 elsewhere."""
    weights = np.zeros(len(groups))
    names = list(dict.fromkeys(groups[keep].tolist()))
    for g in names:
        rows = keep & (groups == g)
        weights[rows] = 1.0 / (len(names) * rows.sum())
    return weights


def far_note(far: dict[str, float]) -> str:
    """'fomaml (its path reached 1.2e+04× as far as the others')', or '' for none."""
    return ", ".join(f"{name} (its path reached {ratio:.2g}× as far as the others')"
                     for name, ratio in far.items())


def plane_outliers(coords: dict[str, np.ndarray], factor: float = FAR_FACTOR
                   ) -> tuple[np.ndarray, dict[str, float]]:
    """On the plane: the finite points [M, 2] of the learners that are not far, and the far
    ones {learner: ratio}. ``coords``: {learner: [..., 2]}."""
    parts = {n: np.asarray(c, dtype=np.float64).reshape(-1, 2) for n, c in coords.items()}
    parts = {n: c[np.isfinite(c).all(axis=1)] for n, c in parts.items()}
    parts = {n: c for n, c in parts.items() if len(c)}
    if not parts:
        return np.empty((0, 2)), {}
    points = np.concatenate(list(parts.values()))
    groups = np.concatenate([np.full(len(c), n, dtype=object) for n, c in parts.items()])
    valid = np.ones(len(points), dtype=bool)
    far = far_groups(spreads(group_sq_distance(points, groups, valid), groups, valid), factor)
    kept = [c for n, c in parts.items() if n not in far]
    return (np.concatenate(kept) if kept else np.empty((0, 2))), far


__all__ = ["FAR_FACTOR", "equal_weights", "far_groups", "far_note", "group_sq_distance",
           "plane_outliers", "spreads"]
