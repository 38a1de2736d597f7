"""What if: rerun a run's held-out inner loops under other inner settings.

``whatif(run, {"lr": 0.02})`` takes every learner's θ0 (meta-learned, fixed,
clicked or a user's own: all are learners of the run), stacks them, pairs each
with every held-out task (``pair_theta0_with_tasks``) and runs the vectorised
``inner_loop`` over learners × tasks, in memory-sized chunks (``pipeline.record``), with the changed optimiser, lr, momentum
β or steps K. The tasks and minibatches are the run's own (minibatches depend
only on the seed and the task, and a longer loop extends the same batch
order), so with the run's own settings it gives back the stored paths. The
new paths are projected on the run's existing slices: the surface does not
depend on the inner optimiser, so it is reused, not recomputed.

    variant = whatif(load_run(path, heavy=True), {"lr": 0.02}, name="lr-0.02")
    keep_variant(path, variant)          # atomic: run.inner_variants["lr-0.02"]
    shown = apply_inner_variant(run, variant)   # draw it like any run (trajviz.data.run)

A ``WhatIfContext`` (``whatif_context(run)``) holds what is rebuilt from the
run once (problem, tasks, slices, stacked θ0s); a warm worker keeps one per run.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajviz.data.run import (
    InnerVariant,
    Run,
    ViewPaths,
    apply_inner_variant,
    run_is_light,
    with_inner_variant,
)
from trajviz.data.stability import divergence_report, good_prefix
from trajviz.engine.diagnostics import LEVELS, DiagnosticsSpec, path_diagnostics
from trajviz.engine.inner import Rollouts, pair_theta0_with_tasks
from trajviz.engine.slices import project
from trajviz.engine.surface import plane_losses
from trajviz.pipeline.experiment import (
    diagnostics_info,
    summary,
    summary_counts,
)
from trajviz.pipeline.heldout import inner_spec
from trajviz.pipeline.launch import LaunchContext, launch_context
from trajviz.pipeline.record import (
    PathScratch,
    Recording,
    chunk_tasks,
    placeholder,
    record_rollouts,
)
from trajviz.problem.models import unflatten
from trajviz.spec.config import InnerConfig, from_dict, to_dict
from trajviz.spec.config import replace as config_replace

# The inner settings a what-if may change. batch_size is not one: a new batch size
# would mean new minibatches, and a what-if keeps the run's own.
CHANGEABLE = ("optimizer", "lr", "steps", "momentum", "nesterov", "beta1", "beta2", "eps",
              "divergence_factor")

# DiagnosticsSpec changes per ``diagnostics`` choice: budget 1 subsamples sharpness to steps 0
# and K; "norms" has grad and update norms only (sharpness, the HVP part, is NaN).


@dataclass(frozen=True)
class WhatIfContext:
    """What every what-if of one run shares: launch (problem, held-out tasks, slices),
    base (the run's InnerConfig), theta0 {learner: [P] tensor}."""

    launch: LaunchContext
    base: Any
    theta0: dict[str, torch.Tensor]


def whatif_context(run: Run) -> WhatIfContext:
    """Rebuild once what ``whatif`` needs from ``run`` (loaded with heavy=True)."""
    ctx = launch_context(run)
    s = ctx.setup
    theta0 = {n: torch.as_tensor(np.asarray(r.theta0)).to(device=s.device, dtype=s.dtype)
              for n, r in run.learners.items()}
    return WhatIfContext(ctx, from_dict(run.config), theta0)


def inner_settings(base, changes: dict[str, Any]) -> InnerConfig:
    """``base``'s (an ExperimentConfig) inner config with ``changes`` ({"lr": 0.02} or
    {"inner.lr": 0.02}), validated by ``trajviz.spec.config`` (one-line ValueError)."""
    if not isinstance(changes, dict):
        raise ValueError(f"inner changes must be a dict like {{'lr': 0.02}}, got {type(changes).__name__}")
    dotted = {}
    for key, value in changes.items():
        field = str(key).removeprefix("inner.")
        if field not in CHANGEABLE:
            raise ValueError(f"a what-if cannot change {key!r}; accepted: "
                             f"{', '.join('inner.' + f for f in CHANGEABLE)}")
        dotted[f"inner.{field}"] = value
    return config_replace(base, **dotted).inner


def whatif(run: Run, inner_changes: dict[str, Any], learners: list[str] | None = None,
           tasks: list[int] | None = None, *, name: str = "whatif", diagnostics: str = "full",
           context: WhatIfContext | None = None) -> InnerVariant:
    """The held-out rollouts of ``learners`` (default: all of the run's) on ``tasks``
    (default: all held-out tasks, by index) rerun with ``inner_changes``.

    One ``inner_loop`` over L learners × T tasks. ``diagnostics``: "full" (the run's own:
    grad/update norms every step, sharpness by HVP power iteration at every step the
    run's budget allows), "ends" (norms every step, sharpness at steps 0 and K only),
    "norms" (grad/update norms only, sharpness NaN: the live page's choice, since the
    HVPs are most of the cost) or "none" (no diagnostics).
    ``run`` must be loaded with heavy=True (slices); pass ``context`` to reuse one.
    """
    started = time.perf_counter()
    ctx = context or whatif_context(run)
    s = ctx.launch.setup
    inner = inner_settings(ctx.base, inner_changes)
    if diagnostics not in LEVELS:
        raise ValueError(f"diagnostics must be one of {list(LEVELS)}, got {diagnostics!r}")
    names = list(run.learners) if learners is None else list(learners)
    unknown = [n for n in names if n not in ctx.theta0]
    if unknown or not names:
        raise ValueError(f"unknown learner(s) {unknown or names}; this run has {list(ctx.theta0)}")
    index = list(range(len(s.tasks))) if tasks is None else [int(t) for t in tasks]
    if not index or any(not 0 <= t < len(s.tasks) for t in index):
        raise ValueError(f"tasks must be indices in 0..{len(s.tasks) - 1}, got {tasks}")
    spec = inner_spec(inner)
    task_set = s.tasks if tasks is None else s.tasks.select(index)
    theta0 = unflatten(torch.stack([ctx.theta0[n] for n in names]), s.problem.model.spec)
    params0, paired = pair_theta0_with_tasks(theta0, task_set, s.problem)
    dspec = DiagnosticsSpec(seed=ctx.base.seed, **LEVELS[diagnostics] or {})
    diagnose = None if diagnostics == "none" else (
        lambda traj, part: path_diagnostics(part, traj, dspec))
    itemsize = next(iter(params0.values())).element_size()
    # Streamed in chunks of (learner, task) rollouts (pipeline.record): the chunks are
    # multiples of the inner loop's own, so the paths are those of one vectorised call.
    with PathScratch() as scratch:
        rec = record_rollouts(Rollouts(s.problem, paired, spec, s.seed), params0, "", scratch,
                              chunk_tasks(s.problem, len(paired), spec.steps, itemsize),
                              keep_grads=not ctx.launch.light, diagnose=diagnose)
        diag = rec.diagnostics
        records = _records(run, names, rec, len(index), ctx.launch.light)
        views = {key: _view_paths(s, slc, paired, rec, names, run.views[key])
                 for key, slc in ctx.launch.slices.items()}
    info = {"summary": summary(records), "summary_counts": summary_counts(records),
            "divergence": divergence_report({n: r.diverged_at for n, r in records.items()},
                                            np.asarray(run.task_ids)[index], inner.divergence_factor),
            "changes": {str(k).removeprefix("inner."): v for k, v in inner_changes.items()}}
    if diag is not None:
        info["diagnostics"] = diagnostics_info(spec, diag, dspec.iters)
    info["seconds"] = time.perf_counter() - started
    return InnerVariant(name=name, inner=to_dict(inner), task_index=np.asarray(index, dtype=np.int64),
                        learners=records, views=views, info=info)


def _records(run: Run, names: list[str], rec: Recording, n_tasks: int, light: bool) -> dict:
    """Per learner, its base record with the rollout fields of its rows of ``rec`` (held-out
    params and grads as placeholders when the run is ``light``)."""
    from dataclasses import replace

    T = len(rec.losses)
    points = placeholder(rec.points.shape) if light else rec.points.read()
    arrays = {"params": points, "losses": rec.losses,
              "grads": placeholder(rec.points.shape) if light else rec.grads,
              "query_losses": rec.query_losses, "diverged_at": rec.diverged_at}
    diag = {} if rec.diagnostics is None else rec.diagnostics.values
    out = {}
    for i, n in enumerate(names):
        rows = slice(i * n_tasks, (i + 1) * n_tasks)
        assert rows.stop <= T
        out[n] = replace(run.learners[n], **{k: v[rows] for k, v in arrays.items()},
                         metrics={k: v[rows] for k, v in rec.metrics.items()},
                         running={k: v[rows] for k, v in rec.running.items()},
                         diagnostics={k: v[rows] for k, v in diag.items()})
    return out


def _view_paths(s, slc, paired, rec: Recording, names: list[str], view) -> dict[str, ViewPaths]:
    """Every learner's new paths on one slice; the plane's losses in one call for all rows."""
    coords, residual = project(slc, rec.points)
    bad = ~good_prefix(rec.diverged_at, rec.points.shape[1] - 1)
    coords[bad], residual[bad] = np.nan, np.nan
    plane = plane_losses(s.problem, slc, coords, paired, device=s.device, dtype=s.dtype)
    n_tasks = len(rec.losses) // len(names)
    out = {}
    for i, n in enumerate(names):
        rows = slice(i * n_tasks, (i + 1) * n_tasks)
        out[n] = ViewPaths(coords[rows], residual[rows], plane[rows], view.meta_coords[n],
                           view.meta_residual[n])
    return out


def keep_variant(path: str | Path, variant: InnerVariant) -> Path:
    """Store ``variant`` in the run at ``path`` under its name (atomic rewrite)."""
    from trajviz.store import load_run
    from trajviz.store.rewrite import replace_run

    path = Path(path)
    check_variant_name(variant.name)
    if len(variant.task_index) != len(load_run(path, heavy=False).task_ids):
        raise ValueError("only a variant over every held-out task can be kept")
    run = load_run(path)
    if run_is_light(run):  # a light run keeps no held-out paths, a kept variant neither
        from dataclasses import replace

        variant = replace(variant, learners={
            n: replace(r, params=placeholder(r.params.shape), grads=placeholder(r.grads.shape))
            for n, r in variant.learners.items()})
    return replace_run(with_inner_variant(run, variant), path.parent)


def check_variant_name(name: Any) -> str:
    """A variant name: 1-60 characters of letters, digits, space, '.', '_', '=', '-'."""
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._=-]{0,59}", name):
        raise ValueError(f"variant name {name!r} is not accepted; use 1-60 characters of letters, "
                         "digits, space, '.', '_', '=', '-', starting with a letter or digit")
    return name


def variant_name(changes: dict[str, Any]) -> str:
    """A default name from the changes, e.g. ``lr=0.02 steps=8``."""
    return " ".join(f"{str(k).removeprefix('inner.')}={v:g}" if isinstance(v, float)
                    else f"{str(k).removeprefix('inner.')}={v}" for k, v in changes.items()) or "base"


__all__ = ["CHANGEABLE", "WhatIfContext", "apply_inner_variant", "check_variant_name",
           "inner_settings", "keep_variant", "variant_name", "whatif", "whatif_context"]
