"""Small model builders used functionally.

A model is a stateless *template* ``nn.Module`` plus a ``ParamSpec``; its
parameters live outside it as ``dict[str, Tensor]`` and are applied with
``torch.func.functional_call``. No module is ever mutated by the engine.
Flattening to one vector happens only where a path is recorded.
"""
from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]


@dataclass(frozen=True)
class ParamSpec:
    """Names and shapes of a model's parameters, in a fixed order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def size(self) -> int:
        """P, the length of the flattened parameter vector."""
        return sum(self.sizes)


@dataclass(frozen=True)
class Model:
    """A functional model.

    ``apply(params, x)`` maps inputs ``x: [N, *in]`` to outputs ``[N, *out]``;
    ``init(seed)`` returns freshly initialised parameters (deterministic in
    ``seed``) with the shapes in ``spec``.
    """

    name: str
    module: nn.Module
    spec: ParamSpec

    def apply(self, params: Params, x: Tensor) -> Tensor:
        return functional_call(self.module, params, (x,))

    def init(self, seed: int, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> Params:
        """Parameters as torch's default initialisers would draw them, from ``seed``."""
        fresh = copy.deepcopy(self.module)  # the template itself is never touched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
        return {n: p.detach().to(device=device, dtype=dtype).clone()
                for n, p in fresh.named_parameters()}


def from_module(name: str, module: nn.Module) -> Model:
    """Wrap a template module; its own parameter values are never used by the engine."""
    named = list(module.named_parameters())
    spec = ParamSpec(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))
    return Model(name=name, module=module, spec=spec)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
}


def mlp(sizes: tuple[int, ...], activation: str = "relu", bias: bool = True) -> Model:
    """Multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` (e.g. 1-40-40-1)."""
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"mlp sizes must be >= 2 positive integers, got {sizes}")
    if activation not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; accepted: {sorted(_ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return from_module("mlp-" + "-".join(map(str, sizes)), nn.Sequential(*layers))


def convnet(n_classes: int, channels: int = 16, image_size: int = 8) -> Model:
    """Two 3x3 conv blocks and a linear head, for ``[N, 1, H, W]`` images."""
    reduced = image_size // 4
    module = nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(channels * reduced * reduced, n_classes),
    )
    return from_module(f"conv{channels}-{n_classes}way", module)


class _Point(nn.Module):
    """A bare parameter vector ``theta: [D]``; ``apply`` returns it unchanged."""

    def __init__(self, dim: int, scale: float):
        super().__init__()
        self.scale = scale
        self.theta = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.theta, std=self.scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.theta


def point(dim: int, scale: float = 1.0) -> Model:
    """The identity model: parameters *are* the point (quadratic bowls)."""
    return from_module(f"point{dim}", _Point(dim, scale))


def flatten(params: Params, spec: ParamSpec) -> Tensor:
    """``{name: [*batch, *shape]}`` -> ``[*batch, P]`` in ``spec`` order."""
    first = params[spec.names[0]]
    batch = first.shape[: first.dim() - len(spec.shapes[0])]
    return torch.cat([params[n].reshape(*batch, -1) for n in spec.names], dim=-1)


def unflatten(vector: Tensor, spec: ParamSpec) -> Params:
    """``[*batch, P]`` -> ``{name: [*batch, *shape]}`` (views, no copy)."""
    if vector.shape[-1] != spec.size:
        raise ValueError(f"vector has {vector.shape[-1]} entries, the model has {spec.size}")
    batch = vector.shape[:-1]
    out, start = {}, 0
    for n, shape, size in zip(spec.names, spec.shapes, spec.sizes):
        out[n] = vector[..., start:start + size].reshape(*batch, *shape)
        start += size
    return out


def batch_shape(params: Params, spec: ParamSpec) -> tuple[int, ...]:
    """Leading batch dimensions of ``params`` beyond the model's own shapes."""
    first = params[spec.names[0]]
    return tuple(first.shape[: first.dim() - len(spec.shapes[0])])
