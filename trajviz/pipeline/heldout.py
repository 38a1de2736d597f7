"""What judging a θ0 needs, rebuilt from a config alone: the problem, the held-out tasks,
the inner spec and the seed of the held-out minibatches (shared by the experiment, the
birth map, launches and what-if), and the thread count a config runs with."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trajviz.engine.inner import InnerSpec, Rollouts, minibatch_indices
from trajviz.kernels.threads import check_threads, threads_for
from trajviz.problem.optim import InnerOptimizer, make_optimizer
from trajviz.problem.tasks import Problem, TaskFamily, TaskSet, make_family
from trajviz.spec import budget
from trajviz.spec.config import ExperimentConfig, InnerConfig

HELDOUT_STREAM = 0x4E1D  # seeds the held-out minibatches, shared by every learner


def inner_optimizer(inner: InnerConfig) -> InnerOptimizer:
    """The configured inner optimiser, with only the options its kind takes."""
    options = {"sgd": {}, "momentum": {"beta": inner.momentum, "nesterov": inner.nesterov},
               "adam": {"beta1": inner.beta1, "beta2": inner.beta2, "eps": inner.eps}}
    return make_optimizer(inner.optimizer, inner.lr, **options.get(inner.optimizer, {}))


def inner_spec(inner: InnerConfig) -> InnerSpec:
    return InnerSpec(inner_optimizer(inner), inner.steps, inner.batch_size or None, inner.divergence_factor)


def resolve_device(name: str) -> str:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but torch sees no CUDA device; use device = 'cpu'")
    return name


def plugin_sizes(problem: Problem, one_task: TaskSet) -> budget.Sizes:
    """A plugin family's sizes for ``budget.check``, from its model and one sampled task."""
    spec = problem.model.spec
    numel = sum(v[0].numel() for part in (one_task.support, one_task.query) for v in part.values())
    samples = max((v.shape[1] for v in one_task.support.values() if v.dim() > 1), default=1)
    widest = sum(max(shape, default=1) for shape in spec.shapes)
    return budget.Sizes(spec.size, numel, samples, widest)


@dataclass(frozen=True)
class HeldOut:
    """What judging a θ0 needs, rebuilt from a config alone: the problem, the
    held-out tasks (on the config's device and dtype), the inner spec and the
    seed of the held-out minibatches. Every learner was judged with these."""

    family: TaskFamily
    problem: Problem
    tasks: TaskSet
    spec: InnerSpec
    seed: int
    device: str
    dtype: torch.dtype

    @property
    def rollouts(self) -> Rollouts:
        """The held-out rollouts' bundle: problem, tasks, inner spec, minibatch seed."""
        return Rollouts(self.problem, self.tasks, self.spec, self.seed)


def heldout_setup(config: ExperimentConfig) -> HeldOut:
    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    family: TaskFamily = make_family(config.family, config.family_options)
    problem = family.problem()
    if budget.family_sizes(config.family, config.family_options) is None:  # a plugin
        budget.check(config, plugin_sizes(problem, family.sample(config.seed, 1, "heldout")))
    spec = inner_spec(config.inner)
    heldout = family.sample(config.seed, config.heldout_tasks, "heldout").to(device, dtype)
    minibatch_indices(heldout, spec, 0)  # a batch larger than the support pool fails now, not mid-run
    return HeldOut(family, problem, heldout, spec, heldout_seed(config), device, dtype)


def heldout_seed(config: ExperimentConfig) -> int:
    """The seed of the held-out minibatches, shared by every learner."""
    return int(np.random.SeedSequence([config.seed, HELDOUT_STREAM]).generate_state(1)[0])


def config_threads(config: ExperimentConfig, requested: int | None = None,
                   problem: Problem | None = None) -> int | None:
    """The thread count ``run_experiment`` uses for ``config`` (see ``threads.threads_for``).
    ``problem``: the config's, when the caller has built it (``HeldOut.problem``), so that
    the family is not built again just to read the model's size."""
    if requested is not None:
        return check_threads(requested)
    if problem is None:
        problem = make_family(config.family, config.family_options).problem()
    size = problem.model.spec.size
    rollouts = max(config.outer.meta_batch, config.heldout_tasks)
    return threads_for(size, rollouts, device=config.device)
