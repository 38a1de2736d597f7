"""Chunks -> results: the one seam through which heavy grid work is evaluated.

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
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
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
