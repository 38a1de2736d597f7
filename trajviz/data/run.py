"""The ``Run``: everything one experiment produced, as plain data (numpy + JSON).

This module holds only types, so the store, the figure builders and the app
can use a run without importing any of the compute. Shapes below use
T held-out tasks, K inner steps, P parameters, S' recorded meta-steps,
E held-out evaluations, A×B grid points.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from trajviz.spec.names import BIRTH_STATISTICS  # noqa: F401 - part of the BirthMap type

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: no diagnostics and no birth maps (they load as {})


@dataclass(frozen=True)
class Slice:
    """kind: one of SLICE_KINDS; origin: [P]; basis: [2, P] orthonormal rows;
    explained_variance: [2] fraction of the fitted points' variance along each
    axis (NaN where it does not apply); extent: (a_min, a_max, b_min, b_max)
    of the grid; label: a one-line human description for axis titles."""

    kind: str
    origin: np.ndarray
    basis: np.ndarray
    explained_variance: np.ndarray
    extent: tuple[float, float, float, float]
    label: str = ""


@dataclass(frozen=True)
class Surface:
    """alpha: [A] and beta: [B] grid coordinates on the slice; loss: [T, B, A]
    per task (row b, column a, as plotly's contour ``z`` expects); mean: [B, A]
    the task mean; task_ids: [T]."""

    alpha: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    mean: np.ndarray
    task_ids: np.ndarray


@dataclass(frozen=True)
class LearnerRecord:
    """One learner's part of a run.

    theta0: [P] its meta-learned initialisation.
    meta_path_steps: [S'+1] int, the meta-step index of each row of ``meta_path``
        (config ``outer.meta_steps`` is S, the count).
    meta_path: [S'+1, P] θ0 across meta-training (first and last step always kept).
    eval_steps: [E] int; evals: {metric: [E]} held-out metrics during meta-training.
    params: [T, K+1, P]; losses: [T, K+1]; grads: [T, K+1, P]; query_losses: [T, K+1]
        the held-out inner loops from ``theta0`` (recorded true losses).
    diverged_at: [T] int, the first step whose loss or θ is not finite or whose loss
        exceeds ``inner.divergence_factor`` × the starting loss, or −1 (never).
    metrics: {name: [T]} per-task path metrics (``metrics.path_metrics``); NaN for a
        diverged path (so a mean over tasks covers only the tasks that did not diverge).
    running: {name: [T, K+1]} running metrics for the time-cursor panels, NaN from
        ``diverged_at`` on.
    diagnostics: {name: [T, K+1]} per-step diagnostics (``trajviz.engine.diagnostics``):
        grad_norm, update_norm, sharpness, and for Adam preconditioned_sharpness;
        NaN where not evaluated (see ``run.info["diagnostics"]["steps"]``) and from
        ``diverged_at`` on. Empty for runs of schema version 1.
    """

    name: str
    theta0: np.ndarray
    meta_path_steps: np.ndarray
    meta_path: np.ndarray
    eval_steps: np.ndarray
    evals: dict[str, np.ndarray]
    params: np.ndarray
    losses: np.ndarray
    grads: np.ndarray
    query_losses: np.ndarray
    diverged_at: np.ndarray
    metrics: dict[str, np.ndarray]
    running: dict[str, np.ndarray]
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    """One slice of the run and everything drawn on it.

    name: key of the view (e.g. "pca", "exact"); slice; surface over the held-out tasks.
    coords: {learner: [T, K+1, 2]} projected path points.
    residual: {learner: [T, K+1]} off-plane distance of each path point.
    plane_loss: {learner: [T, K+1]} the surface's loss at each projected point,
        to compare with the recorded true loss.
    coords, residual and plane_loss are NaN from a path's ``diverged_at`` on: a
    diverged path is drawn up to its last good point (step diverged_at − 1).
    meta_coords: {learner: [S'+1, 2]} and meta_residual: {learner: [S'+1]} for θ0's
        meta-training path.
    """

    name: str
    slice: Slice
    surface: Surface
    coords: dict[str, np.ndarray]
    residual: dict[str, np.ndarray]
    plane_loss: dict[str, np.ndarray]
    meta_coords: dict[str, np.ndarray]
    meta_residual: dict[str, np.ndarray]


@dataclass(frozen=True)
class BirthMap:
    """How fast training converges from every point of a grid on one view's slice.

    Every grid point θ(a, b) = origin + a·u + b·v is taken as a θ0 and run on
    the first N held-out tasks (same minibatches as the learners).
    view: the view (slice) it lies on; statistic: the one that ranks speed
    (one of ``BIRTH_STATISTICS``, lower is faster).
    alpha: [A], beta: [B] grid coordinates; task_ids: [N].
    mean: {stat: [B, A]} mean over tasks; spread: {stat: [B, A]} their standard
        deviation (ddof 0), for every stat of ``BIRTH_STATISTICS``.
    specialisation: [B, A] coefficient of variation of per-task AUC,
        std_t(auc) / |mean_t(auc)|: 0 when every task is served alike.
    predicted: [B, A] predicted mean AUC from the first ``settings["predictor_steps"]``
        steps (see ``trajviz.pipeline.birthmap``); rank_correlation: Spearman ρ of
        predicted against mean[statistic] over the finite grid points.
    birth: [2] (a, b) of the birth point; birth_index: [2] its (row b, column a).
    learners: names of the θ0s in the table (each learner of the run).
    learner_table: {column: [L]}: a, b (projection of θ0), residual (off-plane
        distance), value (mean statistic at θ0 itself), specialisation, predicted,
        plane_gap (‖(a, b) − birth‖), param_gap (‖θ0 − θ_birth‖), value_gap
        (value − the birth point's value).
    learner_tasks: {stat: [L, N]} per-task statistics at each learner's θ0.
    settings: JSON data: grid, tasks, steps, eps, predictor_steps, quantile, and
        one-line descriptions rule, predictor, specialisation; seconds taken.
    """

    view: str
    statistic: str
    alpha: np.ndarray
    beta: np.ndarray
    task_ids: np.ndarray
    mean: dict[str, np.ndarray]
    spread: dict[str, np.ndarray]
    specialisation: np.ndarray
    predicted: np.ndarray
    rank_correlation: float
    birth: np.ndarray
    birth_index: np.ndarray
    learners: tuple[str, ...]
    learner_table: dict[str, np.ndarray]
    learner_tasks: dict[str, np.ndarray]
    settings: dict[str, Any]


@dataclass(frozen=True)
class ViewPaths:
    """One learner's paths drawn on one view: coords [T, K+1, 2], residual [T, K+1],
    plane_loss [T, K+1], meta_coords [S'+1, 2], meta_residual [S'+1] (as in ``View``)."""

    coords: np.ndarray
    residual: np.ndarray
    plane_loss: np.ndarray
    meta_coords: np.ndarray
    meta_residual: np.ndarray


@dataclass(frozen=True)
class Launch:
    """Held-out inner loops from one θ0 (a clicked point, a file), run exactly as the
    run's learners were: record (named like a learner), its paths on every view of
    the run, and the seconds the launch took."""

    record: LearnerRecord
    views: dict[str, ViewPaths]
    seconds: float


# LearnerRecord fields an inner variant recomputes (the rest is the base learner's).
ROLLOUT_FIELDS = ("params", "losses", "grads", "query_losses", "diverged_at", "metrics",
                  "running", "diagnostics")
# View fields an inner variant recomputes (meta_coords / meta_residual are the base's).
ROLLOUT_VIEW_FIELDS = ("coords", "residual", "plane_loss")


@dataclass(frozen=True)
class InnerVariant:
    """A "what if": the run's held-out inner loops rerun from the same θ0s, on the same
    tasks with the same minibatches, under other inner settings (``trajviz.whatif``).

    name: its name in the run; inner: the resolved inner config (as ``config["inner"]``).
    task_index: [T'] int, which of the run's held-out tasks it covers (all, in order,
        for a kept variant from the page).
    learners: {name: LearnerRecord} whose ROLLOUT_FIELDS are recomputed ([T', K'+1, ...]
        with K' the variant's steps); the other fields are the base learner's.
    views: {view: {learner: ViewPaths}} the new paths on the run's own slices (the
        surface does not depend on the inner optimiser, so it is reused); meta_* fields
        are the base learner's.
    info: summary, summary_counts, diagnostics, divergence (as in ``Run.info``),
        changes (the settings asked for), seconds.
    """

    name: str
    inner: dict[str, Any]
    task_index: np.ndarray
    learners: dict[str, LearnerRecord]
    views: dict[str, dict[str, ViewPaths]]
    info: dict[str, Any]


@dataclass(frozen=True)
class Run:
    """run_id: the run's folder name; config: the resolved config as plain data;
    info: schema_version, package versions, seed, timings, created, summary
    ({learner: {metric: [mean, lo95, hi95]}}), summary_counts ({learner: {metric:
    [tasks covered, tasks]}}), diagnostics (threshold, threshold_applies_to,
    threshold_rule, optimizer, steps evaluated, subsampled, power_iterations),
    divergence (``stability.divergence_report``: factor, tasks, and per learner
    count, task ids and first bad steps);
    task_ids: [T]; task_info: {key: [T, ...]} what generated each held-out task;
    learners: {name: LearnerRecord} in config order (then fixed initialisations);
    views: {name: View}; birthmaps: {view name: BirthMap};
    inner_variants: {name: InnerVariant} kept "what if" inner settings (``trajviz.whatif``)."""

    run_id: str
    config: dict[str, Any]
    info: dict[str, Any]
    task_ids: np.ndarray
    task_info: dict[str, np.ndarray]
    learners: dict[str, LearnerRecord]
    views: dict[str, View]
    extra: dict[str, Any] = field(default_factory=dict)
    birthmaps: dict[str, BirthMap] = field(default_factory=dict)
    inner_variants: dict[str, InnerVariant] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """K, the number of inner steps of the held-out rollouts."""
        return next(iter(self.learners.values())).losses.shape[1] - 1


def with_learner(run: Run, launch: Launch, summary: dict[str, list[float]] | None = None) -> Run:
    """``run`` with ``launch`` kept as a learner (a fixed initialisation) in every view.

    Pure. ``summary``, if given, becomes info["summary"][name]. A name already
    in the run, or a launch missing one of the run's views, is a ValueError.
    """
    name = launch.record.name
    if name in run.learners:
        raise ValueError(f"the run already has a learner named {name!r}; choose another name")
    missing = sorted(set(run.views) - set(launch.views))
    if missing:
        raise ValueError(f"the launch has no paths on view(s) {missing} of the run")
    views = {}
    for key, view in run.views.items():
        paths = launch.views[key]
        views[key] = replace(view, **{f: {**getattr(view, f), name: getattr(paths, f)}
                                      for f in ("coords", "residual", "plane_loss",
                                                "meta_coords", "meta_residual")})
    info = dict(run.info)
    if summary is not None:
        info["summary"] = {**info.get("summary", {}), name: summary}
    info["inits"] = [*info.get("inits", []), name]
    return replace(run, learners={**run.learners, name: launch.record}, views=views, info=info)


def with_birth_map(run: Run, birth: BirthMap) -> Run:
    """``run`` with ``birth`` stored under its view's name (replacing an older one). Pure."""
    if birth.view not in run.views:
        raise ValueError(f"birth map is on view {birth.view!r}, the run has {list(run.views)}")
    return replace(run, birthmaps={**run.birthmaps, birth.view: birth})


def with_inner_variant(run: Run, variant: InnerVariant) -> Run:
    """``run`` with ``variant`` kept under its name (replacing one of that name). Pure.

    A variant over a learner or a view the run lacks is a ValueError."""
    unknown = sorted(set(variant.learners) - set(run.learners))
    if unknown:
        raise ValueError(f"variant {variant.name!r} has learner(s) {unknown} the run lacks")
    missing = sorted(set(run.views) - set(variant.views))
    if missing:
        raise ValueError(f"variant {variant.name!r} has no paths on view(s) {missing} of the run")
    return replace(run, inner_variants={**run.inner_variants, variant.name: variant})


def apply_inner_variant(run: Run, variant: InnerVariant) -> Run:
    """The run as it would look under ``variant``'s inner settings: its learners, their
    held-out paths on every view, the summary and diagnostics facts, the config's
    ``inner`` and the tasks it covers. Pure; for drawing (``selection.select`` etc.).

    Surfaces are reused (they do not depend on the inner optimiser); birth maps are
    dropped (they do). info["inner_variant"] names the variant.
    """
    tasks = np.asarray(variant.task_index, dtype=np.int64)
    every = len(tasks) == len(run.task_ids) and bool((tasks == np.arange(len(tasks))).all())
    learners = {n: replace(run.learners[n], **{f: getattr(rec, f) for f in ROLLOUT_FIELDS})
                for n, rec in variant.learners.items()}
    views = {}
    for key, view in run.views.items():
        paths = variant.views[key]
        fields = {f: {n: getattr(paths[n], f) for n in learners} for f in ROLLOUT_VIEW_FIELDS}
        fields.update({f: {n: getattr(view, f)[n] for n in learners}
                       for f in ("meta_coords", "meta_residual")})
        surface = view.surface
        if not every:
            loss = surface.loss[tasks]
            surface = replace(surface, loss=loss, mean=loss.mean(axis=0),
                              task_ids=surface.task_ids[tasks])
        views[key] = replace(view, surface=surface, **fields)
    info = {**run.info, **{k: variant.info[k] for k in
                           ("summary", "summary_counts", "diagnostics", "divergence")
                           if k in variant.info}, "inner_variant": variant.name}
    config = {**run.config, "inner": dict(variant.inner)}
    task_info = run.task_info if every else {k: v[tasks] for k, v in run.task_info.items()}
    return replace(run, config=config, info=info, learners=learners, views=views,
                   task_ids=run.task_ids if every else run.task_ids[tasks], task_info=task_info,
                   birthmaps={})
