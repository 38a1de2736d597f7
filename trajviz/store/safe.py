"""The runs folder as untrusted input: only real folders and regular files are read.

Every file of a run is checked with ``lstat`` before it is opened (a symlink, FIFO,
socket or device is refused, so ``run.json -> /dev/zero`` or a FIFO never hangs or
grows memory), opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again with
``fstat`` (the same file, still regular), and its size is capped before a byte is
read. Array sizes recorded in run.json are capped too, so an npz header claiming a
10⁵×10⁵ array is refused before anything is allocated.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from trajviz.store.schema import RunError

MAX_RUN_JSON_BYTES = 64 * 2**20       # run.json: config, info, task ids and the index
MAX_NPZ_BYTES = 16 * 2**30            # one npz file (light or heavy)
MAX_ARRAY_BYTES = 4 * 2**30           # one stored array, as recorded in run.json


def _why(exc: OSError) -> str:
    """An OSError's reason without its file name (messages never show absolute paths)."""
    return exc.strerror or type(exc).__name__


def check_folder(path: Path) -> None:
    """RunError unless ``path`` is a real folder (not a symlink to one)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise RunError(path, "is not a folder (it does not exist)") from None
    except OSError as exc:
        raise RunError(path, f"cannot be read: {_why(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise RunError(path, "is a symbolic link; only real folders inside the runs folder are read")
    if not stat.S_ISDIR(st.st_mode):
        raise RunError(path, "is not a folder")


def run_folder(runs_dir: str | Path, name: object) -> Path:
    """``runs_dir/name`` if it is a run folder the listing shows, else RunError (one line).

    The one check for a run named from outside (a page request, a listing entry): ``name``
    is one plain folder name (text, not empty, no ``/`` or NUL, not starting with ``.``,
    so not ``..`` nor an unfinished ``.tmp-*`` write) and the folder is a real directory
    directly inside ``runs_dir``, not a symlink (``lstat``; nothing is followed). Whether
    it reads as a run is ``read.check_run``'s question, asked next by the caller."""
    runs_dir = Path(runs_dir)
    if (not isinstance(name, str) or not name or name.startswith(".") or len(name) > 255
            or "/" in name or "\0" in name or Path(name).name != name):
        shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
        raise RunError(shown, "is not a run folder: a run is named by one real folder "
                       "directly inside the runs folder")
    path = runs_dir / name
    check_folder(path)
    return path


def open_regular(folder: Path, name: str, cap: int) -> BinaryIO:
    """``folder/name`` opened for reading, if it is a regular file of at most ``cap`` bytes.

    RunError (one line) if it is missing, a symlink, a FIFO/device/socket, larger
    than ``cap``, or was swapped between the check and the open."""
    path = folder / name
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        raise RunError(folder, f"{name} is missing") from None
    except OSError as exc:
        raise RunError(folder, f"cannot read {name}: {_why(exc)}") from None
    if stat.S_ISLNK(before.st_mode):
        raise RunError(folder, f"{name} is a symbolic link; only regular files are read")
    if not stat.S_ISREG(before.st_mode):
        raise RunError(folder, f"{name} is not a regular file (a FIFO, device or folder)")
    if before.st_size > cap:
        raise RunError(folder, f"{name} is {before.st_size} bytes, more than the {cap}-byte limit")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise RunError(folder, f"cannot open {name}: {_why(exc)}") from None
    after = os.fstat(fd)
    if (after.st_ino, after.st_dev) != (before.st_ino, before.st_dev) or not stat.S_ISREG(after.st_mode):
        os.close(fd)
        raise RunError(folder, f"{name} changed while it was being opened")
    return os.fdopen(fd, "rb")


def read_capped(folder: Path, name: str, cap: int) -> bytes:
    """The bytes of ``folder/name`` (see ``open_regular``), never more than ``cap``."""
    with open_regular(folder, name, cap) as f:
        try:
            data = f.read(cap + 1)
        except OSError as exc:
            raise RunError(folder, f"cannot read {name}: {_why(exc)}") from None
    if len(data) > cap:
        raise RunError(folder, f"{name} grew past the {cap}-byte limit while being read")
    return data


def array_bytes(shape: list[int], itemsize: int) -> int:
    """Bytes of an array of ``shape`` (a plain int product, no overflow)."""
    n = itemsize
    for d in shape:
        n *= d
    return n
