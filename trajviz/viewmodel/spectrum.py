"""The spectral-density panel and the curvature panels' words (view-model, numpy only).

A run stores, per learner, the Hessian's spectral measure at some steps
(``diagnostics["spectrum_nodes"/"spectrum_weights"]`` [T, S, M] at
``spectrum_steps``; ``trajviz.engine.curvature_path``). Here it becomes what the
spectrum panel draws: one smoothed density per learner and kept step on one
fixed eigenvalue grid, and for every inner step the kept step the panel shows
(the latest at or before it), so the browser picks a curve per frame with no
server call. ``lambda_min_line`` / ``trace_line`` are the lines under the λ_min
and trace panels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from trajviz.data.run import Run
from trajviz.viewmodel.diagnosis import Diagnosis, diagnostic_values, grouped
from trajviz.viewmodel.labels import fmt
from trajviz.viewmodel.straight import Straight, straight_line_text

GRID = 160  # density grid points
SMOOTH = 0.012  # Gaussian kernel width, as a fraction of the eigenvalue axis span
FLOOR = 1e-4  # densities below this fraction of the peak are drawn at it (log axis)
#: Half-width of a drawn error bar in units of the stored error: the Ritz residual bounds
#: the distance to an eigenvalue; a trace's standard error is drawn ±2 (about 95%).
BAR = {"lambda_min_err": 1.0, "hessian_trace_err": 2.0}

#: What a negative λ_min means, in words (the panel's line; the ``?`` text says more).
NEGATIVE_MEANING = ("below 0 the loss curves downward along some direction: the path is at "
                    "a saddle or on a ridge, not in a bowl, and can still fall sideways")


@dataclass(frozen=True)
class SpectrumView:
    """grid [G] eigenvalues; steps [S] the kept steps; density {learner: [S, G]} (mean over
    the chosen tasks, floored at ``floor``); index [K+1] the row of ``steps`` shown at each
    inner step; y_range (log10 lo, hi); exact: whether every density is exact."""

    grid: np.ndarray
    steps: np.ndarray
    density: dict[str, np.ndarray]
    index: np.ndarray
    y_range: tuple[float, float]
    floor: float
    exact: bool

    def label(self, k: int) -> str:
        """What the panel says it shows at inner step ``k``."""
        shown = int(self.steps[self.index[k]])
        return f"step {shown}" if shown == k else f"step {shown} (cursor {k})"

    def label_y(self) -> float:
        """Where the label stands: near the top of the fixed density axis."""
        return float(10 ** (self.y_range[1] - 0.04 * (self.y_range[1] - self.y_range[0])))


def _measure(run: Run, learner: str):
    d = run.learners[learner].diagnostics
    if "spectrum_nodes" not in d:
        return None
    return (np.asarray(d["spectrum_steps"], float)[0].astype(np.int64),
            np.asarray(d["spectrum_nodes"], float), np.asarray(d["spectrum_weights"], float))


def spectrum_view(run: Run, learners: Sequence[str], task: int | None) -> SpectrumView | None:
    """The spectrum panel's data for ``learners`` on ``task`` (None: the task mean, a
    mixture of the tasks' densities); None when no drawn learner recorded a spectrum."""
    got = {n: m for n in learners if (m := _measure(run, n)) is not None}
    if not got:
        return None
    rows = slice(None) if task is None else slice(task, task + 1)
    nodes = np.concatenate([m[1][rows][np.isfinite(m[1][rows])] for m in got.values()])
    if not nodes.size:
        return None
    lo, hi = float(nodes.min()), float(nodes.max())
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    grid = np.linspace(lo, hi, GRID)
    sigma = SMOOTH * (hi - lo)
    density = {}
    for n, (steps, x, w) in got.items():
        x, w = x[rows], np.where(np.isfinite(x[rows]), w[rows], 0.0)
        x = np.where(np.isfinite(x), x, 0.0)
        dens = np.stack([np.einsum("tm,tmg->tg", w[:, j], np.exp(
            -0.5 * ((grid[None, None, :] - x[:, j, :, None]) / sigma) ** 2))
            for j in range(x.shape[1])], 1) / (sigma * np.sqrt(2 * np.pi))  # [T, S, G]
        alive = (w.sum(-1) > 0)[..., None]  # tasks with a measure at that step
        density[n] = (dens * alive).sum(0) / np.maximum(alive.sum(0), 1)
    steps = next(iter(got.values()))[0]
    peak = max(float(d.max()) for d in density.values()) or 1.0
    floor = FLOOR * peak
    density = {n: np.maximum(d, floor) for n, d in density.items()}
    index = np.searchsorted(steps, np.arange(run.steps + 1), side="right") - 1
    size = (run.info.get("diagnostics") or {}).get("curvature", {})
    exact = bool(size.get("exact")) if isinstance(size, dict) else False
    return SpectrumView(grid, steps, density, np.maximum(index, 0),
                        (float(np.log10(floor)), float(np.log10(peak)) + 0.8), floor, exact)


