"""Loss-surface throughput: trajviz's chunked grid against per-point peers.

A 51×51 grid on a random orthonormal plane through an initialisation of the
sinusoid MLP 1-40-40-1, one task, N = 10 and N = 1000 evaluation points (the
task's full support set), evaluated three ways in this process, with the
same thread count:

(a) ``trajviz.engine.surface.evaluate_surface`` (chunked, vectorised) on the kernels
    ``--kernels`` asks for (default auto: the eligible backend timed fastest here,
    ``trajviz.kernels.calibrate``; chunk chosen by ``native.chunk_points`` or
    ``choose_chunk``). Every eligible fast backend (native where a C compiler
    exists, torch) is timed beside it, which shows whether auto took the fastest;
    the backend that ran is printed at each N, the first call (with auto's timing
    of the backends) apart from the steady state, and the C kernel's build (into
    an empty cache) apart as its one-off cost;
(b) ``loss_landscapes.random_plane`` (PyPI ``loss-landscapes``), which walks
    the plane point by point, moving an ``nn.Module``'s parameters in place and
    calling a ``Loss`` metric at each point. Its directions are set to the
    same plane (its random-direction draws are patched to return our basis,
    ``normalization=None``, ``distance`` set so one step is one grid
    spacing, the start point set so its grid lands on ours). It walks a
    zig-zag that adds before it evaluates, so its even columns sit one grid
    step further along b: of its 2601 points, 2575 are our grid points and
    are checked against (a); the other 26 lie one step beyond b_max;
(c) a plain per-point loop: load θ(a, b) into an ``nn.Module``
    (``vector_to_parameters``), forward, MSE, ``.item()``.

(a) and (c) must agree at every grid point. Times are medians of
``--repeats`` runs, interleaved so that load from other processes falls on
all alike. ``ratio_N`` = the faster per-point peer's time / trajviz's time.

FLOPs: the MLP's forward is counted as 2·N·(1·40 + 40·40 + 40·1) per grid
point (the multiply-adds of its three weight matrices). Biases, ReLUs, the
MSE and forming θ(a, b) are not counted (about 5% more at N = 1000), so the
GFLOP/s is a slight underestimate. ``gemm_fraction_1000`` = trajviz's
GFLOP/s at N = 1000 ÷ the GFLOP/s of a float32 ``torch.mm`` of two
1024×1024 matrices timed in the same interleaved loop.

Run: ``python bench/bench_surface.py [--repeats 7] [--threads N] [--sweep]``.
``--sweep`` also prints trajviz's time for a range of chunk sizes (the data
behind ``surface.CPU_CHUNK_BYTES``). ``--kernels`` picks trajviz's backend
behind the ratio lines (default ``auto``, what a user gets). The last four lines are ``ratio_10: X``,
``ratio_1000: Y``, ``gemm_fraction_1000: Z`` and ``floor_fraction_1000: F``
(the hidden-layer bmm floor's time / trajviz's time, timed interleaved).
"""
from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import tempfile
import time
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F
from timing import median_times  # bench/timing.py (scripts run from bench/)

from trajviz.engine.work import Work
from trajviz.kernels import calibrate, kernels, recording
from trajviz.kernels.cache import native_dir
from trajviz.kernels.native import chunk_points
from trajviz.problem.models import flatten
from trajviz.engine.slices import Slice
from trajviz.engine.surface import choose_chunk, evaluate_surface
from trajviz.problem.tasks import Sinusoid

RES = 51
HIDDEN = (40, 40)
EXTENT = (-1.0, 1.0, -1.0, 1.0)
GEMM = 1024


def forward_flops(n: int) -> int:
    sizes = (1, *HIDDEN, 1)
    return 2 * n * sum(a * b for a, b in itertools.pairwise(sizes))


