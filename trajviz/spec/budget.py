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
    memory_bytes: float
    seconds: float


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
            params, act = 160 + 2320 + 65 * ways, 16 * 64 * 2
        else:
            params, act = (DIGITS_PIXELS + 1) * hidden + (hidden + 1) * ways, DIGITS_PIXELS + hidden
        return Sizes(params, (DIGITS_PIXELS + 1) * per_task, ways * o.get("shots", 5),
                     act + ways)
    return None


def estimate(config: Any, sizes: Sizes) -> Estimate:
    """Peak memory (bytes) and time (seconds) of ``run_experiment(config)``, roughly.

    Memory: the held-out paths of every learner ([T, K+1, P] params and grads), the
    meta paths ([S+1, P]), the task data, the inner loop's per-rollout state, MAML's
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
    maml_graph = batch * k1 * (6 * p + 3 * samples * sizes.act_per_sample) \
        if "maml" in config.learners else 0
    numbers = (n_learners * tasks * k1 * (2 * p + 8)
               + n_learners * (meta_steps + 1) * p
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
    return Estimate(numbers * itemsize, step_batches * SECONDS_PER_STEP + flops / FLOPS_PER_SECOND)


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
