"""The torch backend's inner step: an MLP's MSE loss and gradient for R rollouts as batched matmuls.

The plain path (``inner.losses_and_grads``) vmaps ``problem.loss`` over
rollouts and asks autograd for ∇: dozens of small ops per layer, each paying
Python, vmap and dispatcher overhead, which is what a 1-40-40-1 MLP's step
costs (the FLOPs are tiny). For a multilayer perceptron whose loss is
``tasks.base.mse_loss`` of its own model (the one plan, ``mlp_plan.mlp_layers``)
this module writes the forward and the backward pass by hand, one
``baddbmm``/``bmm`` per layer and direction:

    forward   z_l = h_{l−1}·W_lᵀ + b_l        h_l = σ(z_l)          h: [R, B, width]
    loss      f = mean((h_L − y)²)                                    [R]
    backward  δ_L = 2(h_L − y)/(B·out)        ∇W_l = δ_lᵀ·h_{l−1}   ∇b_l = Σ_B δ_l
              δ_{l−1} = σ'(δ_l·W_l)   (the table's ``backward``, autograd's own rule)

The same numbers as the plain path (float32, tests: 1e-5), with about a
third of the ops, and the ops are ordinary differentiable torch ops, so
MAML's differentiable unroll (``create_graph``) goes through them too. The
optimiser runs on one flat [R, P] vector (``flat_optimizer``) for the
optimisers of ``tables.OPTIMIZERS`` (elementwise, so the same numbers).
``step_declines`` says why a problem, batch or optimiser is not taken
(an activation without a ``backward`` in the table, another model or loss).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from trajviz.kernels.mlp_plan import Linear, mlp_layers
from trajviz.kernels.tables import ACTIVATIONS, OPTIMIZERS, activation_of
from trajviz.problem.models import Params, ParamSpec, flatten, unflatten
from trajviz.problem.optim import InnerOptimizer, State
from trajviz.problem.tasks.base import Batch, Problem

# The torch step was measured up to width 256 (66k parameters). Above this size (not
# measured) it declines and the plain path runs.
FUSED_MAX_PARAMS = 1 << 22
# The optimiser runs on one flat [R, P] vector (``flat_optimizer``) up to this many
# entries: one op per step instead of one per parameter tensor (Adam: ~18 ops x 6
# tensors for an MLP), for one extra copy of g, which costs more than it saves only
# where the arrays stop being small.
FLAT_MAX_ELEMENTS = 1 << 20


def mlp_plan(problem: Problem) -> tuple | None:
    """The MLP's layers as (weight name, bias name or None, activation name or None), or None.

    The layers of ``mlp_plan.mlp_layers`` whose activations have a hand-written
    ``backward`` in ``tables.ACTIVATIONS``, one at most after each linear layer
    but the last.
    """
    try:
        layers = mlp_layers(problem)
    except TypeError:  # an unhashable problem
        return None
    if layers is None:
        return None
    module = problem.model.module
    names = [""] if isinstance(module, nn.Linear) else [n for n, _ in module.named_children()]
    plan: list[list] = []
    for name, layer in zip(names, layers):
        if isinstance(layer, Linear):
            prefix = f"{name}." if name else ""
            plan.append([prefix + "weight", prefix + "bias" if layer.bias else None, None])
            continue
        entry = activation_of(layer)
        if entry.backward is None or not plan or plan[-1][2] is not None:
            return None
        plan[-1][2] = entry.name
    if plan[-1][2] is not None:
        return None  # an activation after the last layer: not written here
    return tuple(tuple(p) for p in plan)


def step_declines(problem: Problem, batch: Batch, optimizer: str) -> str | None:
    """Why the torch backend does not take this inner step, or None (it does)."""
    if optimizer not in OPTIMIZERS:
        return f"inner optimizer {optimizer!r} is not in the kernels' table ({', '.join(OPTIMIZERS)})"
    if mlp_plan(problem) is None:
        with_backward = ", ".join(n for n, a in ACTIVATIONS.items() if a.backward is not None)
        return f"not an MLP under its own mse_loss with activations {with_backward}"
    if set(batch) != {"x", "y"}:
        return f"the batch holds {sorted(batch)}, not x and y"
    x, y = batch["x"], batch["y"]
    if x.dim() != 3 or y.dim() != 3 or not x.is_floating_point() or y.dtype != x.dtype:
        return f"x {tuple(x.shape)}, y {tuple(y.shape)} are not [R, B, in], [R, B, out] of one dtype"
    if problem.model.spec.size > FUSED_MAX_PARAMS:
        return f"{problem.model.spec.size} parameters, above the measured {FUSED_MAX_PARAMS}"
    return None


def mlp_losses_and_grads(plan: tuple, params: Params, batch: Batch,
                         differentiable: bool = False) -> tuple[Tensor, Params]:
    """f_r(θ_r) [R] and ∇f_r(θ_r) {name: [R, ...]} of an MLP's MSE, by hand.

    params: {name: [R, *shape]}; batch: x [R, B, in], y [R, B, out]. With
    ``differentiable`` the result keeps autograd's graph through params
    (MAML); otherwise everything is computed without one.
    """
    with torch.set_grad_enabled(differentiable):
        losses, factors = mlp_losses_and_factors(plan, params, batch)
        grads = grads_from_factors(plan, factors)
        return losses, {k: grads[k] for k in params}


def grads_from_factors(plan: tuple, factors: list) -> Params:
    """{name: [R, ...]} gradients from ``mlp_losses_and_factors``'s (δ_l, h_{l−1}) pairs."""
    grads: Params = {}
    for (w_name, b_name, _), (delta, inputs) in zip(plan, factors):
        grads[w_name] = torch.bmm(delta.transpose(1, 2), inputs)
        if b_name is not None:
            grads[b_name] = delta.sum(dim=1)
    return grads


