"""The one MLP plan every backend reads, and the torch backend's plane losses.

``mlp_plan`` recognises a multilayer perceptron (``nn.Linear`` layers and
the activations of ``tables.ACTIVATIONS`` in an ``nn.Sequential``, or one
``nn.Linear``) whose loss is ``tasks.base.mse_loss`` of its own model, and
lays its layers out as offsets into the flattened parameter vector. Every
backend reads this plan: ``fused`` (inner steps), ``native`` and
``native_birth`` (the C kernels), and this module's ``fused_mlp_mse`` /
``PlaneMLP``, which evaluate such a model at G points of a plane for T tasks
as batched matmuls (the torch backend of ``trajviz.engine.surface``).
``plane_declines`` says why a problem and batch are not such a case.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trajviz.kernels.tables import activation_of
from trajviz.problem.tasks.base import Batch, Problem, mse_loss

# The fused MLP path lays activations out feature-major from this many rows
# (tasks × samples) up, sample-major below (measured: bench/bench_surface.py).
FEATURE_MAJOR_ROWS = 32

_MSE_CODE = mse_loss(None).__code__  # the code shared by every mse_loss(model) closure


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
        elif activation_of(child) is not None:
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
    feature-major, [G, features, T·N] (``PlaneMLP``); with few rows they
    are sample-major, [G, T·N, features], and a layer is h·W(a, b)ᵀ. Each was
    measured the faster on its side of the threshold.
    """
    x = batch["x"]
    n_tasks, n_samples = x.shape[:2]
    if feature_major(batch):
        return prepare_plane(layers, origin, basis, batch).losses(coords)
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


def feature_major(batch: Batch) -> bool:
    """Whether ``fused_mlp_mse`` lays this batch's activations out feature-major (``PlaneMLP``)."""
    x = batch["x"]
    return x.shape[0] * x.shape[1] >= FEATURE_MAJOR_ROWS


@dataclass(frozen=True, eq=False)
class PlaneMLP:
    """An MLP on one plane and one batch, prepared once for any number of grid chunks.

    Every parameter is linear in (a, b), so each layer's weight at G grid
    points is [1, a, b]·[W₀; W_u; W_v]: one small [G, 3]·[3, out·in] matmul
    per layer and chunk, from stacks built here. A layer's bias rides inside
    its GEMM: its input carries a row of ones under the features
    ([G, in + 1, T·N]) and its weight a bias column, plus a last row
    (0, …, 0, 1) that carries the ones on to the next layer's input (in the
    origin's slot only: 1·1 + a·0 + b·0 is exactly 1). So each layer is one
    bmm writing its output once (a separate bias add costs two more passes
    over the activations, which at a thousand samples are most of the time),
    and a chunk is about a dozen ops, so chunks small enough to stay in cache
    pay. The first layer's output needs no per-point weight at all:
    [1, a, b]·[Q₀; Q_u; Q_v] with Q = W·xᵀ + c [3, out(+1), T·N] computed here.

    steps: ("first", Q [3, F·T·N]) | ("linear", stack [3, out'·in'], (out', in'),
    ones_appended) | ("act", module, restore_ones); y: [1, out, T, N].
    """

    steps: tuple
    y: Tensor

    def losses(self, coords: Tensor) -> Tensor:
        """[G, T] MSE losses at coords [G, 2]."""
        g = coords.shape[0]
        n_out, n_tasks, n_samples = self.y.shape[1:]
        rows = n_tasks * n_samples
        corner = torch.cat([coords.new_ones(g, 1), coords], dim=1)  # [G, 3]: (1, a, b)
        h = coords.new_empty(0)
        for step in self.steps:
            if step[0] == "first":
                h = torch.mm(corner, step[1]).view(g, -1, rows)
            elif step[0] == "linear":
                weight = torch.mm(corner, step[1]).view(g, *step[2])
                h = torch.bmm(weight, h)
                if step[3]:  # this layer has no bias but the next has: append the ones
                    h = torch.cat([h, h.new_ones(g, 1, rows)], dim=1)
            elif isinstance(step[1], nn.ReLU):
                h = torch.relu_(h)  # relu(1) = 1: a ones row stays
            else:
                h = step[1](h)
                if step[2]:
                    h[:, -1] = 1.0
        residual = h.view(g, n_out, n_tasks, n_samples) - self.y
        return residual.square_().mean(dim=(1, 3))


