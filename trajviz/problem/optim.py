"""Inner-loop optimisers as pure ``(init, update)`` pairs (in the style of optax).

``init(params) -> state`` and ``update(grads, state, params) -> (updates, state)``;
the new parameters are ``params + updates``. Nothing is mutated, so the same
functions serve recorded loops, vmapped loops and MAML's differentiable
unroll. Every optimiser matches its ``torch.optim`` counterpart (tests).
All tensors may carry leading batch dimensions (tasks, θ0s): the maths is
elementwise.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from trajviz.problem.models import Params

State = dict[str, Any]


@dataclass(frozen=True)
class InnerOptimizer:
    """A named pure optimiser; ``hyper`` echoes its settings for the run record."""

    name: str
    hyper: tuple[tuple[str, float], ...]
    init: Callable[[Params], State]
    update: Callable[[Params, State, Params], tuple[Params, State]]


def sgd(lr: float) -> InnerOptimizer:
    """``θ ← θ − lr·g`` (``torch.optim.SGD(lr=lr)``)."""
    _check_positive(lr=lr)

    def init(params: Params) -> State:
        return {}

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        return {k: -lr * g for k, g in grads.items()}, state

    return InnerOptimizer("sgd", (("lr", lr),), init, update)


def momentum(lr: float, beta: float = 0.9, nesterov: bool = False) -> InnerOptimizer:
    """Heavy ball, as ``torch.optim.SGD(lr, momentum=beta, nesterov=...)``.

    torch's first step sets the buffer to ``g`` (not ``(1−dampening)·g``);
    starting from a zero buffer gives the same thing with dampening 0.
    """
    _check_positive(lr=lr)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"momentum beta must lie in [0, 1), got {beta}")

    def init(params: Params) -> State:
        return {"buf": {k: torch.zeros_like(p) for k, p in params.items()}}

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        buf = {k: beta * state["buf"][k] + g for k, g in grads.items()}
        step = {k: g + beta * buf[k] for k, g in grads.items()} if nesterov else buf
        return {k: -lr * s for k, s in step.items()}, {"buf": buf}

    return InnerOptimizer("momentum", (("lr", lr), ("beta", beta), ("nesterov", float(nesterov))),
                          init, update)


def adam(lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> InnerOptimizer:
    """Adam, as ``torch.optim.Adam(lr, betas=(beta1, beta2), eps=eps)``."""
    _check_positive(lr=lr, eps=eps)
    for name, b in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"adam {name} must lie in [0, 1), got {b}")

    def init(params: Params) -> State:
        zeros = {k: torch.zeros_like(p) for k, p in params.items()}
        return {"m": zeros, "v": dict(zeros), "t": 0}

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        t = state["t"] + 1
        m = {k: beta1 * state["m"][k] + (1 - beta1) * g for k, g in grads.items()}
        v = {k: beta2 * state["v"][k] + (1 - beta2) * g * g for k, g in grads.items()}
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        updates = {k: -(lr / bc1) * m[k] / (_safe_sqrt(v[k]) / (bc2 ** 0.5) + eps) for k in grads}
        return updates, {"m": m, "v": v, "t": t}

    return InnerOptimizer("adam", (("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps)),
                          init, update)


OPTIMIZERS: dict[str, Callable[..., InnerOptimizer]] = {
    "sgd": sgd, "momentum": momentum, "adam": adam,
}


def make_optimizer(name: str, lr: float, **options: float) -> InnerOptimizer:
    """Build an inner optimiser by name; unknown names list the accepted ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown inner optimizer {name!r}; accepted: {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](lr, **options)


def _safe_sqrt(x: Tensor) -> Tensor:
    """√x with a finite derivative at 0 (the value is exactly ``torch.sqrt``).

    A gradient entry that is exactly 0 (a dead ReLU) gives v = 0, where √'s
    derivative is infinite; MAML differentiates through this and would turn
    0·∞ into NaN. The double ``where`` keeps the backward pass away from √0.
    """
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")
