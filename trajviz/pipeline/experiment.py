"""config → meta-train each learner → record held-out paths → slices → surfaces → ``Run``.

The only place where the pieces meet. Every learner starts from the same
random θ0, meets the same meta-training tasks (``step_seed``), and is judged
on the same held-out tasks with the same inner optimiser and minibatches.
Nothing here reads or writes files.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import torch

from trajviz.data.run import SCHEMA_VERSION, LearnerRecord, Run
from trajviz.data.stability import divergence_report, stability_threshold, subsample_steps
from trajviz.data.stats import summarise
from trajviz.engine.context import ProblemRef
from trajviz.engine.diagnostics import Diagnostics, DiagnosticsSpec, path_diagnostics
from trajviz.engine.executors import Executor, using
from trajviz.engine.inner import (
    InnerSpec,
    Rollouts,
    Trajectory,
    minibatch_indices,
    rollouts_per_chunk,
)
from trajviz.engine.learners import MetaTrace, OuterSpec, Training, make_learner, meta_train
from trajviz.engine.learners.outer import evaluate_path
from trajviz.engine.work import Work
from trajviz.kernels import ran_names, recorded, recording, requested
from trajviz.kernels.threads import thread_scope
from trajviz.pipeline.collapse import dead_fraction
from trajviz.pipeline.heldout import (
    HeldOut,
    config_threads,
    heldout_setup,
)
from trajviz.pipeline.record import (
    PathScratch,
    Recording,
    chunk_tasks,
    placeholder,
    record_rollouts,
    with_paths,
)
from trajviz.pipeline.tune import Sweep, tune_outer_lr, validation_seed, validation_tasks
from trajviz.pipeline.views import (
    build_view,
    check_slices,
)
from trajviz.problem.models import Params, unflatten
from trajviz.problem.tasks import Problem, TaskFamily, TaskSet, family_options
from trajviz.spec import budget
from trajviz.spec.config import ExperimentConfig, to_dict
from trajviz.spec.learner_variants import learner_specs
from trajviz.spec.version import VERSION as __version__

Progress = Callable[[str, int, int], None]
SUMMARY_METRICS = ("length", "param_length", "oscillation", "monotonicity", "final_loss", "auc",
                   "steps_to_eps")
EVAL_METRICS = ("length", "auc", "final_loss", "oscillation")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def make_evaluator(problem: Problem, tasks: TaskSet, spec: InnerSpec,
                   seed: int) -> Callable[[Params], dict[str, float]]:
    """Held-out metrics of a θ0 (mean over ``tasks``), for the meta-training curves; the
    rollouts go in record chunks (``record.record_rollouts``, no points kept)."""
    def evaluate(theta0: Params) -> dict[str, float]:
        size = next(iter(theta0.values())).element_size()
        rec = record_rollouts(Rollouts(problem, tasks, spec, seed), theta0, "", None,
                              chunk_tasks(problem, len(tasks), spec.steps, size), keep_grads=False)
        m = rec.metrics
        return {k: float(np.nanmean(m[k])) if np.isfinite(m[k]).any() else float("nan")
                for k in EVAL_METRICS}
    return evaluate


def learner_record(name: str, trace: MetaTrace, rec: Recording, meta_points: int) -> LearnerRecord:
    """A learner's record from its meta trace and held-out ``Recording``; its held-out
    params and grads are placeholders [T, K+1, 0] (``record.with_paths`` fills them)."""
    keep = subsample_steps(trace.path.shape[0] - 1, meta_points)
    diagnostics = rec.diagnostics
    return LearnerRecord(
        name=name, theta0=_numpy(trace.path[-1]), meta_path_steps=keep,
        meta_path=_numpy(trace.path[torch.from_numpy(keep)]),
        eval_steps=_numpy(trace.eval_steps), evals={k: _numpy(v) for k, v in trace.evals.items()},
        params=placeholder(rec.points.shape), losses=rec.losses, grads=placeholder(rec.points.shape),
        query_losses=rec.query_losses, diverged_at=rec.diverged_at, metrics=rec.metrics,
        running=rec.running, diagnostics={} if diagnostics is None else dict(diagnostics.values))


def fixed_record(name: str, theta0: torch.Tensor, rec: Recording, eval_tasks: int) -> LearnerRecord:
    """A fixed initialisation (no meta-training) as a learner record (paths as placeholders).

    theta0: [P]. Its meta path is the one point θ0 at meta-step 0, and its
    "meta-training curve" the one evaluation at step 0: the mean held-out
    metrics over the first ``eval_tasks`` tasks, which is what the learners'
    evaluator computes (same tasks, same minibatches, so the same paths).
    """
    evals = {k: torch.tensor([float(np.nanmean(rec.metrics[k][:eval_tasks]))
                              if np.isfinite(rec.metrics[k][:eval_tasks]).any() else float("nan")])
             for k in EVAL_METRICS}
    trace = MetaTrace(learner=name, final_theta0={}, path=theta0.detach()[None],
                      eval_steps=torch.zeros(1, dtype=torch.long), evals=evals,
                      diverged=torch.zeros(0, dtype=torch.long))
    return learner_record(name, trace, rec, 2)


def summary(records: dict[str, LearnerRecord]) -> dict[str, dict[str, list[float]]]:
    """{learner: {metric: [mean, lo95, hi95]}} over the held-out tasks that did not diverge."""
    return {n: {m: [float(v) for v in summarise(r.metrics[m])] for m in SUMMARY_METRICS}
            for n, r in records.items()}


def summary_counts(records: dict[str, LearnerRecord]) -> dict[str, dict[str, list[int]]]:
    """{learner: {metric: [tasks covered, tasks]}}: how many tasks each summary mean covers."""
    return {n: {m: [int(np.isfinite(r.metrics[m]).sum()), int(r.metrics[m].size)] for m in SUMMARY_METRICS}
            for n, r in records.items()}


def diagnostics_info(spec: InnerSpec, diag: Diagnostics, iters: int) -> dict:
    """The run-level facts about the per-step diagnostics (JSON-ready)."""
    threshold, applies_to, rule = stability_threshold(spec.optimizer.name, dict(spec.optimizer.hyper))
    return {"optimizer": spec.optimizer.name, "threshold": threshold, "threshold_applies_to": applies_to,
            "threshold_rule": rule, "steps": diag.steps.tolist(), "subsampled": diag.subsampled,
            "power_iterations": iters, "names": list(diag.values),
            **({"curvature": diag.curvature} if diag.curvature else {})}


def record_info(plan: budget.RecordPlan) -> dict:
    """run.json's ``info["record"]``: the resolved policy and why (docs/scale.md)."""
    return {"policy": plan.policy, "asked": plan.asked, "full_bytes": plan.full_bytes,
            "chunk_tasks": plan.chunk_tasks, "meta_points": plan.meta_points, "reason": plan.reason,
            "paths": "kept" if plan.policy == "full" else "recomputed on demand (trajviz.recompute)"}


