"""Stability thresholds, threshold crossings and divergence summaries (numpy only).

The data side (view-model, figures, app) reads a run's per-step diagnostics
(``LearnerRecord.diagnostics``) and the run-level facts in
``run.info["diagnostics"]`` and ``run.info["divergence"]``; everything it needs
to *interpret* them lives here, without torch.

Edge of stability (Cohen et al., ICLR 2021; classic quadratic analysis): on a
quadratic with curvature λ, an optimiser's iteration is stable only while λ
stays below a threshold set by its step size. Above it the component along
the top eigenvector flips sign every step and grows: the path zig-zags.

=========================  ===================================  =========================
inner optimiser            threshold                            compared with
=========================  ===================================  =========================
sgd                        2 / lr                               ``sharpness``
momentum (heavy ball)      (2 + 2β) / lr                        ``sharpness``
momentum, nesterov=True    (2 + 2β) / ((1 + 2β) · lr)           ``sharpness``
adam                       (2 + 2β1) / ((1 − β1) · lr)          ``preconditioned_sharpness``
=========================  ===================================  =========================

Heavy ball (torch's form, b ← βb + g, θ ← θ − lr·b) on ½λx² has the
iteration matrix [[1 − lr·λ, −lr·β], [λ, β]]; an eigenvalue reaches −1 at
lr·λ = 2 + 2β. Torch's Nesterov step g + β·b gives [[1 − lr·λ(1+β), −lr·β²], [λ, β]],
which reaches −1 at lr·λ = (2 + 2β)/(1 + 2β). Adam has no fixed threshold on
the raw Hessian; following Cohen et al. 2022 ("Adaptive gradient methods at
the edge of stability") its threshold applies to the *preconditioned*
sharpness λ_max(P⁻¹H), P = (1 − β1^t)·diag(√v̂ + ε) (the frozen-preconditioner
analysis of momentum with step lr/(1 − β1)); trajviz records both.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DIAGNOSTICS = ("grad_norm", "update_norm", "sharpness", "preconditioned_sharpness")
DEFAULT_DIVERGENCE_FACTOR = 1e6


def stability_threshold(optimizer: str, hyper: Mapping[str, float]) -> tuple[float, str, str]:
    """(threshold, the diagnostic it applies to, the rule in words) for an inner optimiser.

    optimizer: "sgd", "momentum" or "adam"; hyper: its settings (lr, beta,
    nesterov, beta1), e.g. ``dict(InnerOptimizer.hyper)``.
    """
    lr = float(hyper["lr"])
    if not lr > 0:
        raise ValueError(f"stability threshold needs lr > 0, got {lr}")
    if optimizer == "sgd":
        return 2.0 / lr, "sharpness", "2/lr"
    if optimizer == "momentum":
        beta = float(hyper.get("beta", 0.0))
        if hyper.get("nesterov", 0.0):
            return (2 + 2 * beta) / ((1 + 2 * beta) * lr), "sharpness", "(2+2β)/((1+2β)·lr) (Nesterov)"
        return (2 + 2 * beta) / lr, "sharpness", "(2+2β)/lr (heavy ball)"
    if optimizer == "adam":
        beta1 = float(hyper.get("beta1", 0.9))
        return ((2 + 2 * beta1) / ((1 - beta1) * lr), "preconditioned_sharpness",
                "(2+2β1)/((1−β1)·lr) on the preconditioned sharpness λ_max(P⁻¹H)")
    raise ValueError(f"no stability threshold for inner optimizer {optimizer!r}; "
                     "accepted: 'sgd', 'momentum', 'adam'")


def crossings(values: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """First step at which each path's diagnostic exceeds its threshold, or −1.

    values: [..., K+1] (e.g. a learner's ``diagnostics["sharpness"]`` [T, K+1]);
    threshold: a number or an array broadcastable to [...]. NaN entries (steps
    not evaluated, or after divergence) never count. Returns int64 [...].
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1:
        raise ValueError(f"values must be [..., K+1], got shape {v.shape}")
    t = np.asarray(threshold, dtype=np.float64)[..., None]
    with np.errstate(invalid="ignore"):
        above = v > t  # NaN > t is False
    return np.where(above.any(axis=-1), above.argmax(axis=-1), -1).astype(np.int64)


def subsample_steps(total: int, points: int) -> np.ndarray:
    """Indices 0..total spread evenly, first and last always included: [min(points, total+1)]."""
    return np.unique(np.round(np.linspace(0, total, min(points, total + 1))).astype(np.int64))


def good_prefix(diverged_at: np.ndarray, steps: int) -> np.ndarray:
    """[T, K+1] bool: point i of path t comes before its divergence (all True if it never diverged).

    diverged_at: [T] first bad step or −1; steps: K.
    """
    d = np.asarray(diverged_at).reshape(-1)
    stop = np.where(d >= 0, d, steps + 1)
    return np.arange(steps + 1)[None, :] < stop[:, None]


def divergence_report(diverged_at: Mapping[str, np.ndarray], task_ids: np.ndarray,
                      factor: float) -> dict[str, Any]:
    """The run-level divergence record (JSON-ready), for one note per run.

    diverged_at: {learner: [T]}; task_ids: [T]. Returns
    ``{"factor", "tasks", "learners": {learner: {"count", "tasks", "steps"}}}``
    where ``tasks`` / ``steps`` list the diverged tasks' ids and first bad steps
    (learners with no diverged task are listed with count 0 and empty lists).
    """
    ids = np.asarray(task_ids).reshape(-1)
    out: dict[str, Any] = {"factor": float(factor), "tasks": int(ids.size), "learners": {}}
    for name, d in diverged_at.items():
        d = np.asarray(d).reshape(-1)
        bad = np.flatnonzero(d >= 0)
        out["learners"][name] = {"count": int(bad.size), "tasks": ids[bad].tolist(),
                                 "steps": d[bad].astype(int).tolist()}
    return out
