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
import itertools
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
    feature-major, [G, features, T·N] (``_feature_major``); with few rows they
    are sample-major, [G, T·N, features], and a layer is h·W(a, b)ᵀ. Each was
    measured the faster on its side of the threshold.
    """
    x = batch["x"]
    n_tasks, n_samples = x.shape[:2]
    if n_tasks * n_samples >= FEATURE_MAJOR_ROWS:
        return _feature_major(layers, origin, basis, coords, batch)
    rows, g = n_tasks * n_samples, coords.shape[0]
    first: Linear = layers[0]
    # First layer, linear in (a, b): Q = x·[W₀; W_u; W_v]ᵀ + [c₀; c_u; c_v], then Q₀ + (a, b)·Q_uv.
    w_stack, bias = _first_layer_plane(first, origin, basis)
    x_rows = x.reshape(rows, first.in_features)
    w_rows = w_stack.reshape(3 * first.out_features, first.in_features)
    q = torch.mm(x_rows, w_rows.T) if bias is None else torch.addmm(bias.reshape(1, -1), x_rows, w_rows.T)
    q = q.view(rows, 3, first.out_features).transpose(0, 1).reshape(3, -1)
    h = torch.addmm(q[0], coords, q[1:]).view(g, rows, first.out_features)
    at_grid = _grid_weights(first, origin, basis, coords)
    for layer in layers[1:]:
        if isinstance(layer, Linear):
            weight = at_grid(layer.weight, layer.out_features, layer.in_features).transpose(1, 2)
            b = None if layer.bias is None else at_grid(layer.bias, 1, layer.out_features)
            h = torch.bmm(h, weight) if b is None else torch.baddbmm(b, h, weight)
        elif isinstance(layer, nn.ReLU):
            h = torch.relu_(h)
        else:
            h = layer(h)
    residual = h.reshape(g, n_tasks, -1) - batch["y"].reshape(1, n_tasks, -1)
    return residual.square_().mean(dim=-1)


def _first_layer_plane(first: Linear, origin: Tensor, basis: Tensor) -> tuple[Tensor, Tensor | None]:
    """The first layer's weight [3, out, in] and bias [3, out] (or None) at the origin, u and v."""
    plane = torch.cat([origin[None], basis])  # [3, P]
    w_stack = plane[:, slice(*first.weight)].reshape(3, first.out_features, first.in_features)
    bias = None if first.bias is None else plane[:, slice(*first.bias)]
    return w_stack, bias


def _grid_weights(first: Linear, origin: Tensor, basis: Tensor, coords: Tensor):
    """``at(where, *shape)``: the parameters at ``where`` for every grid point, [G, *shape],
    views into one [G, P_rest] matmul for all the layers after the first."""
    offset = first.bias[1] if first.bias else first.weight[1]
    theta = torch.addmm(origin[offset:], coords, basis[:, offset:])  # [G, P_rest]

    def at(where: tuple[int, int], *shape: int) -> Tensor:
        return theta[:, where[0] - offset:where[1] - offset].view(coords.shape[0], *shape)
    return at


def _feature_major(layers: tuple, origin: Tensor, basis: Tensor, coords: Tensor,
                   batch: Batch) -> Tensor:
    """``fused_mlp_mse`` with activations [G, features, T·N].

    A layer's bias rides inside its GEMM: the layer's input carries a row of
    ones under its features ([G, in + 1, T·N]) and the weight a bias column
    ([G, out, in + 1]), plus a last row (0, …, 0, 1) that carries the ones on
    to the next layer's input; so each layer is one bmm writing its output
    once, contiguous (a separate bias add costs two more passes over the
    activations, which at a thousand samples are the bulk of the time). The first layer is linear
    in (a, b): its output for every grid point is [1, a, b]·[Q₀; Q_u; Q_v]
    with Q = W·xᵀ + c [3, out(+1), T·N] computed once, ones row included
    (1·1 + a·0 + b·0 is exactly 1).
    """
    x, y = batch["x"], batch["y"]
    n_tasks, n_samples = x.shape[:2]
    rows, g = n_tasks * n_samples, coords.shape[0]
    linears = [layer for layer in layers if isinstance(layer, Linear)]
    # A layer's input gets the ones row when the next linear layer has a bias to fold in.
    ones_after = {id(a): b.bias is not None for a, b in itertools.pairwise(linears)}
    first: Linear = layers[0]
    w_stack, bias = _first_layer_plane(first, origin, basis)
    ones = ones_after.get(id(first), False)
    q = x.new_empty(3, first.out_features + ones, rows)
    x_t = x.reshape(rows, first.in_features).T.expand(3, first.in_features, rows)
    out = q[:, :first.out_features]
    torch.bmm(w_stack, x_t, out=out) if bias is None else torch.baddbmm(bias[..., None], w_stack, x_t, out=out)
    if ones:
        q[0, -1], q[1:, -1] = 1.0, 0.0
    corner = torch.cat([coords.new_ones(g, 1), coords], dim=1)  # [G, 3]: (1, a, b)
    h = torch.mm(corner, q.view(3, -1)).view(g, -1, rows)
    has_ones = ones
    at_grid = _grid_weights(first, origin, basis, coords)
    for layer in layers[1:]:
        if isinstance(layer, Linear):
            weight = at_grid(layer.weight, layer.out_features, layer.in_features)
            if layer.bias is not None:  # the input has its ones row
                weight = torch.cat([weight, at_grid(layer.bias, layer.out_features, 1)], dim=2)
            has_ones = ones_after.get(id(layer), False)
            if has_ones and layer.bias is not None:  # a last weight row (0, …, 0, 1) copies the ones
                unit = weight.new_zeros(1, 1, weight.shape[2])
                unit[..., -1] = 1.0
                weight = torch.cat([weight, unit.expand(g, 1, -1)], dim=1)
                h = torch.bmm(weight, h)
            elif has_ones:
                h = torch.cat([torch.bmm(weight, h), h.new_ones(g, 1, rows)], dim=1)
            else:
                h = torch.bmm(weight, h)
        elif isinstance(layer, nn.ReLU):
            h = torch.relu_(h)  # relu(1) = 1: a ones row stays
        else:
            h = layer(h)
            if has_ones:
                h[:, -1] = 1.0
    residual = h.view(g, -1, n_tasks, n_samples) - y.permute(2, 0, 1)[None]
    return residual.square_().mean(dim=(1, 3))


def fused_applies(layers: tuple | None, batch: Batch) -> bool:
    if layers is None or set(batch) != {"x", "y"}:
        return False
    x, y = batch["x"], batch["y"]
    last = next(layer for layer in reversed(layers) if isinstance(layer, Linear))
    return (x.dim() == 3 and y.dim() == 3 and x.is_floating_point() and y.dtype == x.dtype
            and x.shape[-1] == layers[0].in_features
            and tuple(y.shape) == (x.shape[0], x.shape[1], last.out_features))
