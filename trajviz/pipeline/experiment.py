"""config → meta-train each learner → record held-out paths → slices → surfaces → ``Run``.

The only place where the pieces meet. Every learner starts from the same
random θ0, meets the same meta-training tasks (``step_seed``), and is judged
on the same held-out tasks with the same inner optimiser and minibatches.
Nothing here reads or writes files.
"""
from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import torch

from trajviz.spec.version import VERSION as __version__
from trajviz.spec.config import ExperimentConfig, to_dict
from trajviz.engine.context import ProblemRef
from trajviz.engine.diagnostics import Diagnostics, DiagnosticsSpec, good_points, path_diagnostics
from trajviz.engine.executors import Executor, using
from trajviz.engine.inner import InnerSpec, Trajectory, inner_loop
from trajviz.engine.learners import MetaTrace, OuterSpec, make_learner, meta_train
from trajviz.data.stats import summarise
from trajviz.engine.metrics import path_metrics, running_metrics
from trajviz.problem.models import Params, unflatten
from trajviz.data.run import SCHEMA_VERSION, LearnerRecord, Run
from trajviz.data.stability import divergence_report, stability_threshold, subsample_steps
from trajviz.problem.tasks import Problem, TaskFamily, TaskSet, family_options
from trajviz.kernels.threads import thread_scope
from trajviz.spec.learner_variants import learner_specs
from trajviz.pipeline.heldout import (
    config_threads,
    heldout_seed,
    heldout_setup,
    inner_spec,
)
from trajviz.pipeline.views import (
    build_view,
    check_slices,
)

Progress = Callable[[str, int, int], None]
SUMMARY_METRICS = ("length", "param_length", "oscillation", "monotonicity", "final_loss", "auc",
                   "steps_to_eps")
EVAL_METRICS = ("length", "auc", "final_loss", "oscillation")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def heldout_paths(problem: Problem, theta0: Params, tasks: TaskSet, spec: InnerSpec, seed: int,
                  learner: str) -> Trajectory:
    """Record the inner loops from ``theta0`` on the held-out ``tasks``."""
    with torch.no_grad():
        result = inner_loop(problem, theta0, tasks, spec, seed=seed, record=True, learner=learner)
    return result.trajectory


def clean_path(traj: Trajectory) -> tuple[torch.Tensor, torch.Tensor]:
    """params [R, K+1, P] and losses [R, K+1] with every point from a rollout's divergence on
    set to NaN, so path metrics of a diverged rollout are NaN and running metrics keep
    only its good prefix."""
    keep = good_points(traj)
    return (traj.params.masked_fill(~keep[..., None], float("nan")),
            traj.losses.masked_fill(~keep, float("nan")))


def make_evaluator(problem: Problem, tasks: TaskSet, spec: InnerSpec,
                   seed: int) -> Callable[[Params], dict[str, float]]:
    """Held-out metrics of a θ0 (mean over ``tasks``), for the meta-training curves."""
    def evaluate(theta0: Params) -> dict[str, float]:
        traj = heldout_paths(problem, theta0, tasks, spec, seed, "")
        m = path_metrics(*clean_path(traj))
        return {k: float(np.nanmean(_numpy(m[k]))) if np.isfinite(_numpy(m[k])).any() else float("nan")
                for k in EVAL_METRICS}
    return evaluate


def learner_record(name: str, trace: MetaTrace, traj: Trajectory, meta_points: int,
                   diagnostics: Diagnostics | None = None) -> LearnerRecord:
    keep = subsample_steps(trace.path.shape[0] - 1, meta_points)
    params, losses = clean_path(traj)
    metrics = path_metrics(params, losses)
    running = running_metrics(params, losses)
    return LearnerRecord(
        name=name, theta0=_numpy(trace.path[-1]), meta_path_steps=keep,
        meta_path=_numpy(trace.path[torch.from_numpy(keep)]),
        eval_steps=_numpy(trace.eval_steps), evals={k: _numpy(v) for k, v in trace.evals.items()},
        params=_numpy(traj.params), losses=_numpy(traj.losses), grads=_numpy(traj.grads),
        query_losses=_numpy(traj.query_losses), diverged_at=_numpy(traj.diverged_at),
        metrics={k: _numpy(v) for k, v in metrics.items()},
        running={k: _numpy(v) for k, v in running.items()},
        diagnostics={} if diagnostics is None else dict(diagnostics.values))