def method_line(run: Run) -> str:
    """How the curvature numbers were computed, from ``run.info["diagnostics"]["curvature"]``."""
    c = (run.info.get("diagnostics") or {}).get("curvature")
    if not isinstance(c, dict) or not c:
        return ""
    if c.get("exact"):
        return (f"Exact: the Hessian formed and diagonalised (P = {c.get('param_count')} ≤ "
                f"{c.get('exact_max')}).")
    return (f"Estimated by Lanczos (P = {c.get('param_count')}: {c.get('probes')} probes × "
            f"{c.get('lanczos')} steps); bars: ±2 standard errors (trace), residual (λ_min).")


def lambda_min_line(series: dict[str, np.ndarray], learners: Sequence[str], task: int | None) -> str:
    """Under the λ_min panel: which drawn paths go negative, when, and what it means."""
    parts = {}
    for n in learners:
        neg = np.flatnonzero(np.asarray(series[n], float) < 0)
        if neg.size:
            parts[n] = f"steps {neg[0]}–{neg[-1]}" if neg.size > 1 else f"step {neg[0]}"
    what = "on this task" if task is not None else "in the task mean"
    head = (f"λ_min < 0 {what}: {grouped(parts, learners)}." if parts
            else f"λ_min ≥ 0 everywhere {what}: every path sits in bowls.")
    return f"{head} {NEGATIVE_MEANING[0].upper()}{NEGATIVE_MEANING[1:]}."


def trace_line(series: dict[str, np.ndarray], learners: Sequence[str]) -> str:
    """Under the trace panel: each drawn path's trace at its start and end."""
    parts = []
    for n in learners:
        v = np.asarray(series[n], float)
        ok = np.flatnonzero(np.isfinite(v))
        if ok.size:
            parts.append(f"{n} {fmt(v[ok[0]])} → {fmt(v[ok[-1]])}")
    return ("Total curvature (sum of all eigenvalues): " + "; ".join(parts) + "."
            if parts else "")


def spectrum_line(view: SpectrumView | None, run: Run) -> str:
    """Under the spectrum panel: what it shows and how it was computed."""
    if view is None:
        return ""
    kept = "every step" if len(view.steps) == run.steps + 1 else \
        f"{len(view.steps)} steps (the latest at or before the cursor is shown)"
    c = (run.info.get("diagnostics") or {}).get("curvature") or {}
    how = "" if not c else f"Exact (P = {c.get('param_count')})." if c.get("exact") else \
        (f"Stochastic Lanczos quadrature (P = {c.get('param_count')}, {c.get('probes')} probes × "
         f"{c.get('lanczos')} steps).")
    return f"x: eigenvalue λ (grey line: 0); y: density, log scale. Kept at {kept}. {how}".strip()


def error_bars(run: Run, name: str, learners: Sequence[str], task: int | None) -> dict[str, np.ndarray]:
    """{learner: [K+1]} the stored error of diagnostic ``name`` (one task's, or for the task
    mean the standard error of the mean of independent estimates, √Σe²/n)."""
    out = {}
    for n in learners:
        e = diagnostic_values(run, n, name)
        if e is None:
            continue
        if task is not None:
            out[n] = e[task]
            continue
        count = np.isfinite(e).sum(0)
        out[n] = np.where(count > 0, np.sqrt(np.nansum(e ** 2, 0)) / np.maximum(count, 1), np.nan)
    return out


def with_curvature(diag: Diagnosis, run: Run, panels, learners: Sequence[str], task: int | None,
                   spectrum: SpectrumView | None, line: Straight) -> Diagnosis:
    """``diag`` with the curvature panels' lines and error bars, the spectrum panel marked
    missing when the run kept no density, and the straight line's text."""
    lines, errors, missing = dict(diag.lines), dict(diag.errors), list(diag.missing)  # errors: half-widths
    for p in panels:
        if p.error and p.key not in missing:
            errors[p.key] = {n: BAR.get(p.error, 1.0) * e
                             for n, e in error_bars(run, p.error, learners, task).items()}
    if "lambda_min" in diag.series and "lambda_min" not in missing:
        lines["lambda_min"] = lambda_min_line(diag.series["lambda_min"], learners, task)
    if "trace" in diag.series and "trace" not in missing:
        lines["trace"] = " ".join(t for t in (trace_line(diag.series["trace"], learners),
                                              method_line(run)) if t)
    if spectrum is None:
        missing.append("spectrum")
        lines["spectrum"] = "spectral density: not recorded in this run"
    else:
        lines["spectrum"] = spectrum_line(spectrum, run)
    if not line.recorded:
        missing.append("straight")
        lines["straight"] = "straight line θ0 → θ_K: not recorded in this run"
    else:
        lines["straight"] = straight_line_text(line, learners, task)
    return replace(diag, lines=lines, errors=errors, missing=tuple(dict.fromkeys(missing)))
