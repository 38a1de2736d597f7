"""Has an initialisation collapsed? The fraction of dead ReLU units at a θ0.

A hidden unit is *dead* on some data when its ReLU outputs 0 for every input: no
gradient flows through it, so the inner loop cannot revive it, and a θ0 with
most units dead gives flat paths that barely move (the network has gone
constant). ``dead_fraction`` measures it on the held-out tasks' inputs, for the
view-model's collapse flag (``trajviz.viewmodel.training``). Nothing here writes
files.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from trajviz.problem.models import Params
from trajviz.problem.tasks import Problem, TaskSet


def dead_fraction(problem: Problem, theta0: Params, tasks: TaskSet) -> float | None:
    """The fraction of the model's ReLU units (channels, for a convolution) whose output
    is 0 on every input ``x`` of ``tasks`` (support and query pooled, [T, N, ...]), at
    ``theta0``; None when the model has no ReLU or the tasks have no inputs ``x``
    (quadratic bowls, a linear model)."""
    if "x" not in tasks.support or not tasks.minibatchable:
        return None
    module = copy.deepcopy(problem.model.module)  # hooks go on a copy: the template is shared
    relus = [m for m in module.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        return None
    alive: list[torch.Tensor] = []

    def record(_module: nn.Module, _inputs: tuple, out: torch.Tensor) -> None:
        # unit axis 1 ([N, C] or [N, C, H, W]); alive when positive for some input
        alive.append((out > 0).transpose(0, 1).reshape(out.shape[1], -1).any(dim=1))

    for relu in relus:
        relu.register_forward_hook(record)
    x = torch.cat([tasks.support["x"].flatten(0, 1), tasks.query["x"].flatten(0, 1)])
    with torch.no_grad():
        functional_call(module, theta0, (x,))
    units = torch.cat(alive)
    return float((~units).sum()) / float(units.numel())
