"""A small synthetic ``Run`` for the figure, export and app tests (numpy only).

Held-out tasks are rotated, ill-conditioned quadratic bowls
f_τ(θ) = ½(θ − c_τ)ᵀA_τ(θ − c_τ) in P dimensions, and every path is real
gradient descent on them, so the surface, the recorded losses, the plane
losses and the projections all agree. Meta-training paths move θ0 from one
shared start towards each learner's final θ0, and the held-out curves
against meta-step are computed by running the same descent from it.

``make_run()`` (P = 2) has a "pca" and an "exact" view; ``make_run(n_params=3)``
has "pca" and "random" views with a non-zero off-plane residual.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trajviz.data.run import LearnerRecord, Run, Slice, Surface, View

LEARNERS = ("leap", "reptile", "random")
# Where each learner's meta-trained θ0 ends up, as a fraction of the way from
# the shared start to the mean task minimiser (leap goes furthest).
_REACH = {"leap": 0.95, "reptile": 0.6, "random": 0.0, "fomaml": 0.7, "maml": 0.8, "multitask": 0.5}


def bowls(n_tasks: int, n_params: int, seed: int = 0, condition: float = 8.0):
    """Task matrices A [T, P, P] and minimisers c [T, P]."""
    rng = np.random.default_rng(seed)
    eig = np.geomspace(1.0, condition, n_params)
    q, r = np.linalg.qr(rng.normal(size=(n_tasks, n_params, n_params)))
    rot = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    a = np.einsum("tij,j,tkj->tik", rot, eig, rot)
    c = 1.0 + 0.6 * rng.normal(size=(n_tasks, n_params))
    return a, c


def loss(a: np.ndarray, c: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """f_τ at theta [T, ..., P] -> [T, ...] (A [T,P,P], c [T,P])."""
    d = theta - c.reshape(c.shape[0], *([1] * (theta.ndim - 2)), c.shape[1])
    ad = np.einsum("tij,t...j->t...i", a, d)
    return 0.5 * np.einsum("t...i,t...i->t...", d, ad)


def descend(a, c, theta0, steps: int, lr: float, momentum: float = 0.5):
    """Heavy-ball descent from theta0 [P] on each task: params [T, K+1, P], losses, grads.

    The momentum makes some paths overshoot, so monotonicity is not always 1."""
    t, p = c.shape
    params = np.empty((t, steps + 1, p))
    params[:, 0] = theta0
    velocity = np.zeros((t, p))
    for k in range(steps):
        g = np.einsum("tij,tj->ti", a, params[:, k] - c)
        velocity = momentum * velocity - lr * g
        params[:, k + 1] = params[:, k] + velocity
    grads = np.einsum("tij,tkj->tki", a, params - c[:, None, :])
    return params, loss(a, c, params), grads


def running(params: np.ndarray, losses: np.ndarray) -> dict[str, np.ndarray]:
    """The running metrics of trajviz.engine.metrics.running_metrics, in numpy."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _running(params, losses)


def _running(params: np.ndarray, losses: np.ndarray) -> dict[str, np.ndarray]:
    delta = np.diff(params, axis=-2)
    step = np.linalg.norm(delta, axis=-1)
    df = np.diff(losses, axis=-1)
    lead = losses.shape[:-1]
    zero = np.zeros((*lead, 1))
    nan = np.full((*lead, 1), np.nan)
    dot = np.einsum("...i,...i->...", delta[..., :-1, :], delta[..., 1:, :])
    cos = np.clip(dot / (step[..., :-1] * step[..., 1:]), -1, 1)
    falls = np.cumsum(df < 0, axis=-1) / np.arange(1, df.shape[-1] + 1)
    return {
        "cumulative_length": np.concatenate([zero, np.cumsum(np.hypot(step, df), -1)], -1),
        "cumulative_param_length": np.concatenate([zero, np.cumsum(step, -1)], -1),
        "cosine": np.concatenate([nan, nan, cos], -1)[..., : losses.shape[-1]],
        "monotone_fraction": np.concatenate([nan, falls], -1),
    }


def path_metrics(params: np.ndarray, losses: np.ndarray) -> dict[str, np.ndarray]:
    """The summary metrics the app shows, as trajviz.engine.metrics.path_metrics defines them."""
    run = running(params, losses)
    k = losses.shape[-1] - 1
    cos = run["cosine"][..., 2:]
    return {
        "length": run["cumulative_length"][..., -1],
        "param_length": run["cumulative_param_length"][..., -1],
        "oscillation": np.mean(cos < 0, axis=-1),
        "mean_cosine": np.mean(cos, axis=-1),
        "monotonicity": run["monotone_fraction"][..., -1],
        "auc": np.trapezoid(losses, axis=-1) / k,
        "final_loss": losses[..., -1],
        "steps_to_eps": np.zeros(losses.shape[:-1]),
    }


