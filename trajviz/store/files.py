"""Plain files written atomically: a job's status and config, and exported figures.

Besides runs (``store.write``), these are the only files trajviz writes: each goes to a
temporary name in the same folder and is renamed into place, so a reader (the page polling a
job's progress, a LaTeX build picking up a figure) never sees half a file.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any


def write_file(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """``value`` as JSON at ``path``, atomically (a job's status or config)."""
    return write_file(path, json.dumps(value))
