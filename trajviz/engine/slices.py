"""2D slices of parameter space: bases, origins, projections, explained variance, residuals.

A slice is the plane θ(a, b) = origin + a·basis[0] + b·basis[1] with an
orthonormal basis. Every projected picture states how much it hides: the
explained variance of its axes and each point's off-plane residual.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from trajviz.data.run import Slice
from trajviz.engine.columns import (  # noqa: F401 - points_mean, finite_rows: part of the slices' API
    _BLOCK_BYTES,
    _as_array,
    _block_to_numpy,
    _column_blocks,
    finite_rows,
    points_mean,
)

SLICE_KINDS = ("pca", "exact", "three_point", "random", "hessian")


_DEFAULT_EXTENT = (-1.0, 1.0, -1.0, 1.0)


def _vector(x, size: int, name: str) -> np.ndarray:
    """A finite [size] float64 vector, or a one-line ValueError."""
    v = _block_to_numpy(x)
    if v.shape != (size,):
        raise ValueError(f"{name} must have shape [{size}], got {tuple(v.shape)}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} has non-finite entries; a slice needs finite points")
    return v


def _check_slice(slc: Slice) -> int:
    p = slc.origin.shape[-1]
    if slc.origin.shape != (p,) or slc.basis.shape != (2, p):
        raise ValueError(f"malformed slice: origin {slc.origin.shape}, basis {slc.basis.shape}; "
                         f"expected [P] and [2, P]")
    return p


def _sign_fix(basis: np.ndarray) -> np.ndarray:
    """Flip each row so that its largest-magnitude entry (first of ties) is positive."""
    idx = np.abs(basis).argmax(axis=1)
    signs = np.where(basis[np.arange(basis.shape[0]), idx] < 0, -1.0, 1.0)
    return basis * signs[:, None]


def _orthonormal_pair(x: np.ndarray, y: np.ndarray, what: str) -> np.ndarray:
    """Gram–Schmidt (with one re-orthogonalisation) of (x, y) -> [2, P] orthonormal rows."""
    nx = np.linalg.norm(x)
    if not nx > 0:
        raise ValueError(f"{what}: the first direction has zero length")
    u = x / nx
    w = y - (u @ y) * u
    w = w - (u @ w) * u
    nw, ny = np.linalg.norm(w), np.linalg.norm(y)
    if not nw > 1e-10 * max(ny, nx):
        raise ValueError(f"{what}: the two directions are parallel (or the second is zero), "
                         f"so they do not span a plane")
    return np.stack([u, w / nw])


def _complete(rows: list[np.ndarray], p: int) -> np.ndarray:
    """Extend 0, 1 or 2 orthonormal rows to an orthonormal [2, P] basis.

    Missing directions are coordinate axes, the one least aligned with the
    rows found so far first, Gram–Schmidt-ed against them (deterministic).
    """
    rows = list(rows)
    while len(rows) < 2:
        weight = np.abs(np.stack(rows)).max(axis=0) if rows else np.zeros(p)
        for j in np.argsort(weight, kind="stable"):
            e = np.zeros(p)
            e[j] = 1.0
            for r in rows:
                e -= (r @ e) * r
            n = np.linalg.norm(e)
            if n > 0.5:
                rows.append(e / n)
                break
    return np.stack(rows[:2])


def pca_slice(points, origin=None, label: str = "", method: str = "auto",
              weights=None) -> Slice:
    """The plane of the top two principal directions of ``points``.

    points: [N, P] (torch or numpy; e.g. every learner's held-out paths,
    stacked, so all learners share one plane). Rows with a non-finite entry
    (diverged rollouts) are left out of the fit. origin: [P] or None for the
    points' mean (PCA itself is always around the mean).

    No P×P matrix is formed: ``method="gram"`` eigendecomposes the N×N Gram
    matrix of the centred points, accumulated over blocks of columns
    (O(N²P) time, O(N² + N·block) memory, for P ≥ N); ``"svd"`` takes a thin
    SVD of the centred [N, P] matrix (for P < N); ``"auto"`` picks by shape.
    weights: [N] row weights ≥ 0 (``robustfit.robust_rows``; None: equal), 0 leaves a row out.

    basis: the top-2 right singular vectors, each signed so that its largest
    entry in magnitude is positive. explained_variance: s_k² / Σ_j s_j² for
    k = 0, 1 (s the singular values of the centred matrix), NaN if all points
    coincide. Directions the points do not span (rank < 2) are completed with
    coordinate axes and explain ~0. extent: the fitted points' projections
    with ``with_extent``'s default margin.
    """
    x = _as_array(points)
    if x.ndim != 2:
        raise ValueError(f"pca_slice points must be [N, P], got shape {tuple(x.shape)}")
    n_all, p = x.shape
    if p < 2:
        raise ValueError(f"a 2D slice needs P >= 2 parameters, got P = {p}")
    if method not in ("auto", "gram", "svd"):
        raise ValueError(f"unknown pca method {method!r}; accepted: 'auto', 'gram', 'svd'")
    cols, keep = finite_rows(x)
    w = np.ones(n_all) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n_all,) or not (np.isfinite(w).all() and (w >= 0).all()):
        raise ValueError(f"weights must be [{n_all}] finite non-negative numbers")
    keep &= w > 0
    n = int(keep.sum())
    if n == 0:
        raise ValueError("pca_slice needs at least one finite point; every row has NaN or inf")
    use_gram = method == "gram" or (method == "auto" and p >= n)
    w = w[keep] / w[keep].sum()

    mean = np.empty(p)
    if use_gram:
        gram = np.zeros((n, n))
        for c in cols:
            y = _block_to_numpy(x[:, c])[keep]
            mean[c] = w @ y
            y = (y - mean[c]) * np.sqrt(w * n)[:, None]  # equal weights: 1, the plain PCA
            gram += y @ y.T
        total = float(np.trace(gram))
        k = min(2, n)
        lam, vecs = scipy.linalg.eigh(gram, subset_by_index=[n - k, n - 1])
        lam, vecs = np.clip(lam[::-1], 0.0, None), vecs[:, ::-1]
        sq = lam  # squared singular values of the centred points, descending
        top = float(lam[0])
        ok = [i for i in range(k) if top > 0 and lam[i] > 100 * n * np.finfo(float).eps * top]
        directions = np.zeros((len(ok), p))
        if ok:
            scale = vecs[:, ok] / np.sqrt(lam[ok])
            for c in cols:
                y = (_block_to_numpy(x[:, c])[keep] - mean[c]) * np.sqrt(w * n)[:, None]
                directions[:, c] = scale.T @ y
    else:
        y = _block_to_numpy(x[:, 0:p])[keep]
        mean[:] = w @ y
        y = (y - mean) * np.sqrt(w * n)[:, None]
        _, s, vt = np.linalg.svd(y, full_matrices=False)
        sq = s[:2] ** 2
        total = float((s ** 2).sum())
        top = float(sq[0]) if sq.size else 0.0
        ok = [i for i in range(sq.size) if top > 0 and sq[i] > 100 * n * np.finfo(float).eps * top]
        directions = vt[ok]

    rows: list[np.ndarray] = []
    for d in directions:  # re-orthonormalise (the Gram path loses a little)
        for r in rows:
            d = d - (r @ d) * r
        rows.append(d / np.linalg.norm(d))
    basis = _sign_fix(_complete(rows, p))
    explained = np.full(2, np.nan)
    if total > 0:
        explained = np.zeros(2)
        explained[: sq.size] = np.asarray(sq[:2]) / total
    org = mean.copy() if origin is None else _vector(origin, p, "origin")
    slc = Slice("pca", org, basis, explained, _DEFAULT_EXTENT, label)
    return with_extent(slc, project(slc, x)[0])


def exact_slice(P: int = 2, label: str = "") -> Slice:
    """The identity plane of a 2-parameter model: origin 0, basis I₂.

    Coordinates are the parameters themselves and nothing is hidden
    (residual exactly 0), so ``explained_variance`` is [NaN, NaN] (it is
    about fitted points, and there are none). Only P = 2 is accepted: for
    P > 2 an axis-aligned plane is not exact; use pca/three_point/random.
    """
    if P != 2:
        raise ValueError(f"exact_slice needs a 2-parameter model (P = 2), got P = {P}")
    return Slice("exact", np.zeros(2), np.eye(2), np.full(2, np.nan), _DEFAULT_EXTENT, label)


def three_point_slice(a, b, c, label: str = "") -> Slice:
    """The plane through three points [P] (e.g. two learners' θ0 and a solution).

    origin a; basis Gram–Schmidt of (b − a, c − a), so a ↦ (0, 0),
    b ↦ (‖b − a‖, 0) and c lies in the upper half plane. explained_variance
    is [NaN, NaN]. extent: the three points with ``with_extent``'s default
    margin. Raises ValueError when the points are collinear or coincide.
    """
    a_np = _block_to_numpy(a)
    p = a_np.shape[-1] if a_np.ndim == 1 else -1
    if p < 2:
        raise ValueError(f"three_point_slice points must be [P] vectors with P >= 2, "
                         f"got shape {tuple(a_np.shape)}")
    a_np, b_np, c_np = (_vector(v, p, name) for v, name in ((a, "a"), (b, "b"), (c, "c")))
    try:
        basis = _orthonormal_pair(b_np - a_np, c_np - a_np, "three_point_slice")
    except ValueError:
        raise ValueError("three_point_slice: the points a, b, c are collinear (or two coincide), "
                         "so no unique plane passes through them") from None
    slc = Slice("three_point", a_np.copy(), basis, np.full(2, np.nan), _DEFAULT_EXTENT, label)
    return with_extent(slc, project(slc, np.stack([a_np, b_np, c_np]))[0])


def filter_normalised_directions(param_shapes: Sequence[Sequence[int]], origin,
                                 seed: int) -> np.ndarray:
    """Two Gaussian directions [2, P], filter-normalised to ``origin`` (Li et al., 2018).

    param_shapes: the model's ``ParamSpec.shapes`` (flattening order);
    origin: [P]. Each direction is drawn from ``np.random.default_rng(seed)``.
    For a tensor with ≥ 2 dims, each filter (slice along dim 0: a row of a
    Linear weight, an output channel of a conv kernel) d_j is rescaled to
    ‖θ_j‖·d_j/‖d_j‖. A 1-D (or 0-D) tensor (biases, a point model's θ) is
    treated as one filter and rescaled to the norm of the whole tensor; Li
    et al. zero such directions instead, which would leave a point model
    with no direction at all. A filter whose θ_j is zero gets direction zero.
    """
    shapes = [tuple(int(d) for d in s) for s in param_shapes]
    p = sum(math.prod(s) for s in shapes)
    theta = _vector(origin, p, "origin")
    directions = np.random.default_rng(seed).standard_normal((2, p))
    start = 0
    for shape in shapes:
        size = math.prod(shape)
        if size == 0:
            continue
        filters = shape[0] if len(shape) >= 2 else 1
        d = directions[:, start:start + size].reshape(2, filters, -1)
        w = theta[start:start + size].reshape(1, filters, -1)
        d_norm = np.linalg.norm(d, axis=-1, keepdims=True)
        w_norm = np.linalg.norm(w, axis=-1, keepdims=True)
        d *= w_norm / np.where(d_norm > 0, d_norm, 1.0)
        directions[:, start:start + size] = d.reshape(2, size)
        start += size
    return directions


def random_slice(param_shapes: Sequence[Sequence[int]], origin, seed: int,
                 label: str = "") -> Slice:
    """Random filter-normalised plane through ``origin`` (Li et al., 2018), orthonormalised.

    The two ``filter_normalised_directions`` d1, d2 are Gram–Schmidt-ed into
    an orthonormal basis like every other slice kind (basis[0] = d1/‖d1‖).
    explained_variance is [NaN, NaN]. extent: ±‖d1‖ along a and ±‖d2‖ along
    b, the scale of Li et al.'s α, β ∈ [−1, 1]. Deterministic in ``seed``.
    Raises ValueError if the origin leaves no two independent directions
    (e.g. it is zero in every filter).
    """
    d = filter_normalised_directions(param_shapes, origin, seed)
    if not np.linalg.norm(d[0]) > 0:
        raise ValueError("random_slice: the origin is zero in every filter, so filter "
                         "normalisation leaves a zero direction; pick another origin")
    basis = _orthonormal_pair(d[0], d[1], "random_slice")
    n1, n2 = float(np.linalg.norm(d[0])), float(np.linalg.norm(d[1]))
    theta = _vector(origin, d.shape[1], "origin")
    return Slice("random", theta.copy(), basis, np.full(2, np.nan), (-n1, n1, -n2, n2), label)


def hessian_slice(origin, vectors, points, label: str = "") -> Slice:
    """The plane of two Hessian eigenvectors (PyHessian's loss-surface basis) through ``origin``.

    origin: [P]; vectors: [2, P] the top two eigenvectors (``hessian.top_eigenvectors``
    of the held-out tasks' mean loss at the origin), re-orthonormalised and
    sign-fixed like PCA's; points: [N, P] the paths it is reported against
    (rows with NaN/inf skipped). explained_variance: the fraction of the
    points' variance (about their mean) along each axis, as for PCA; extent:
    the points' projections with ``with_extent``'s default margin.
    """
    v = _block_to_numpy(vectors)
    p = v.shape[-1]
    basis = _sign_fix(_orthonormal_pair(v[0], v[1], "hessian_slice"))
    slc = Slice("hessian", _vector(origin, p, "origin"), basis, np.full(2, np.nan), _DEFAULT_EXTENT, label)
    x = _as_array(points).reshape(-1, p)
    cols = _column_blocks(x.shape[0], p)
    keep = np.ones(x.shape[0], dtype=bool)
    for c in cols:
        keep &= np.isfinite(_block_to_numpy(x[:, c])).all(axis=1)
    if keep.any():  # variance about the mean and along each axis, one column block at a time
        total, along = 0.0, np.zeros((int(keep.sum()), 2))
        for c in cols:
            y = _block_to_numpy(x[:, c])[keep]
            y -= y.mean(axis=0)
            total += float((y ** 2).sum())
            along += y @ basis[:, c].T
        if total > 0:
            slc = replace(slc, explained_variance=(along ** 2).sum(axis=0) / total)
    return with_extent(slc, project(slc, x)[0])


def project(slc: Slice, points) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of ``points`` in the slice and their distance from its plane.

    points: [..., P] (torch or numpy). Returns numpy float64 coords [..., 2] =
    (θ − origin)·basisᵀ and residual [...] = ‖θ − origin − coords·basis‖,
    computed block by block (no [.., P, P], at most ~64 MiB of scratch).
    A point with a non-finite entry gets NaN coords and NaN residual.
    """
    p = _check_slice(slc)
    x = _as_array(points)
    if x.ndim < 1 or x.shape[-1] != p:
        raise ValueError(f"points must be [..., {p}] for this slice, got {tuple(x.shape)}")
    lead = tuple(x.shape[:-1])
    flat = x.reshape(-1, p)
    m = flat.shape[0]
    coords, residual = np.empty((m, 2)), np.empty(m)
    rows = max(1, _BLOCK_BYTES // (8 * p))
    for r in range(0, m, rows):
        y = _block_to_numpy(flat[r:r + rows]) - slc.origin
        c = y @ slc.basis.T
        res = np.linalg.norm(y - c @ slc.basis, axis=1)
        bad = ~np.isfinite(y).all(axis=1)
        c[bad], res[bad] = np.nan, np.nan
        coords[r:r + rows], residual[r:r + rows] = c, res
    return coords.reshape(*lead, 2), residual.reshape(lead)


def slice_tensors(slc: Slice, device: str | torch.device | None = None,
                  dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """The slice's origin [P] and basis [2, P] as torch tensors on ``device``.

    For evaluators that map many chunks of grid coordinates to parameters:
    convert once, then θ = origin + coords @ basis per chunk.
    """
    _check_slice(slc)
    return (torch.as_tensor(slc.origin, dtype=dtype, device=device),
            torch.as_tensor(slc.basis, dtype=dtype, device=device))


def plane_points(slc: Slice, coords):
    """Parameters origin + a·basis[0] + b·basis[1] at ``coords`` [..., 2] -> [..., P].

    A torch tensor in gives a torch tensor out on the same device and in the
    same dtype (the default float dtype for integer coords); anything else
    gives numpy float64. The output is [..., P]: pass chunks of coordinates.
    """
    p = _check_slice(slc)
    if isinstance(coords, Tensor):
        if coords.shape[-1:] != (2,):
            raise ValueError(f"coords must be [..., 2], got {tuple(coords.shape)}")
        dtype = coords.dtype if coords.dtype.is_floating_point else torch.get_default_dtype()
        origin, basis = slice_tensors(slc, coords.device, dtype)
        return origin + coords.to(dtype) @ basis
    c = np.asarray(coords, dtype=np.float64)
    if c.shape[-1:] != (2,):
        raise ValueError(f"coords must be [..., 2], got {tuple(c.shape)}")
    return (slc.origin + c.reshape(-1, 2) @ slc.basis).reshape(*c.shape[:-1], p)


def with_extent(slc: Slice, coords, margin: float = 0.2) -> Slice:
    """A copy of ``slc`` whose extent covers ``coords`` [..., 2] plus a margin.

    Each axis spans [min − margin·span, max + margin·span] over the finite
    coordinate pairs (pairs with NaN/inf are ignored). An axis whose span is
    zero borrows the other axis's span, or 2 if both are zero, centred on
    its value; with no finite pair at all the extent is (−1, 1, −1, 1).
    The two axes are sized independently (not forced square).
    """
    if not margin >= 0:
        raise ValueError(f"margin must be a non-negative fraction, got {margin!r}")
    c = _block_to_numpy(coords)
    if c.shape[-1:] != (2,):
        raise ValueError(f"coords must be [..., 2], got {tuple(c.shape)}")
    c = c.reshape(-1, 2)
    c = c[np.isfinite(c).all(axis=1)]
    if c.shape[0] == 0:
        return replace(slc, extent=_DEFAULT_EXTENT)
    lo, hi = c.min(axis=0), c.max(axis=0)
    span = hi - lo
    for i in (0, 1):
        if not span[i] > 0:
            other = span[1 - i]
            span[i] = other if other > 0 else 2.0
            lo[i], hi[i] = lo[i] - span[i] / 2, hi[i] + span[i] / 2
    lo, hi = lo - margin * span, hi + margin * span
    return replace(slc, extent=(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])))
