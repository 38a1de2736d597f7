"""Will a run fit this machine? A rough estimate of memory and time, made before any work.

``check(config, param_count, task_numel, act_per_sample)`` refuses, with one
line, a config whose estimated peak memory or running time is beyond
``MEMORY_LIMIT`` or ``TIME_LIMIT_S`` (this machine: 24 GiB, 2 cores), unless
``config.allow_large`` (CLI ``--force``) says the person means it. The
estimate is deliberately simple and errs high; it exists to stop a typo such
as ``--meta-steps 1000000000`` or ``hidden = [100000, 100000]`` before it
runs for days or exhausts memory, not to predict run times.

``family_sizes`` gives the sizes of a registered family from its options
without building it (so no torch here); a plugin's sizes are measured once it
is built (``experiment.train_and_record``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

GIB = 2**30
MACHINE_MEMORY = 24 * GIB
MEMORY_LIMIT = 16 * GIB  # two thirds of the machine: the app, the OS and other work need the rest
TIME_LIMIT_S = 12 * 3600.0
# Calibrated on this machine (1 thread): the sinusoid demo's inner steps cost ~5 ms per
# vectorised step of up to 8 rollouts of a 1-40-40-1 MLP, mostly per-op overhead.
SECONDS_PER_STEP = 5e-3
FLOPS_PER_SECOND = 2e9
BIRTH_CHUNK_ENTRIES = 1 << 18  # entries of a birth-map chunk's [G·N, P] θ (measured: birthmap.py)
DIGITS_PIXELS = 64
# Record policy (docs/scale.md). "auto" keeps every held-out path ([T, K+1, P] params and
# grads of every learner) only when they take at most FULL_PATHS_BYTES; a light run keeps
# θ0s, slices, projections, losses and diagnostics, and LIGHT_META_BYTES of meta paths.
FULL_PATHS_BYTES = 256 * 2**20
LIGHT_META_BYTES = 128 * 2**20
# Working memory of one differentiable chunk of MAML's meta-batch: its graph keeps about
# GRAPH_COPIES parameter-sized tensors per rollout and step.
MAML_CHUNK_BYTES = 256 * 2**20
GRAPH_COPIES = 6
# Working memory of one chunk of recorded held-out rollouts ([c, K+1, P] params and grads).
RECORD_CHUNK_BYTES = 128 * 2**20


@dataclass(frozen=True)
class Sizes:
    """param_count P; task_numel: numbers one task holds (support + query);
    samples: support points one inner step sees; act_per_sample: activations per sample;
    flops_per_sample: of one loss and gradient (0: 6·max(P, act_per_sample))."""

    param_count: int
    task_numel: int
    samples: int
    act_per_sample: int
    flops_per_sample: int = 0


@dataclass(frozen=True)
class Estimate:
    """memory_bytes: peak memory; seconds: wall time; disk_bytes: the run folder (its
    npz arrays, under the record policy)."""

    memory_bytes: float
    seconds: float
    disk_bytes: float = 0.0


@dataclass(frozen=True)
class RecordPlan:
    """What a run keeps and how it records (``record_plan``).

    policy: "full" or "light" (``auto`` resolved); asked: the config's ``record``;
    full_bytes: what every held-out path would take; chunk_tasks: held-out tasks recorded
    at once (a multiple of the inner loop's own rollout chunk, so a recomputed path is
    bitwise the recorded one); meta_points: meta-path points kept per learner;
    reason: one line saying why."""

    policy: str
    asked: str
    full_bytes: int
    chunk_tasks: int
    meta_points: int
    reason: str


def maml_chunk(param_count: int, steps: int, itemsize: int, rollouts: int) -> int:
    """Rollouts MAML differentiates through at once: all of them when their graph fits
    ``MAML_CHUNK_BYTES``, else as many as fit (at least one); the meta-gradient is the same
    mean over the meta-batch either way (summed chunk by chunk, ``learners.maml``)."""
    per_rollout = GRAPH_COPIES * (steps + 1) * param_count * itemsize
    return max(1, min(rollouts, MAML_CHUNK_BYTES // max(1, per_rollout)))


def full_path_bytes(n_learners: int, tasks: int, steps: int, param_count: int, itemsize: int) -> int:
    """Bytes of every held-out path of every learner: params and grads [L, T, K+1, P]."""
    return 2 * n_learners * tasks * (steps + 1) * param_count * itemsize


def record_chunk(param_count: int, steps: int, itemsize: int, tasks: int, inner_chunk: int) -> int:
    """Held-out tasks recorded at once: as many as fit ``RECORD_CHUNK_BYTES`` (params and
    grads [c, K+1, P]), rounded down to a multiple of ``inner_chunk`` (at least one), at most
    ``tasks``. Depends on the config alone, never on the machine."""
    per_task = 2 * (steps + 1) * param_count * itemsize
    inner = max(1, min(inner_chunk, tasks))
    fit = max(1, RECORD_CHUNK_BYTES // max(1, per_task))
    return min(tasks, max(inner, fit // inner * inner))


def record_plan(config: Any, param_count: int, n_learners: int, inner_chunk: int) -> RecordPlan:
    """The record policy of ``config`` resolved for a model of ``param_count`` parameters and
    ``n_learners`` learners (fixed initialisations included)."""
    itemsize = 8 if config.dtype == "float64" else 4
    tasks, steps = config.heldout_tasks, config.inner.steps
    full = full_path_bytes(n_learners, tasks, steps, param_count, itemsize)
    asked = getattr(config, "record", "auto")
    mib = f"{full / 2**20:,.0f} MiB"
    if asked == "full":
        policy, reason = "full", f"record = 'full': every held-out path kept ({mib})"
    elif asked == "light":
        policy, reason = "light", "record = 'light': held-out paths recomputed on demand"
    elif full <= FULL_PATHS_BYTES:
        policy, reason = "full", f"every held-out path fits ({mib} <= {FULL_PATHS_BYTES // 2**20} MiB)"
    else:
        policy, reason = "light", (f"the held-out paths would take {mib} > "
                                   f"{FULL_PATHS_BYTES // 2**20} MiB: recomputed on demand")
    meta = config.meta_path_points
    if policy == "light":
        fit = LIGHT_META_BYTES // max(1, n_learners * param_count * itemsize)
        meta = max(2, min(meta, fit))
    chunk = record_chunk(param_count, steps, itemsize, tasks, inner_chunk)
    return RecordPlan(policy, asked, full, chunk, meta, reason)


def family_sizes(family: str, options: dict[str, Any]) -> Sizes | None:
    """The Sizes of a registered family with validated ``options``, or None for a plugin."""
    o = options
    if family == "sinusoid":
        widths = (1, *o.get("hidden", (40, 40)), 1)
        shots, query = o.get("shots", 10), o.get("query_shots", 50)
        params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
        return Sizes(params, 2 * (shots + query), shots, sum(widths))
    if family == "linear2d":
        shots, query = o.get("shots", 20), o.get("query_shots", 50)
        return Sizes(2, 3 * (shots + query), shots, 3)
    if family == "quadratic":
        dim = o.get("dim", 2)
        return Sizes(dim, dim * dim + dim, 1, dim, 4 * dim * dim)
    if family == "digits":
        ways, hidden = o.get("ways", 5), o.get("hidden", 64)
        per_task = ways * (o.get("shots", 5) + o.get("query_shots", 10))
        if o.get("net", "mlp") == "conv":
            c = o.get("channels", 16)
            params, act = 9 * c * c + 11 * c + (4 * c + 1) * ways, c * 64 * 2
        else:
            params, act = (DIGITS_PIXELS + 1) * hidden + (hidden + 1) * ways, DIGITS_PIXELS + hidden
        return Sizes(params, (DIGITS_PIXELS + 1) * per_task, ways * o.get("shots", 5),
                     act + ways)
    return None


def estimate(config: Any, sizes: Sizes) -> Estimate:
    """Peak memory (bytes) and time (seconds) of ``run_experiment(config)``, roughly.

    Memory: under the record policy (``record_plan``) the held-out paths of every
    learner ([T, K+1, P] params and grads) and the meta paths ([S+1, P]) for a full run,
    one chunk of rollouts and one learner's meta path for a light one; the task data, the inner loop's per-rollout state, MAML's
    graph through K steps, and the surfaces. Time: vectorised inner steps at
    ``SECONDS_PER_STEP`` each plus their arithmetic at ``FLOPS_PER_SECOND``, the
    surfaces' forward passes, and with ``config.birthmap.enabled`` a birth map per
    slice kind: grid² × tasks rollouts of K steps, in chunks of
    ``BIRTH_CHUNK_ENTRIES`` θ entries (its memory is chunk-bounded).
    """
    itemsize = 8 if config.dtype == "float64" else 4
    p, k1 = sizes.param_count, config.inner.steps + 1
    n_learners = len(config.learners)
    n_trained = sum(name != "random" for name in config.learners)
    tasks, batch = config.heldout_tasks, config.outer.meta_batch
    samples = config.inner.batch_size or sizes.samples
    meta_steps = config.outer.meta_steps
    evals = meta_steps // config.outer.eval_every + 2
    # a tuned outer lr meta-trains every learner once per grid value (the winner's trace is
    # kept) and judges each on the validation tasks once
    grid, tune_rollouts = _sweep(config)
    res2 = config.slices.resolution ** 2
    maml_rollouts = maml_chunk(p, k1 - 1, itemsize, batch)  # differentiated at once
    maml_graph = maml_rollouts * k1 * (GRAPH_COPIES * p + 3 * samples * sizes.act_per_sample) \
        if "maml" in config.learners else 0
    plan = record_plan(config, p, n_learners, 1)
    meta_kept = min(meta_steps + 1, plan.meta_points)
    if plan.policy == "full":
        paths = n_learners * tasks * k1 * (2 * p + 8) + n_learners * (meta_steps + 1) * p
    else:  # one chunk of rollouts at a time, one learner's meta path, the kept meta points
        paths = plan.chunk_tasks * k1 * 2 * p + n_learners * tasks * k1 * 8 \
            + (meta_steps + 1) * p + n_learners * meta_kept * p
    disk = (n_learners * (meta_kept + 1) * p + 3 * len(config.slices.kinds) * p
            + (plan.full_bytes // itemsize if plan.policy == "full" else 0)
            + n_learners * tasks * k1 * 16 + len(config.slices.kinds) * (tasks + 1) * res2)
    numbers = (paths
               + (batch + 2 * tasks) * sizes.task_numel
               + 8 * (batch + tasks) * p
               + maml_graph
               + len(config.slices.kinds) * (tasks + 1) * res2)
    step_batches = k1 * (n_trained * (grid * meta_steps + grid * bool(tune_rollouts))
                         + n_learners * (evals + 1))
    rollout_steps = k1 * (n_trained * (grid * meta_steps * batch + grid * tune_rollouts)
                          + n_learners * (evals * config.outer.eval_tasks + tasks))
    per_sample = sizes.flops_per_sample or 6 * max(p, sizes.act_per_sample)
    flops = float(rollout_steps) * samples * per_sample \
        + len(config.slices.kinds) * res2 * tasks * sizes.samples * per_sample / 3
    birth = getattr(config, "birthmap", None)
    if birth is not None and birth.enabled:
        points, n_birth = birth.grid ** 2, min(birth.tasks, tasks)
        kinds = len(config.slices.kinds)
        flops += float(kinds * points * n_birth * k1) * samples * per_sample
        chunks = math.ceil(points / max(1, BIRTH_CHUNK_ENTRIES // max(1, p * n_birth)))
        step_batches += kinds * chunks * k1
    return Estimate(numbers * itemsize, step_batches * SECONDS_PER_STEP + flops / FLOPS_PER_SECOND,
                    disk * itemsize)


def _sweep(config: Any) -> tuple[int, int]:
    """(meta-trainings per learner, validation rollouts per meta-training) of the lr sweep."""
    outer = config.outer
    if not getattr(outer, "tuned", False):
        return 1, 0
    return len(outer.lr_grid), outer.tune_tasks


def tune_seconds(config: Any, sizes: Sizes) -> float:
    """The extra time (seconds, roughly) that ``outer.lr = "tune"`` adds to the run: 0 when
    the lr is a number. Printed before a tuned run starts (``trajviz run``)."""
    if not getattr(config.outer, "tuned", False):
        return 0.0
    fixed = dataclasses.replace(config, outer=dataclasses.replace(config.outer, lr=1.0))
    return estimate(config, sizes).seconds - estimate(fixed, sizes).seconds


def tune_notice(config: Any, sizes: Sizes | None) -> str:
    """The line printed before a tuned run starts: what the sweep does and its rough cost."""
    trained = sum(name != "random" for name in config.learners)
    grid = ", ".join(f"{g:g}" for g in config.outer.lr_grid)
    cost = "its cost is known once the family is built" if sizes is None else \
        f"about {_duration(tune_seconds(config, sizes))} more than one outer lr (rough estimate)"
    return (f"tuning the outer learning rate: {trained} learner(s) x {len(config.outer.lr_grid)} "
            f"values ({grid}), judged on {config.outer.tune_tasks} validation tasks; {cost}")


def check(config: Any, sizes: Sizes) -> Estimate:
    """The estimate, or ValueError (one line) if it would not fit and ``allow_large`` is off."""
    est = estimate(config, sizes)
    if config.allow_large:
        return est
    if est.memory_bytes > MEMORY_LIMIT:
        raise ValueError(f"this run would need about {est.memory_bytes / GIB:,.0f} GiB of memory "
                         f"(P = {sizes.param_count:,} parameters); the limit on this machine is "
                         f"{MEMORY_LIMIT / GIB:g} GiB: make it smaller, or set allow_large = true "
                         "(--force) if you mean it")
    if est.seconds > TIME_LIMIT_S:
        raise ValueError(f"this run would take about {_duration(est.seconds)} on this machine; "
                         f"the limit is {_duration(TIME_LIMIT_S)}: make it smaller, or set "
                         "allow_large = true (--force) if you mean it")
    return est


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} seconds"
    if seconds < 2 * 3600:
        return f"{math.ceil(seconds / 60)} minutes"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.3g} hours"
    return f"{seconds / 86400:.3g} days"