def fixed_record(name: str, theta0: torch.Tensor, traj: Trajectory, eval_tasks: int,
                 diagnostics=None) -> LearnerRecord:
    """A fixed initialisation (no meta-training) as a learner record.

    theta0: [P]. Its meta path is the one point θ0 at meta-step 0, and its
    "meta-training curve" the one evaluation at step 0: the mean held-out
    metrics over the first ``eval_tasks`` tasks, which is what the learners'
    evaluator computes (same tasks, same minibatches, so the same paths).
    """
    metrics = path_metrics(traj.params[:eval_tasks], traj.losses[:eval_tasks])
    evals = {k: torch.tensor([float(np.nanmean(_numpy(metrics[k])))
                              if np.isfinite(_numpy(metrics[k])).any() else float("nan")])
             for k in EVAL_METRICS}
    trace = MetaTrace(learner=name, final_theta0={}, path=theta0.detach()[None],
                      eval_steps=torch.zeros(1, dtype=torch.long), evals=evals,
                      diverged=torch.zeros(0, dtype=torch.long))
    return learner_record(name, trace, traj, 2, diagnostics)


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
            "power_iterations": iters, "names": list(diag.values)}


@dataclass(frozen=True)
class Recorded:
    """Meta-trained learners and their held-out paths, before any slicing."""

    problem: Problem
    heldout: TaskSet
    records: dict[str, LearnerRecord]
    timings: dict[str, float]
    family: TaskFamily
    diagnostics: dict = field(default_factory=dict)


def init_params(problem: Problem, theta0, device: str, dtype: torch.dtype) -> torch.Tensor:
    """A fixed θ0 given as a [P] array/tensor, as a [P] tensor of the run's device and dtype."""
    vector = torch.as_tensor(np.asarray(theta0) if not isinstance(theta0, torch.Tensor) else theta0)
    P = problem.model.spec.size
    if vector.shape != (P,):
        raise ValueError(f"θ0 must have shape [{P}] for {problem.model.name}, got {list(vector.shape)}")
    return vector.to(device=device, dtype=dtype)


