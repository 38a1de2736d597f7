import math

import numpy as np
import pytest
import torch

from trajviz.engine.slices import (
    Slice,
    exact_slice,
    filter_normalised_directions,
    pca_slice,
    plane_points,
    project,
    random_slice,
    slice_tensors,
    three_point_slice,
    with_extent,
)


def _cloud(n: int, p: int, seed: int = 0) -> np.ndarray:
    """Points with a clear spectrum: spread 5 and 2 along two axes, small noise."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((p, 2)))
    latent = rng.standard_normal((n, 2)) * [5.0, 2.0]
    return 3.0 + latent @ q.T + 0.1 * rng.standard_normal((n, p))


def _assert_orthonormal(basis: np.ndarray, tol: float = 1e-10) -> None:
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=tol)


def _assert_types(slc: Slice, p: int) -> None:
    for arr, shape in ((slc.origin, (p,)), (slc.basis, (2, p)), (slc.explained_variance, (2,))):
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and arr.shape == shape
    assert len(slc.extent) == 4 and all(isinstance(e, float) for e in slc.extent)


@pytest.mark.parametrize("shape", [(40, 6), (12, 300)])
def test_pca_matches_numpy_svd(shape):
    x = _cloud(*shape)
    slc = pca_slice(x)
    _assert_types(slc, shape[1])
    assert slc.kind == "pca"
    _assert_orthonormal(slc.basis)
    centred = x - x.mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(slc.explained_variance, s[:2] ** 2 / (s ** 2).sum(), rtol=1e-10)
    for k in range(2):  # same directions up to sign
        assert abs(slc.basis[k] @ vt[k]) == pytest.approx(1.0, abs=1e-10)
        assert slc.basis[k][np.abs(slc.basis[k]).argmax()] > 0  # sign convention
    np.testing.assert_allclose(slc.origin, x.mean(axis=0), atol=1e-12)


def test_gram_and_svd_paths_agree_when_p_much_larger_than_n():
    x = _cloud(10, 5000, seed=1)
    gram, svd = pca_slice(x, method="gram"), pca_slice(x, method="svd")
    np.testing.assert_allclose(gram.basis, svd.basis, atol=1e-8)
    np.testing.assert_allclose(gram.explained_variance, svd.explained_variance, rtol=1e-10)
    np.testing.assert_allclose(gram.extent, svd.extent, rtol=1e-8)


def test_pca_large_p_torch_float32_and_origin():
    p = 1_000_000
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, p, generator=gen)
    origin = x[0]
    slc = pca_slice(x, origin=origin)
    _assert_types(slc, p)
    _assert_orthonormal(slc.basis, tol=1e-8)
    np.testing.assert_array_equal(slc.origin, origin.double().numpy())
    coords, residual = project(slc, x)
    assert coords.shape == (4, 2) and residual.shape == (4,)
    assert coords[0] == pytest.approx([0.0, 0.0], abs=1e-12)


def test_pca_skips_diverged_rows_and_degenerate_input():
    x = _cloud(20, 5)
    with_bad = np.concatenate([x, np.full((2, 5), np.nan), np.full((1, 5), np.inf)])
    np.testing.assert_allclose(pca_slice(with_bad).basis, pca_slice(x).basis, atol=1e-12)
    line = np.outer(np.arange(5.0), [1.0, 2.0, 0.0, 0.0])  # rank 1: completed to a plane
    slc = pca_slice(line)
    _assert_orthonormal(slc.basis)
    assert slc.explained_variance[0] == pytest.approx(1.0)
    assert slc.explained_variance[1] == pytest.approx(0.0, abs=1e-12)
    same = pca_slice(np.ones((3, 4)))
    _assert_orthonormal(same.basis)
    assert np.isnan(same.explained_variance).all()
    with pytest.raises(ValueError, match="finite"):
        pca_slice(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="P >= 2"):
        pca_slice(np.ones((3, 1)))


def test_in_plane_points_round_trip():
    slc = pca_slice(_cloud(30, 8))
    coords = np.random.default_rng(3).standard_normal((5, 7, 2)) * 4
    theta = plane_points(slc, coords)
    assert theta.shape == (5, 7, 8)
    back, residual = project(slc, theta)
    np.testing.assert_allclose(back, coords, atol=1e-10)
    np.testing.assert_allclose(residual, 0.0, atol=1e-10)
    # an off-plane offset orthogonal to the basis shows up exactly as residual
    off = np.random.default_rng(4).standard_normal(8)
    off -= slc.basis.T @ (slc.basis @ off)
    c, r = project(slc, slc.origin + off)
    assert c == pytest.approx([0.0, 0.0], abs=1e-12) and r == pytest.approx(np.linalg.norm(off))


def test_project_nan_points_and_torch_input():
    slc = pca_slice(_cloud(30, 8))
    pts = torch.tensor(_cloud(6, 8, seed=5), dtype=torch.float32)
    pts[2, 3] = math.nan
    coords, residual = project(slc, pts)
    assert np.isnan(coords[2]).all() and np.isnan(residual[2])
    assert np.isfinite(np.delete(coords, 2, axis=0)).all()
    with pytest.raises(ValueError, match=r"\[\.\.\., 8\]"):
        project(slc, np.zeros((3, 7)))


def test_plane_points_torch_keeps_device_and_dtype():
    slc = pca_slice(_cloud(30, 8))
    coords = torch.tensor([[1.0, -2.0], [0.5, 0.25]], dtype=torch.float32)
    theta = plane_points(slc, coords)
    assert isinstance(theta, torch.Tensor) and theta.dtype == torch.float32
    assert theta.device == coords.device and theta.shape == (2, 8)
    np.testing.assert_allclose(theta.numpy(), plane_points(slc, coords.numpy()), rtol=1e-5, atol=1e-5)
    origin, basis = slice_tensors(slc, dtype=torch.float64)
    torch.testing.assert_close(plane_points(slc, coords.double()), origin + coords.double() @ basis)


def test_exact_slice_reproduces_points():
    slc = exact_slice()
    _assert_types(slc, 2)
    pts = np.random.default_rng(0).standard_normal((4, 9, 2))
    coords, residual = project(slc, pts)
    np.testing.assert_array_equal(coords, pts)
    assert (residual == 0).all()
    np.testing.assert_array_equal(plane_points(slc, coords), pts)
    assert np.isnan(slc.explained_variance).all()
    with pytest.raises(ValueError, match="P = 2"):
        exact_slice(3)


def test_three_point_plane_contains_points():
    rng = np.random.default_rng(7)
    a, b, c = rng.standard_normal((3, 50))
    slc = three_point_slice(a, b, torch.tensor(c), label="abc")
    _assert_types(slc, 50)
    _assert_orthonormal(slc.basis)
    coords, residual = project(slc, np.stack([a, b, c]))
    np.testing.assert_allclose(residual, 0.0, atol=1e-10)
    assert coords[0] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert coords[1] == pytest.approx([np.linalg.norm(b - a), 0.0], abs=1e-10)
    assert coords[2][1] > 0
    lo_a, hi_a, lo_b, hi_b = slc.extent
    assert lo_a < coords[:, 0].min() and hi_a > coords[:, 0].max()
    assert lo_b < coords[:, 1].min() and hi_b > coords[:, 1].max()
    with pytest.raises(ValueError, match="collinear"):
        three_point_slice(a, a + (b - a), a + 2.5 * (b - a))
    with pytest.raises(ValueError, match="collinear"):
        three_point_slice(a, a, c)


SHAPES = [(3, 2), (3,), (2, 2, 3, 3), (1,)]  # linear weight, bias, conv kernel, scalar-ish


def _origin(seed: int = 0) -> np.ndarray:
    p = sum(math.prod(s) for s in SHAPES)
    return np.random.default_rng(seed).standard_normal(p) * 2


def test_random_slice_is_filter_normalised_then_orthonormal():
    origin = _origin()
    d = filter_normalised_directions(SHAPES, origin, seed=11)
    start = 0
    for shape in SHAPES:
        size = math.prod(shape)
        rows = shape[0] if len(shape) >= 2 else 1
        dk = d[:, start:start + size].reshape(2, rows, -1)
        wk = origin[start:start + size].reshape(rows, -1)
        for i in range(2):  # every filter has its weights' norm
            np.testing.assert_allclose(np.linalg.norm(dk[i], axis=-1),
                                       np.linalg.norm(wk, axis=-1), rtol=1e-12)
        start += size
    slc = random_slice(SHAPES, origin, seed=11)
    _assert_types(slc, origin.size)
    assert slc.kind == "random"
    _assert_orthonormal(slc.basis)
    np.testing.assert_allclose(slc.basis[0], d[0] / np.linalg.norm(d[0]), atol=1e-12)
    _, residual = project(slc, slc.origin + d)  # both directions lie in the plane
    np.testing.assert_allclose(residual, 0.0, atol=1e-10)
    assert np.isnan(slc.explained_variance).all()
    assert slc.extent[1] == pytest.approx(np.linalg.norm(d[0]))


def test_random_slice_determinism_and_zero_filters():
    origin = _origin()
    one, two = random_slice(SHAPES, origin, seed=3), random_slice(SHAPES, torch.tensor(origin), 3)
    np.testing.assert_array_equal(one.basis, two.basis)
    assert not np.allclose(one.basis, random_slice(SHAPES, origin, seed=4).basis)
    zero_bias = origin.copy()
    zero_bias[6:9] = 0.0  # the bias tensor
    d = filter_normalised_directions(SHAPES, zero_bias, seed=3)
    assert (d[:, 6:9] == 0).all()
    with pytest.raises(ValueError, match="zero in every filter"):
        random_slice(SHAPES, np.zeros_like(origin), seed=0)
    with pytest.raises(ValueError, match="origin must have shape"):
        random_slice(SHAPES, origin[:-1], seed=0)


def test_with_extent_ignores_nan_and_adds_margin():
    slc = exact_slice()
    coords = np.array([[0.0, 1.0], [2.0, 5.0], [np.nan, 100.0], [np.inf, 0.0]])
    out = with_extent(slc, coords, margin=0.25)
    assert out.extent == pytest.approx((-0.5, 2.5, 0.0, 6.0))
    assert slc.extent == (-1.0, 1.0, -1.0, 1.0)  # the input is unchanged
    assert with_extent(slc, np.full((3, 2), np.nan)).extent == (-1.0, 1.0, -1.0, 1.0)
    single = with_extent(slc, np.array([[3.0, -1.0]]), margin=0.0)
    assert single.extent == pytest.approx((2.0, 4.0, -2.0, 0.0))
    flat = with_extent(slc, np.array([[0.0, 1.0], [4.0, 1.0]]), margin=0.0)
    assert flat.extent == pytest.approx((0.0, 4.0, -1.0, 3.0))
