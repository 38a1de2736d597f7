"""The loss along the straight line θ0 → θ_K of each recorded path.

The classic picture (Goodfellow et al., ICLR 2015; "monotonic linear
interpolation"): the loss along the segment from where training started to
where it ended, beside the loss along the path actually taken. Evaluated on
each task's full support set (the loss the surface shows), at K+1 evenly
spaced points t_i = i/K, so point i sits on the playback clock at step i.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.func import vmap

from trajviz.engine.surface import choose_chunk
from trajviz.problem.models import unflatten
from trajviz.problem.tasks import Problem, TaskSet


def line_points(start: Tensor, end: Tensor, points: int) -> Tensor:
    """[R, M, P]: (1 − t)·start + t·end at t = 0, 1/(M−1), .., 1; start, end [R, P].
    The ends are start and end exactly (no rounding at t = 1)."""
    t = torch.linspace(0.0, 1.0, points, dtype=start.dtype, device=start.device)[None, :, None]
    line = start[:, None] + t * (end - start)[:, None]
    line[:, -1] = end
    return line


def straight_losses(problem: Problem, start: Tensor, end: Tensor, tasks: TaskSet, points: int,
                    chunk: int | None = None) -> Tensor:
    """[R, M] the full-support loss of task r along start[r] → end[r] (both [R, P]) at M =
    ``points`` evenly spaced points, vmapped over rollouts and points in chunks of
    about ``chunk`` points (default ``surface.choose_chunk``). A NaN end gives a NaN row."""
    rollouts, size = start.shape
    if rollouts != len(tasks):
        raise ValueError(f"{rollouts} paths but {len(tasks)} tasks; path r is evaluated on task r")
    bad = ~(torch.isfinite(start).all(-1) & torch.isfinite(end).all(-1))
    safe = lambda x: torch.where(bad[:, None], torch.zeros_like(x), x)  # noqa: E731
    line = line_points(safe(start), safe(end), points)
    if chunk is None:
        chunk = choose_chunk(problem, tasks.select([0]), size)
    per_chunk = max(1, int(chunk) // max(points, 1))
    paired = vmap(vmap(problem.loss, in_dims=(0, None)), in_dims=(0, 0))
    out = torch.empty(rollouts, points, dtype=start.dtype, device=start.device)
    with torch.no_grad():
        for lo in range(0, rollouts, per_chunk):
            hi = min(lo + per_chunk, rollouts)
            batch = {k: v[lo:hi] for k, v in tasks.support.items()}
            out[lo:hi] = paired(unflatten(line[lo:hi], problem.model.spec), batch)
    return torch.where(bad[:, None], torch.full_like(out, float("nan")), out)
