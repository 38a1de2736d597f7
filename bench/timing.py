"""Timing helper shared by the benchmarks (never used by tests: tests do not time)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each function after one warm-up call; the repeats are
    interleaved so that load from other processes falls on all of them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
