"""Curvature beyond the top eigenvalue along recorded paths, and the straight line.

``path_curvature`` adds these to a path's diagnostics (``diagnostics.path_diagnostics``
calls it), for R rollouts and K steps:

lambda_min, lambda_min_err       [R, K+1] the algebraically smallest Hessian eigenvalue
                                 on step i's batch (negative: a saddle direction) and
                                 its error bar (0 when exact);
hessian_trace, hessian_trace_err [R, K+1] tr ∇²f_i(θ_i) and its error bar;
spectrum_steps                   [R, S] the steps whose density is kept (the same row
                                 for every rollout; float, NaN-free);
spectrum_nodes, spectrum_weights [R, S, M] the spectral measure there (``curvature.Spectra``);
straight_loss                    [R, K+1] the full-support loss at (1 − i/K)·θ0 + (i/K)·θ_K
                                 (``straight``; ``path_straight``, cheap: no HVPs, so
                                 every diagnostics level has it); NaN for a diverged path.

Every (rollout, step) point is evaluated at once, vmapped, in chunks through the
executor seam, exactly as the sharpness is: exact (formed Hessian, ``eigvalsh``) up
to ``SpectrumSpec.exact_max`` parameters, seeded SLQ beyond. NaN where not evaluated
and from a path's divergence on.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from trajviz.data.stability import subsample_steps
from trajviz.engine.context import ChunkContext, ProblemRef
from trajviz.engine.curvature import SpectrumSpec, spectra
from trajviz.engine.executors import IN_PROCESS, Executor
from trajviz.engine.straight import straight_losses
from trajviz.engine.work import Work
from trajviz.problem.tasks import Problem, TaskSet

#: At most this many steps keep their spectral density (an even spread with both ends).
DENSITY_STEPS = 21
CURVATURE_NAMES = ("lambda_min", "lambda_min_err", "hessian_trace", "hessian_trace_err")
SPECTRUM_NAMES = ("spectrum_steps", "spectrum_nodes", "spectrum_weights")


def measure_size(p: int, sspec: SpectrumSpec) -> int:
    """M, the nodes a point's spectral measure has: P (exact) or probes·lanczos."""
    return p if sspec.exact(p) else sspec.probes * sspec.lanczos


def spectra_chunk(context: ChunkContext, chunk: tuple[int, int]) -> np.ndarray:
    """[n, 4 + 2M] float64 for points ``start:stop``: λ_min, its error, trace, its error,
    then the M nodes and M weights (pure; the executors' unit of work).

    ``context.tensors``: theta [N, P] and each point's batch under ``batch.<key>``;
    ``context.options``: the ``SpectrumSpec`` fields."""
    start, stop = chunk
    part = {k: v[start:stop] for k, v in context.batch().items()}
    s = spectra(context.problem, context.tensors["theta"][start:stop], part,
                SpectrumSpec(**context.options))
    head = torch.stack([s.lambda_min, s.lambda_min_err, s.trace, s.trace_err], -1)
    return torch.cat([head, s.nodes, s.weights], -1).cpu().numpy()


def point_spectra(problem: Problem, theta: Tensor, batch: dict, sspec: SpectrumSpec,
                  chunk_bytes: int, executor: Executor | None = None,
                  ref: ProblemRef | None = None) -> np.ndarray:
    """``spectra_chunk``'s rows for all N points (theta [N, P]), chunked to ``chunk_bytes``."""
    n, p = theta.shape
    m = measure_size(p, sspec)
    work = 4 * p * p if sspec.exact(p) else (sspec.lanczos + 4) * sspec.probes * p
    per_point = work * 8 + sum(v[0].numel() * v.element_size() * 8 for v in batch.values())
    chunk = max(1, chunk_bytes // per_point)
    context = ChunkContext(problem, {"theta": theta, **{f"batch.{k}": v for k, v in batch.items()}},
                           ref, {"exact_max": sspec.exact_max, "lanczos": sspec.lanczos,
                                 "probes": sspec.probes, "seed": sspec.seed})
    parts = (executor or IN_PROCESS).map(spectra_chunk, context,
                                         [(s, min(s + chunk, n)) for s in range(0, n, chunk)])
    return np.concatenate(parts) if parts else np.zeros((0, 4 + 2 * m))


def method(sspec: SpectrumSpec, p: int) -> dict:
    """How the curvature was computed, JSON-ready (for ``run.info["diagnostics"]``)."""
    return {"exact": sspec.exact(p), "param_count": p, "exact_max": sspec.exact_max,
            "lanczos": sspec.lanczos, "probes": sspec.probes, "seed": sspec.seed,
            "density_steps_max": DENSITY_STEPS}


def density_steps(evaluated: np.ndarray) -> np.ndarray:
    """The evaluated steps that keep their density: all, or DENSITY_STEPS spread evenly."""
    if len(evaluated) <= DENSITY_STEPS:
        return np.asarray(evaluated, np.int64)
    return np.asarray(evaluated)[subsample_steps(len(evaluated) - 1, DENSITY_STEPS)]


def path_curvature(problem: Problem, params: Tensor, ok: Tensor, evaluated: np.ndarray,
                   batch: dict, sspec: SpectrumSpec, work: Work) -> dict[str, np.ndarray]:
    """The module docstring's arrays for R paths. params [R, K+1, P]; ok [R, K+1] the good
    points; evaluated [S'] the steps to evaluate (as the sharpness); batch {key: [R·S', ...]}
    each (rollout, evaluated step) point's batch, rollout-major. All but straight_loss.
    ``work``: the chunks' executor and problem ref, ``work.chunk`` their size in bytes."""
    runs, points, p = params.shape
    m = measure_size(p, sspec)
    cols = torch.as_tensor(evaluated, device=params.device, dtype=torch.long).repeat(runs)
    rows = torch.arange(runs, device=params.device).repeat_interleave(len(evaluated))
    mask = ok[rows, cols].cpu().numpy()
    theta = torch.where(ok[rows, cols][:, None], params[rows, cols], torch.zeros_like(params[rows, cols]))
    got = point_spectra(problem, theta, batch, sspec, work.chunk, work.executor, work.ref)
    got[~mask] = np.nan
    r, c = rows.cpu().numpy(), cols.cpu().numpy()
    out = {}
    for j, name in enumerate(CURVATURE_NAMES):
        full = np.full((runs, points), np.nan)
        full[r, c] = got[:, j]
        out[name] = full
    keep = density_steps(evaluated)
    picked = np.isin(c, keep)
    measure = got[picked].reshape(runs, len(keep), 4 + 2 * m)
    out["spectrum_steps"] = np.broadcast_to(keep.astype(np.float64), (runs, len(keep))).copy()
    out["spectrum_nodes"] = measure[..., 4:4 + m]
    out["spectrum_weights"] = measure[..., 4 + m:]
    return out


def path_straight(problem: Problem, params: Tensor, ok: Tensor, tasks: TaskSet) -> np.ndarray:
    """[R, K+1] ``straight_loss`` of the module docstring (NaN for a diverged path)."""
    end = torch.where(ok[:, -1:], params[:, -1], torch.full_like(params[:, -1], float("nan")))
    return straight_losses(problem, params[:, 0], end, tasks, params.shape[1]).cpu().numpy()