@dataclass(frozen=True)
class Recorded:
    """Meta-trained learners and their held-out paths, before any slicing."""

    problem: Problem
    heldout: TaskSet
    records: dict[str, LearnerRecord]
    timings: dict[str, float]
    family: TaskFamily
    diagnostics: dict = field(default_factory=dict)
    tuning: dict = field(default_factory=dict)  # {learner: Tuning.info()} with outer.lr = "tune"
    dead_units: dict = field(default_factory=dict)  # {"start": f, "learners": {name: f}}
    recordings: dict[str, Recording] = field(default_factory=dict)
    plan: budget.RecordPlan | None = None


def init_params(problem: Problem, theta0, device: str, dtype: torch.dtype) -> torch.Tensor:
    """A fixed θ0 given as a [P] array/tensor, as a [P] tensor of the run's device and dtype."""
    vector = torch.as_tensor(np.asarray(theta0) if not isinstance(theta0, torch.Tensor) else theta0)
    P = problem.model.spec.size
    if vector.shape != (P,):
        raise ValueError(f"θ0 must have shape [{P}] for {problem.model.name}, got {list(vector.shape)}")
    return vector.to(device=device, dtype=dtype)


def train_and_record(config: ExperimentConfig, progress: Progress | None = None,
                     inits: dict[str, np.ndarray] | None = None,
                     executor: Executor | None = None, scratch: PathScratch | None = None,
                     setup: HeldOut | None = None) -> Recorded:
    """Meta-train every learner of ``config`` and record its held-out inner loops.

    ``inits``: {name: θ0 [P]} fixed initialisations (e.g. a user's own file, see
    ``trajviz.problem.inits``), recorded after the learners on the same held-out tasks
    and minibatches. Held-out rollouts are recorded in chunks (``pipeline.record``) onto
    ``scratch``, whose points ``Recorded.recordings`` refer to; without ``scratch`` the
    records come back with their paths filled as the record policy says (full or
    placeholders) and no recordings. ``setup``: ``heldout_setup(config)`` when the caller
    has built it (``run_experiment`` builds the family once per run).
    """
    if scratch is None:
        with PathScratch() as own:
            rec = train_and_record(config, progress, inits, executor, own, setup)
            full = rec.plan.policy == "full"
            return replace(rec, records={n: with_paths(r, rec.recordings[n], full)
                                         for n, r in rec.records.items()}, recordings={})
    setup = setup or heldout_setup(config)
    device, dtype, family, problem, spec = setup.device, setup.dtype, setup.family, setup.problem, setup.spec
    check_slices(config, problem)
    clash = sorted(set(inits or {}) & set(config.learners))
    if clash:
        raise ValueError(f"initialisation name(s) {clash} clash with the learners; choose other names")
    outer = OuterSpec(config.outer.meta_steps, config.outer.meta_batch, config.outer.optimizer,
                      config.outer.lr_grid[0] if config.outer.tuned else config.outer.lr,
                      config.outer.eval_every)
    sweep = lr_sweep(config, setup, outer) if config.outer.tuned else None
    learners = {v.name: make_learner(v.base, v.options)
                for v in learner_specs(config.learners, config.variants, config.learner_options)}
    fixed = {n: init_params(problem, v, device, dtype) for n, v in (inits or {}).items()}
    theta0 = problem.model.init(config.seed, device, dtype)
    heldout, held_seed = setup.tasks, setup.seed
    eval_tasks = heldout.select(list(range(min(config.outer.eval_tasks, len(heldout)))))
    evaluate = make_evaluator(problem, eval_tasks, spec, held_seed)
    itemsize = torch.finfo(dtype).bits // 8
    plan = budget.record_plan(config, problem.model.spec.size, len(learners) + len(fixed),
                              rollouts_per_chunk(problem.model.spec.size, itemsize, len(heldout)))
    chunk = chunk_tasks(problem, len(heldout), spec.steps, itemsize)
    timings: dict[str, float] = {}
    records: dict[str, LearnerRecord] = {}
    recordings: dict[str, Recording] = {}
    dspec = DiagnosticsSpec(seed=config.seed)
    ref = ProblemRef.of(config.family, config.family_options)
    diag_info: dict = {}
    tuning: dict = {}
    dead = {"start": dead_fraction(problem, theta0, heldout), "learners": {}}

    def diagnose(traj: Trajectory, part: Rollouts, name: str) -> Diagnostics:
        nonlocal diag_info
        t0 = time.perf_counter()
        diag = path_diagnostics(part, traj, dspec, Work(executor, ref=ref))
        key = f"diagnostics:{name}"
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        diag_info = diagnostics_info(spec, diag, dspec.iters)
        return diag

    def record(name: str, start: torch.Tensor) -> Recording:
        # Every path starts from the flat θ0 unflattened, as a recomputation does (recompute.py).
        t0 = time.perf_counter()
        out = record_rollouts(setup.rollouts, unflatten(start, problem.model.spec), name, scratch,
                              chunk, keep_grads=plan.policy == "full",
                              diagnose=lambda traj, part: diagnose(traj, part, name))
        timings[f"record:{name}"] = time.perf_counter() - t0
        return out

    for name, learner in learners.items():
        t0 = time.perf_counter()
        if sweep is not None and learner.trains:
            total = len(sweep.grid) * outer.meta_steps
            report = None if progress is None else (lambda s, n=name: progress(f"tune:{n}", s, total))
            chosen, trace = tune_outer_lr(learner, sweep, theta0, seed=config.seed, progress=report)
            trace = evaluate_path(trace, problem.model.spec, outer, evaluate)
            tuning[name] = chosen.info()
        else:
            report = None if progress is None else (lambda s, n=name: progress(f"meta:{n}", s, outer.meta_steps))
            trace = meta_train(learner, Training(problem, family, spec, outer), theta0,
                               seed=config.seed, evaluate=evaluate, progress=report)
        timings[f"meta:{name}"] = time.perf_counter() - t0
        dead["learners"][name] = dead_fraction(problem, trace.final_theta0, heldout)
        recordings[name] = record(name, trace.path[-1])
        records[name] = learner_record(name, trace, recordings[name], plan.meta_points)
        del trace
        if progress is not None:
            progress("record", len(records), len(learners))
    for name, vector in fixed.items():
        dead["learners"][name] = dead_fraction(problem, unflatten(vector, problem.model.spec), heldout)
        recordings[name] = record(name, vector)
        records[name] = fixed_record(name, vector, recordings[name], len(eval_tasks))
    return Recorded(problem, heldout, records, timings, family, diag_info, tuning,
                    dead if dead["start"] is not None else {}, recordings, plan)


