"""Each op's backends asked in one place: ``choose_step``, ``choose_plane``, ``choose_birth``.

Every function gives ``dispatch.choose`` the op's ``declines(backend)``,
built from the one MLP plan (``mlp_plan``) and the tables (``tables``), and
returns its ``Choice``. The engine then runs the named backend: ``plain``
is its own autograd/vmap code; ``torch`` and ``native`` are this package's.
"""
from __future__ import annotations

import torch

from trajviz.kernels import calibrate
from trajviz.kernels.dispatch import Choice, choose, requested
from trajviz.kernels.fused import step_declines
from trajviz.kernels.mlp_plan import mlp_layers, plane_declines, torch_plane
from trajviz.kernels.native import NativePlane, plane_native_declines
from trajviz.kernels.native_birth import birth_declines
from trajviz.problem.batches import InnerSpec
from trajviz.problem.tasks.base import Batch, Problem, TaskSet

NO_NATIVE_STEP = "no C inner step that records paths (the C loop computes birth statistics only)"


def choose_step(problem: Problem, batch: Batch, optimizer: str, *,
                request: str | None = None) -> Choice:
    """Who runs an inner step's loss, gradient and update on ``batch`` {x: [R, B, in], ...}."""
    def declines(name: str) -> str | None:
        return NO_NATIVE_STEP if name == "native" else step_declines(problem, batch, optimizer)
    return choose("step", declines, request=request)


def _layers(problem: Problem):
    try:
        return mlp_layers(problem)
    except TypeError:  # an unhashable problem
        return None


def choose_plane(problem: Problem, batch: Batch, dtype: torch.dtype, points: int, *,
                 request: str | None = None, chunks: dict[str, int] | None = None) -> Choice:
    """Who evaluates losses at ``points`` grid points of a plane on ``batch`` {x: [T, N, in], ...}.

    "auto" takes the order ``calibrate.plane_order`` measured on this machine for
    this shape class (timing the eligible backends at first use, each at its
    chunk size in ``chunks``, {backend: grid points}).
    """
    layers = _layers(problem)

    def declines(name: str) -> str | None:
        if name == "native":
            return plane_native_declines(layers, batch, dtype)
        return plane_declines(layers, batch)
    request = request or requested()
    order = None
    if request == "auto":
        eligible = tuple(n for n in ("native", "torch") if declines(n) is None)
        if len(eligible) > 1:
            order = calibrate.plane_order(problem, layers, batch, points, eligible, chunks) + ("plain",)
    return choose("plane", declines, request=request, order=order)


def prepared_plane(name: str, problem: Problem, origin: torch.Tensor, basis: torch.Tensor,
                   batch: Batch):
    """Backend ``name``'s plane (origin [P], basis [2, P]) prepared for ``batch``, with
    ``losses(coords [G, 2]) -> [G, T]``; None for plain (the engine's vmap)."""
    if name == "native":
        return NativePlane.build(mlp_layers(problem), origin, basis, batch)
    if name == "torch":
        return torch_plane(mlp_layers(problem), origin, basis, batch)
    return None


def choose_birth(problem: Problem, tasks: TaskSet, spec: InnerSpec, *,
                 request: str | None = None) -> Choice:
    """Who runs the birth map's statistics-only inner loops on ``tasks`` (R rollouts):
    native (the C loop), else the inner loop, whose step is torch's or plain."""
    def declines(name: str) -> str | None:
        if name == "native":
            return birth_declines(problem, tasks, spec)
        return step_declines(problem, tasks.support, spec.optimizer.name)
    return choose("birth", declines, request=request)
