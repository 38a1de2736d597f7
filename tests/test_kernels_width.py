"""The plane kernel's vector width: 16 floats where the compiler targets AVX-512, else 8.

Both builds are made here (the target's, and one with ``-mno-avx512f`` through
``$TRAJVIZ_CFLAGS``: what a machine without AVX-512 builds) and each is compared
with the plain vmap path, in float64, on the shapes where a strip's edges
fall: rows one short of, equal to and one past a strip, a strip crossing a
task boundary, a partial last strip, widths that are not a multiple of the
register tile, several outputs, NaN and infinity in whole and partial strips.
"""
from __future__ import annotations

import itertools
import subprocess

import numpy as np
import pytest
import torch
from test_kernels import HAVE_CC
from test_kernels_native import batch_of, coords, plane_of, problem_of
from torch import nn

from trajviz.engine.surface import evaluate_chunk
from trajviz.kernels import cache, calibrate, kernels, native, recording
from trajviz.kernels.mlp_plan import mlp_layers

pytestmark = pytest.mark.skipif(not HAVE_CC, reason="builds the C kernel (the no-compiler path "
                                "is tested in test_kernels_native.py)")
BUILDS = {"target": "", "8-wide": "-mno-avx512f"}


def target_has_avx512() -> bool:
    """Whether the compiler, with the kernels' flags, targets AVX-512 here."""
    out = subprocess.run([cache.c_compiler(), *native.FLAGS, "-dM", "-E", "-x", "c", "/dev/null"],
                         capture_output=True, text=True, check=True).stdout
    return "__AVX512F__" in out


@pytest.fixture(params=list(BUILDS), scope="module")
def build(request, tmp_path_factory):
    """The plane kernel built with the build's flags into a cache of this module's own, loaded."""
    root = tmp_path_factory.mktemp("kernels")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAJVIZ_CACHE", str(root))
        mp.setenv("TRAJVIZ_CFLAGS", BUILDS[request.param])
        native.library.cache_clear()
        calibrate.forget()
        assert native.library() is not None
        yield request.param
    native.library.cache_clear()
    calibrate.forget()


def test_the_vector_width_follows_the_target(build):
    lib = native.library()
    lanes, strip = lib.trajviz_plane_lanes(), lib.trajviz_plane_strip()
    want = 16 if build == "target" and target_has_avx512() else 8
    assert lanes == want and strip % lanes == 0 and native.plane_strip() == strip
    assert strip // lanes in (1, 2, 3, 4)
    key = native.build_key("plane_native")  # the flags are part of the build's name
    assert (build == "target") == ("-mno-avx512f" not in native.flags())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAJVIZ_CFLAGS", "-mno-avx512f" if build == "target" else "")
        assert native.build_key("plane_native") != key


def sizes_net(sizes, act=nn.ReLU, bias=True) -> nn.Module:
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b, bias=bias), act()]
    return nn.Sequential(*layers[:-1])


NETS = {
    "sinusoid": lambda: sizes_net((1, 40, 40, 1)),
    "rest rows": lambda: sizes_net((2, 19, 13, 3)),  # 19 = 2·8 + 3, 13 = 8 + 5 (and 6 + 6 + 1)
    "one wide output": lambda: sizes_net((3, 41, 1), nn.Identity, bias=False),
    "wide output": lambda: sizes_net((2, 9, 30)),  # a last layer of full register tiles
}


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize("n_tasks,rows_of_strip", [(1, (0, 1)), (1, (1, -1)), (1, (1, 0)),
                                                    (1, (1, 1)), (1, (2, 5)), (3, (1, 3))],
                         ids=["1 row", "strip-1", "strip", "strip+1", "2 strips+5",
                              "3 tasks crossing strips"])
def test_each_width_equals_plain_at_the_strip_edges(build, net, n_tasks, rows_of_strip):
    strips, extra = rows_of_strip
    n = strips * native.plane_strip() + extra  # samples per task
    problem = problem_of(NETS[net]())
    batch = batch_of(problem, n_tasks, n)
    origin, basis = plane_of(problem)
    with kernels("native"), recording() as ran:
        got = evaluate_chunk(problem, origin, basis, coords(11), batch)
    assert ran["plane"] == {"native"}
    want = evaluate_chunk(problem, origin.double(), basis.double(), coords(11).double(),
                          {k: v.double() for k, v in batch.items()}, method="vmap")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("strips", [0, 2])  # NaN in a partial strip, and in whole ones
def test_each_width_keeps_nan_and_inf_as_torch(build, strips):
    problem = problem_of(sizes_net((2, 40, 40, 1)))
    n = strips * native.plane_strip() + 3
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(4, n, 2, generator=g), torch.randn(4, n, 1, generator=g)
    x[0, n - 2, 0] = float("nan")  # ReLU(NaN) is NaN: task 0 NaN everywhere
    x[1, 1, 1] = float("inf")  # inf pre-activations: inf, or NaN where inf − inf
    y[2, n // 2, 0] = float("inf")  # an infinite target: the loss is inf
    y[3, 0, 0] = float("nan")
    batch = {"x": x, "y": y}
    origin, basis = plane_of(problem)
    with kernels("native"), recording() as ran:
        got = evaluate_chunk(problem, origin, basis, coords(9), batch)
    assert ran["plane"] == {"native"}
    want = evaluate_chunk(problem, origin, basis, coords(9), batch, method="vmap")
    assert torch.isnan(want[:, 0]).all() and torch.isinf(want[:, 2]).all()
    assert torch.isnan(want[:, 3]).all()
    np.testing.assert_array_equal(torch.isnan(got).numpy(), torch.isnan(want).numpy())
    np.testing.assert_array_equal(torch.isinf(got).numpy(), torch.isinf(want).numpy())
    ok = torch.isfinite(want)
    np.testing.assert_allclose(got[ok].numpy(), want[ok].numpy(), rtol=1e-5)


def test_each_width_declines_float64(build):
    problem = problem_of(sizes_net((2, 40, 1)))
    batch = {"x": torch.randn(1, 50, 2, dtype=torch.float64),
             "y": torch.randn(1, 50, 1, dtype=torch.float64)}
    origin, basis = (t.double() for t in plane_of(problem))
    why = native.plane_native_declines(mlp_layers(problem), batch, torch.float64)
    assert why is not None and "float32" in why
    with kernels("native"), recording() as ran:
        got = evaluate_chunk(problem, origin, basis, coords(5).double(), batch)
    assert ran["plane"] == {"torch"}
    want = evaluate_chunk(problem, origin, basis, coords(5).double(), batch, method="vmap")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-9)
