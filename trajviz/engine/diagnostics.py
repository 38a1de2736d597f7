"""Per-step diagnostics of recorded paths: gradient norm, update norm, sharpness.

For R recorded rollouts (``Trajectory``, K steps) this gives, per rollout
and step i (arrays [R, K+1], NaN where not computed):

grad_norm                 ‖∇f_i(θ_i)‖ on step i's batch (the recorded gradient).
update_norm               ‖θ_{i+1} − θ_i‖, the step taken at i; NaN at i = K.
sharpness                 λ_max(∇²f_i(θ_i)) on step i's batch (the one that
                          produced the recorded loss and gradient).
preconditioned_sharpness  Adam only: λ_max(P_i⁻¹·∇²f_i(θ_i)) with
                          P_i = (1 − β1^{i+1})·diag(√v̂_i + ε), rebuilt from the
                          recorded gradients exactly as the optimiser built it
                          (so θ_{i+1} − θ_i = −lr·P_i⁻¹·m_i).

With ``DiagnosticsSpec.curvature`` (the default) the same points also get the
smallest eigenvalue, the trace and the spectral density, and each path its
straight line θ0 → θ_K (``curvature_path``: its names and shapes).

Every entry at or after a rollout's divergence (``diverged_at``) is NaN.
Sharpness is by Hessian-vector products (``hessian.top_eigenvalue``), vmapped
over all (rollout, step) points at once, in chunks sized to memory that go
through the executor seam (``trajviz.engine.executors.base``: in-process, or a Dask
cluster), each chunk a pure function of the points' index range. For
large models only some steps are evaluated (``sharpness_steps``: when
(K+1)·P exceeds ``DiagnosticsSpec.budget``, an even spread including the
first and last step); the others are NaN, and ``Diagnostics.steps`` says
which were done. Thresholds and crossings: ``stability``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from trajviz.data.stability import subsample_steps
from trajviz.engine.context import ChunkContext, ProblemRef
from trajviz.engine.curvature import SpectrumSpec, top_eigenvalues
from trajviz.engine.curvature_path import method, path_curvature, path_straight
from trajviz.engine.executors import IN_PROCESS, Executor
from trajviz.engine.inner import InnerSpec, Rollouts, Trajectory, all_batches, minibatch_indices
from trajviz.engine.work import DEFAULT_WORK, Work
from trajviz.problem.models import unflatten
from trajviz.problem.tasks import Problem, TaskSet


@dataclass(frozen=True)
class DiagnosticsSpec:
    """iters: power iterations per point (iters + 1 HVPs; twice that where the dominant
    eigenvalue is negative);
    budget: (K+1)·P above which sharpness steps are subsampled (to budget // P steps);
    chunk_bytes: working memory per vmapped chunk of points; seed: the start vector;
    sharpness: False skips the HVPs (sharpness NaN everywhere, no steps evaluated);
    curvature: also λ_min, trace, density and the straight line (``curvature_path``),
    at the sharpness's steps, with ``spectrum`` (its probes are seeded by ``seed``)."""

    iters: int = 20
    budget: int = 4_000_000
    chunk_bytes: int = 64 << 20
    seed: int = 0
    sharpness: bool = True
    curvature: bool = True
    spectrum: SpectrumSpec = field(default_factory=SpectrumSpec)

    def __post_init__(self) -> None:
        for name in ("iters", "budget", "chunk_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"diagnostics {name} must be a positive integer, got {value!r}")


# How much of the diagnostics to compute, as DiagnosticsSpec overrides: "full" (sharpness at
# every step the budget allows), "ends" (sharpness at steps 0 and K), "norms" (grad and
# update norms only: the HVPs are most of the cost) or "none" (no diagnostics at all).
LEVELS = {"full": {}, "ends": {"budget": 1}, "norms": {"sharpness": False, "curvature": False},
          "none": None}


@dataclass(frozen=True)
class Diagnostics:
    """values: {name: [R, K+1]} numpy; steps: [S] the steps whose sharpness was evaluated;
    subsampled: whether S < K+1; curvature: how λ_min, trace and density were computed
    (``curvature_path.method``; empty when they were not)."""

    values: dict[str, np.ndarray]
    steps: np.ndarray
    subsampled: bool
    curvature: dict = field(default_factory=dict)


def sharpness_steps(steps: int, param_count: int, budget: int) -> np.ndarray:
    """The steps 0..K at which sharpness is evaluated: all, or an even spread of budget // P."""
    if (steps + 1) * param_count <= budget:
        return np.arange(steps + 1, dtype=np.int64)
    return subsample_steps(steps, max(2, budget // param_count))


def adam_scale(grads: Tensor, beta1: float, beta2: float, eps: float) -> Tensor:
    """√(P_i⁻¹) [R, K+1, P] from the recorded gradients [R, K+1, P] (see module docstring)."""
    v = torch.zeros_like(grads[:, 0])
    out = torch.empty_like(grads)
    for i in range(grads.shape[1]):
        t = i + 1
        v = beta2 * v + (1 - beta2) * grads[:, i] ** 2
        out[:, i] = ((1 - beta1 ** t) * (torch.sqrt(v / (1 - beta2 ** t)) + eps)).reciprocal().sqrt()
    return out


def good_points(traj: Trajectory) -> Tensor:
    """[R, K+1] bool: finite point and loss, before the rollout's divergence."""
    steps = torch.arange(traj.params.shape[1], device=traj.params.device)
    before = (traj.diverged_at[:, None] < 0) | (steps[None, :] < traj.diverged_at[:, None])
    return before & torch.isfinite(traj.params).all(-1) & torch.isfinite(traj.losses)


def _point_batches(tasks: TaskSet, spec: InnerSpec, seed: int, rows: Tensor, cols: Tensor):
    """Each (rollout, step) point's batch: {key: [N, ...]}."""
    batches = all_batches(tasks, minibatch_indices(tasks, spec, seed))
    if batches is None:
        return {k: v[rows] for k, v in tasks.support.items()}
    return {k: v[rows, cols] for k, v in batches.items()}


def sharpness(problem: Problem, theta: Tensor, batch: dict, scale: Tensor | None,
              dspec: DiagnosticsSpec, executor: Executor | None = None,
              ref: ProblemRef | None = None) -> Tensor:
    """λ_max of S·H·S at N points: theta [N, P], batch {key: [N, ...]}, scale [N, P] or None -> [N].

    Vmapped over points (``hessian.top_eigenvalues``) in chunks of at most
    ``dspec.chunk_bytes`` working memory, evaluated by ``sharpness_chunk``
    through ``executor`` (default in-process); ``ref`` rebuilds the problem
    on another process. The chunks are the same whichever executor runs
    them, so the numbers are too.
    """
    n, p = theta.shape
    gen = torch.Generator(device="cpu").manual_seed(dspec.seed)
    v0 = torch.randn(p, generator=gen, dtype=torch.float64).to(theta)
    per_point = 24 * p * theta.element_size() + sum(
        v[0].numel() * v.element_size() * 8 for v in batch.values())
    chunk = max(1, dspec.chunk_bytes // per_point)
    tensors = {"theta": theta, "v0": v0, **{f"batch.{k}": v for k, v in batch.items()}}
    if scale is not None:
        tensors["scale"] = scale
    context = ChunkContext(problem, tensors, ref, {"iters": dspec.iters})
    chunks = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    parts = (executor or IN_PROCESS).map(sharpness_chunk, context, chunks)
    if not parts:
        return theta.new_zeros(0)
    return torch.from_numpy(np.concatenate(parts)).to(theta.device)


def sharpness_chunk(context: ChunkContext, chunk: tuple[int, int]) -> np.ndarray:
    """λ_max [n] at points ``start:stop`` (pure; the executors' unit of work).

    ``context.tensors``: theta [N, P], v0 [P] (the power iteration's start),
    optionally scale [N, P], and each point's batch under ``batch.<key>``
    ([N, ...]); ``context.options["iters"]``: power iterations.
    """
    start, stop = chunk
    t, spec = context.tensors, context.problem.model.spec
    params = {k: v.contiguous() for k, v in unflatten(t["theta"][start:stop], spec).items()}
    scale = t.get("scale")
    sc = None if scale is None else unflatten(scale[start:stop], spec)
    part = {k: v[start:stop] for k, v in context.batch().items()}
    return top_eigenvalues(context.problem, params, part, unflatten(t["v0"], spec), sc,
                           context.options["iters"]).cpu().numpy()


def path_diagnostics(rollouts: Rollouts, traj: Trajectory,
                     dspec: DiagnosticsSpec = DiagnosticsSpec(),
                     work: Work = DEFAULT_WORK) -> Diagnostics:
    """Every diagnostic of the module docstring for the R rollouts of ``traj``.

    rollouts: what produced ``traj``: its R tasks (``traj`` row r on task r), inner spec
    and minibatch seed, so each step's batch is rebuilt exactly. The sharpness and
    curvature chunks go through ``work.executor`` (``work.ref``: the problem's family, to
    rebuild it on a worker; ``work.chunk`` is not read: ``dspec.chunk_bytes`` sizes them).
    """
    problem, tasks, spec, seed = rollouts.problem, rollouts.tasks, rollouts.spec, rollouts.seed
    executor, ref = work.executor, work.ref
    params, grads = traj.params.detach(), traj.grads.detach()
    runs, points, p = params.shape
    ok = good_points(traj)
    nan = torch.tensor(float("nan"), dtype=params.dtype, device=params.device)
    values = {"grad_norm": torch.where(ok, torch.linalg.vector_norm(grads, dim=-1), nan)}
    step = torch.linalg.vector_norm(params[:, 1:] - params[:, :-1], dim=-1)
    values["update_norm"] = torch.where(ok, torch.cat([step, step.new_full((runs, 1), float("nan"))], 1), nan)
    evaluated = sharpness_steps(points - 1, p, dspec.budget) if dspec.sharpness else np.zeros(0, np.int64)
    cols = torch.as_tensor(evaluated, device=params.device).repeat(runs)
    rows = torch.arange(runs, device=params.device).repeat_interleave(len(evaluated))
    mask = ok[rows, cols]
    theta = torch.where(mask[:, None], params[rows, cols], torch.zeros_like(params[rows, cols]))
    batch = _point_batches(tasks, spec, seed, rows, cols)
    scales = {"sharpness": None}
    if spec.optimizer.name == "adam":
        h = dict(spec.optimizer.hyper)
        safe = torch.where(ok[..., None], grads, torch.zeros_like(grads))
        scales["preconditioned_sharpness"] = adam_scale(safe, h["beta1"], h["beta2"], h["eps"])[rows, cols] \
            if len(evaluated) else None
    with torch.no_grad():
        for name, scale in scales.items():
            full = torch.full((runs, points), float("nan"), dtype=params.dtype, device=params.device)
            if len(evaluated):
                values_at = sharpness(problem, theta, batch, scale, dspec, executor, ref)
                full[rows, cols] = torch.where(mask, values_at, nan)
            values[name] = full
    arrays, how = {k: v.cpu().numpy() for k, v in values.items()}, {}
    if dspec.curvature and dspec.sharpness:
        sspec = replace(dspec.spectrum, seed=dspec.seed)
        arrays.update(path_curvature(problem, params, ok, evaluated, batch, sspec,
                                     replace(work, chunk=dspec.chunk_bytes)))
        how = method(sspec, p)
    with torch.no_grad():
        arrays["straight_loss"] = path_straight(problem, params, ok, tasks)
    return Diagnostics(arrays, evaluated, bool(len(evaluated) < points), how)