def lr_sweep(config: ExperimentConfig, setup: HeldOut, outer: OuterSpec) -> Sweep:
    """The outer-lr sweep of a config with ``outer.lr = "tune"``: judged on validation
    tasks of the training split (``pipeline.tune``), never on ``setup``'s held-out tasks."""
    val = validation_tasks(setup.family, config.seed, config.outer.tune_tasks, setup.device,
                           setup.dtype)
    minibatch_indices(val, setup.spec, 0)
    judge = make_evaluator(setup.problem, val, setup.spec, validation_seed(config.seed))
    return Sweep(Training(setup.problem, setup.family, setup.spec, outer), config.outer.lr_grid,
                 judge, len(val))


def run_experiment(config: ExperimentConfig, *, progress: Progress | None = None,
                   run_id: str = "", inits: dict | None = None,
                   threads: int | None = None, executor: Executor | str | None = None) -> Run:
    """Run the whole experiment described by ``config`` and return it as a ``Run``.

    ``progress(stage, done, total)`` is called as work completes, with stages
    ``meta:<learner>``, ``record``, ``surface:<kind>`` and ``birthmap:<kind>``. Timings
    include ``diagnostics:<learner>``, the per-step diagnostics' share.
    ``inits``: {name: θ0} fixed initialisations compared beside the learners;
    a θ0 is a [P] array, {param name: array}, or a file (``trajviz.problem.inits``).
    With ``config.birthmap.enabled`` every view gets a birth map. ``threads``:
    torch threads for the work (default: the policy of ``trajviz/kernels/threads.py``). The
    chunks of the surfaces, birth maps and sharpness diagnostics go through ``executor``: an Executor, a scheduler
    string (``local-dask:2``, ``tcp://HOST:PORT``: started or reached before any work,
    closed at the end) or None (in-process).
    """
    setup = heldout_setup(config)  # the one family of the run, passed down from here
    chosen = config_threads(config, threads, setup.problem)
    with thread_scope(chosen, policy=threads is None), using(executor) as ex, recording():
        return _run_experiment(config, setup, progress=progress, run_id=run_id, inits=inits,
                               executor=ex)