class Setup:
    """The model, the task, the plane and the grid, shared by every contender."""

    def __init__(self, n: int):
        family = Sinusoid(shots=n, hidden=HIDDEN)
        self.n = n
        self.problem = family.problem()
        self.tasks = family.sample(seed=1, n_tasks=1)
        spec = self.problem.model.spec
        origin = flatten(self.problem.model.init(seed=0), spec).double().numpy()
        basis = np.linalg.qr(np.random.default_rng(0).normal(size=(spec.size, 2)))[0].T
        self.slice = Slice("random", origin.astype(np.float32), basis.astype(np.float32),
                           np.full(2, np.nan), EXTENT, "random plane")
        self.origin = torch.from_numpy(self.slice.origin)
        self.u, self.v = torch.from_numpy(self.slice.basis).unbind(0)
        self.alpha = np.linspace(EXTENT[0], EXTENT[1], RES).astype(np.float32)
        self.beta = np.linspace(EXTENT[2], EXTENT[3], RES).astype(np.float32)
        self.x, self.y = self.tasks.support["x"][0], self.tasks.support["y"][0]
        self.module = self.problem.model.module

    def trajviz(self, chunk: int | None = None, kernels_: str = "auto") -> np.ndarray:
        """(a): [B, A] losses, on the kernels ``kernels_`` asks for."""
        with kernels(kernels_):
            surface = evaluate_surface(self.problem, self.slice, self.tasks, (RES, RES),
                                       work=Work(chunk=chunk))
        return surface.loss[0]

    def loop(self) -> np.ndarray:
        """(c): one point at a time through an nn.Module."""
        net = copy.deepcopy(self.module)
        params = list(net.parameters())
        out = np.empty((RES, RES))
        with torch.no_grad():
            for j, b in enumerate(self.beta.tolist()):
                for i, a in enumerate(self.alpha.tolist()):
                    theta = self.origin + a * self.u + b * self.v
                    torch.nn.utils.vector_to_parameters(theta, params)
                    out[j, i] = F.mse_loss(net(self.x), self.y).item()
        return out

    def loss_landscapes(self):
        """(b): ``random_plane`` on our plane; returns its [A, B] matrix (column i = a_i)."""
        import loss_landscapes
        import loss_landscapes.main as ll_main
        from loss_landscapes.metrics import Loss
        from loss_landscapes.model_interface.model_parameters import ModelParameters

        net = copy.deepcopy(self.module)
        params = list(net.parameters())
        h = (EXTENT[1] - EXTENT[0]) / (RES - 1)
        half = RES / 2  # random_plane starts at centre − (steps/2)·(d₁ + d₂)
        start = self.origin + (EXTENT[0] + half * h) * self.u + (EXTENT[2] + half * h) * self.v
        torch.nn.utils.vector_to_parameters(start, params)
        norm = ModelParameters([p.detach() for p in params]).model_norm()

        def as_params(vec: torch.Tensor) -> ModelParameters:
            return ModelParameters([c.clone().view_as(p) for c, p in
                                    zip(vec.split([p.numel() for p in params]), params)])

        with mock.patch.object(ll_main, "rand_u_like", lambda _: as_params(self.u)), \
                mock.patch.object(ll_main, "orthogonal_to", lambda _: as_params(self.v)):
            # one step = (‖start‖ / distance) / steps along a unit direction = h
            return loss_landscapes.random_plane(net, Loss(F.mse_loss, self.x, self.y),
                                                distance=norm / (RES * h), steps=RES,
                                                normalization=None, deepcopy_model=True)


def check_peer(ours: np.ndarray, peer: np.ndarray) -> tuple[float, int]:
    """Max relative difference of random_plane's on-grid points from ours, and their count."""
    peer = np.asarray(peer, dtype=np.float64)  # [A, B]: column i = a_i
    diffs = []
    for i in range(RES):
        if i % 2:  # odd columns: b_j = beta[j]
            got, want = peer[i], ours[:, i]
        else:  # even columns: b_j = beta[j + 1]; the last lies beyond b_max
            got, want = peer[i, :-1], ours[1:, i]
        diffs.append(np.abs(got - want) / np.maximum(np.abs(want), 1e-12))
    rel = np.concatenate(diffs)
    return float(rel.max()), rel.size


