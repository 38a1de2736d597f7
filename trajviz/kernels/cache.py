"""Where built kernels and their timings are kept, and the one-line notices about them.

``cache_dir()`` is ``$TRAJVIZ_CACHE`` or ``$XDG_CACHE_HOME/trajviz`` (default
``~/.cache/trajviz``); the C kernels are built into ``cache_dir()/native`` and
the dispatcher's timings (``calibrate``) are kept beside them, keyed by the
kernels' own build keys, so a rebuilt kernel is timed again.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

_notified: set[str] = set()


def cache_dir() -> Path:
    """The root of trajviz's per-machine cache."""
    root = os.environ.get("TRAJVIZ_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "trajviz")
    return Path(root)


def native_dir() -> Path:
    """Where the C kernels are built, and the dispatcher's timings kept."""
    return cache_dir() / "native"


def c_compiler() -> str | None:
    """The C compiler to build with: ``$CC``, else cc, gcc or clang on PATH, else None."""
    return _compiler(os.environ.get("CC"), os.environ.get("PATH"))


@functools.lru_cache(maxsize=16)
def _compiler(cc: str | None, path: str | None) -> str | None:
    """``c_compiler`` for these values of $CC and $PATH (looked up once: the dispatcher asks
    at every surface)."""
    names = [cc] if cc else ["cc", "gcc", "clang"]
    return next((found for n in names if (found := shutil.which(n, path=path))), None)


def notice(reason: str) -> None:
    """One line on stderr per distinct reason (a fast path skipped, a request not met)."""
    if reason not in _notified:
        _notified.add(reason)
        print(f"trajviz: {reason}", file=sys.stderr)
