"""Replace a saved run with a new version of itself, atomically (adding a birth map or an initialisation).

Kept apart from ``store`` (which writes new runs and reads them); it reuses
the store's encoder and temporary-folder writer, so the files are the same.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from trajviz.data.run import Run
from trajviz.store import _check_run_id, _fsync_dir, _serialise, _write_tmp
from trajviz.store.sweep import OLD_PREFIX, owner_tag


def replace_run(run: Run, runs_dir: str | Path) -> Path:
    """Replace the existing run folder ``<runs_dir>/<run.run_id>/`` with ``run``, atomically.

    The new run is written in full to a temporary folder first (as ``write_run``
    does), then swapped in with one ``renameat2(RENAME_EXCHANGE)`` where the OS
    has it (Linux), so a reader sees the old run or the new one, never a mix, and
    a kill at any moment leaves one whole run. Elsewhere two renames are used
    (old aside, new in), leaving a moment with no run folder but never a half one.
    The old folder is then removed. Used to add a birth map or a fixed
    initialisation to a run.
    """
    runs_dir = Path(runs_dir)
    run_id = _check_run_id(run.run_id)
    final = runs_dir / run_id
    if not final.is_dir() or final.is_symlink():
        raise ValueError(f"run {final} does not exist; replace_run only replaces a run folder")
    text, arrays = _serialise(run)
    tmp = _write_tmp(runs_dir, run_id, text, arrays)
    try:
        if not _exchange(tmp, final):
            aside = runs_dir / f"{OLD_PREFIX}{run_id}-{owner_tag()}-{secrets.token_hex(4)}"
            os.rename(final, aside)
            os.rename(tmp, final)
            tmp = aside
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # now the old run
    try:
        _fsync_dir(runs_dir)
    except OSError:
        pass
    return final


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem cannot
        return False
    raise OSError(err, f"cannot swap {b} for its new version: {os.strerror(err)}")
