"""The executor seam on a Dask cluster (``dask.distributed``): one machine is not enough.

    with DaskExecutor.local(2) as ex:          # --scheduler local-dask:2
        surface = evaluate_surface(..., executor=ex)
    with DaskExecutor.connect("tcp://10.0.0.5:8786") as ex:   # --scheduler tcp://...
        ...

``map(fn, context, chunks)`` scatters ``context`` once to every worker
(``broadcast=True``: each worker unpickles it once, rebuilding the problem
from its reference, see ``trajviz.engine.context``), submits one task per chunk
descriptor, feeds ``progress`` from futures as they complete and returns
the results in chunk order. A chunk whose worker dies is run again on
another (the scheduler reschedules it, or ``map`` submits it again when
the context was lost too), so the result is complete. ``fn`` must be a module-level function
that workers can import: they need the same trajviz installed.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import dask
from distributed import Client, LocalCluster, as_completed

from trajviz.engine.executors.base import ChunkFn, Progress

CONNECT_TIMEOUT_S = 5.0  # an unreachable cluster fails in this long, in one line
RETRIES = 2  # reruns of a chunk that raised or whose workers kept dying (KilledWorker)
# tasks per worker thread and job: enough to balance uneven chunks and to lose little with a
# dead worker, few enough that a scheduler round trip (ms, far more on a loaded machine) is
# small against a task's work
BATCHES_PER_THREAD = 8
THREADS_PER_WORKER = 1  # small models: more threads per process only add contention
# imported by each local worker before it joins, so a worker (or one restarted after a
# crash) is handed chunks only once torch and trajviz are loaded
PRELOAD = "trajviz.engine.context"
# glibc malloc settings for worker processes. Dask's nannies set MALLOC_TRIM_THRESHOLD_=65536,
# which turns off glibc's adaptive mmap threshold, so every chunk's activations (MBs) are
# mmapped and faulted in afresh; and a worker computes in a thread, whose malloc arena gives
# memory back (and faults it in again) where the main thread's does not. Measured on the
# sinusoid MLP 1-40-40-1 surface (CPU per chunk): with Dask's setting 2.4x that of the
# in-process main thread, in a plain thread 1.6x, with these thresholds 1.0x.
# Local workers also run without Dask's statistical profiler (a thread that samples the
# computing thread's stack every 10 ms, holding the GIL while it does).
MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(256 * 2**20), "MALLOC_MMAP_THRESHOLD_": str(32 * 2**20)}


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def batches(n_chunks: int, threads: int) -> list[range]:
    """Consecutive chunk indices in ``min(n_chunks, BATCHES_PER_THREAD · threads)`` groups
    whose sizes differ by at most one."""
    n = max(1, min(n_chunks, BATCHES_PER_THREAD * max(1, threads)))
    bounds = [n_chunks * b // n for b in range(n + 1)]
    return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]


def run_batch(fn: ChunkFn, context: Any, chunks: Sequence[Any]) -> list[Any]:
    """One Dask task: ``fn(context, c)`` for each chunk of a batch, in order."""
    return [fn(context, chunk) for chunk in chunks]


class DaskExecutor:
    """Chunks evaluated on the workers of a Dask ``client``; closes what it started."""

    def __init__(self, client: Client, cluster: LocalCluster | None = None, *,
                 retries: int = RETRIES):
        self.client, self.cluster, self.retries = client, cluster, retries

    @classmethod
    def local(cls, workers: int | None = None, threads_per_worker: int = THREADS_PER_WORKER,
              **cluster_options: Any) -> DaskExecutor:
        """A LocalCluster on 127.0.0.1: ``workers`` processes (default one per core) of
        ``threads_per_worker`` threads, no dashboard, quiet logs."""
        options = {"n_workers": workers or default_workers(), "threads_per_worker": threads_per_worker,
                   "processes": True, "host": "127.0.0.1", "dashboard_address": None,
                   "silence_logs": logging.CRITICAL, "preload": [PRELOAD], **cluster_options}
        try:
            environ = {**dask.config.get("distributed.nanny.pre-spawn-environ"), **MALLOC_ENV}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": environ,
                                  "distributed.worker.profile.enabled": False}):
                cluster = LocalCluster(**options)
        except Exception as exc:  # noqa: BLE001 - ports, processes: said in one line
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"cannot start a local Dask cluster of {options['n_workers']} "
                             f"workers ({reason})") from None
        try:
            return cls(Client(cluster), cluster)
        except BaseException:
            cluster.close()
            raise

    @classmethod
    def connect(cls, address: str, timeout: float | None = None) -> DaskExecutor:
        """A running cluster's scheduler, e.g. ``tcp://10.0.0.5:8786``; ValueError in one line
        if it does not answer within ``timeout`` seconds (default ``CONNECT_TIMEOUT_S``)."""
        timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
        try:
            client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ValueError(f"cannot reach the Dask scheduler at {address} ({reason}); start one "
                             f"with `dask scheduler`, or use --scheduler local-dask") from None
        return cls(client)

    @property
    def workers(self) -> int:
        """Workers connected now."""
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def map(self, fn: ChunkFn, context: Any, chunks: Sequence[Any], *,
            progress: Progress | None = None) -> list[Any]:
        """``[fn(context, c) for c in chunks]`` on the cluster, ``context`` scattered once.

        Chunks are sized for a core's cache, often a few ms of work: too little
        to pay a scheduler round trip each. They go out in ``batches`` of
        consecutive chunks, about ``BATCHES_PER_THREAD`` per worker thread (one
        task each, run by ``run_batch``). Results are fetched as batches finish,
        so a worker lost later costs nothing already done. A worker lost with
        the only copy of the context left (Dask's memory manager trims the
        broadcast copies as work finishes) cancels the batches still needing
        it: those are submitted again with the context scattered anew, up to
        ``retries`` times. A chunk that raises raises here, with its own exception.
        """
        groups = batches(len(chunks), sum(self.client.nthreads().values()))
        results: dict[int, list[Any]] = {}
        done = 0
        for _ in range(self.retries + 1):
            todo = [b for b in range(len(groups)) if b not in results]
            if not todo:
                break
            [shared] = self.client.scatter([context], broadcast=True, hash=False)
            futures = {self.client.submit(run_batch, fn, shared, [chunks[i] for i in groups[b]],
                                          pure=False, retries=self.retries): b for b in todo}
            try:
                for future, value in as_completed(futures, with_results=True, raise_errors=False):
                    if future.status == "error":
                        future.result()  # raises the chunk's own exception, with its traceback
                    elif future.status == "finished":
                        results[futures[future]] = value
                        done += len(value)
                        if progress is not None:
                            progress(done, len(chunks))
            finally:
                self.client.cancel([*futures, shared])
        if len(results) < len(groups):
            raise RuntimeError(f"{len(chunks) - done} of {len(chunks)} chunks were lost with their "
                               f"workers {self.retries + 1} times; is the cluster "
                               f"({self.client.scheduler.address}) losing workers?")
        return [r for b in range(len(groups)) for r in results[b]]

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
