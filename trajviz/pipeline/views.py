"""Views of a run: fit each slice to the recorded paths, project them, evaluate the surface.

``build_view`` turns the learners' records into a ``View``: the slice of the
configured kind fitted to every held-out path point before divergence, the
projected paths with their residuals and the plane's losses, and the surface.
"""
from __future__ import annotations

import numpy as np
import torch

from trajviz.data.outliers import plane_outliers
from trajviz.data.run import LearnerRecord, View, ViewPaths
from trajviz.data.stability import good_prefix
from trajviz.engine.curvature import mean_loss_eigenvectors
from trajviz.engine.robustfit import robust_rows
from trajviz.engine.slices import (
    Slice,
    exact_slice,
    hessian_slice,
    pca_slice,
    points_mean,
    project,
    random_slice,
    three_point_slice,
    with_extent,
)
from trajviz.engine.surface import evaluate_surface, plane_losses
from trajviz.engine.work import DEFAULT_WORK, Work
from trajviz.pipeline.record import ScratchRows, concat_rows
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.spec.config import ExperimentConfig


def _points(records: dict[str, LearnerRecord], points: dict | None) -> dict:
    """Each learner's held-out path points [T, K+1, P]: ``points`` (e.g. ``record.ScratchRows``
    on a scratch file) or the records' own params."""
    return points if points is not None else {n: r.params for n, r in records.items()}


def slice_origin(name: str, records: dict[str, LearnerRecord],
                 points: dict | None = None) -> tuple[np.ndarray | None, str]:
    """The configured origin [P] (None: the mean of the points) and how to say it."""
    if name == "mean":
        return None, "the mean of all path points"
    if name.startswith("final:"):
        learner = name.removeprefix("final:")
        rec, x = records[learner], _points(records, points)[learner]
        last = np.zeros(x.shape[:-1], dtype=bool)
        last[rec.diverged_at < 0, -1] = True
        finals = _rows(x, last)
        if not len(finals):
            raise ValueError(f"slices.origin {name!r}: every held-out path of {learner} diverged")
        return finals.mean(axis=0), f"{learner}'s mean final point"
    return records[name].theta0, f"{name}'s θ0"


def _rows(x, keep: np.ndarray) -> np.ndarray:
    """x[keep] as an array [n, P], for an array or ``ScratchRows``."""
    return x.select(keep).read() if isinstance(x, ScratchRows) else x[keep]


def good_path_points(records: dict[str, LearnerRecord], points: dict | None = None):
    """[N, P] every learner's held-out path points before divergence (finite): an array, or
    ``ScratchRows`` when ``points`` are."""
    return good_path_groups(records, points)[0]


def good_path_groups(records: dict[str, LearnerRecord], points: dict | None = None):
    """``good_path_points`` and the learner each row belongs to, [N] names. On a scratch
    file the rows are not read here: the fit leaves out rows with a non-finite entry."""
    x = _points(records, points)
    masks = {n: good_prefix(r.diverged_at, x[n].shape[1] - 1) for n, r in records.items()}
    if all(isinstance(x[n], ScratchRows) for n in records):
        groups = np.concatenate([np.full(int(masks[n].sum()), n, dtype=object) for n in records])
        return concat_rows([x[n].select(masks[n]) for n in records]), groups
    parts = {n: x[n][masks[n]] for n in records}
    parts = {n: v[np.isfinite(v).all(axis=1)] for n, v in parts.items()}
    groups = np.concatenate([np.full(len(v), n, dtype=object) for n, v in parts.items()])
    return np.concatenate(list(parts.values())), groups


