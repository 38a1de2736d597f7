"""Native kernels in plain C (built here, loaded with ctypes), and the surface's native evaluator.

``library(name)`` builds and loads ``trajviz/<name>.c``: ``plane_native``
(below) and ``birth_native`` (the birth map's grid rollouts, ``native_birth``).

``plane_native.c`` runs a whole ReLU MLP on a strip of 16 samples at a time,
activations in L1, bias and ReLU in the epilogue of register-blocked GEMMs,
the last layer straight into the squared residual (see the file). On the
sinusoid MLP 1-40-40-1 at N = 1000 that ran in 0.84× the time of the hidden
layer's bmm alone, 3.2× faster than the eager ``mlp_plan.PlaneMLP``
(bench_surface.py, load 8.7).

A kernel is built once per machine with the C compiler on PATH (``$CC``, cc, gcc or
clang; ``-O3 -march=native``) into ``compiled.cache_dir()``'s sibling
``native/``, keyed by a hash of the source, compiler, flags and CPU, written
atomically, and loaded with ``ctypes`` (the call releases the GIL, so points
are split over ``threads.kernel_threads()`` threads). Where no compiler is
present or the build fails, ``library()`` is None, one line says so on
stderr, and callers keep their torch path (here ``PlaneMLP``: same numbers to float32 rounding
(the sums run in another order; residuals are summed in float64 here)).

Applies to float32 MLPs whose activations are all ``nn.ReLU`` or
``nn.Identity`` (``NativePlane.build`` returns None otherwise).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from trajviz.kernels.compiled import cache_dir, notice
from trajviz.kernels.mlp_plan import Linear, fused_applies
from trajviz.problem.tasks.base import Batch
from trajviz.kernels.threads import kernel_threads

STRIP = 16  # must match plane_native.c
# Grid points per chunk on the native path: their per-point weights [G, P] in about this
# many bytes (activations live in L1, so only the weights grow with G). Measured on the
# sinusoid MLP 1-40-40-1, 51x51 grid, 1 thread, CPU ms for the grid at N = 1000: 12 points
# 209, 32: 189, 64: 209, 128: 179, 256: 154, 512: 164, 2601: 214; at N = 10: 12: 43,
# 64: 14, 256: 7.8, 512: 7.6, 2601: 9.8 (2 MiB is ~300 points here).
CHUNK_BYTES = 2 * 2**20
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared")
PARTS_PER_THREAD = 4  # see split
_ENV_OFF = "TRAJVIZ_NO_NATIVE"  # set to 1 to keep the eager path (for comparisons)


def c_compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else cc, gcc or clang on PATH, else None."""
    names = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    return next((shutil.which(n) for n in names if shutil.which(n)), None)


