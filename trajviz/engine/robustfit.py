"""The rows a slice is fitted to, so that one learner whose path explodes or jumps far
cannot take the fit over (the rule: ``trajviz.data.outliers``): ``robust_rows`` gives
``pca_slice`` its row weights and says which learners were left out and why.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trajviz.data.outliers import (
    FAR_FACTOR,
    equal_weights,
    far_groups,
    far_note,
    group_sq_distance,
    spreads,
)
from trajviz.engine.columns import _as_array, _block_to_numpy, finite_rows


@dataclass(frozen=True)
class RobustFit:
    """Which rows a slice is fitted to: weights [N] (0: left out; every learner kept
    weighs the same in total), far {learner: its spread over the others' median} (left
    out: see ``trajviz.data.outliers``), spread {learner: its largest distance from its
    median point}."""

    weights: np.ndarray
    far: dict[str, float]
    spread: dict[str, float]

    def note(self) -> str:
        """'' or '; left out of the fit: fomaml (its path reached …)' for a slice's label."""
        return f"; left out of the fit: {far_note(self.far)}" if self.far else ""


def robust_rows(points, groups, factor: float = FAR_FACTOR) -> RobustFit:
    """Weights for fitting a slice to ``points`` [N, P] whose rows belong to ``groups`` [N]
    (learner names): rows with a non-finite entry and learners whose paths went more
    than ``factor`` times as far as the others' are left out, the rest weigh the same
    per learner. Column block by column block (at most ~64 MiB of float64 scratch)."""
    x = _as_array(points)
    n = x.shape[0]
    labels = np.asarray(groups, dtype=object)
    if labels.shape != (n,):
        raise ValueError(f"groups must name each of the {n} rows, got shape {labels.shape}")
    cols, valid = finite_rows(x)
    sq = np.zeros(n)
    for c in cols:
        sq += group_sq_distance(_block_to_numpy(x[:, c]), labels, valid)
    spread = spreads(sq, labels, valid)
    far = far_groups(spread, factor)
    keep = valid & ~np.isin(labels, list(far))
    return RobustFit(equal_weights(labels, keep), far, spread)


__all__ = ["RobustFit", "robust_rows"]