def prepare_plane(layers: tuple, origin: Tensor, basis: Tensor, batch: Batch) -> PlaneMLP:
    """The ``PlaneMLP`` of ``layers`` on the plane origin [P] + span(basis [2, P]) for
    ``batch`` {x: [T, N, in], y: [T, N, out]}."""
    x, y = batch["x"], batch["y"]
    n_tasks, n_samples = x.shape[:2]
    rows = n_tasks * n_samples
    plane = torch.cat([origin[None], basis])  # [3, P]: origin, u, v
    linears = [layer for layer in layers if isinstance(layer, Linear)]
    # a layer's output gets the ones row when the next linear layer has a bias to fold in
    ones_after = {id(a): b.bias is not None for a, b in itertools.pairwise(linears)}

    def stack(layer: Linear) -> Tensor:  # [3, out(+1), in + 1] (the layers after the first)
        w = plane[:, slice(*layer.weight)].reshape(3, layer.out_features, layer.in_features)
        if layer.bias is not None:
            w = torch.cat([w, plane[:, slice(*layer.bias)].reshape(3, layer.out_features, 1)], dim=2)
            if ones_after.get(id(layer)):
                unit = w.new_zeros(3, 1, w.shape[2])
                unit[0, 0, -1] = 1.0
                w = torch.cat([w, unit], dim=1)
        return w

    first: Linear = layers[0]
    w_first = plane[:, slice(*first.weight)].reshape(3, first.out_features, first.in_features)
    q = torch.bmm(w_first, x.reshape(rows, -1).T.expand(3, -1, rows))  # [3, out, T·N]
    if first.bias is not None:
        q += plane[:, slice(*first.bias)].reshape(3, first.out_features, 1)
    if ones_after.get(id(first)):  # the ones row: 1 in the origin's slot, 0 in u's and v's
        ones = q.new_zeros(3, 1, rows)
        ones[0] = 1.0
        q = torch.cat([q, ones], dim=1)
    steps: list[tuple] = [("first", q.reshape(3, -1))]
    has_ones = ones_after.get(id(first), False)
    for layer in layers[1:]:
        if isinstance(layer, Linear):
            w = stack(layer)
            needs_cat = bool(ones_after.get(id(layer))) and layer.bias is None
            steps.append(("linear", w.reshape(3, -1), tuple(w.shape[1:]), needs_cat))
            has_ones = bool(ones_after.get(id(layer)))
        else:
            steps.append(("act", layer, has_ones))
    return PlaneMLP(tuple(steps), y.permute(2, 0, 1)[None])


def plane_declines(layers: tuple | None, batch: Batch) -> str | None:
    """Why the torch backend cannot evaluate this model's plane losses on ``batch``, or None:
    it takes an MLP under its own MSE (``mlp_plan``) and {x: [T, N, in], y: [T, N, out]}."""
    if layers is None:
        return "not an nn.Linear/activation MLP under its own mse_loss"
    if set(batch) != {"x", "y"}:
        return f"the batch holds {sorted(batch)}, not x and y"
    x, y = batch["x"], batch["y"]
    last = next(layer for layer in reversed(layers) if isinstance(layer, Linear))
    if not (x.dim() == 3 and y.dim() == 3 and x.is_floating_point() and y.dtype == x.dtype
            and x.shape[-1] == layers[0].in_features
            and tuple(y.shape) == (x.shape[0], x.shape[1], last.out_features)):
        return f"x {tuple(x.shape)} {x.dtype}, y {tuple(y.shape)} {y.dtype} are not " \
               "[T, N, in], [T, N, out] of one floating dtype"
    return None


def fused_applies(layers: tuple | None, batch: Batch) -> bool:
    """Whether the torch backend evaluates these plane losses (``plane_declines`` is None)."""
    return plane_declines(layers, batch) is None


@dataclass(frozen=True, eq=False)
class SampleMajorPlane:
    """``fused_mlp_mse`` on one plane and batch, with ``PlaneMLP``'s ``losses(coords)``."""

    layers: tuple
    origin: Tensor
    basis: Tensor
    batch: dict

    def losses(self, coords: Tensor) -> Tensor:
        """[G, T] MSE losses at coords [G, 2]."""
        return fused_mlp_mse(self.layers, self.origin, self.basis, coords, self.batch)


def torch_plane(layers: tuple, origin: Tensor, basis: Tensor, batch: Batch):
    """The torch backend's prepared plane: ``PlaneMLP`` (feature-major) from
    ``FEATURE_MAJOR_ROWS`` rows up, else ``SampleMajorPlane``."""
    if feature_major(batch):
        return prepare_plane(layers, origin, basis, batch)
    return SampleMajorPlane(layers, origin, basis, batch)


def peak_activation(problem: Problem, one_task: Batch) -> int | None:
    """Entries of the largest tensor one loss evaluation of an MLP allocates on one task's
    batch {x: [N, in], y: [N, out]}: N × the widest layer output (what watching an
    evaluation measures, without tracing one), or None for any other model."""
    try:
        layers = mlp_layers(problem)
    except TypeError:  # an unhashable problem
        return None
    x = one_task.get("x")
    if layers is None or x is None or x.dim() != 2:
        return None
    return x.shape[0] * max(layer.out_features for layer in layers if isinstance(layer, Linear))
