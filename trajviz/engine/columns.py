"""[N, P] point sets read a block of columns at a time (torch tensors, numpy arrays or the
streaming record's ``ScratchRows``), so a fit over P ~ 10^6 parameters needs at most ~64 MiB
of float64 scratch: the shared reading of ``slices`` and ``robustfit``."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# Array inputs may be torch tensors (any device/dtype) or numpy arrays; the
# work is done in numpy float64, one block at a time, so a [N, P] input with
# P ~ 10^6 never needs more than about this many bytes of float64 scratch.
_BLOCK_BYTES = 64 * 2**20


def _block_to_numpy(x) -> np.ndarray:
    """A (small) block of a torch tensor or array as numpy float64."""
    if isinstance(x, Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _as_array(x):
    """A torch tensor stays a tensor (no copy); an array-like that reads itself in blocks
    (``x[:, a:b]`` columns, ``x[a:b]`` rows, ``.shape``, ``.reshape``: e.g. the streaming
    record's ``ScratchRows``) stays as it is; anything else becomes a numpy array."""
    if isinstance(x, Tensor):
        return x.detach()
    return x if hasattr(x, "select") and hasattr(x, "shape") else np.asarray(x)


def _column_blocks(n: int, p: int) -> list[slice]:
    block = max(1, _BLOCK_BYTES // (8 * max(n, 1)))
    return [slice(c, min(c + block, p)) for c in range(0, p, block)]


def points_mean(points) -> np.ndarray:
    """The mean [P] of ``points`` [N, P] (any array-like ``pca_slice`` takes), by column blocks."""
    x = _as_array(points)
    n, p = x.shape
    mean = np.empty(p)
    for c in _column_blocks(n, p):
        mean[c] = _block_to_numpy(x[:, c]).mean(axis=0)
    return mean


def finite_rows(x) -> tuple[list[slice], np.ndarray]:
    """Column blocks of ``x`` [N, P] (each ~64 MiB of float64) and its finite rows [N] bool."""
    cols = _column_blocks(*x.shape)
    keep = np.ones(x.shape[0], dtype=bool)
    for c in cols:
        keep &= np.isfinite(_block_to_numpy(x[:, c])).all(axis=1)
    return cols, keep