def _run_experiment(config: ExperimentConfig, setup: HeldOut, *,
                    progress: Progress | None = None, run_id: str = "",
                    inits: dict | None = None, executor: Executor | None = None) -> Run:
    from trajviz.problem.inits import resolve_inits

    started = time.perf_counter()
    ref = ProblemRef.of(config.family, config.family_options)
    with PathScratch() as scratch:
        rec = train_and_record(config, progress,
                               resolve_inits(config, inits, setup.problem.model.spec),
                               executor, scratch, setup)
        timings = dict(rec.timings)
        views = {}
        points = {n: r.points for n, r in rec.recordings.items()}
        for kind in config.slices.kinds:
            t0 = time.perf_counter()
            report = None if progress is None else (
                lambda done, total, k=kind: progress(f"surface:{k}", done, total))
            views[kind] = build_view(kind, config, rec.problem, rec.heldout, rec.records,
                                     Work(executor, report, ref), points=points)
            timings[f"surface:{kind}"] = time.perf_counter() - t0
        full = rec.plan.policy == "full"
        rec = replace(rec, records={n: with_paths(r, rec.recordings[n], full)
                                    for n, r in rec.records.items()}, recordings={})
    birthmaps = {}
    if config.birthmap.enabled:
        from trajviz.pipeline.birthmap import birth_map_on
        for kind, view in views.items():
            t0 = time.perf_counter()
            report = None if progress is None else (
                lambda done, total, k=kind: progress(f"birthmap:{k}", done, total))
            birthmaps[kind] = birth_map_on(setup.rollouts, view, rec.records, config.birthmap,
                                           Work(executor, report, ref))
            timings[f"birthmap:{kind}"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    model = rec.problem.model
    info = {
        "schema_version": SCHEMA_VERSION, "seed": config.seed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": {"trajviz": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "timings": timings, "summary": summary(rec.records), "summary_counts": summary_counts(rec.records),
        "diagnostics": rec.diagnostics,
        **({"tuning": rec.tuning} if rec.tuning else {}),
        **({"dead_units": rec.dead_units} if rec.dead_units else {}),
        "divergence": divergence_report({n: r.diverged_at for n, r in rec.records.items()},
                                        _numpy(rec.heldout.ids), config.inner.divergence_factor),
        "model": model.name,
        "param_count": model.spec.size, "param_names": list(model.spec.names),
        "param_shapes": [list(s) for s in model.spec.shapes],
        "family_options": family_options(rec.family),  # the store writes tuples as lists
        "record": record_info(rec.plan),
        "kernels": {"request": requested(), **ran_names(recorded())},  # which backend ran each op
    }
    task_info = {k: _numpy(v) for k, v in rec.heldout.info.items()}
    if inits:
        info["inits"] = list(inits)
    return Run(run_id=run_id, config=to_dict(config), info=info, task_ids=_numpy(rec.heldout.ids),
               task_info=task_info, learners=rec.records, views=views, birthmaps=birthmaps)

