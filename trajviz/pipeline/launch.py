"""Launch: held-out inner loops from any θ0, run exactly as a run's learners were.

For click-to-launch and "what if" questions. ``launch_context(run)`` rebuilds,
once per run, what judging a θ0 needs from the run's config (problem,
held-out tasks, inner optimiser, minibatch seed) and its views' slices;
``launch(ctx, theta0)`` then runs the held-out inner loops from ``theta0``
with the very function the learners' paths were recorded with
(``record.record_rollouts``: same tasks, same minibatches, same chunks), so a launch from
a learner's θ0 gives its recorded paths (and, with ``diagnostics="full"``,
its per-step diagnostics) bit for bit, and projects them on every view. ``keep(path, launch)`` stores a launch in the run as a named
fixed initialisation, atomically.

    ctx = launch_context(load_run(path))
    result = launch(ctx, point_on_view(ctx, "pca", 0.3, -1.2), name="click-1")
    keep(path, result)
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from trajviz.data.run import Launch, Run, Slice, run_is_light, with_learner
from trajviz.engine.diagnostics import LEVELS, DiagnosticsSpec, path_diagnostics
from trajviz.pipeline.experiment import (
    EVAL_METRICS,
    fixed_record,
    init_params,
    summary,
)
from trajviz.pipeline.heldout import HeldOut, heldout_setup
from trajviz.pipeline.record import PathScratch, chunk_tasks, record_rollouts, with_paths
from trajviz.pipeline.views import record_paths
from trajviz.problem.inits import check_init_name
from trajviz.problem.models import unflatten


@dataclass(frozen=True)
class LaunchContext:
    """A run's held-out setup and slices: setup (``experiment.HeldOut``),
    slices {view: Slice}, eval_tasks (tasks of the meta-training evaluations),
    seed (the run's seed: the diagnostics' power-iteration start), light (the run keeps
    no held-out paths, so neither does a launch kept in it: ``run_is_light``)."""

    setup: HeldOut
    slices: dict[str, Slice]
    eval_tasks: int
    seed: int = 0
    light: bool = False


def launch_context(run: Run) -> LaunchContext:
    """Rebuild what a launch needs from ``run`` (loaded with heavy=True: it needs the slices)."""
    from trajviz.spec.config import from_dict

    if any(v.slice.origin.shape[-1] == 0 for v in run.views.values()):
        raise ValueError("the run was loaded without its heavy arrays; load it with heavy=True")
    config = from_dict(run.config)
    setup = heldout_setup(config)
    return LaunchContext(setup, {k: v.slice for k, v in run.views.items()},
                         min(config.outer.eval_tasks, len(setup.tasks)), config.seed, run_is_light(run))


def point_on_view(ctx: LaunchContext, view: str, a: float, b: float) -> np.ndarray:
    """θ0 [P] = origin + a·u + b·v on the slice of ``view``."""
    if view not in ctx.slices:
        raise ValueError(f"run has no view {view!r}; accepted: {list(ctx.slices)}")
    slc = ctx.slices[view]
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"a point on the slice needs finite (a, b), got ({a}, {b})")
    return np.asarray(slc.origin, dtype=np.float64) + a * slc.basis[0] + b * slc.basis[1]


def launch(ctx: LaunchContext, theta0: np.ndarray, *, name: str = "launch",
           diagnostics: str = "full") -> Launch:
    """Held-out paths, metrics, per-step diagnostics and per-view projections of the inner
    loops from ``theta0`` [P].

    ``diagnostics``: "full" (as a run records its learners), "ends", "norms" (no
    sharpness: the page's clicks, since the HVPs are most of the cost) or "none"
    (``diagnostics.LEVELS``). Pure apart from the clock: ``seconds`` is how long it took.
    """
    check_init_name(name)
    if diagnostics not in LEVELS:
        raise ValueError(f"diagnostics must be one of {list(LEVELS)}, got {diagnostics!r}")
    started = time.perf_counter()
    s = ctx.setup
    vector = init_params(s.problem, theta0, s.device, s.dtype)
    level = LEVELS[diagnostics]
    diagnose = None if level is None else (lambda traj, part: path_diagnostics(
        part, traj, DiagnosticsSpec(seed=ctx.seed, **level)))
    itemsize = vector.element_size()
    with PathScratch() as scratch:  # streamed like a run's learners (pipeline.record)
        rec = record_rollouts(s.rollouts, unflatten(vector, s.problem.model.spec), name, scratch,
                              chunk_tasks(s.problem, len(s.tasks), s.spec.steps, itemsize),
                              keep_grads=not ctx.light, diagnose=diagnose)
        record = fixed_record(name, vector, rec, ctx.eval_tasks)
        views = {k: record_paths(s.problem, slc, s.tasks, record, s.device, s.dtype, rec.points)
                 for k, slc in ctx.slices.items()}
        record = with_paths(record, rec, full=not ctx.light)
    return Launch(record, views, time.perf_counter() - started)


def keep(path: str | Path, result: Launch, ctx: LaunchContext | None = None) -> Path:
    """Store ``result`` in the run at ``path`` as a fixed initialisation (atomic rewrite),
    and in the learner table of each of the run's birth maps (``ctx``: the run's launch
    context, rebuilt when not given and the run has birth maps)."""
    from trajviz.pipeline.birthmap import with_point
    from trajviz.store import load_run
    from trajviz.store.rewrite import replace_run

    path = Path(path)
    run = load_run(path)
    rows = summary({result.record.name: result.record})[result.record.name]
    updated = with_learner(run, result, rows)
    if run.birthmaps:
        ctx = ctx or launch_context(run)
        s = ctx.setup
        maps = {view: with_point(bm, result.record.name, result.record.theta0, s.rollouts,
                                 ctx.slices[view])
                for view, bm in run.birthmaps.items()}
        updated = replace(updated, birthmaps=maps)
    return replace_run(updated, path.parent)


__all__ = ["EVAL_METRICS", "LaunchContext", "keep", "launch", "launch_context", "point_on_view"]