def mlp_losses_and_factors(plan: tuple, params: Params, batch: Batch) -> tuple[Tensor, list]:
    """f_r(θ_r) [R] and, per layer l, (δ_l [R, B, out], h_{l−1} [R, B, in]).

    Layer l's weight gradient is δ_lᵀ·h_{l−1} [R, out, in] and its bias
    gradient Σ_B δ_l (``grads_from_factors``).
    """
    x, y = batch["x"], batch["y"]
    h = x
    inputs, pre = [], []
    for w_name, b_name, act in plan:
        w = params[w_name]
        inputs.append(h)
        if b_name is None:
            z = torch.bmm(h, w.transpose(1, 2))
        else:
            z = torch.baddbmm(params[b_name].unsqueeze(1), h, w.transpose(1, 2))
        pre.append(z)
        h = z if act is None else ACTIVATIONS[act].forward(z)
    residual = h - y
    n = residual.shape[1] * residual.shape[2]
    losses = residual.square().sum(dim=(1, 2)) / n
    delta = residual * (2.0 / n)  # ∂f/∂h_L: [R, B, out]
    factors: list = [None] * len(plan)
    for i in range(len(plan) - 1, -1, -1):
        factors[i] = (delta, inputs[i])
        if i > 0:
            delta = torch.bmm(delta, params[plan[i][0]])
            act = plan[i - 1][2]
            if act is not None:  # h_{i−1} = σ(z_{i−1}) is layer i's input
                delta = ACTIVATIONS[act].backward(delta, pre[i - 1], inputs[i])
    return losses, factors


def flat_optimizer(opt: InnerOptimizer, spec: ParamSpec) -> InnerOptimizer:
    """``opt`` applied to one flat vector [R, P] instead of one tensor per parameter.

    The same elementwise maths on the same numbers (optim.py's optimisers are
    elementwise), so the same results; a sixth of the ops for a 3-layer MLP.
    Differentiable (MAML unrolls through the cat and the views).
    """
    def init(params: Params) -> State:
        return opt.init({"flat": flatten(params, spec)})

    def update(grads: Params, state: State, params: Params) -> tuple[Params, State]:
        flat, state = opt.update({"flat": flatten(grads, spec)}, state, {"flat": flatten(params, spec)})
        return unflatten(flat["flat"], spec), state

    return InnerOptimizer(opt.name, opt.hyper, init, update)


def step_optimizer(opt: InnerOptimizer, problem: Problem, rollouts: int) -> InnerOptimizer:
    """The optimiser an inner loop of ``rollouts`` rollouts uses: flat for small models."""
    spec = problem.model.spec
    if len(spec.names) < 2 or spec.size * rollouts > FLAT_MAX_ELEMENTS:
        return opt
    return flat_optimizer(opt, spec)
