"""The one table of activations and the one table of inner optimisers every backend reads.

A backend supports an entry where the entry gives what that backend needs:
the hand-written backward pass (``torch`` backend's inner step) needs
``backward``; the C kernels need ``native`` (their code for it). An entry
without it makes the backend decline, with the reason ``declines`` gives, and
the dispatcher takes the next backend (``trajviz.kernels.dispatch``). The
plain autograd path takes every model, so it needs no entry.

Each ``backward`` is written as autograd's own backward for that op
(``threshold_backward``, ``tanh_backward``, ``sigmoid_backward``), so NaN
and infinity go through it exactly as they go through autograd: ReLU keeps a
NaN input as NaN and passes the gradient where its output is NaN
(``NaN <= 0`` is false), as ``torch.relu`` does. The C kernels follow the
same rule (``relu`` in both C files; tests/test_kernels.py checks it).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: its module type, its forward, and per backend its form.

    backward(delta, z, h) -> ∂f/∂z from ∂f/∂h (z: pre-activation, h: output), or
    None (no hand-written derivative: the torch inner step declines);
    native: the C kernels' code, or None (they decline).
    """

    name: str
    module: type
    forward: Callable[[Tensor], Tensor]
    backward: Callable[[Tensor, Tensor, Tensor], Tensor] | None
    native: int | None


def _relu_backward(delta: Tensor, z: Tensor, h: Tensor) -> Tensor:
    return delta.masked_fill(h <= 0, 0.0)  # autograd's threshold_backward(δ, relu(z), 0)


def _tanh_backward(delta: Tensor, z: Tensor, h: Tensor) -> Tensor:
    return delta * (1 - h.square())  # tanh_backward(δ, h)


def _sigmoid_backward(delta: Tensor, z: Tensor, h: Tensor) -> Tensor:
    return delta * ((1 - h) * h)  # sigmoid_backward(δ, h)


ACTIVATIONS: dict[str, Activation] = {a.name: a for a in (
    Activation("identity", nn.Identity, lambda z: z, lambda d, z, h: d, 0),
    Activation("relu", nn.ReLU, torch.relu, _relu_backward, 1),
    Activation("tanh", nn.Tanh, torch.tanh, _tanh_backward, None),
    Activation("sigmoid", nn.Sigmoid, torch.sigmoid, _sigmoid_backward, None),
    Activation("gelu", nn.GELU, None, None, None),
    Activation("silu", nn.SiLU, None, None, None),
    Activation("leaky_relu", nn.LeakyReLU, None, None, None),
    Activation("elu", nn.ELU, None, None, None),
    Activation("softplus", nn.Softplus, None, None, None),
)}
_BY_TYPE = {a.module: a for a in ACTIVATIONS.values()}


def activation_of(module: nn.Module) -> Activation | None:
    """The table's entry for an activation module (exact type), or None (not elementwise here)."""
    return _BY_TYPE.get(type(module))


@dataclass(frozen=True)
class OptimizerEntry:
    """An inner optimiser as the kernels know it: name, its hyper-parameters in the order
    the C kernel reads them, and the C kernel's code (None: the C kernel declines)."""

    name: str
    hyper: tuple[str, ...]
    native: int | None


OPTIMIZERS: dict[str, OptimizerEntry] = {o.name: o for o in (
    OptimizerEntry("sgd", ("lr",), 0),
    OptimizerEntry("momentum", ("lr", "beta", "nesterov"), 1),
    OptimizerEntry("adam", ("lr", "beta1", "beta2", "eps"), 2),
)}


def native_activation(module: nn.Module) -> str | None:
    """Why the C kernels cannot take this activation, or None (they can)."""
    entry = activation_of(module)
    if entry is None or entry.native is None:
        return f"activation {type(module).__name__} has no C form (C kernels: " \
               f"{', '.join(n for n, a in ACTIVATIONS.items() if a.native is not None)})"
    return None


def native_optimizer(name: str) -> str | None:
    """Why the C kernels cannot take this inner optimiser, or None (they can)."""
    entry = OPTIMIZERS.get(name)
    if entry is None or entry.native is None:
        return f"inner optimizer {name!r} has no C form (C kernels: {', '.join(OPTIMIZERS)})"
    return None