def train_and_record(config: ExperimentConfig, progress: Progress | None = None,
                     inits: dict[str, np.ndarray] | None = None,
                     executor: Executor | None = None) -> Recorded:
    """Meta-train every learner of ``config`` and record its held-out inner loops.

    ``inits``: {name: θ0 [P]} fixed initialisations (e.g. a user's own file, see
    ``trajviz.problem.inits``), recorded after the learners on the same held-out tasks
    and minibatches.
    """
    setup = heldout_setup(config)
    device, dtype, family, problem, spec = setup.device, setup.dtype, setup.family, setup.problem, setup.spec
    check_slices(config, problem)
    clash = sorted(set(inits or {}) & set(config.learners))
    if clash:
        raise ValueError(f"initialisation name(s) {clash} clash with the learners; choose other names")
    outer = OuterSpec(config.outer.meta_steps, config.outer.meta_batch, config.outer.optimizer,
                      config.outer.lr, config.outer.eval_every)
    learners = {v.name: make_learner(v.base, v.options)
                for v in learner_specs(config.learners, config.variants, config.learner_options)}
    fixed = {n: init_params(problem, v, device, dtype) for n, v in (inits or {}).items()}
    theta0 = problem.model.init(config.seed, device, dtype)
    heldout, held_seed = setup.tasks, setup.seed
    eval_tasks = heldout.select(list(range(min(config.outer.eval_tasks, len(heldout)))))
    evaluate = make_evaluator(problem, eval_tasks, spec, held_seed)
    timings: dict[str, float] = {}
    records: dict[str, LearnerRecord] = {}
    dspec = DiagnosticsSpec(seed=config.seed)
    diagnose = functools.partial(path_diagnostics, problem, tasks=heldout, spec=spec, seed=held_seed,
                                 dspec=dspec, executor=executor,
                                 ref=ProblemRef.of(config.family, config.family_options))
    diag_info: dict = {}
    for name, learner in learners.items():
        t0 = time.perf_counter()
        report = None if progress is None else (lambda s, n=name: progress(f"meta:{n}", s, outer.meta_steps))
        trace = meta_train(learner, problem, family, spec, outer, theta0, seed=config.seed,
                           device=device, dtype=dtype, evaluate=evaluate, progress=report)
        timings[f"meta:{name}"] = time.perf_counter() - t0
        traj = heldout_paths(problem, trace.final_theta0, heldout, spec, held_seed, name)
        t0 = time.perf_counter()
        diag = diagnose(traj)
        timings[f"diagnostics:{name}"] = time.perf_counter() - t0
        diag_info = diagnostics_info(spec, diag, dspec.iters)
        records[name] = learner_record(name, trace, traj, config.meta_path_points, diag)
        if progress is not None:
            progress("record", len(records), len(learners))
    for name, vector in fixed.items():
        traj = heldout_paths(problem, unflatten(vector, problem.model.spec), heldout, spec, held_seed, name)
        diag = diagnose(traj)
        records[name] = fixed_record(name, vector, traj, len(eval_tasks), diag)
    return Recorded(problem, heldout, records, timings, family, diag_info)


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
    torch threads for the work (default: the policy of ``trajviz/threads.py``). The
    chunks of the surfaces, birth maps and sharpness diagnostics go through ``executor``: an Executor, a scheduler
    string (``local-dask:2``, ``tcp://HOST:PORT``: started or reached before any work,
    closed at the end) or None (in-process).
    """
    chosen = config_threads(config, threads)
    with thread_scope(chosen, policy=threads is None), using(executor) as ex:
        return _run_experiment(config, progress=progress, run_id=run_id, inits=inits, executor=ex)


def _run_experiment(config: ExperimentConfig, *, progress: Progress | None = None,
                    run_id: str = "", inits: dict | None = None,
                    executor: Executor | None = None) -> Run:
    from trajviz.problem.inits import resolve_inits

    started = time.perf_counter()
    rec = train_and_record(config, progress, resolve_inits(config, inits), executor)
    timings = dict(rec.timings)
    views = {}
    for kind in config.slices.kinds:
        t0 = time.perf_counter()
        views[kind] = build_view(kind, config, rec.problem, rec.heldout, rec.records, progress,
                                 executor)
        timings[f"surface:{kind}"] = time.perf_counter() - t0
    birthmaps = {}
    if config.birthmap.enabled:
        from trajviz.pipeline.birthmap import birth_map_on
        for kind, view in views.items():
            t0 = time.perf_counter()
            report = None if progress is None else (
                lambda done, total, k=kind: progress(f"birthmap:{k}", done, total))
            birthmaps[kind] = birth_map_on(rec.problem, rec.heldout, inner_spec(config.inner),
                                           heldout_seed(config), view, rec.records, config.birthmap,
                                           progress=report, executor=executor,
                                           ref=ProblemRef.of(config.family, config.family_options))
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
        "divergence": divergence_report({n: r.diverged_at for n, r in rec.records.items()},
                                        _numpy(rec.heldout.ids), config.inner.divergence_factor),
        "model": model.name,
        "param_count": model.spec.size, "param_names": list(model.spec.names),
        "param_shapes": [list(s) for s in model.spec.shapes],
        "family_options": family_options(rec.family),  # the store writes tuples as lists
    }
    task_info = {k: _numpy(v) for k, v in rec.heldout.info.items()}
    if inits:
        info["inits"] = list(inits)
    return Run(run_id=run_id, config=to_dict(config), info=info, task_ids=_numpy(rec.heldout.ids),
               task_info=task_info, learners=rec.records, views=views, birthmaps=birthmaps)

