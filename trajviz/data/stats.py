"""A mean over held-out tasks with its confidence interval (numpy and scipy, no torch)."""
from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=256)
def t_quantile(q: float, df: int) -> float:
    """Student-t quantile ``q`` with ``df`` degrees of freedom (cached: a summary asks for
    the same few hundreds of times). ``scipy.special.stdtrit`` is what ``scipy.stats.t.ppf``
    computes, bit for bit, without importing scipy.stats (1-2 s: a what-if worker's first
    answer paid it)."""
    from scipy.special import stdtrit  # here, not at import: the page answers before any
    # run is there to summarise
    return float(stdtrit(df, q))


def summarise(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` with a two-sided Student-t confidence interval.

    values: [N] (any array-like, torch tensors included; flattened). NaN
    entries are ignored (diverged rollouts); ±inf is kept and propagates.
    Returns (mean, lo, hi) as floats: mean ± t_{(1+c)/2, n−1}·s/√n with s the
    sample standard deviation (ddof=1) over the n non-NaN values. With n = 1
    the interval is (mean, mean); with n = 0 all three are NaN.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu()
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n == 1 or not math.isfinite(mean):
        return mean, mean, mean
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return mean, mean, mean
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * sem
    return mean, mean - half, mean + half
