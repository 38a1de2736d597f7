"""A fair outer learning rate per learner: a small seeded sweep on validation tasks.

With ``outer.lr = "tune"`` every learner that meta-learns is meta-trained once per
value of ``outer.lr_grid`` (same θ0, same meta-batches, same inner loop: only the
outer lr differs), and each resulting θ0 is judged by the mean loss AUC of the inner
loops it starts on ``outer.tune_tasks`` *validation* tasks. Those are drawn from the
training distribution with a stream of their own (``VALIDATION_STREAM``): the
held-out tasks, on which the page compares the learners, are never looked at. The
lowest score wins (a tie or an all-diverged grid goes to the smaller lr); the
winner's meta-training is kept as the learner's, so tuning costs ``len(grid)``
meta-trainings per learner, not one more (``spec.budget.tune_seconds``).

Nothing here reads or writes files; the choice is stored by the experiment in
``run.info["tuning"]`` (``Tuning.info``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from trajviz.engine.learners import Learner, MetaTrace, Training, meta_train
from trajviz.problem.models import Params
from trajviz.problem.tasks import TaskFamily, TaskSet

VALIDATION_STREAM = 0x7A11D  # seeds the validation tasks and their minibatches
TUNE_METRIC = "auc"  # mean loss over the K inner steps: how fast and how far a task is learned
Judge = Callable[[Params], dict[str, float]]


@dataclass(frozen=True)
class Tuning:
    """One learner's sweep: grid [G] outer lrs (as configured), scores [G] the mean
    validation ``metric`` of the θ0 each lr reached (NaN: every validation rollout
    diverged), ``chosen`` the lr kept, judged on ``tasks`` validation tasks; ``start``
    the score of the θ0 meta-training started from (no lr of the grid may beat it)."""

    grid: tuple[float, ...]
    scores: tuple[float, ...]
    chosen: float
    start: float
    metric: str = TUNE_METRIC
    tasks: int = 0

    def info(self) -> dict:
        """JSON-ready (the store writes NaN scores as null and reads them back)."""
        return {"grid": list(self.grid), "scores": list(self.scores), "chosen": self.chosen,
                "start": self.start, "metric": self.metric, "tasks": self.tasks,
                "split": "validation"}


def validation_seed(seed: int) -> int:
    """The seed of the validation tasks (and their minibatches) of a run with ``seed``."""
    return int(np.random.SeedSequence([seed, VALIDATION_STREAM]).generate_state(1)[0])


def validation_tasks(family: TaskFamily, seed: int, n_tasks: int, device: str,
                     dtype: torch.dtype) -> TaskSet:
    """``n_tasks`` tasks of the *training* split under their own seed: neither the
    held-out tasks nor (but by chance) any meta-batch's tasks."""
    return family.sample(validation_seed(seed), n_tasks, "train").to(device, dtype)


def choose(grid: Sequence[float], scores: Sequence[float]) -> int:
    """Index of the lowest finite score; among equal scores (and when none is finite)
    the smallest lr: the cautious choice."""
    def rank(i: int) -> tuple[bool, float, float]:  # a total order: finite first, then lr
        finite = math.isfinite(scores[i])
        return (not finite, scores[i] if finite else 0.0, grid[i])
    return min(range(len(grid)), key=rank)


@dataclass(frozen=True)
class Sweep:
    """What a sweep needs besides the learner: the meta-training setting (``outer.lr`` is
    replaced by each grid value), the grid, the judge (θ0 -> validation metrics) and
    the number of validation tasks it judges on (recorded)."""

    training: Training
    grid: tuple[float, ...]
    judge: Judge
    tasks: int


def tune_outer_lr(learner: Learner, sweep: Sweep, theta0: Params, *, seed: int,
                  progress: Callable[[int], None] | None = None) -> tuple[Tuning, MetaTrace]:
    """Meta-train ``learner`` from ``theta0`` once per lr of ``sweep.grid`` and keep the
    best (``choose``). Returns the record of the sweep and the winner's trace, which is
    what ``meta_train`` with that lr gives (evaluated on nothing: the caller adds the
    held-out curves with ``evaluate_path``). ``progress(done)`` counts meta-steps over
    the whole sweep (G·S)."""
    steps = sweep.training.outer.meta_steps
    start = float(sweep.judge(theta0)[TUNE_METRIC])
    scores: list[float] = []
    best: tuple[float, MetaTrace] | None = None
    for i, lr in enumerate(sweep.grid):
        report = None if progress is None else (lambda s, i=i: progress(i * steps + s))
        training = dataclasses.replace(sweep.training,
                                       outer=dataclasses.replace(sweep.training.outer, lr=lr))
        trace = meta_train(learner, training, theta0, seed=seed, progress=report)
        scores.append(float(sweep.judge(trace.final_theta0)[TUNE_METRIC]))
        if choose(sweep.grid[:i + 1], scores) == i:
            best = (lr, trace)  # keep one trace, not G
    assert best is not None
    return Tuning(tuple(sweep.grid), tuple(scores), best[0], start, TUNE_METRIC, sweep.tasks), best[1]
