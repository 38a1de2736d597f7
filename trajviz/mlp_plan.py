"""The fusable-MLP recogniser and the fused surface evaluator (batched matmuls).

``mlp_plan`` recognises a multilayer perceptron (``nn.Linear`` layers and
elementwise activations in an ``nn.Sequential``, or one ``nn.Linear``) whose
loss is ``tasks.base.mse_loss`` of its own model, and lays its layers out as
offsets into the flattened parameter vector. ``fused_mlp_mse`` evaluates such
a model at G points of a plane for T tasks as batched matmuls (see
``trajviz.surface``); ``trajviz.fused`` (inner steps) and ``trajviz.compiled``
reuse the same plan.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .tasks.base import Batch, Problem, mse_loss

# The fused MLP path lays activations out feature-major from this many rows
# (tasks × samples) up, sample-major below (measured: bench/bench_surface.py).
FEATURE_MAJOR_ROWS = 32

_MSE_CODE = mse_loss(None).__code__  # the code shared by every mse_loss(model) closure
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU,
                nn.Softplus, nn.Identity)


@dataclass(frozen=True)
class Linear:
    """A linear layer's place in the flattened parameter vector: weight [out, in]
    at ``weight``, bias [out] at ``bias`` (start, stop offsets), or no bias."""

    weight: tuple[int, int]
    bias: tuple[int, int] | None
    in_features: int
    out_features: int


def mlp_layers(problem: Problem) -> tuple[Linear | nn.Module, ...] | None:
    """``mlp_plan``, remembered per problem where the problem is hashable."""
    try:
        return _cachedmlp_plan(problem)
    except TypeError:  # a loss object without a hash
        return mlp_plan(problem)


def mlp_plan(problem: Problem) -> tuple[Linear | nn.Module, ...] | None:
    """The layers of an MLP whose loss is the MSE of its own model, or None (use vmap)."""
    loss = problem.loss
    if getattr(loss, "__code__", None) is not _MSE_CODE or not any(
            cell.cell_contents is problem.model for cell in (loss.__closure__ or ())):
        return None
    module = problem.model.module
    named = [("", module)] if isinstance(module, nn.Linear) else (
        list(module.named_children()) if isinstance(module, nn.Sequential) else None)
    if not named:
        return None
    spec = problem.model.spec
    where, start = {}, 0
    for name, size in zip(spec.names, spec.sizes):
        where[name], start = (start, start + size), start + size
    layers: list[Linear | nn.Module] = []
    for name, child in named:
        prefix = f"{name}." if name else ""
        if type(child) is nn.Linear:
            layers.append(Linear(where[prefix + "weight"],
                                  where[prefix + "bias"] if child.bias is not None else None,
                                  child.in_features, child.out_features))
        elif type(child) in _ELEMENTWISE:
            layers.append(child)
        else:
            return None
    if not isinstance(layers[0], Linear):
        return None
    first = layers[0]
    first_stop = first.bias[1] if first.bias else first.weight[1]
    if first.weight[0] != 0 or (first.bias and first.bias[0] != first.weight[1]):
        return None  # the first layer's parameters must lead the flattened vector
    rest = [s for layer in layers[1:] if isinstance(layer, Linear)
            for s in (layer.weight, layer.bias) if s]
    if any(lo < first_stop for lo, _ in rest):
        return None
    return tuple(layers)


_cachedmlp_plan = functools.lru_cache(maxsize=64)(mlp_plan)


def fused_mlp_mse(layers: tuple, origin: Tensor, basis: Tensor, coords: Tensor,
                   batch: Batch) -> Tensor:
    """[G, T] MSE losses of an MLP at G grid points × T tasks, as batched matmuls.

    With many rows (T·N ≥ ``FEATURE_MAJOR_ROWS``) activations are
    feature-major, [G, features, T·N], so a layer is W(a, b)·h with the weight
    as stored and the narrow output layer streams along the samples; with few
    rows they are sample-major, [G, T·N, features], and a layer is h·W(a, b)ᵀ.
    Each was measured the faster on its side of the threshold.
    """
    x, y = batch["x"], batch["y"]
    n_tasks, n_samples = x.shape[:2]
    rows = n_tasks * n_samples
    g = coords.shape[0]
    feature_major = rows >= FEATURE_MAJOR_ROWS
    # First layer, linear in (a, b): Q = x·[W₀; W_u; W_v]ᵀ + [c₀; c_u; c_v], then Q₀ + (a, b)·Q_uv.
    first: Linear = layers[0]
    n_out, n_in = first.out_features, first.in_features
    plane = torch.cat([origin[None], basis])  # [3, P]: origin, u, v
    w_stack = plane[:, slice(*first.weight)].reshape(3 * n_out, n_in)
    bias = None if first.bias is None else plane[:, slice(*first.bias)].reshape(3 * n_out, 1)
    x_rows = x.reshape(rows, n_in)
    if feature_major:  # [3·out, T·N], already (origin, u, v)-major
        q = torch.mm(w_stack, x_rows.T) if bias is None else torch.addmm(bias, w_stack, x_rows.T)
    else:  # [T·N, 3·out] -> [3, T·N, out]
        q = torch.mm(x_rows, w_stack.T) if bias is None else torch.addmm(bias.T, x_rows, w_stack.T)
        q = q.view(rows, 3, n_out).transpose(0, 1)
    q = q.reshape(3, n_out * rows)
    h = torch.addmm(q[0], coords, q[1:])
    h = h.view(g, n_out, rows) if feature_major else h.view(g, rows, n_out)
    # Every later layer: the grid's own weights, one [G, P_rest] matmul for all of them.
    offset = first.bias[1] if first.bias else first.weight[1]
    theta = torch.addmm(origin[offset:], coords, basis[:, offset:])  # [G, P_rest]

    def at_grid(where: tuple[int, int], *shape: int) -> Tensor:
        return theta[:, where[0] - offset:where[1] - offset].view(g, *shape)

    for layer in layers[1:]:
        if isinstance(layer, Linear):
            weight = at_grid(layer.weight, layer.out_features, layer.in_features)
            if feature_major:
                b = None if layer.bias is None else at_grid(layer.bias, layer.out_features, 1)
                h = torch.bmm(weight, h) if b is None else torch.baddbmm(b, weight, h)
            else:
                b = None if layer.bias is None else at_grid(layer.bias, 1, layer.out_features)
                weight = weight.transpose(1, 2)
                h = torch.bmm(h, weight) if b is None else torch.baddbmm(b, h, weight)
        elif isinstance(layer, nn.ReLU):
            h = torch.relu_(h)
        else:
            h = layer(h)
    if feature_major:  # h: [G, out, T·N]
        residual = h.view(g, -1, n_tasks, n_samples) - y.permute(2, 0, 1)[None]
        return residual.square_().mean(dim=(1, 3))
    residual = h.reshape(g, n_tasks, -1) - y.reshape(1, n_tasks, -1)
    return residual.square_().mean(dim=-1)


def fused_applies(layers: tuple | None, batch: Batch) -> bool:
    if layers is None or set(batch) != {"x", "y"}:
        return False
    x, y = batch["x"], batch["y"]
    last = next(layer for layer in reversed(layers) if isinstance(layer, Linear))
    return (x.dim() == 3 and y.dim() == 3 and x.is_floating_point() and y.dtype == x.dtype
            and x.shape[-1] == layers[0].in_features
            and tuple(y.shape) == (x.shape[0], x.shape[1], last.out_features))