def build_slice(kind: str, config: ExperimentConfig, problem: Problem,
                records: dict[str, LearnerRecord], heldout: TaskSet | None = None,
                points: dict | None = None) -> Slice:
    """The slice of ``kind``, fitted to every learner's held-out paths before divergence.

    The ``hessian`` kind needs ``heldout`` (its mean loss's Hessian is taken at
    the origin; origin "mean" means the first learner's θ0 here).
    """
    paths = points
    points, groups = good_path_groups(records, paths)
    origin_name = config.slices.origin
    if kind == "hessian" and origin_name == "mean":
        origin_name = next(iter(records))
    origin, origin_label = slice_origin(origin_name, records, paths)
    if kind == "pca":
        if len(points) < 3:
            raise ValueError("pca slice needs at least 3 finite path points; every held-out path diverged")
        fit = robust_rows(points, groups)  # one exploding learner cannot take the plane over
        return pca_slice(points, origin=origin, weights=fit.weights,
                         label=f"PCA of all held-out paths, origin at {origin_label}{fit.note()}")
    if kind == "exact":
        return exact_slice(problem.model.spec.size, label="the parameter plane itself (nothing projected)")
    if kind == "three_point":
        a, b, c = (records[n].theta0 for n in config.slices.three_point)
        names = ", ".join(config.slices.three_point)
        return three_point_slice(a, b, c, label=f"plane through the θ0 of {names}")
    if kind == "random":
        centre = points_mean(points) if origin is None else origin
        return random_slice(list(problem.model.spec.shapes), centre, config.seed,
                            label=f"filter-normalised random directions, origin at {origin_label}")
    if kind == "hessian":
        if heldout is None:
            raise ValueError("the hessian slice needs the held-out tasks")
        theta = torch.as_tensor(origin, dtype=heldout.support[next(iter(heldout.support))].dtype)
        values, vectors = mean_loss_eigenvectors(problem, theta.to(heldout.ids.device), heldout,
                                                 seed=config.seed)
        lam = ", ".join(f"{v:.3g}" for v in values.tolist())
        return hessian_slice(origin, vectors.cpu().numpy(), points,
                             label=f"top-2 Hessian eigenvectors of the held-out mean loss "
                                   f"(λ = {lam}) at {origin_label}")
    raise ValueError(f"unknown slice kind {kind!r}")


def build_view(kind: str, config: ExperimentConfig, problem: Problem, heldout: TaskSet,
               records: dict[str, LearnerRecord], work: Work = DEFAULT_WORK,
               points: dict | None = None) -> View:
    """The view of ``kind``; ``points``: {learner: [T, K+1, P]} held-out paths when the
    records hold placeholders (a streaming record's ``ScratchRows``). The surface's
    chunks run as ``work`` says (its ``progress(done, total)`` counts grid points)."""
    slc = build_slice(kind, config, problem, records, heldout, points)
    dtype = getattr(torch, config.dtype)
    paths = {n: record_paths(problem, slc, heldout, r, config.device, dtype,
                             None if points is None else points[n]) for n, r in records.items()}
    _, far = plane_outliers({n: p.coords for n, p in paths.items()})  # drawn clipped, not fitted
    every = np.concatenate([p.coords.reshape(-1, 2) for n, p in paths.items() if n not in far]
                           + [p.meta_coords.reshape(-1, 2) for n, p in paths.items() if n not in far])
    slc = with_extent(slc, every, margin=config.slices.margin)
    res = config.slices.resolution
    # the held-out tasks are already on the config's device and dtype (heldout_setup)
    surface = evaluate_surface(problem, slc, heldout.to(config.device, dtype), (res, res),
                               work=work)
    return View(name=kind, slice=slc, surface=surface,
                **{f: {n: getattr(p, f) for n, p in paths.items()} for f in
                   ("coords", "residual", "plane_loss", "meta_coords", "meta_residual")})


def record_paths(problem: Problem, slc: Slice, heldout: TaskSet, record: LearnerRecord,
                 device: str, dtype: torch.dtype, points=None) -> ViewPaths:
    """One learner's held-out and meta paths projected on ``slc``, with the plane's losses;
    points from a rollout's first non-finite step on are NaN. ``points``: its held-out
    paths [T, K+1, P] if not ``record.params``."""
    points = record.params if points is None else points
    coords, residual = project(slc, points)
    bad = ~good_prefix(record.diverged_at, points.shape[1] - 1)
    coords[bad], residual[bad] = np.nan, np.nan
    meta_coords, meta_residual = project(slc, record.meta_path)
    plane = plane_losses(problem, slc, coords, heldout, device=device, dtype=dtype)
    return ViewPaths(coords, residual, plane, meta_coords, meta_residual)


def check_slices(config: ExperimentConfig, problem: Problem) -> None:
    P = problem.model.spec.size
    if "exact" in config.slices.kinds and P != 2:
        raise ValueError(f"the exact slice needs a 2-parameter model; {problem.model.name} has {P} "
                         "(use family linear2d or quadratic with dim=2, or slices.kinds = ['pca'])")
