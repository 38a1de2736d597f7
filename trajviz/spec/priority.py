"""Background processes yield to the page: workers and jobs run at a lower priority.

The page's server and the browser are interactive; a worker warming up (importing torch,
reading a run), a training job or a birth-map job is background work. On a small machine
they compete for the same cores, and a click would wait behind the work. While the page
waits on a worker, the worker is the only busy process and the lower priority costs it
nothing.
"""
from __future__ import annotations

import os

#: Background processes' niceness above the app's.
WORKER_NICE = 5


def lower_priority() -> None:
    """Run this process ``WORKER_NICE`` lower than its parent, where the OS allows it
    (called first thing by the worker, job and birth-map job processes)."""
    nice = getattr(os, "nice", None)
    if nice is not None:
        try:
            nice(WORKER_NICE)
        except OSError:
            pass


__all__ = ["WORKER_NICE", "lower_priority"]