def hidden_gemm_floor(n: int, chunk: int):
    """The grid's 40x40 hidden-layer matmuls alone, as trajviz batches them: a lower
    bound on any evaluator built on torch's GEMM (FLOPs: 1600 of the 1680 per sample)."""
    weight = torch.randn(chunk, HIDDEN[1], HIDDEN[0])
    acts = torch.randn(chunk, HIDDEN[0], n)
    out = torch.empty(chunk, HIDDEN[1], n)

    def run() -> None:
        for start in range(0, RES * RES, chunk):
            g = min(chunk, RES * RES - start)
            torch.bmm(weight[:g], acts[:g], out=out[:g])
    return run


def native_build_seconds() -> float | None:
    """The native kernel's build into an empty cache (its first-call cost), or None."""
    from trajviz.kernels import native

    before = os.environ.get("TRAJVIZ_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TRAJVIZ_CACHE"] = tmp
        native.library.cache_clear()
        t0 = time.perf_counter()
        built = native.library() is not None
        seconds = time.perf_counter() - t0
    if before is None:
        os.environ.pop("TRAJVIZ_CACHE")
    else:
        os.environ["TRAJVIZ_CACHE"] = before
    native.library.cache_clear()
    native.library()  # the machine's cached build again
    return seconds if built else None


def have_loss_landscapes() -> bool:
    try:
        import loss_landscapes  # noqa: F401
    except ImportError:
        return False
    return True


