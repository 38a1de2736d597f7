"""A complete task-family plugin: 1D cubic regression with its own model.

It is declared in one line, ``@trajviz.task_family(name="cubic")`` on ``make_family``:
once your code imports this module, ``family = "cubic"`` (or
``"demos.plugin_example:make_family"``) runs it, in Python:

    >>> import demos.plugin_example  # declares "cubic"
    >>> from trajviz.problem.tasks import make_family
    >>> family = make_family("cubic", {"shots": 20})

From the command line (run from the repository root so that ``demos`` is importable) a
module is never imported unless declared, so trust this one explicitly::

    trajviz run --family demos.plugin_example:make_family --trust-plugin demos.plugin_example:make_family

or, in a package of your own, declare it with one line in its pyproject.toml and
``pip install -e .`` (docs/plugins.md)::

    [project.entry-points."trajviz.families"]
    cubic = "my_package.cubic:make_family"

The protocol (see ``trajviz/problem/tasks/plugin.py``): a callable taking the family's
options as keyword arguments and returning an object with

* ``name: str``,
* ``problem() -> trajviz.problem.tasks.Problem``: a ``Model`` (a template ``nn.Module`` wrapped
  with ``trajviz.problem.models.from_module``) and a pure, vmappable ``loss(params, batch)``;
* ``sample(seed, n_tasks, split) -> trajviz.problem.tasks.TaskSet``: deterministic in ``seed``,
  with ``split`` "train" or "heldout" drawing independent tasks.

Each task is y = c₀ + c₁x + c₂x² + c₃x³ with coefficients c ~ N(0, coef_scale²·I), observed
with Gaussian noise at x ~ U[−1, 1]. The model is the same polynomial with learnable
coefficients θ ∈ R⁴, so parameter space is small enough to look at whole.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

import trajviz
from trajviz.problem.models import Params, from_module
from trajviz.problem.tasks import SPLITS, Batch, Problem, TaskSet


class Cubic(nn.Module):
    """y = Σ_j coef[j]·x^j for j = 0..3; ``x: [N, 1] -> [N, 1]``."""

    def __init__(self, init_scale: float = 0.5):
        super().__init__()
        self.init_scale = init_scale
        self.coef = nn.Parameter(torch.empty(4))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Model.init(seed) calls this under a seeded generator: a deterministic θ0
        nn.init.normal_(self.coef, std=self.init_scale)

    def forward(self, x: Tensor) -> Tensor:
        powers = torch.cat([torch.ones_like(x), x, x * x, x * x * x], dim=-1)  # [N, 4]
        return powers @ self.coef.unsqueeze(-1)


@dataclass(frozen=True)
class CubicRegression:
    """The family: its dataclass fields are its options, echoed into the run record."""

    name: str = "cubic"
    shots: int = 10
    query_shots: int = 40
    coef_scale: float = 1.0
    noise: float = 0.05
    init_scale: float = 0.5

    def __post_init__(self) -> None:
        for field in ("shots", "query_shots"):
            value = getattr(self, field)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"cubic {field} must be a positive integer, got {value!r}")
        if not self.noise >= 0:
            raise ValueError(f"cubic noise must be >= 0, got {self.noise!r}")

    def problem(self) -> Problem:
        model = from_module("cubic", Cubic(self.init_scale))

        def loss(params: Params, batch: Batch) -> Tensor:
            return ((model.apply(params, batch["x"]) - batch["y"]) ** 2).mean()

        return Problem(model, loss)

    def sample(self, seed: int, n_tasks: int, split: str = "train") -> TaskSet:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; accepted: {list(SPLITS)}")
        if not isinstance(n_tasks, int) or n_tasks <= 0:
            raise ValueError(f"n_tasks must be a positive integer, got {n_tasks!r}")
        # one independent stream per (seed, split): held-out tasks are never training tasks
        rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), 0xC0B1C]))
        coef = self.coef_scale * rng.normal(size=(n_tasks, 4))

        def points(n: int) -> dict[str, Tensor]:
            x = rng.uniform(-1.0, 1.0, size=(n_tasks, n, 1))
            powers = np.concatenate([x ** j for j in range(4)], axis=-1)  # [T, n, 4]
            y = np.einsum("tnj,tj->tn", powers, coef)[..., None]
            y = y + self.noise * rng.normal(size=y.shape)
            return {"x": torch.from_numpy(x).float(), "y": torch.from_numpy(y).float()}

        support, query = points(self.shots), points(self.query_shots)
        return TaskSet(support, query, torch.arange(n_tasks),
                       {"coef": torch.from_numpy(coef).float()})


@trajviz.task_family(name="cubic")
def make_family(shots: int = 10, query_shots: int = 40, coef_scale: float = 1.0,
                noise: float = 0.05, init_scale: float = 0.5) -> CubicRegression:
    """The plugin entry point: options in, family out."""
    return CubicRegression(shots=shots, query_shots=query_shots, coef_scale=coef_scale,
                           noise=noise, init_scale=init_scale)


if __name__ == "__main__":
    # A short demonstration: meta-train Leap on the cubic family and compare the mean
    # held-out loss after 5 inner steps from the random and the meta-learned initialisation.
    from trajviz.engine.inner import InnerSpec, inner_loop
    from trajviz.engine.learners import Leap, OuterSpec, meta_train
    from trajviz.problem.optim import sgd

    family = make_family(shots=20)
    problem = family.problem()
    spec = InnerSpec(sgd(0.1), 5)
    random_theta0 = problem.model.init(0)
    trace = meta_train(Leap(), problem, family, spec, OuterSpec(meta_steps=200, meta_batch=8, lr=0.01),
                       random_theta0)
    heldout = family.sample(0, 50, "heldout")
    for label, theta0 in (("random", random_theta0), ("leap", trace.final_theta0)):
        result = inner_loop(problem, theta0, heldout, spec, record=True)
        final = float(result.trajectory.query_losses[:, -1].mean())
        print(f"{label:>6}: mean held-out query loss after {spec.steps} steps = {final:.4f}")
