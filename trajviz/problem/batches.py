"""How every learner adapts to a task, and which data each inner step sees.

``InnerSpec`` (optimiser, steps, minibatch size, divergence rule), ``Rollouts``
(the problem, tasks, spec and seed that every batch of rollouts travels with) and the
minibatch schedule (``minibatch_indices``, ``all_batches``) sit below the
engine so that the inner loop (``trajviz.engine.inner``) and the kernels
(``trajviz.kernels``) read one definition.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from trajviz.problem.optim import InnerOptimizer
from trajviz.problem.tasks import Batch, Problem, TaskSet


@dataclass(frozen=True)
class InnerSpec:
    """How every learner adapts to a task (the same for all, by construction).

    ``batch_size=None`` is full-batch; otherwise step i uses its own minibatch,
    drawn without replacement from each task's support set (fresh points per
    step while the pool lasts). Checked by ``trajviz.spec.config`` (``BOUNDS``).

    A rollout *diverges* at its first step whose loss or parameters are not
    finite, or whose loss exceeds ``divergence_factor`` times its starting
    loss in magnitude (|f_i| > factor·|f_0|; default 1e6); see ``first_divergence``.
    """

    optimizer: InnerOptimizer
    steps: int
    batch_size: int | None = None
    divergence_factor: float = 1e6


@dataclass(frozen=True)
class Rollouts:
    """What R rollouts run on, all but their θ0s: the parameter bundle that the inner
    loop, the recorder, the diagnostics and the birth map share.

    problem: the model and its loss; tasks: R tasks, rollout r on task r (on the device
    and dtype to compute in); spec: the inner loop (``InnerSpec``); seed: the seed of the
    minibatches (``minibatch_indices``), so a rollout's batches are rebuilt exactly.
    """

    problem: Problem
    tasks: TaskSet
    spec: InnerSpec
    seed: int = 0

    def on(self, tasks: TaskSet) -> Rollouts:
        """The same setting on other tasks (a chunk, a selection, θ0s × tasks)."""
        return replace(self, tasks=tasks)


def minibatch_indices(tasks: TaskSet, spec: InnerSpec, seed: int) -> np.ndarray | None:
    """[R, K+1, B] support indices per rollout and step, or None for full-batch.

    Each rollout walks a random permutation of its support pool, so batches are
    disjoint until the pool is used up, then it reshuffles. The order depends
    only on ``seed`` and the rollout's task id, so a task sees the same batches
    whether it runs alone, in a meta-batch, or once per θ0
    (``pair_theta0_with_tasks``): θ0s are compared on equal terms.
    """
    if spec.batch_size is None or not tasks.minibatchable:
        return None
    pool = next(iter(tasks.support.values())).shape[1]
    if spec.batch_size > pool:
        raise ValueError(f"batch_size {spec.batch_size} exceeds the {pool} support points per task")
    need = (spec.steps + 1) * spec.batch_size
    rounds = -(-need // pool)
    orders: dict[int, np.ndarray] = {}
    for task_id in tasks.ids.tolist():
        if task_id not in orders:
            rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBA7C, task_id]))
            orders[task_id] = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:need]
    perms = np.stack([orders[task_id] for task_id in tasks.ids.tolist()])
    return perms.reshape(len(tasks), spec.steps + 1, spec.batch_size)


def all_batches(tasks: TaskSet, indices: np.ndarray | None) -> Batch | None:
    """Every rollout's batch at every step, gathered at once: {key: [R, K+1, B, ...]}."""
    if indices is None:
        return None
    idx = torch.from_numpy(indices).to(tasks.ids.device)
    rows = torch.arange(idx.shape[0], device=idx.device)[:, None, None]
    return {k: v[rows, idx] for k, v in tasks.support.items()}
