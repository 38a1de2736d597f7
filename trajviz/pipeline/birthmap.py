"""The birth map: how fast training converges from every point of a slice taken as θ0.

Every point θ(a, b) = origin + a·u + b·v of an A×B grid on a view's slice is
run, as an initialisation, through the run's inner loop on the first N
held-out tasks (the same tasks, inner optimiser and minibatches as the
learners). A chunk's grid × tasks rollouts run together with nothing recorded
(‖Δθ_i‖ and f_i folded in on the fly): the grid's on the backend the kernels'
dispatch chooses (``kernels.choose_birth``: the C loop, ``native_birth``, where
it applies), else in one vectorised ``inner_loop`` holding [G·N, P] at most. Chunks go through the executor seam (``evaluate_chunk``: a pure function
of a shared context and a small chunk descriptor).

Per grid point, over the N tasks, the mean and spread (std, ddof 0) of
``BIRTH_STATISTICS`` (definitions and code shared with ``metrics.path_metrics``,
so a learner's θ0 gets exactly its recorded held-out numbers):

- length: Leap's path length Σ√(‖Δθ‖² + Δf²); param_length: Σ‖Δθ‖;
- steps_to_eps: first step within eps of the final loss; auc: mean loss over
  the run; final_loss: f_K. For each, lower is faster / better.

Specialisation: the coefficient of variation of per-task AUC,
std_t(auc_t) / |mean_t(auc_t)|: 0 where every task converges alike, large
where the point suits some tasks and not others.

Predicted speed (``PREDICTOR``): the mean over tasks of the AUC extrapolated
from the first m = min(3, K) steps alone: the losses f_0..f_m as recorded,
then f_m·ρ^(k−m) for k > m with ρ = clamp(f_m / f_0, 0, 1)^(1/m), the
geometric rate of those first steps (flat when f_0 <= 0); trapezoid / K as
for auc. It needs m steps, not K; its Spearman rank correlation with the
measured mean of ``statistic`` over the finite grid points is stored and
printed with the map, so "predicted" is checked, not claimed.

The birth point (``RULE``): among the grid points whose specialisation is at
or below its q-quantile over the finite grid points (q = ``quantile``,
default 0.25: the least specialised quarter), the one with the lowest mean
``statistic`` (fastest mean convergence). Each learner's θ0 is evaluated
exactly (not read off the grid: it may lie off the plane) and tabulated with
its projection, residual and gap to the birth point.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from trajviz.data.run import BIRTH_STATISTICS, BirthMap, LearnerRecord, Run, View
from trajviz.engine.context import ProblemRef, ship
from trajviz.engine.executors import using
from trajviz.engine.inner import InnerSpec, Point, Rollouts, inner_loop, pair_theta0_with_tasks
from trajviz.engine.metrics import step_metrics
from trajviz.engine.slices import project
from trajviz.engine.work import DEFAULT_WORK, Work
from trajviz.kernels import choose_birth, kernels, native_birth, requested
from trajviz.problem.models import flatten, unflatten
from trajviz.problem.tasks import Problem, TaskSet
from trajviz.spec.budget import BIRTH_CHUNK_ENTRIES
from trajviz.spec.config import BirthmapConfig, check_birthmap

PREDICTOR_STEPS = 3
DEFAULT_QUANTILE = 0.25
DEFAULT_EPS = 0.05
# Parameters × rollouts of one chunk's [G·N, P] arrays (1 MiB in float32, one L2; the birth
# loop keeps about 7 of them, in L3). Birth loop, sinusoid MLP, 8 tasks, 32 Adam steps, CPU
# time per grid point, 2 shared cores (load 9-14): 10.9 ms at 16 points per chunk, 11.2 at 32,
# 11.8 at 64, 12.6 at 128 (the old default, 148, held 8 MiB arrays); 1 point: 35 ms. Picks 18.
CHUNK_ENTRIES = BIRTH_CHUNK_ENTRIES  # 1 << 18, kept in budget.py (torch-free) for the estimate
RULE = ("lowest mean {statistic} among the grid points whose specialisation (CV of per-task AUC) "
        "is at or below its {quantile:g}-quantile over the grid")
PREDICTOR = ("mean over tasks of the AUC extrapolated from the first {m} steps at their geometric "
             "loss rate ρ = clamp(f_m/f_0, 0, 1)^(1/m)")
SPECIALISATION = "coefficient of variation of per-task AUC, std_t / |mean_t|"


@dataclass(frozen=True)
class BirthContext:
    """What every chunk shares (handed to an executor once).

    tasks: the N tasks; origin: [P], basis: [2, P]; coords: [A·B, 2] the grid's
    (a, b), row-major over (b, a); points: [L, P] explicit θ0s (learners). ``ref``:
    the problem's family and options, so that a Dask worker rebuilds the problem
    and receives the tensors as numpy (``context.ship``).
    """

    problem: Problem
    tasks: TaskSet
    spec: InnerSpec
    seed: int
    origin: Tensor
    basis: Tensor
    coords: Tensor
    points: Tensor
    eps: float
    predictor_steps: int
    ref: ProblemRef | None = None
    grid_backend: str = "plain"  # the birth op's backend for the grid (``choose_birth``)
    request: str = "auto"  # the kernels request, carried to the chunks' threads and processes

    def __reduce__(self):
        return ship(self)


def rollout_statistics(rollouts: Rollouts, inits: Tensor, eps: float = DEFAULT_EPS,
                       predictor_steps: int = PREDICTOR_STEPS, *,
                       backend: str = "plain") -> dict[str, Tensor]:
    """Statistics of every θ0 in ``inits`` [I, P] on every one of the T tasks of
    ``rollouts`` (with its inner spec and minibatch seed): {name: [I, T]}.

    Names: ``BIRTH_STATISTICS`` and "predicted" (the AUC extrapolated from the
    first ``predictor_steps`` steps). One vectorised ``inner_loop`` over the
    I·T rollouts, nothing recorded: ‖Δθ_i‖ and f_i are folded per step. With
    ``backend`` "native" (as ``kernels.choose_birth`` chose), the C loop
    (``native_birth``: float32 rounding, not bit for bit); otherwise ``inner_loop``
    (its step dispatched as every inner loop's), numbers bit for bit as it records them.
    """
    problem, tasks, spec, seed = rollouts.problem, rollouts.tasks, rollouts.spec, rollouts.seed
    n_inits, n_tasks = inits.shape[0], len(tasks)
    spec_p = problem.model.spec
    if backend == "native":
        paired = tasks.select(torch.arange(n_tasks).repeat(n_inits))  # as pair_theta0_with_tasks
        loss, step = native_birth.statistics(problem, inits, paired, spec, seed, repeat=n_tasks)
        return _fold_statistics(loss, step, eps, predictor_steps, n_inits, n_tasks)
    params, paired = pair_theta0_with_tasks(unflatten(inits, spec_p), tasks, problem)
    losses, steps = [], []
    state = {}

    def fold(acc, prev: Point, curr: Point):
        if not losses:
            losses.append(prev.loss)
            state["flat"] = flatten(prev.params, spec_p)
        flat = flatten(curr.params, spec_p)
        steps.append(torch.linalg.vector_norm(flat - state["flat"], dim=-1))
        state["flat"] = flat
        losses.append(curr.loss)
        return acc

    with torch.no_grad():
        inner_loop(rollouts.on(paired), params, on_segment=fold, chunk=len(paired))
    loss, step = torch.stack(losses, dim=1), torch.stack(steps, dim=1)  # [R, K+1], [R, K]
    return _fold_statistics(loss, step, eps, predictor_steps, n_inits, n_tasks)


def _fold_statistics(loss: Tensor, step: Tensor, eps: float, predictor_steps: int, n_inits: int,
                     n_tasks: int) -> dict[str, Tensor]:
    """{name: [I, T]} from losses [R, K+1] and update lengths [R, K] (R = I·T, θ0-major)."""
    # A non-finite entry of any θ_i makes a ‖Δθ‖ next to it non-finite, so this is
    # path_metrics' "every point finite" without a per-step pass over [R, P] (an update
    # whose norm overflows the dtype also counts as diverged).
    finite = torch.isfinite(step).all(dim=1) & torch.isfinite(loss).all(dim=1)
    out = step_metrics(step, loss, finite, eps)
    out["predicted"] = predicted_auc(loss, predictor_steps)
    return {k: v.reshape(n_inits, n_tasks) for k, v in out.items()}


def predicted_auc(losses: Tensor, m: int = PREDICTOR_STEPS) -> Tensor:
    """AUC [...] predicted from losses[..., :m+1] alone (see the module docstring); losses: [..., K+1]."""
    k = losses.shape[-1] - 1
    m = max(1, min(m, k))
    f0, fm = losses[..., 0], losses[..., m]
    rate = torch.where(f0 > 0, (fm / torch.where(f0 > 0, f0, 1.0)).clamp(0.0, 1.0),
                       torch.ones_like(f0)) ** (1.0 / m)
    ahead = torch.arange(1, k - m + 1, dtype=losses.dtype, device=losses.device)
    tail = fm[..., None] * rate[..., None] ** ahead
    curve = torch.cat([losses[..., :m + 1], tail], dim=-1)
    return torch.trapezoid(curve, dim=-1) / k


def evaluate_chunk(ctx: BirthContext, chunk: tuple[str, int, int]) -> dict[str, np.ndarray]:
    """Per-task statistics {name: [G, N]} of a chunk ("grid" or "points", start, stop). Pure."""
    kind, start, stop = chunk
    if kind == "grid":
        inits = torch.addmm(ctx.origin, ctx.coords[start:stop], ctx.basis)
    else:
        inits = ctx.points[start:stop]
    # the grid takes the chosen backend; learners' θ0 the inner loop, so that their rows
    # equal their recorded statistics bit for bit
    with kernels(ctx.request):
        out = rollout_statistics(Rollouts(ctx.problem, ctx.tasks, ctx.spec, ctx.seed), inits,
                                 ctx.eps, ctx.predictor_steps,
                                 backend=ctx.grid_backend if kind == "grid" else "plain")
    return {k: v.cpu().numpy() for k, v in out.items()}


def grid_chunks(total: int, per_chunk: int, kind: str = "grid") -> list[tuple[str, int, int]]:
    return [(kind, s, min(s + per_chunk, total)) for s in range(0, total, per_chunk)]


def default_chunk(param_count: int, n_tasks: int) -> int:
    """Grid points per chunk: about ``CHUNK_ENTRIES`` entries in a [G·N, P] array."""
    return max(1, CHUNK_ENTRIES // max(1, param_count * n_tasks))


def _gather(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def birth_point(specialisation: np.ndarray, value: np.ndarray, quantile: float) -> tuple[int, int]:
    """(row, column) of the lowest ``value`` among the points whose ``specialisation`` is at
    or below its ``quantile`` over the points where both are finite; [B, A] inputs."""
    ok = np.isfinite(specialisation) & np.isfinite(value)
    if not ok.any():
        raise ValueError("every grid point diverged or is undefined; no birth point (shrink the "
                         "extent or the inner lr)")
    threshold = np.quantile(specialisation[ok], quantile)
    candidates = ok & (specialisation <= threshold)
    flat = np.where(candidates, value, np.inf).argmin()
    return tuple(int(i) for i in np.unravel_index(flat, value.shape))


def _summaries(per_task: dict[str, np.ndarray]) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """Mean and spread over tasks (last axis) per statistic, specialisation and prediction."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = {k: per_task[k].mean(axis=-1) for k in BIRTH_STATISTICS}
        spread = {k: per_task[k].std(axis=-1) for k in BIRTH_STATISTICS}
        auc = per_task["auc"]
        specialisation = auc.std(axis=-1) / np.abs(auc.mean(axis=-1))
        predicted = per_task["predicted"].mean(axis=-1)
    return mean, spread, specialisation, predicted


def compute_birth_map(rollouts: Rollouts, view: View, thetas: dict[str, np.ndarray],
                      settings: BirthmapConfig, *, eps: float = DEFAULT_EPS,
                      work: Work = DEFAULT_WORK) -> BirthMap:
    """The birth map of ``view``'s slice over ``settings.grid`` × ``settings.grid`` points of
    its extent, on the first ``settings.tasks`` tasks of ``rollouts`` (all if fewer; already
    on the device and dtype to compute in), speed ranked by ``settings.statistic``, the
    birth point by ``settings.quantile``.

    thetas: {learner: θ0 [P]} for the table; ``work.chunk`` grid points per chunk (default
    ``default_chunk``, ``native_birth.grid_chunk`` for a grid the kernel takes);
    ``work.progress``, ``work.executor`` and ``work.ref`` as for any chunked job.
    """
    problem, spec, seed = rollouts.problem, rollouts.spec, rollouts.seed
    tasks = rollouts.tasks.select(list(range(min(settings.tasks, len(rollouts.tasks)))))
    grid, statistic, quantile = settings.grid, settings.statistic, settings.quantile
    chunk, executor, progress, ref = work.chunk, work.runner, work.progress, work.ref
    check_birthmap(grid, len(tasks), statistic, quantile)
    started = time.perf_counter()
    slc = view.slice
    first = next(iter(tasks.support.values()))
    device, dtype = first.device, first.dtype if first.is_floating_point() else torch.float32
    origin = torch.as_tensor(np.asarray(slc.origin), device=device).to(dtype)
    basis = torch.as_tensor(np.asarray(slc.basis), device=device).to(dtype)
    P = problem.model.spec.size
    if origin.shape != (P,):
        raise ValueError(f"view {view.name!r} has a slice in {origin.shape[0]} dimensions; "
                         f"the model has P = {P}")
    a_min, a_max, b_min, b_max = slc.extent
    alpha = torch.linspace(a_min, a_max, grid, dtype=torch.float64).to(device=device, dtype=dtype)
    beta = torch.linspace(b_min, b_max, grid, dtype=torch.float64).to(device=device, dtype=dtype)
    coords = torch.stack(torch.meshgrid(beta, alpha, indexing="ij")[::-1], dim=-1).reshape(-1, 2)
    names = list(thetas)
    points = torch.as_tensor(np.stack([np.asarray(thetas[n]) for n in names])
                             if names else np.zeros((0, P))).to(device=device, dtype=dtype)
    m = max(1, min(PREDICTOR_STEPS, spec.steps))
    backend = choose_birth(problem, tasks, spec).name  # the kernels' one dispatch
    ctx = BirthContext(problem, tasks, spec, seed, origin, basis, coords, points, eps, m, ref,
                       backend, requested())
    per_chunk = chunk or default_chunk(P, len(tasks))
    workers = getattr(executor, "workers", 1)  # a Dask cluster's: 4 grid chunks each at least
    grid_part = grid_chunks(grid * grid, chunk or (native_birth.grid_chunk(
        problem, tasks, spec, grid * grid, workers) if backend == "native" else per_chunk))
    parts = executor.map(evaluate_chunk, ctx, grid_part + grid_chunks(len(names), per_chunk, "points"),
                         progress=progress)
    n_grid = len(grid_part)
    on_grid = _gather(parts[:n_grid])
    shaped = {k: v.reshape(grid, grid, len(tasks)) for k, v in on_grid.items()}
    mean, spread, specialisation, predicted = _summaries(shaped)
    value = mean[statistic]
    row, col = birth_point(specialisation, value, quantile)
    ok = np.isfinite(predicted) & np.isfinite(value)
    rho = float(stats.spearmanr(predicted[ok], value[ok])[0]) if ok.sum() > 2 else float("nan")
    alpha_np, beta_np = alpha.cpu().numpy(), beta.cpu().numpy()
    birth = np.array([alpha_np[col], beta_np[row]])
    at_points = _gather(parts[n_grid:]) if names else {k: np.zeros((0, len(tasks))) for k in on_grid}
    table, learner_tasks = _learner_table(slc, names, points.cpu().numpy(), at_points, birth,
                                          statistic, value[row, col])
    settings = {"grid": grid, "tasks": len(tasks), "steps": spec.steps, "eps": eps,
                "predictor_steps": m, "quantile": quantile,
                "rule": RULE.format(statistic=statistic, quantile=quantile),
                "predictor": PREDICTOR.format(m=m), "specialisation": SPECIALISATION,
                "seconds": time.perf_counter() - started}
    return BirthMap(view=view.name, statistic=statistic, alpha=alpha_np, beta=beta_np,
                    task_ids=tasks.ids.cpu().numpy(), mean=mean, spread=spread,
                    specialisation=specialisation, predicted=predicted, rank_correlation=rho,
                    birth=birth, birth_index=np.array([row, col]), learners=tuple(names),
                    learner_table=table, learner_tasks=learner_tasks, settings=settings)


def _learner_table(slc, names: list[str], thetas: np.ndarray, per_task: dict[str, np.ndarray],
                   birth: np.ndarray, statistic: str, birth_value: float):
    """({column: [L]}, {stat: [L, N]}) for the learners' θ0s (see ``BirthMap``)."""
    mean, _, specialisation, predicted = _summaries(per_task)
    coords, residual = (project(slc, thetas.astype(np.float64)) if names
                        else (np.zeros((0, 2)), np.zeros(0)))
    plane_gap = np.linalg.norm(coords - birth, axis=-1)
    table = {"a": coords[:, 0], "b": coords[:, 1], "residual": residual,
             "value": mean[statistic], "specialisation": specialisation, "predicted": predicted,
             "plane_gap": plane_gap, "param_gap": np.sqrt(plane_gap ** 2 + residual ** 2),
             "value_gap": mean[statistic] - birth_value}
    return ({k: np.asarray(v, dtype=np.float64) for k, v in table.items()},
            {k: per_task[k] for k in BIRTH_STATISTICS})


def birth_map_on(rollouts: Rollouts, view: View, records: dict[str, LearnerRecord],
                 settings: BirthmapConfig, work: Work = DEFAULT_WORK) -> BirthMap:
    """``compute_birth_map`` of ``view`` with every learner of ``records`` in its table."""
    return compute_birth_map(rollouts, view, {n: r.theta0 for n, r in records.items()}, settings,
                             work=work)


def birth_map(run: Run, view: str | None = None, *, grid: int = 41, tasks: int = 8,
              statistic: str = "auc", quantile: float = DEFAULT_QUANTILE,
              work: Work = DEFAULT_WORK) -> BirthMap:
    """The birth map of a saved run (loaded with ``heavy=True``) on ``view`` (default: the first).

    Uses the run's config to rebuild the problem, held-out tasks and inner
    loop, and the first ``tasks`` held-out tasks (all of them if the run has
    fewer), with the run's thread policy. ``work``: ``progress``, ``chunk`` (grid points)
    and ``executor`` (an Executor or a scheduler string, opened and closed here). Store
    the map with ``add_birth_map``.
    """
    from trajviz.kernels.threads import thread_scope
    from trajviz.pipeline.heldout import config_threads, heldout_setup
    from trajviz.spec.config import from_dict

    view = view or next(iter(run.views))
    if view not in run.views:
        raise ValueError(f"run has no view {view!r}; accepted: {list(run.views)}")
    if run.views[view].slice.origin.shape[-1] == 0:
        raise ValueError("the run was loaded without its heavy arrays; load it with heavy=True")
    config = from_dict(run.config)
    setup = heldout_setup(config)
    settings = BirthmapConfig(True, grid, tasks, statistic, quantile)
    # an Executor or a scheduler string; threads as the run's policy chooses (threads.py)
    with using(work.executor) as ex, thread_scope(config_threads(config, None, setup.problem),
                                                  policy=True):
        ref = ProblemRef.of(config.family, config.family_options)
        return birth_map_on(setup.rollouts, run.views[view], run.learners, settings,
                            replace(work, executor=ex, ref=ref))


def with_point(bm: BirthMap, name: str, theta0: np.ndarray, rollouts: Rollouts, slc) -> BirthMap:
    """``bm`` with one more θ0 [P] in its learner table (a kept click, say), evaluated exactly
    as the map's learners were: the map's first tasks of ``rollouts`` (the held-out
    setting), steps, ε and predictor. Pure."""
    if name in bm.learners:
        raise ValueError(f"the birth map already has a learner named {name!r}")
    n_tasks, s = len(bm.task_ids), bm.settings
    part = rollouts.on(rollouts.tasks.select(list(range(n_tasks))))
    first = next(iter(part.tasks.support.values()))
    dtype = first.dtype if first.is_floating_point() else torch.float32
    point = torch.as_tensor(np.asarray(theta0)[None]).to(device=first.device, dtype=dtype)
    stats_ = rollout_statistics(part, point, s["eps"], s["predictor_steps"])
    per_task = {k: v.cpu().numpy() for k, v in stats_.items()}
    row, col = bm.birth_index
    table, tasks_ = _learner_table(slc, [name], np.asarray(theta0)[None], per_task, bm.birth,
                                   bm.statistic, bm.mean[bm.statistic][row, col])
    return replace(bm, learners=(*bm.learners, name),
                   learner_table={k: np.concatenate([bm.learner_table[k], table[k]]) for k in table},
                   learner_tasks={k: np.concatenate([bm.learner_tasks[k], tasks_[k]]) for k in tasks_})


def format_birth_map(bm: BirthMap) -> str:
    """The map's summary and learner table as text (what ``trajviz birthmap`` prints)."""
    s = bm.settings
    lines = [
        f"birth map on view {bm.view!r}: {len(bm.alpha)}x{len(bm.beta)} θ0s x {s['tasks']} tasks x "
        f"{s['steps']} steps, ranked by mean {bm.statistic} ({s['seconds']:.1f} s)",
        f"birth point (a, b) = ({bm.birth[0]:.4g}, {bm.birth[1]:.4g}): "
        f"{bm.statistic} {bm.mean[bm.statistic][tuple(bm.birth_index)]:.4g}, specialisation "
        f"{bm.specialisation[tuple(bm.birth_index)]:.3g}",
        f"  rule: {s['rule']}",
        f"predicted speed: {s['predictor']}; Spearman rank correlation with measured mean "
        f"{bm.statistic} over the grid: {bm.rank_correlation:.3f}",
        f"{'learner':<14}{'a':>9}{'b':>9}{'residual':>10}{bm.statistic:>12}{'special.':>10}"
        f"{'gap (a,b)':>11}{'gap θ':>9}{'Δ' + bm.statistic:>12}",
    ]
    t = bm.learner_table
    for i, name in enumerate(bm.learners):
        lines.append(f"{name:<14}{t['a'][i]:>9.3g}{t['b'][i]:>9.3g}{t['residual'][i]:>10.3g}"
                     f"{t['value'][i]:>12.4g}{t['specialisation'][i]:>10.3g}{t['plane_gap'][i]:>11.3g}"
                     f"{t['param_gap'][i]:>9.3g}{t['value_gap'][i]:>12.4g}")
    return "\n".join(lines)


def add_birth_map(path, bm: BirthMap):
    """Store ``bm`` in the run folder ``path`` (replacing one on the same view), atomically."""
    from pathlib import Path

    from trajviz.data.run import with_birth_map
    from trajviz.store import load_run
    from trajviz.store.rewrite import replace_run

    path = Path(path)
    return replace_run(with_birth_map(load_run(path), bm), path.parent)
