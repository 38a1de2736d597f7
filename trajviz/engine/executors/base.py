"""The executor protocol and the in-process executor (the default): chunks in, results out.

Work is a list of small, picklable chunk descriptors (index ranges plus the
few small things needed to rebuild the chunk: origin, basis, a config) and a
pure module-level function ``fn(context, chunk) -> result``. ``context`` is
the large shared input (task data, a problem spec), handed over once: the
in-process executor passes it as is; a distributed executor scatters it to
its workers once. A chunk never carries a view of a large tensor (a torch
view pickles its whole storage).

    results = executor.map(evaluate_chunk, context, chunks, progress=bar)

Results come back in the order of ``chunks``; ``progress(done, total)`` is
called as chunks complete.

Executors: ``IN_PROCESS`` (the default) and ``trajviz.engine.executors.dask_cluster.DaskExecutor``,
named by a scheduler string (``--scheduler``): ``in-process``, ``local-dask[:N]``
(a LocalCluster of N one-thread worker processes on 127.0.0.1) or
``tcp://HOST:PORT`` (a running Dask scheduler). This module never imports
dask or torch: the data side may parse a scheduler string.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Progress = Callable[[int, int], None]
ChunkFn = Callable[[Any, Any], Any]


class Executor(Protocol):
    """Evaluates ``fn(context, chunk)`` for every chunk; results in chunk order."""

    def map(self, fn: ChunkFn, context: Any, chunks: Sequence[Any], *,
            progress: Progress | None = None) -> list[Any]: ...


class InProcess:
    """The default executor: chunk after chunk in this process."""

    def map(self, fn: ChunkFn, context: Any, chunks: Sequence[Any], *,
            progress: Progress | None = None) -> list[Any]:
        out = []
        for i, chunk in enumerate(chunks):
            out.append(fn(context, chunk))
            if progress is not None:
                progress(i + 1, len(chunks))
        return out


IN_PROCESS = InProcess()


# ---------------------------------------------------------------- schedulers

LOCAL_DASK = "local-dask"
SCHEDULER_ENV = "TRAJVIZ_SCHEDULER"  # the app's background jobs run their chunks here
SCHEDULERS = ("in-process", "local-dask[:N]", "tcp://HOST:PORT")
MAX_LOCAL_WORKERS = 256


@dataclass(frozen=True)
class Scheduler:
    """A parsed ``--scheduler``: ``kind`` is in-process, local-dask or tcp;
    ``workers`` the local worker count (None: one per core); ``address`` the
    tcp scheduler's address."""

    kind: str
    workers: int | None = None
    address: str = ""


def parse_scheduler(text: str | None) -> Scheduler:
    """``""``/``in-process``, ``local-dask[:N]`` or ``tcp://HOST:PORT``; ValueError (one line) else."""
    accepted = f"accepted: {', '.join(SCHEDULERS)}"
    if text is None or not isinstance(text, str):
        if text is None:
            return Scheduler("in-process")
        raise ValueError(f"scheduler must be a string, got {text!r}; {accepted}")
    text = text.strip()
    if text in ("", "in-process"):
        return Scheduler("in-process")
    if text == LOCAL_DASK or text.startswith(LOCAL_DASK + ":"):
        if text == LOCAL_DASK:
            return Scheduler(LOCAL_DASK)
        count = text[len(LOCAL_DASK) + 1:]
        if not count.isdigit() or not 1 <= int(count) <= MAX_LOCAL_WORKERS:
            raise ValueError(f"scheduler {text!r}: N must be a whole number of workers from 1 "
                             f"to {MAX_LOCAL_WORKERS}; {accepted}")
        return Scheduler(LOCAL_DASK, workers=int(count))
    if text.startswith("tcp://"):
        host, sep, port = text[len("tcp://"):].rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"scheduler {text!r} needs a host and a port 1..65535, "
                             f"e.g. tcp://10.0.0.5:8786; {accepted}")
        return Scheduler("tcp", address=text)
    raise ValueError(f"unknown scheduler {text!r}; {accepted}")
