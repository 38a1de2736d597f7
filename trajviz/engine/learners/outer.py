"""The one outer loop every learner shares.

Each meta-step samples a fresh meta-batch of training tasks (the same tasks
for every learner, from the seed), asks the learner for its meta-gradient,
and lets a torch optimiser descend it. θ0 is recorded at every meta-step;
held-out metrics are computed by an ``evaluate`` callback every few steps.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from trajviz.engine.inner import InnerSpec
from trajviz.engine.learners.base import Learner
from trajviz.problem.models import Params, ParamSpec, flatten, unflatten
from trajviz.problem.tasks import Problem, TaskFamily

OUTER_OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam, "sgd": torch.optim.SGD,
}


@dataclass(frozen=True)
class OuterSpec:
    """meta_steps S, meta_batch tasks per step, the outer optimiser and its lr;
    held-out evaluation every ``eval_every`` steps (and at 0 and S). Checked by
    ``trajviz.spec.config`` (``BOUNDS``); this type trusts its values."""

    meta_steps: int = 100
    meta_batch: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    eval_every: int = 10


@dataclass(frozen=True)
class Training:
    """What meta-training runs on, whichever the learner: the problem, the family that
    samples each meta-step's tasks, the inner loop every learner adapts with and the
    outer loop (``meta_train``; an outer-lr sweep replaces ``outer.lr``)."""

    problem: Problem
    family: TaskFamily
    inner: InnerSpec
    outer: OuterSpec


@dataclass(frozen=True)
class MetaTrace:
    """A learner's meta-training record.

    final_theta0: {name: [*shape]} the initialisation after the last meta-step.
    path: [S+1, P] θ0 before every meta-step and after the last.
    eval_steps: [E] meta-steps at which ``evaluate`` ran.
    evals: {metric: [E]} what ``evaluate`` returned.
    diverged: [S] rollouts per meta-step whose inner loop diverged (the whole meta-batch
        when the meta-gradient was not finite and the step was skipped).
    """

    learner: str
    final_theta0: Params
    path: Tensor
    eval_steps: Tensor
    evals: dict[str, Tensor]
    diverged: Tensor


def step_seed(seed: int, step: int) -> int:
    """The seed of meta-step ``step``'s tasks and minibatches, shared by all learners."""
    return int(np.random.SeedSequence([seed, step, 0x0E7E]).generate_state(1)[0])


def eval_schedule(meta_steps: int, eval_every: int) -> list[int]:
    """The meta-steps at which ``meta_train`` evaluates θ0: 0, every ``eval_every``, and the last."""
    return sorted({0, meta_steps, *range(eval_every, meta_steps + 1, eval_every)})


def evaluate_path(trace: MetaTrace, spec: ParamSpec, outer: OuterSpec,
                  evaluate: Callable[[Params], dict[str, float]]) -> MetaTrace:
    """``trace`` with ``evaluate`` run afterwards on its recorded θ0 path at
    ``eval_schedule``: the same values ``meta_train(..., evaluate=evaluate)`` records
    during training (the path holds θ0 exactly), without training again. spec: the
    model's ``ParamSpec``."""
    steps = eval_schedule(trace.path.shape[0] - 1, outer.eval_every)
    evals = [evaluate(unflatten(trace.path[s], spec)) for s in steps]
    keys = sorted({k for e in evals for k in e})
    return dataclasses.replace(
        trace, eval_steps=torch.tensor(steps, dtype=torch.long),
        evals={k: torch.tensor([e.get(k, float("nan")) for e in evals], dtype=torch.float64)
               for k in keys})


def meta_train(learner: Learner, training: Training, theta0: Params, *, seed: int = 0,
               evaluate: Callable[[Params], dict[str, float]] | None = None,
               progress: Callable[[int], None] | None = None) -> MetaTrace:
    """Meta-train ``learner`` from ``theta0`` for ``training.outer.meta_steps`` steps, on
    θ0's device and in its dtype (each meta-batch's tasks are moved there).

    ``evaluate(theta0) -> {metric: value}`` is called at step 0, every
    ``eval_every`` steps and at the end; ``progress(step)`` after each step.
    A learner with ``trains=False`` keeps θ0 and skips the loop's work.
    """
    problem, family = training.problem, training.family
    inner, outer = training.inner, training.outer
    first = next(iter(theta0.values()))
    device, dtype = first.device, first.dtype
    leaves = {k: v.detach().clone().to(device=device, dtype=dtype).requires_grad_(True)
              for k, v in theta0.items()}
    optimizer = OUTER_OPTIMIZERS[outer.optimizer](list(leaves.values()), lr=outer.lr)
    spec = problem.model.spec
    path, diverged = [flatten(_detached(leaves), spec)], []
    eval_steps, evals = [], []
    schedule = set(eval_schedule(outer.meta_steps, outer.eval_every))

    def run_eval(step: int) -> None:
        if evaluate is not None:
            eval_steps.append(step)
            evals.append(evaluate(_detached(leaves)))

    run_eval(0)
    for step in range(outer.meta_steps):
        if learner.trains:
            seed_s = step_seed(seed, step)
            tasks = family.sample(seed_s, outer.meta_batch, "train").to(device, dtype)
            meta = learner.meta_gradient(problem, _detached(leaves), tasks, inner, seed_s)
            if all(bool(torch.isfinite(g).all()) for g in meta.grad.values()):
                for k, p in leaves.items():
                    p.grad = meta.grad[k].detach().to(p.dtype)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                diverged.append(meta.diverged)
            else:  # a non-finite meta-gradient would poison θ0 for good: skip the step, count it
                diverged.append(outer.meta_batch)
        else:
            diverged.append(0)
        path.append(flatten(_detached(leaves), spec))
        if step + 1 in schedule:
            run_eval(step + 1)
        if progress is not None:
            progress(step + 1)
    keys = sorted({k for e in evals for k in e})
    return MetaTrace(
        learner=learner.name, final_theta0=_detached(leaves), path=torch.stack(path),
        eval_steps=torch.tensor(eval_steps, dtype=torch.long),
        evals={k: torch.tensor([e.get(k, float("nan")) for e in evals], dtype=torch.float64) for k in keys},
        diverged=torch.tensor(diverged, dtype=torch.long))


def _detached(params: Params) -> Params:
    return {k: v.detach().clone() for k, v in params.items()}
