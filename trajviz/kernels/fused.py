"""Fused inner steps: an MLP's MSE loss and gradient for R rollouts as batched matmuls.

The plain path (``inner.losses_and_grads``) vmaps ``problem.loss`` over
rollouts and asks autograd for ∇: dozens of small ops per layer, each paying
Python, vmap and dispatcher overhead, which is what a 1-40-40-1 MLP's step
costs (the FLOPs are tiny). For a multilayer perceptron whose loss is
``tasks.base.mse_loss`` of its own model (the plan ``mlp_plan.mlp_layers``
already recognises) this module writes the forward and the backward pass by
hand, one ``baddbmm``/``bmm`` per layer and direction:

    forward   z_l = h_{l−1}·W_lᵀ + b_l        h_l = σ(z_l)          h: [R, B, width]
    loss      f = mean((h_L − y)²)                                    [R]
    backward  δ_L = 2(h_L − y)/(B·out)        ∇W_l = δ_lᵀ·h_{l−1}   ∇b_l = Σ_B δ_l
              δ_{l−1} = (δ_l·W_l) ⊙ σ'(z_{l−1})

The same numbers as the plain path (float32, tests: 1e-5), with about a
third of the ops, and the ops are ordinary differentiable torch ops, so
MAML's differentiable unroll (``create_graph``) goes through them too.
Activations other than ReLU and tanh, and any other model or loss, take the
plain path (``mlp_plan`` returns None).

Whether it is used is decided per call by ``use_fused`` from sizes alone
(see its docstring); ``TRAJVIZ_FUSED=0`` turns it off everywhere (for A/B
timing), and the result does not depend on the choice beyond float rounding.
"""
from __future__ import annotations

import contextlib
import os

import torch
from torch import Tensor, nn

from trajviz.problem.models import ParamSpec, Params, flatten, unflatten
from trajviz.problem.optim import InnerOptimizer, State
from trajviz.problem.tasks.base import Batch, Problem

# Fused wins where per-op overhead and memory passes dominate; measured up to width
# 256 (66k parameters). Above this size (not measured) the plain path is kept.
FUSED_MAX_PARAMS = 1 << 22
# The optimiser runs on one flat [R, P] vector (``flat_optimizer``) up to this many
# entries: one op per step instead of one per parameter tensor (Adam: ~18 ops x 6
# tensors for an MLP), for one extra copy of g, which costs more than it saves only
# where the arrays stop being small.
FLAT_MAX_ELEMENTS = 1 << 20


_forced_plain = False


def _env_enabled() -> bool:
    return not _forced_plain and os.environ.get("TRAJVIZ_FUSED", "1") != "0"


@contextlib.contextmanager
def plain_only():
    """Within this block every caller takes the plain path (benches and tests compare the two)."""
    global _forced_plain
    saved, _forced_plain = _forced_plain, True
    try:
        yield
    finally:
        _forced_plain = saved


def path_name(problem: Problem, batch: Batch) -> str:
    """"fused" or "plain": which path ``losses_and_grads`` takes for this problem and batch."""
    return "fused" if use_fused(problem, batch) is not None else "plain"


def mlp_plan(problem: Problem) -> tuple | None:
    """The MLP's layers as (weight name, bias name or None, activation or None), or None.

    Accepts what ``surface`` fuses (nn.Linear in an nn.Sequential, MSE of
    its own model) restricted to ReLU and tanh activations, whose
    derivatives are written here.
    """
    from trajviz.kernels.mlp_plan import Linear, mlp_layers  # the one recogniser of fusable MLPs

    layers = mlp_layers(problem)
    if layers is None:
        return None
    module = problem.model.module
    names = [""] if isinstance(module, nn.Linear) else [n for n, _ in module.named_children()]
    plan: list[list] = []
    for name, layer in zip(names, layers):
        if isinstance(layer, Linear):
            prefix = f"{name}." if name else ""
            plan.append([prefix + "weight", prefix + "bias" if layer.bias else None, None])
        elif type(layer) in (nn.ReLU, nn.Tanh) and plan and plan[-1][2] is None:
            plan[-1][2] = "relu" if type(layer) is nn.ReLU else "tanh"
        else:
            return None
    if plan[-1][2] is not None:
        return None  # an activation after the last layer: not written here
    return tuple(tuple(p) for p in plan)


def applies(problem: Problem, batch: Batch) -> tuple | None:
    """The plan when ``batch`` is {x: [R, B, in], y: [R, B, out]} for an MLP we fuse."""
    if not _env_enabled() or set(batch) != {"x", "y"}:
        return None
    try:
        plan = mlp_plan(problem)
    except TypeError:  # an unhashable problem
        return None
    x, y = batch["x"], batch["y"]
    if plan is None or x.dim() != 3 or y.dim() != 3 or not x.is_floating_point() or y.dtype != x.dtype:
        return None
    return plan


def use_fused(problem: Problem, batch: Batch) -> tuple | None:
    """The plan if the fused step should be taken for this problem and batch, else None.

    Chosen from sizes: for fusable MLPs up to ``FUSED_MAX_PARAMS`` parameters.
    Measured on 2 shared cores, 1 thread: Leap-SGD meta-gradient 2.7-3.0x
    (width 40) and 3.2-3.9x (width 256) the plain vectorised one
    (bench/bench_inner.py, with ``fused_leap``); the sinusoid demo's
    meta-gradients with Adam, 8 tasks, K = 32: Leap 1.75x, MAML 1.9x (with
    ``flat_optimizer``). Larger models were not measured, so the plain path
    is kept above the cap.
    """
    plan = applies(problem, batch)
    if plan is None or problem.model.spec.size > FUSED_MAX_PARAMS:
        return None
    return plan


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
    gradient Σ_B δ_l: a rank-B outer product, which callers may apply
    without forming it (``fused_leap``).
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
        h = z if act is None else (torch.relu(z) if act == "relu" else torch.tanh(z))
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
            if act == "relu":  # as autograd's threshold_backward: 0 where z ≤ 0
                delta = delta.masked_fill(pre[i - 1] <= 0, 0.0)
            elif act == "tanh":
                delta = delta * (1 - inputs[i].square())
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
    if not _env_enabled() or len(spec.names) < 2 or spec.size * rollouts > FLAT_MAX_ELEMENTS:
        return opt
    return flat_optimizer(opt, spec)
