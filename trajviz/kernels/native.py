"""The C kernels (built here at first use, loaded with ctypes) and the surface's native backend.

``library(name)`` builds and loads ``trajviz/kernels/<name>.c``: ``plane_native``
(below) and ``birth_native`` (the birth map's grid rollouts, ``native_birth``).

``plane_native.c`` runs a whole MLP (ReLU or identity activations, the table's
``native`` codes) on a strip of samples at a time (``trajviz_plane_strip()``
columns: two vectors, of 16 floats where the compiler targets AVX-512, else of
8), activations in L1, bias and ReLU in the epilogue of register-blocked GEMMs,
the last layer straight into the squared residual (see the file). The strip is
read from the library when it loads (``plane_strip``), never assumed here.

A kernel is built once per machine with the C compiler on PATH (``$CC``, cc,
gcc or clang; ``-O3 -march=native`` and ``$TRAJVIZ_CFLAGS``, e.g.
``-mno-avx512f`` for the 8-wide path) into ``cache.native_dir()``, keyed by a
hash of the source, compiler, flags and CPU, written atomically. Every call
goes through one ``ctypes.Structure`` of typed fields (``PlaneArgs``,
``BirthArgs``, mirrors of the C structs) whose tensors are checked first
(``typed``: dtype, device, contiguity, shape; one line naming the argument),
and a rollout or point range is passed as (first, count): no pointer
arithmetic happens in Python. A kernel returns nonzero for a code it does
not know (an activation, an optimiser) and that raises: it never runs
something else. The call releases the GIL, so points are split over
``threads.kernel_threads()`` threads. Where no compiler is present or the
build fails, ``library()`` is None, one line says so on stderr, and the
dispatcher takes the torch backend (same numbers to float32 rounding, slower).
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from trajviz.kernels.cache import c_compiler, native_dir, notice
from trajviz.kernels.mlp_plan import Linear, plane_declines
from trajviz.kernels.tables import activation_of, native_activation
from trajviz.kernels.threads import kernel_threads
from trajviz.problem.tasks.base import Batch

# Grid points per chunk on the native path: their per-point weights [G, P] in about this
# many bytes (activations live in L1, so only the weights grow with G). Measured on the
# sinusoid MLP 1-40-40-1, 51x51 grid, 1 thread, CPU ms for the grid at N = 1000: 12 points
# 209, 32: 189, 64: 209, 128: 179, 256: 154, 512: 164, 2601: 214; at N = 10: 12: 43,
# 64: 14, 256: 7.8, 512: 7.6, 2601: 9.8 (2 MiB is ~300 points here).
CHUNK_BYTES = 2 * 2**20
FLAGS = ("-O3", "-march=native", "-ffp-contract=fast", "-fno-math-errno", "-fPIC", "-shared")
PARTS_PER_THREAD = 4  # see split

_F, _D, _I, _L = (ctypes.POINTER(t) for t in (ctypes.c_float, ctypes.c_double, ctypes.c_int,
                                                ctypes.c_long))


class PlaneArgs(ctypes.Structure):
    """plane_native.c's PlaneArgs, field for field."""

    _fields_ = [("n_layers", ctypes.c_int), ("dims", _I), ("act", _I), ("q", _F),
                ("w", ctypes.POINTER(_F)), ("b", ctypes.POINTER(_F)), ("coords", _F),
                ("first", ctypes.c_long), ("count", ctypes.c_long), ("cols", ctypes.c_int),
                ("rows", ctypes.c_int), ("samples", ctypes.c_int), ("y", _F), ("scratch", _F),
                ("sums", _D)]


class BirthArgs(ctypes.Structure):
    """birth_native.c's BirthArgs, field for field."""

    _fields_ = [("n_layers", ctypes.c_int), ("dims", _I), ("act", _I), ("w_off", _L),
                ("b_off", _L), ("n_params", ctypes.c_long), ("theta0", _F),
                ("repeat", ctypes.c_int), ("first", ctypes.c_long), ("count", ctypes.c_long),
                ("x", _F), ("y", _F), ("n_batches", ctypes.c_int), ("batch", ctypes.c_int),
                ("steps", ctypes.c_int), ("opt", ctypes.c_int), ("nesterov", ctypes.c_int),
                ("hyper", _D), ("scratch", _F), ("losses", _F), ("lengths", _F)]


# Each kernel's C functions: (argument types, return type), declared once when it is loaded.
PROTOTYPES = {
    "plane_native": {"trajviz_plane_mlp_sse": ([ctypes.POINTER(PlaneArgs)], ctypes.c_int),
                     "trajviz_plane_strip": ([], ctypes.c_int),
                     "trajviz_plane_lanes": ([], ctypes.c_int)},
    "birth_native": {
        "trajviz_birth_rollouts": ([ctypes.POINTER(BirthArgs)], ctypes.c_int),
        "trajviz_birth_scratch": ([ctypes.c_int, _I, ctypes.c_int], ctypes.c_long)},
}
_CTYPE = {torch.float32: _F, torch.float64: _D, torch.int32: _I, torch.int64: _L}