def _cpu_key() -> str:
    """What -march=native depends on: the CPU's model and flags (Linux), else the platform."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("flags", "model name"))}))
    except OSError:
        return platform.processor() + platform.machine()


_P, _INT, _LONG = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
# Each kernel's C functions: (argument types, return type), declared once when it is loaded.
PROTOTYPES = {
    "plane_native": {"trajviz_plane_mlp_sse": (
        [_INT, _P, _P, _P, _P, _P, _P, _INT, _INT, _INT, _INT, _P, _P, _P], _INT)},
    "birth_native": {
        "trajviz_birth_rollouts": ([_INT, _P, _P, _P, _P, _LONG, _P, _INT, _INT, _INT, _P, _P, _INT,
                                    _INT, _INT, _INT, _P, _INT, _P, _P, _P], _INT),
        "trajviz_birth_scratch": ([_INT, _P, _INT], _LONG)},
}


@functools.lru_cache(maxsize=4)
def library(name: str = "plane_native") -> ctypes.CDLL | None:
    """The built kernel ``trajviz/<name>.c`` (building it on first use), or None where it
    cannot be built."""
    if os.environ.get(_ENV_OFF) == "1":
        return None
    cc = c_compiler()
    if cc is None:
        notice("native kernels skipped: no C compiler (cc, gcc, clang or $CC) on PATH")
        return None
    path = Path(__file__).with_name(f"{name}.c")
    source = path.read_bytes()
    key = hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(FLAGS).encode(),
                                     _cpu_key().encode()])).hexdigest()[:20]
    target = cache_dir().parent / "native" / f"{name}-{key}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            try:
                subprocess.run([cc, *FLAGS, "-o", tmp, str(path)],
                               check=True, capture_output=True, timeout=120)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        notice(f"native kernel {name} unavailable ({type(exc).__name__}: {exc})".splitlines()[0])
        return None
    for fn_name, (args, result) in PROTOTYPES[name].items():
        fn = getattr(lib, fn_name)
        fn.argtypes, fn.restype = args, result
    return lib


def split(count: int, run) -> None:
    """``run(lo, hi)`` over ``count`` items in contiguous parts, on ``threads.kernel_threads()``
    threads (a kernel call releases the GIL). ``PARTS_PER_THREAD`` parts per thread, taken
    as threads come free, so that a thread on a core busy with other work takes fewer
    parts instead of holding the others up. Each item's numbers do not depend on the
    split."""
    n_threads = max(1, min(kernel_threads(), count))
    if n_threads == 1:
        run(0, count)
        return
    parts = min(count, PARTS_PER_THREAD * n_threads)
    bounds = [count * i // parts for i in range(parts + 1)]
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(run, bounds[:-1], bounds[1:]))


def native_applies(layers: tuple | None, batch: Batch) -> bool:
    """Whether ``NativePlane.build`` can take these layers and this batch (building the
    kernel if needed): float32 CPU data, activations ReLU or Identity, a C compiler."""
    x = batch.get("x")
    return (fused_applies(layers, batch) and x.dtype == torch.float32 and x.device.type == "cpu"
            and all(isinstance(layer, (Linear, nn.ReLU, nn.Identity)) for layer in layers)
            and library() is not None)


def chunk_points(n_params: int) -> int:
    """Grid points per chunk on the native path for a model of ``n_params`` parameters."""
    return max(1, CHUNK_BYTES // (4 * n_params))


def pointers(tensors: list[Tensor | None]):
    return (ctypes.c_void_p * len(tensors))(*[0 if t is None else t.data_ptr() for t in tensors])


@dataclass(frozen=True, eq=False)
class NativePlane:
    """An MLP on one plane and one batch, prepared for the native kernel (cf. ``PlaneMLP``).

    q: [3, F₀, cols] the first layer's pre-activation at the origin, u and v
    (zero-padded to cols, a multiple of 16); stacks: per later layer, its
    weight [3, out·in] and bias [3, out] (or None) at the origin, u and v;
    dims, relu: widths and ReLU flags per layer; y: [out, T·N]; samples: N.
    """

    q: Tensor
    stacks: tuple
    dims: tuple[int, ...]
    relu: tuple[int, ...]
    y: Tensor
    samples: int

    @staticmethod
    def build(layers: tuple, origin: Tensor, basis: Tensor, batch: Batch) -> NativePlane | None:
        """The prepared plane, or None (no kernel, not float32 on the CPU, or an activation
        other than ReLU/Identity)."""
        if not native_applies(layers, batch) or origin.dtype != torch.float32:
            return None
        x, y = batch["x"], batch["y"]
        linears = [layer for layer in layers if isinstance(layer, Linear)]
        relu = [0] * len(linears)
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.ReLU):  # after the last linear layer before it
                relu[sum(isinstance(before, Linear) for before in layers[:i]) - 1] = 1
        n_tasks, n_samples = x.shape[:2]
        rows = n_tasks * n_samples
        cols = -(-rows // STRIP) * STRIP
        plane = torch.cat([origin[None], basis])  # [3, P]

        def weight(layer: Linear) -> Tensor:
            return plane[:, slice(*layer.weight)].reshape(3, layer.out_features, layer.in_features)

        first = linears[0]
        q = origin.new_zeros(3, first.out_features, cols)
        q[:, :, :rows] = torch.bmm(weight(first), x.reshape(rows, -1).T.expand(3, -1, rows))
        if first.bias is not None:
            q[:, :, :rows] += plane[:, slice(*first.bias)].reshape(3, -1, 1)
        stacks = tuple((weight(layer).reshape(3, -1).contiguous(),
                        None if layer.bias is None else plane[:, slice(*layer.bias)].contiguous())
                       for layer in linears[1:])
        return NativePlane(q.contiguous(), stacks, tuple(layer.out_features for layer in linears),
                           tuple(relu), y.reshape(rows, -1).T.contiguous(), n_samples)

    def losses(self, coords: Tensor) -> Tensor:
        """[G, T] MSE losses at coords [G, 2] (float32)."""
        g = coords.shape[0]
        corner = torch.cat([coords.new_ones(g, 1), coords], dim=1)  # [G, 3]: (1, a, b)
        weights = [None] + [torch.mm(corner, w) for w, _ in self.stacks]
        biases = [None] + [None if b is None else torch.mm(corner, b) for _, b in self.stacks]
        coords = coords.contiguous()
        n_out, rows = self.y.shape
        sums = torch.zeros(g, rows // self.samples, dtype=torch.float64)
        fn = library().trajviz_plane_mlp_sse
        dims = (ctypes.c_int * len(self.dims))(*self.dims)
        relu = (ctypes.c_int * len(self.relu))(*self.relu)

        def run(lo: int, hi: int) -> None:
            scratch = torch.empty(2 * max(self.dims) * STRIP)
            w = pointers([None if t is None else t[lo:] for t in weights])
            b = pointers([None if t is None else t[lo:] for t in biases])
            fn(len(self.dims), dims, relu, self.q.data_ptr(), w, b, coords[lo:].data_ptr(),
               hi - lo, self.q.shape[2], rows, self.samples, self.y.data_ptr(),
               scratch.data_ptr(), sums[lo:].data_ptr())

        split(g, run)
        return (sums / (self.samples * n_out)).to(torch.float32)
