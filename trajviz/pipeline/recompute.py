"""A light run's held-out paths, recomputed on demand, bitwise equal to a full run's.

A run is deterministic: a learner's held-out rollouts depend only on its θ0 (kept in
every run), the held-out tasks and minibatches (rebuilt from the config's seed) and the
inner optimiser (the config). ``recompute_paths`` reruns them with the function that
recorded them (``record.record_rollouts``: same chunks of tasks, so the same vectorised
calls), so params and grads equal, bit for bit, what a ``record = "full"`` run of the
same config stores. Memory: one learner's [T', K+1, P] params and grads; pass ``tasks``
for fewer.

    paths = recompute_paths(load_run(path), "leap", tasks=[0, 1])
    paths.params  # [2, K+1, P]
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trajviz.data.run import Run
from trajviz.pipeline.experiment import init_params
from trajviz.pipeline.heldout import heldout_setup
from trajviz.pipeline.record import PathScratch, chunk_tasks, record_rollouts
from trajviz.problem.models import unflatten


@dataclass(frozen=True)
class Paths:
    """One learner's held-out paths: task_index [T'] (indices into the run's held-out
    tasks), params and grads [T', K+1, P], losses and query_losses [T', K+1], diverged_at
    [T'] (as in ``LearnerRecord``)."""

    learner: str
    task_index: np.ndarray
    params: np.ndarray
    grads: np.ndarray
    losses: np.ndarray
    query_losses: np.ndarray
    diverged_at: np.ndarray


def recompute_paths(run: Run, learner: str, tasks: list[int] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Paths:
    """``learner``'s held-out paths of ``run`` on ``tasks`` (indices; default all), rerun from
    its θ0 exactly as the run recorded them. ``progress(done, total)`` per chunk of tasks.
    A learner the run lacks, a θ0 not kept (a run loaded with heavy=False keeps it) or a
    task index out of range is a one-line ValueError."""
    from trajviz.spec.config import from_dict

    if learner not in run.learners:
        raise ValueError(f"run has no learner {learner!r}; accepted: {list(run.learners)}")
    setup = heldout_setup(from_dict(run.config))
    count = len(setup.tasks)
    index = list(range(count)) if tasks is None else [int(t) for t in tasks]
    if not index or any(not 0 <= t < count for t in index):
        raise ValueError(f"tasks must be indices in 0..{count - 1}, got {tasks}")
    vector = init_params(setup.problem, run.learners[learner].theta0, setup.device, setup.dtype)
    theta0 = unflatten(vector, setup.problem.model.spec)
    chosen = setup.tasks if tasks is None else setup.tasks.select(index)
    chunk = chunk_tasks(setup.problem, count, setup.spec.steps, vector.element_size())
    parts = []
    with PathScratch() as scratch:
        for done, start in enumerate(range(0, len(index), chunk)):
            part = chosen.select(list(range(start, min(start + chunk, len(index)))))
            parts.append(record_rollouts(setup.rollouts.on(part), theta0, learner, scratch, chunk,
                                         keep_grads=True))
            if progress is not None:
                progress(done + 1, -(-len(index) // chunk))
        params = np.concatenate([p.points.read() for p in parts])
    return Paths(learner, np.asarray(index, dtype=np.int64), params,
                 *(np.concatenate([getattr(p, f) for p in parts])
                   for f in ("grads", "losses", "query_losses", "diverged_at")))


__all__ = ["Paths", "recompute_paths"]