def sweep(repeats: int) -> None:
    for n in (10, 1000):
        s = Setup(n)
        auto = choose_chunk(s.problem, s.tasks, s.problem.model.spec.size)
        chunks = sorted({1, 4, 8, 16, 32, 64, 128, 256, 512, 1024, auto})
        fns = {c: (lambda c=c, s=s: s.trajviz(c)) for c in chunks}
        med = median_times(fns, repeats)
        row = "  ".join(f"{c}{'*' if c == auto else ''}:{med[c] * 1e3:.1f}" for c in chunks)
        print(f"sweep N={n} (chunk: ms, * = auto): {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sweep", action="store_true", help="also time a range of chunk sizes")
    parser.add_argument("--kernels", default="auto", choices=["auto", "plain", "torch", "native"],
                        help="trajviz's kernels behind the ratio lines (default auto, what a user "
                        "gets); every eligible fast backend is timed beside it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"sinusoid MLP 1-{HIDDEN[0]}-{HIDDEN[1]}-1, {RES}x{RES} grid, 1 task, float32, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, load average {load}")
    peer_ll = have_loss_landscapes()
    if not peer_ll:
        print("loss_landscapes: SKIPPED (not installed; pip install loss-landscapes)")
    if args.sweep:
        sweep(args.repeats)
    a = torch.randn(GEMM, GEMM)
    b = torch.randn(GEMM, GEMM)
    ratios, gemm_fraction, floor_fraction = {}, math.nan, math.nan
    build = native_build_seconds()
    print(f"trajviz kernels timed: {args.kernels} (kernel and timing cache: {native_dir()})")
    print("native kernel: " + ("SKIPPED (no C compiler; the torch backend runs, slower)"
                               if build is None else f"first build {build:.2f} s (then cached)"))
    for n in (10, 1000):
        s = Setup(n)
        calibrate.forget(disk=True)  # the first call below times the backends afresh
        t0 = time.perf_counter()
        with recording() as ran:
            ours = s.trajviz(kernels_=args.kernels)
        first = time.perf_counter() - t0
        backend = "+".join(sorted(ran["plane"]))
        plain = s.loop()
        diff = float(np.max(np.abs(ours - plain) / np.maximum(np.abs(plain), 1e-12)))
        print(f"N={n}: max relative |trajviz - per-point loop| over {RES * RES} points "
              f"= {diff:.2e}; backend that ran: {backend}; first call {first * 1e3:.1f} ms "
              f"(with {args.kernels}'s timing of the backends, the build apart above)")
        if not diff <= 1e-5:
            raise SystemExit(f"trajviz and the per-point loop disagree at N={n}: {diff}")
        fns = {"trajviz": lambda s=s: s.trajviz(kernels_=args.kernels), "per-point loop": s.loop}
        eligible = ["native", "torch"] if build is not None else ["torch"]
        for name in eligible:
            fns[f"backend {name}"] = lambda s=s, name=name: s.trajviz(kernels_=name)
        if peer_ll:
            rel, count = check_peer(ours, s.loss_landscapes())
            print(f"N={n}: max relative |loss_landscapes - trajviz| over its {count} grid points "
                  f"= {rel:.2e}")
            if not rel <= 1e-4:
                raise SystemExit(f"loss_landscapes and trajviz disagree at N={n}: {rel}")
            fns["loss_landscapes.random_plane"] = s.loss_landscapes
        chunk = choose_chunk(s.problem, s.tasks, s.problem.model.spec.size)
        ours_chunk = chunk_points(s.problem.model.spec.size) if backend == "native" else chunk
        if n == 1000:
            fns["torch.mm 1024x1024"] = lambda: torch.mm(a, b)
            fns["floor"] = hidden_gemm_floor(n, chunk)
        med = median_times(fns, args.repeats)
        t_ours = med.pop("trajviz")
        t_gemm = med.pop("torch.mm 1024x1024", None)
        t_floor = med.pop("floor", None)
        backends = {name: med.pop(f"backend {name}") for name in eligible}
        fastest = min(backends, key=backends.get)
        print(f"N={n}: steady state: {args.kernels} ({backend}) {t_ours * 1e3:.2f} ms; "
              + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in backends.items())
              + f"; fastest eligible: {fastest}"
              + ("" if args.kernels != "auto" or backend == fastest else
                 f"  (auto took {backend}: {backends[fastest] / backends[backend]:.2f}x as fast)"))
        peer = min(med, key=med.get)
        ratios[n] = med[peer] / t_ours
        gflops = forward_flops(n) * RES * RES / t_ours / 1e9
        print(f"N={n}: trajviz {t_ours * 1e3:.2f} ms (chunk {ours_chunk}, {gflops:.1f} GFLOP/s), "
              + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / t_ours:.1f}x)" for k, v in med.items())
              + f"; median of {args.repeats}")
        print(f"N={n}: ratio against the faster per-point peer, {peer}: {ratios[n]:.2f}")
        if t_floor is not None:
            floor_gflops = forward_flops(n) * RES * RES * 1600 / 1680 / t_floor / 1e9
            print(f"N={n}: floor: the grid's hidden 40x40 layer alone, as torch.bmm in chunks of "
                  f"{chunk}, takes {t_floor * 1e3:.1f} ms ({floor_gflops:.1f} GFLOP/s); "
                  f"{peer} / floor = {med[peer] / t_floor:.2f}, the most any evaluator built on "
                  "that GEMM could reach")
            floor_fraction = t_floor / t_ours
            print(f"N={n}: floor / trajviz = {floor_fraction:.3f} ("
                  + ", ".join(f"{k}: {t_floor / v:.3f}" for k, v in backends.items()) + ")")
        if t_gemm is not None:
            gemm_gflops = 2 * GEMM ** 3 / t_gemm / 1e9
            gemm_fraction = gflops / gemm_gflops
            print(f"N={n}: trajviz {gflops:.1f} GFLOP/s vs torch.mm {GEMM}x{GEMM} "
                  f"{gemm_gflops:.1f} GFLOP/s (forward FLOPs 2·N·1680 per point)")
    print(f"ratio_10: {ratios[10]:.2f}")
    print(f"ratio_1000: {ratios[1000]:.2f}")
    print(f"gemm_fraction_1000: {gemm_fraction:.3f}")
    print(f"floor_fraction_1000: {floor_fraction:.3f}")


if __name__ == "__main__":
    main()
