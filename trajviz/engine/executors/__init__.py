"""Chunks -> results: the one seam through which heavy grid work is evaluated.

``base`` holds the protocol and the in-process executor; ``dask_cluster`` the Dask one,
imported only when a scheduler asks for it (dask is an optional dependency).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

from trajviz.engine.executors.base import (  # noqa: F401 - the package's public names
    IN_PROCESS,
    LOCAL_DASK,
    SCHEDULER_ENV,
    SCHEDULERS,
    ChunkFn,
    Executor,
    InProcess,
    Progress,
    Scheduler,
    parse_scheduler,
)


def make_executor(scheduler: str | None):
    """An executor for a ``--scheduler`` string; close it when done (``with make_executor(s) as ex``).

    ``local-dask[:N]`` starts a LocalCluster on 127.0.0.1, ``tcp://HOST:PORT``
    connects to a running scheduler (ValueError in one line if it cannot be
    reached); both need ``dask[distributed]``. Anything else: in-process.
    """
    spec = parse_scheduler(scheduler)
    if spec.kind == "in-process":
        return contextlib.nullcontext(IN_PROCESS)
    try:
        from trajviz.engine.executors.dask_cluster import DaskExecutor
    except ImportError as exc:
        raise ValueError(f"scheduler {scheduler!r} needs dask.distributed, which is not installed "
                         f"({exc}); pip install 'trajviz[dask]'") from None
    if spec.kind == LOCAL_DASK:
        return DaskExecutor.local(spec.workers)
    return DaskExecutor.connect(spec.address)


@contextlib.contextmanager
def using(executor: Executor | str | None) -> Iterator[Executor]:
    """The executor to use for ``executor=`` (an Executor, a scheduler string, or None:
    in-process); one made here from a string is closed on exit, one passed in is not."""
    if executor is None or isinstance(executor, str):
        with make_executor(executor) as made:
            yield made
    elif callable(getattr(executor, "map", None)):
        yield executor
    else:
        raise ValueError(f"executor must be an object with a map(fn, context, chunks) method or a "
                         f"scheduler string ({', '.join(SCHEDULERS)}), got {executor!r}")