def typed(t: Tensor, dtype: torch.dtype, shape: tuple, name: str):
    """A typed pointer to ``t``'s data after checking it is a contiguous CPU ``dtype`` tensor of
    ``shape`` (None entries: any size); ValueError in one line naming ``name`` otherwise."""
    ok = (isinstance(t, Tensor) and t.dtype == dtype and t.device.type == "cpu" and t.is_contiguous()
          and t.dim() == len(shape) and all(s is None or s == n for s, n in zip(shape, t.shape)))
    if not ok:
        got = (f"{t.dtype} {tuple(t.shape)} on {t.device}, contiguous={t.is_contiguous()}"
               if isinstance(t, Tensor) else type(t).__name__)
        raise ValueError(f"native kernel argument {name} must be a contiguous CPU {dtype} tensor of "
                         f"shape {tuple('*' if s is None else s for s in shape)}; got {got}")
    return ctypes.cast(t.data_ptr(), _CTYPE[dtype])


def ints(values, ctype=ctypes.c_int):
    """A C array of ints (or longs) from Python integers."""
    return (ctype * len(values))(*[int(v) for v in values])


def check_status(status: int, fn: str) -> None:
    """A kernel's nonzero return is an error (a code it does not know), never a silent result."""
    if status != 0:
        raise RuntimeError(f"native kernel {fn} refused its arguments (status {status}): an "
                           "activation or optimiser code it does not know")


@functools.cache
def _cpu_key() -> str:
    """What -march=native depends on: the CPU's model and flags (Linux), else the platform."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "\n".join(sorted({ln for ln in lines if ln.startswith(("flags", "model name"))}))
    except OSError:
        return platform.processor() + platform.machine()


def flags() -> tuple[str, ...]:
    """The compiler flags: ``FLAGS`` then ``$TRAJVIZ_CFLAGS`` (split as a shell would)."""
    return (*FLAGS, *shlex.split(os.environ.get("TRAJVIZ_CFLAGS", "")))


def build_key(name: str) -> str | None:
    """The hash naming kernel ``name``'s build on this machine (None: no compiler)."""
    cc = c_compiler()
    if cc is None:
        return None
    source = Path(__file__).with_name(f"{name}.c").read_bytes()
    return hashlib.sha256(b"\0".join([source, cc.encode(), " ".join(flags()).encode(),
                                      _cpu_key().encode()])).hexdigest()[:20]


def _loaded(name: str, lib: ctypes.CDLL) -> ctypes.CDLL | None:
    """``lib`` with its prototypes declared, or None (one line) where plane_native's strip
    is not a whole number of its vectors."""
    for fn_name, (args, result) in PROTOTYPES[name].items():
        fn = getattr(lib, fn_name)
        fn.argtypes, fn.restype = args, result
    if name == "plane_native":
        strip, lanes = lib.trajviz_plane_strip(), lib.trajviz_plane_lanes()
        if lanes <= 0 or strip <= 0 or strip % lanes:
            notice(f"native kernel {name} unusable: strip {strip} is not a whole number of "
                   f"{lanes}-float vectors; using the torch kernels")
            return None
    return lib


def plane_strip() -> int:
    """Columns per strip of the built plane kernel (``trajviz_plane_strip()``)."""
    return library().trajviz_plane_strip()


@functools.lru_cache(maxsize=8)
def library(name: str = "plane_native") -> ctypes.CDLL | None:
    """The built kernel ``trajviz/kernels/<name>.c`` (building it on first use), or None where
    it cannot be built (one line on stderr says why)."""
    cc, key = c_compiler(), build_key(name)
    if cc is None or key is None:
        notice("native kernels skipped: no C compiler (cc, gcc, clang or $CC) on PATH; "
               "using the torch kernels (same numbers to rounding, slower)")
        return None
    path = Path(__file__).with_name(f"{name}.c")
    target = native_dir() / f"{name}-{key}.so"
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
            try:
                subprocess.run([cc, *flags(), "-o", tmp, str(path)],
                               check=True, capture_output=True, timeout=120)
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        notice(f"native kernel {name} unavailable ({type(exc).__name__}: {exc}); "
               "using the torch kernels".splitlines()[0])
        return None
    return _loaded(name, lib)


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


def plane_native_declines(layers: tuple | None, batch: Batch, dtype: torch.dtype) -> str | None:
    """Why the native backend cannot take these plane losses, or None (building the kernel
    if needed): an MLP under MSE on float32 CPU data, activations with a C form, a compiler."""
    reason = plane_declines(layers, batch)
    if reason is not None:
        return reason
    x = batch["x"]
    if x.dtype != torch.float32 or dtype != torch.float32 or x.device.type != "cpu":
        return f"the C kernels take float32 CPU data, not {x.dtype} on {x.device.type}"
    for layer in layers:
        if not isinstance(layer, Linear) and (why := native_activation(layer)) is not None:
            return why
    if library() is None:
        return "no C compiler to build the kernel"
    return None


