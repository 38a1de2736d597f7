"""Crash debris: temporary run folders carry their owner, and stale ones are swept.

``write_run`` writes into ``<runs_dir>/.tmp-<run_id>-p<pid>-s<start>-<hex>/`` where
``pid`` is the writing process and ``start`` its start time (clock ticks since boot,
from ``/proc/<pid>/stat``; 0 where there is no /proc), so a pid reused by another
process is not mistaken for the owner. ``sweep_stale`` removes every temporary folder
whose owner is no longer alive (a writer killed by SIGKILL or a power cut), and
temporary folders in the old format without an owner once they are an hour old.

``rewrite.replace_run``, where the OS cannot swap two folders atomically, moves the
old run aside to ``.old-<run_id>-p<pid>-s<start>-<hex>`` before renaming the new one
in. A writer killed between those steps leaves the aside folder as the only copy, so
``sweep_stale`` settles a stale one: removed when ``<run_id>`` exists, renamed back to
``<run_id>`` when it does not (the old run restored whole).
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import time
from pathlib import Path

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
_OWNED = re.compile(r"\.tmp-.+-p(\d+)-s(\d+)-[0-9a-f]{8}")
_ASIDE = re.compile(r"\.old-(.+?)(?:-p(\d+)-s(\d+))?-[0-9a-f]{8}")
_UNOWNED_AGE_S = 3600.0


def start_time(pid: int) -> int | None:
    """The start time of process ``pid`` (0 if unknown), or None if it is not running."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text.rpartition(")")[2].split()[19])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return 0
    return 0


def owner_tag() -> str:
    """``p<pid>-s<start>`` of this process, for a temporary folder's name."""
    pid = os.getpid()
    return f"p{pid}-s{start_time(pid) or 0}"


def is_stale(name: str, mtime: float, now: float | None = None) -> bool:
    """Whether the temporary folder ``name`` has no live owner."""
    m = _OWNED.fullmatch(name)
    return _owner_gone(m and m.group(1), m and m.group(2), mtime, now)


def _owner_gone(pid: str | None, start: str | None, mtime: float, now: float | None = None) -> bool:
    """Whether process ``pid`` started at ``start`` has ended; without an owner (None),
    whether the folder is over an hour old."""
    if pid is None:
        return (time.time() if now is None else now) - mtime > _UNOWNED_AGE_S
    alive = start_time(int(pid))
    return alive is None or (alive != 0 and int(start) not in (0, alive))


def _settle_aside(runs_dir: Path, name: str, mtime: float) -> bool:
    """Remove or restore the stale aside folder ``name`` (see the module docstring)."""
    m = _ASIDE.fullmatch(name)
    if m is None:
        return False
    if not _owner_gone(m.group(2), m.group(3), mtime):
        return False
    run = runs_dir / m.group(1)
    if os.path.lexists(run):
        shutil.rmtree(runs_dir / name, ignore_errors=True)
    else:
        os.rename(runs_dir / name, run)
    return True


def sweep_stale(runs_dir: str | Path) -> list[str]:
    """Remove the stale ``.tmp-*`` folders of ``runs_dir``, and settle stale ``.old-*`` ones
    (removed, or restored as their run where it is missing); returns their names.
    Symlinks and files of those names are left alone; never raises on a missing folder."""
    runs_dir = Path(runs_dir)
    removed = []
    try:
        entries = list(os.scandir(runs_dir))
    except OSError:
        return removed
    for e in entries:
        if not e.name.startswith((TMP_PREFIX, OLD_PREFIX)):
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                continue
            if e.name.startswith(OLD_PREFIX):
                if _settle_aside(runs_dir, e.name, st.st_mtime):
                    removed.append(e.name)
            elif is_stale(e.name, st.st_mtime):
                shutil.rmtree(runs_dir / e.name, ignore_errors=True)
                removed.append(e.name)
        except OSError:
            continue
    return removed