def _extent(coords: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    c = coords.reshape(-1, 2)
    c = c[np.isfinite(c).all(axis=1)]
    lo, hi = c.min(0), c.max(0)
    span = hi - lo
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _project(origin, basis, points):
    y = points - origin
    coords = y @ basis.T
    residual = np.linalg.norm(y - coords @ basis, axis=-1)
    return coords, residual


def _view(name, kind, origin, basis, ev, label, a, c, records, resolution) -> View:
    coords, residual, meta_coords, meta_residual = {}, {}, {}, {}
    for n, r in records.items():
        coords[n], residual[n] = _project(origin, basis, r.params)
        meta_coords[n], meta_residual[n] = _project(origin, basis, r.meta_path)
    every = np.concatenate([v.reshape(-1, 2) for v in [*coords.values(), *meta_coords.values()]])
    extent = _extent(every)
    alpha = np.linspace(extent[0], extent[1], resolution)
    beta = np.linspace(extent[2], extent[3], resolution)
    grid = np.stack(np.meshgrid(alpha, beta), -1)  # [B, A, 2]
    theta = origin + grid @ basis  # [B, A, P]
    surf = loss(a, c, np.broadcast_to(theta, (len(c), *theta.shape)))  # [T, B, A]
    plane = {n: loss(a, c, origin + coords[n] @ basis) for n in records}
    slc = Slice(kind, origin, basis, ev, extent, label)
    surface = Surface(alpha, beta, surf.astype(np.float32), surf.mean(0).astype(np.float32),
                      np.arange(len(c)))
    return View(name, slc, surface, coords, residual, plane, meta_coords, meta_residual)


def make_run(*, learners=LEARNERS, n_tasks: int = 4, steps: int = 10, n_params: int = 2,
             meta_steps: int = 200, meta_points: int = 21, lr: float = 0.15,
             resolution: int = 41, seed: int = 0, run_id: str = "fixture-run",
             diverge: str | None = None) -> Run:
    """A realistic synthetic run (see the module docstring).

    ``diverge`` names a learner whose last task's path turns non-finite
    half-way, as a diverged inner loop does.
    """
    a, c = bowls(n_tasks, n_params, seed)
    target = c.mean(0)
    start = target + np.array([-2.2, 1.8, 1.0][:n_params])
    meta_steps_arr = np.unique(np.round(np.linspace(0, meta_steps, meta_points)).astype(int))
    eval_steps = np.arange(0, meta_steps + 1, max(1, meta_steps // 10))
    records = {}
    for n in learners:
        reach = _REACH.get(n, 0.5)
        s = meta_steps_arr / meta_steps
        bend = np.outer(np.sin(np.pi * s) * 0.4 * reach, np.eye(n_params)[-1])
        meta_path = start + np.outer(reach * (1 - (1 - s) ** 2), target - start) + bend
        theta0 = meta_path[-1]
        params, losses, grads = descend(a, c, theta0, steps, lr)
        diverged_at = np.full(n_tasks, -1)
        if n == diverge:
            half = steps // 2
            params[-1, half:] = np.nan
            losses[-1, half:] = np.inf if half else np.nan
            grads[-1, half:] = np.nan
            diverged_at[-1] = half
        evals = {key: [] for key in ("length", "auc", "final_loss", "oscillation")}
        for e in eval_steps:
            theta = np.array([np.interp(e, meta_steps_arr, meta_path[:, j])
                              for j in range(n_params)])
            m = path_metrics(*descend(a, c, theta, steps, lr)[:2])
            for key, values in evals.items():
                values.append(float(np.nanmean(m[key])))
        records[n] = LearnerRecord(
            name=n, theta0=theta0.astype(np.float32), meta_path_steps=meta_steps_arr,
            meta_path=meta_path.astype(np.float32), eval_steps=eval_steps,
            evals={k: np.asarray(v) for k, v in evals.items()},
            params=params.astype(np.float32), losses=losses.astype(np.float32),
            grads=grads.astype(np.float32), query_losses=(1.1 * losses).astype(np.float32),
            diverged_at=diverged_at, metrics=path_metrics(params, losses),
            running=running(params, losses))

    points = np.concatenate([r.params.reshape(-1, n_params) for r in records.values()])
    points = points[np.isfinite(points).all(1)]
    mean = points.mean(0)
    _, s, vt = np.linalg.svd(points - mean, full_matrices=False)
    ev = (s[:2] ** 2) / np.sum(s ** 2)
    views = {"pca": _view("pca", "pca", mean, vt[:2], ev,
                          "PCA of all held-out paths, origin at the mean of all path points",
                          a, c, records, resolution)}
    if n_params == 2:
        views["exact"] = _view("exact", "exact", np.zeros(2), np.eye(2), np.full(2, np.nan),
                               "the parameter plane itself (nothing projected)",
                               a, c, records, resolution)
    else:
        q, _ = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(n_params, 2)))
        views["random"] = _view("random", "random", mean, q.T, np.full(2, np.nan),
                                "random directions, origin at the mean of all path points",
                                a, c, records, resolution)
    config = {"name": "fixture", "family": "quadratic", "learners": list(learners),
              "inner": {"optimizer": "sgd", "lr": lr, "steps": steps},
              "outer": {"meta_steps": meta_steps}, "heldout_tasks": n_tasks, "seed": seed}
    info = {"schema_version": 1, "seed": seed, "created": "2025-01-01T00:00:00+00:00",
            "model": "point", "param_count": n_params,
            "param_names": [f"theta.{i}" for i in range(n_params)]}
    task_info = {"minimiser": c.astype(np.float32), "scale": np.linspace(1, 2, n_tasks)}
    return Run(run_id=run_id, config=config, info=info, task_ids=np.arange(n_tasks),
               task_info=task_info, learners=records, views=views)


def write_run_dir(runs_dir: Path, run: Run | None = None) -> Path:
    """``run`` (default ``make_run()``) written with the real store; returns its folder."""
    from trajviz.store import write_run
    return write_run(run if run is not None else make_run(), runs_dir)


def write_broken_run(runs_dir: Path, run_id: str = "broken-run") -> Path:
    """A run folder whose run.json is not valid JSON."""
    path = Path(runs_dir) / run_id
    path.mkdir(parents=True)
    (path / "run.json").write_text("{ this is not json", encoding="utf-8")
    return path


def write_empty_run(runs_dir: Path, run_id: str = "empty-run") -> Path:
    """A run folder with a valid run.json that holds no learners and no arrays."""
    path = Path(runs_dir) / run_id
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"schema_version": 1, "run_id": run_id}),
                                   encoding="utf-8")
    return path