def chunk_points(n_params: int) -> int:
    """Grid points per chunk on the native path for a model of ``n_params`` parameters."""
    return max(1, CHUNK_BYTES // (4 * n_params))


_buffers = threading.local()


def _reused(slot: int, rows: int, cols: int) -> Tensor:
    """A float32 [rows, cols] buffer of this thread's, kept between calls: a chunk's per-point
    weights are megabytes, and a fresh allocation of them page-faults on every chunk (about
    1,000 faults per 51x51 surface at N = 10, measured). Kept only up to ``4 * CHUNK_BYTES``
    a buffer (a larger call, outside the chunked surface, allocates its own)."""
    if rows * cols > CHUNK_BYTES:  # floats: 4 * CHUNK_BYTES bytes
        return torch.empty(rows, cols)
    held = getattr(_buffers, "held", None)
    if held is None:
        held = _buffers.held = {}
    buf = held.get(slot)
    if buf is None or buf.numel() < rows * cols:
        buf = held[slot] = torch.empty(rows * cols)
    return buf[:rows * cols].view(rows, cols)


@dataclass(frozen=True, eq=False)
class NativePlane:
    """An MLP on one plane and one batch, prepared for the native kernel (cf. ``PlaneMLP``).

    q: [3, F₀, cols] the first layer's pre-activation at the origin, u and v
    (zero-padded to cols, a multiple of the kernel's strip, ``plane_strip()``);
    stacks: per later layer, its weight [3, out·in] and bias [3, out] (or None) at the
    origin, u and v; dims, act: widths and the table's activation codes per layer; y: [out, T·N];
    samples: N.
    """

    q: Tensor
    stacks: tuple
    dims: tuple[int, ...]
    act: tuple[int, ...]
    y: Tensor
    samples: int

    @staticmethod
    def build(layers: tuple, origin: Tensor, basis: Tensor, batch: Batch) -> NativePlane:
        """The prepared plane (the caller has checked ``plane_native_declines``)."""
        x, y = batch["x"], batch["y"]
        linears = [layer for layer in layers if isinstance(layer, Linear)]
        act = [0] * len(linears)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Linear):  # after the last linear layer before it
                act[sum(isinstance(before, Linear) for before in layers[:i]) - 1] = \
                    activation_of(layer).native
        n_tasks, n_samples = x.shape[:2]
        rows = n_tasks * n_samples
        strip = plane_strip()
        cols = -(-rows // strip) * strip
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
                           tuple(act), y.reshape(rows, -1).T.contiguous(), n_samples)

    def losses(self, coords: Tensor) -> Tensor:
        """[G, T] MSE losses at coords [G, 2] (float32)."""
        g = coords.shape[0]
        corner = torch.cat([coords.new_ones(g, 1), coords], dim=1)  # [G, 3]: (1, a, b)
        dims = self.dims
        weights = [None] + [torch.mm(corner, w, out=_reused(i, g, w.shape[1]))
                            for i, (w, _) in enumerate(self.stacks)]
        biases = [None] + [None if b is None else torch.mm(corner, b) for _, b in self.stacks]
        coords = coords.contiguous()
        n_out, rows = self.y.shape
        n_tasks = rows // self.samples
        cols = self.q.shape[2]
        sums = torch.zeros(g, n_tasks, dtype=torch.float64)
        lib = library()
        strip = lib.trajviz_plane_strip()
        f32 = torch.float32
        w_ptrs = (_F * len(dims))(*[None if w is None else typed(w, f32, (g, dims[i] * dims[i - 1]), f"w[{i}]")
                                    for i, w in enumerate(weights)])
        b_ptrs = (_F * len(dims))(*[None if b is None else typed(b, f32, (g, dims[i]), f"b[{i}]")
                                    for i, b in enumerate(biases)])
        base = dict(n_layers=len(dims), dims=ints(dims), act=ints(self.act),
                    q=typed(self.q, f32, (3, dims[0], cols), "q"), w=w_ptrs, b=b_ptrs,
                    coords=typed(coords, f32, (g, 2), "coords"), cols=cols, rows=rows,
                    samples=self.samples, y=typed(self.y, f32, (n_out, rows), "y"),
                    sums=typed(sums, torch.float64, (g, n_tasks), "sums"))
        if cols % strip or rows % self.samples or n_out != dims[-1]:
            raise ValueError(f"native plane: cols {cols} (a multiple of the kernel's strip {strip}), rows {rows} "
                             f"({n_tasks} tasks x {self.samples}) and {n_out} outputs disagree")

        def run(lo: int, hi: int) -> None:
            scratch = torch.empty(2 * max(dims) * strip)
            args = PlaneArgs(**base, first=lo, count=hi - lo,
                             scratch=typed(scratch, f32, (2 * max(dims) * strip,), "scratch"))
            check_status(lib.trajviz_plane_mlp_sse(ctypes.byref(args)), "trajviz_plane_mlp_sse")

        split(g, run)
        return (sums / (self.samples * n_out)).to(torch.float32)
