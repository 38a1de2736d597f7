"""``torch.compile`` where it pays, with its on-disk cache, and a plain fallback.

Compiling fuses a chunk evaluator's elementwise work (bias, activation,
residual, square, mean) into the loops around its matmuls, so activations
are not streamed through memory once per op: on the surface of a 1-40-40-1
MLP at N = 1000 samples that is most of the eager time (issue 10 measured a
compiled chunk at 1.2x the bmm floor against 4x eager; this machine, under
heavy load, did not reproduce it: see ``COMPILE_MIN_FLOPS``).
Its price is the first call: tracing plus a C++ build, 10-30 s on a loaded
2-core machine. Inductor's compiled graphs are kept in an on-disk cache
(``cache_dir()``: ``$TRAJVIZ_CACHE`` or ``~/.cache/trajviz/inductor``), so the
build is paid once per machine; each new process still traces (a few
seconds).

Where no C++ compiler is on PATH, or compiling fails for any reason, the
caller gets None (and one line on stderr, once per reason) and keeps its
eager path, which gives the same numbers. Callers decide from sizes whether
compiling is worth its first call: ``surface_method`` compiles a surface's
fused MLP evaluator only from ``COMPILE_MIN_FLOPS`` up (as measured here:
never; see there).
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

_notified: set[str] = set()
# "auto" compiles the fused MLP surface evaluator from this many forward FLOPs per
# surface up (None: never). Measured on the shared 2-core machine (bench_surface.py,
# load average 17-20): the compiled evaluator ran at 0.86x (N = 10) and 0.70x
# (N = 1000) the eager fused one, and its first call took 173 s (cold cache) and
# 18.5 s (warm); it did not pay, so "auto" does not compile. method="compiled"
# keeps it available, and this is the knob to turn where it measures faster.
COMPILE_MIN_FLOPS: int | None = None


def cache_dir() -> Path:
    """Where inductor's compiled graphs are kept between processes."""
    root = os.environ.get("TRAJVIZ_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "trajviz")
    return Path(root) / "inductor"


def compiler_available() -> bool:
    """True when a C++ compiler inductor can use is on PATH (``$CXX``, g++, c++ or clang++)."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "c++", "clang++"]
    return any(shutil.which(n) for n in names)


def notice(reason: str) -> None:
    """One line on stderr per distinct reason: the fast path was skipped and why."""
    if reason not in _notified:
        _notified.add(reason)
        print(f"trajviz: {reason}; using the eager path (same numbers, slower)", file=sys.stderr)


def compile_or_none(fn: Callable) -> Callable | None:
    """``torch.compile(fn)`` (static shapes, on-disk cache), or None where that is impossible.

    The returned function falls back to ``fn`` itself, with a notice, if the
    first compile fails.
    """
    if not compiler_available():
        notice("torch.compile skipped: no C++ compiler (g++, c++, clang++ or $CXX) on PATH")
        return None
    try:
        import torch
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir()))
        compiled = torch.compile(fn, dynamic=False)
    except Exception as exc:  # noqa: BLE001 - any failure means: stay eager
        notice(f"torch.compile unavailable ({type(exc).__name__}: {exc})".splitlines()[0])
        return None
    state = {"failed": False}

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if not state["failed"]:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - a failed compile leaves the eager path
                state["failed"] = True
                notice(f"torch.compile failed ({type(exc).__name__}: {exc})".splitlines()[0])
        return fn(*args, **kwargs)
    return run


def surface_method(method: str, problem, batch: dict, points: int) -> str:
    """"compiled" for "auto" where the fused MLP surface path applies, the surface has
    at least ``COMPILE_MIN_FLOPS`` forward FLOPs and a compiler exists; else ``method``."""
    from trajviz.kernels.mlp_plan import Linear, fused_applies, mlp_layers

    if method != "auto":
        return method
    layers = mlp_layers(problem)
    if not fused_applies(layers, batch):
        return method
    x = batch["x"]
    flops = 2 * points * x.shape[0] * x.shape[1] * sum(
        layer.in_features * layer.out_features for layer in layers if isinstance(layer, Linear))
    big = COMPILE_MIN_FLOPS is not None and flops >= COMPILE_MIN_FLOPS
    return "compiled" if big and compiler_available() else method


@functools.lru_cache(maxsize=16)
def compiled_mlp_mse(layers: tuple) -> Callable | None:
    """``mlp_plan.fused_mlp_mse`` for these layers through ``torch.compile``, or None."""
    from trajviz.kernels.mlp_plan import fused_mlp_mse

    return compile_or_none(functools.partial(fused_mlp_mse, layers))
