"""How many torch threads a run uses: a policy from measured sizes, with an override.

Measured on a 2-core machine (bench/bench_inner.py, bench/bench_demo.py, issue 10):

- Small models (the sinusoid MLP 1-40-40-1, linear2d, quadratics) are bound
  by per-op overhead: each op touches a few kB, so a second thread only adds
  synchronisation. On a machine with other work running, two torch threads
  fighting that work for two cores made the sinusoid demo 5-9x slower than
  one thread (OpenMP threads spin at every op's barrier while a sibling is
  descheduled). These run single-threaded.
- Wide models (``ELEMENTS_PER_THREAD`` or more parameter entries per op,
  i.e. parameters x rollouts advanced at once) are bound by GEMMs and
  memory passes and gain from a second core, but only where that core is
  idle: threads = min(cores, idle cores), idle cores = cores − the 1-minute
  load average, rounded down, at least 1. So a busy machine gets one
  thread and degrades like any single-threaded process (about 1.5x slower
  beside two CPU-bound processes on two cores, not 5-9x).

``threads`` (CLI ``--threads N``, ``run_experiment(..., threads=N)``)
overrides the policy; ``OMP_NUM_THREADS`` set in the environment is taken
as the user's choice too. The policy only sets torch's intra-op threads for
the duration of the work (``thread_scope``) and restores them after.

The native kernels (``native.split``) take ``kernel_threads()``: inside the
policy's scope (``run_experiment``, ``birthmap.birth_map``), the idle cores net
of the run's own thread, because their threads each run whole rollouts or
grid points with no per-op barrier, so an idle core pays even for a small
model; else torch's thread count (the user's choice, or torch's default).
Independent learners are not run in parallel processes: on two shared
cores that was not measured to pay (each learner's process already has a
core's worth of work, and a loaded machine has no spare core to give).
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

# Parameter entries per op (parameters x rollouts) from which a second thread may
# pay on an idle core: bench_inner.py's width-256 MLP at 16 rollouts (66k x 16 ≈ 1M
# entries, 4 MB arrays) is memory- and GEMM-bound; width 40 (1.8k x 16) is all
# per-op overhead, where threads only add contention.
ELEMENTS_PER_THREAD = 1 << 20


def check_threads(threads: object) -> int:
    """A thread count the user asked for: a positive integer, else ValueError."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads <= 0:
        raise ValueError(f"threads must be a positive integer (torch intra-op threads), got {threads!r}")
    return threads


def load_average() -> float:
    """The 1-minute load average (0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return 0.0


def idle_cores(cpus: int | None = None, load: float | None = None) -> int:
    """Cores not busy with other work: cpus − 1-minute load average, at least 1."""
    cpus = cpus or os.cpu_count() or 1
    load = load_average() if load is None else load
    return max(1, min(cpus, int(cpus - load)))


def choose_threads(elements_per_op: int, cpus: int | None = None, load: float | None = None) -> int:
    """Threads for work whose ops each touch ``elements_per_op`` parameter entries.

    1 below ``ELEMENTS_PER_THREAD`` (per-op overhead dominates); above it,
    one thread per ``ELEMENTS_PER_THREAD``, capped by the idle cores.
    """
    if elements_per_op < ELEMENTS_PER_THREAD:
        return 1
    return max(1, min(elements_per_op // ELEMENTS_PER_THREAD, idle_cores(cpus, load)))


def threads_for(param_count: int, rollouts: int, requested: int | None = None,
                device: str = "cpu") -> int | None:
    """The thread count for a run of ``rollouts`` rollouts of a ``param_count`` model.

    ``requested`` wins when given; ``OMP_NUM_THREADS`` in the environment is
    left alone (None: keep torch's setting), as is a GPU run.
    """
    if requested is not None:
        return check_threads(requested)
    if os.environ.get("OMP_NUM_THREADS") or not str(device).startswith("cpu"):
        return None
    return choose_threads(param_count * max(1, rollouts))


_policy_scope = False  # inside a thread_scope whose count the policy chose, not the user


@contextlib.contextmanager
def thread_scope(threads: int | None, *, policy: bool = False) -> Iterator[None]:
    """torch uses ``threads`` intra-op threads inside the block (None: unchanged);
    ``policy``: the count is the policy's, not the user's (see ``kernel_threads``)."""
    global _policy_scope
    if threads is None:
        yield
        return
    saved, saved_policy = torch.get_num_threads(), _policy_scope
    torch.set_num_threads(check_threads(threads))
    _policy_scope = policy
    try:
        yield
    finally:
        torch.set_num_threads(saved)
        _policy_scope = saved_policy


def kernel_threads() -> int:
    """Threads for a native kernel's work: the idle cores inside the policy's scope, else
    torch's thread count (the user's choice or torch's default). Idle here is net of this
    process's own thread: a run that has kept one core busy for a minute adds about 1 to
    the load average itself, and that core is the kernel's to use."""
    if not _policy_scope:
        return torch.get_num_threads()
    return idle_cores(load=max(0.0, load_average() - 1.0))
