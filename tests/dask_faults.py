"""A chunk function that kills its worker process the first time it meets chunk 0.

Its own small module, so Dask workers import it by name (pytest puts tests/ on the path
that spawned workers inherit) instead of unpickling the test module by value.
"""
from __future__ import annotations

import os


def die_once(marker: str, fn, context, chunk):
    """``fn(context, chunk)``, but the first process to run chunk 0 exits, mid-chunk."""
    if chunk.start == 0 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return fn(context, chunk)


class DyingFirst:
    """An executor that runs ``die_once`` around the chunk function on ``inner``."""

    def __init__(self, inner, marker: str):
        self.inner, self.marker = inner, marker

    def map(self, fn, context, chunks, *, progress=None):
        import functools
        return self.inner.map(functools.partial(die_once, self.marker, fn), context, chunks,
                              progress=progress)
