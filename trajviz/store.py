"""Runs on disk: write (atomic), load, list and validate, as plain JSON + npz, never pickle.

Layout of one run, ``<runs_dir>/<run_id>/`` (no hyperparameters in any name)::

    run.json    schema_version, run_id, config, info, extra, task_ids (+ dtype/shape),
                and the index: learners and views in order, each slice's
                kind/label/extent/explained_variance, and every array's
                key -> {file, shape, dtype}
    light.npz   what the browser app needs: theta0, losses, query_losses, diverged_at,
                metrics, running, evals, eval_steps, meta_path_steps, task_info,
                explained_variance, the surfaces (alpha, beta, loss, mean, task_ids),
                coords, residual, plane_loss, meta_coords, meta_residual, and every
                birth map's arrays (schema 2; a schema-1 run loads with no birth maps)
    heavy.npz   the [.., P] arrays: params, grads, meta_path, slice origin and basis

Array keys are generated (``learner0.losses``, ``view1.coords.2``, ``task_info.0``)
and mapped to names in run.json, so any learner, view or metric name is safe.
Arrays are saved with ``np.savez`` and must be plain numeric (bool, int, uint,
float, complex): an object array is refused before anything is written, and
arrays are read with ``allow_pickle=False``. ``task_ids`` live in run.json
(numbers or strings) with their dtype and shape, and come back with that dtype.

JSON dialect: run.json is strict JSON (RFC 8259; a browser's ``JSON.parse``
reads it). A non-finite float anywhere in it (config, info, extra, an extent)
is written as ``null``, and its place and value are listed in the top-level
``"nonfinite"``: ``[[path, token], ...]`` with path the list of keys and
list indices from the document root and token one of ``"NaN"``,
``"Infinity"``, ``"-Infinity"``; ``load_run`` puts the floats back, so the
round trip is exact, and any other ``null`` stays ``None``. (Version-1 runs
were written with the bare tokens ``NaN``/``Infinity``, which Python's
``json`` still reads.) JSON has no tuples and only
string keys: tuples come back as lists, numpy scalars/arrays are stored as
plain numbers/lists, and a non-string dict key or any other type is refused
with a TypeError naming where it was.

Schema versions: 2 adds each learner's ``diagnostics`` arrays and the strict
JSON above; a version-1 run still loads, with empty ``diagnostics``.

Writing is atomic: everything goes into ``<runs_dir>/.tmp-<run_id>-<hex>/``
(dot-names are never listed), each file is fsynced, and the folder is renamed
to ``<run_id>``; on any error the temporary folder is removed, so no half run
is ever visible. A broken run on disk is reported, never fatal to listing.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from .jsonfloats import restore_nonfinite, strict_json
from .run import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BirthMap,
    LearnerRecord,
    Run,
    Slice,
    Surface,
    View,
)

__all__ = [
    "HEAVY_FILE",
    "LIGHT_FILE",
    "RUN_FILE",
    "RunEntry",
    "RunError",
    "check_run",
    "list_runs",
    "load_run",
    "new_run_id",
    "write_run",
]

RUN_FILE = "run.json"
LIGHT_FILE = "light.npz"
HEAVY_FILE = "heavy.npz"
_FILES = {"light": LIGHT_FILE, "heavy": HEAVY_FILE}

# LearnerRecord array fields, in the order they are written, and which file each goes to.
_LEARNER_ARRAYS = {
    "theta0": "light", "meta_path_steps": "light", "meta_path": "heavy", "eval_steps": "light",
    "params": "heavy", "losses": "light", "grads": "heavy", "query_losses": "light",
    "diverged_at": "light",
}
# Learner arrays stored under another name by earlier versions: old name -> field.
_RENAMED_LEARNER_ARRAYS = {"meta_steps": "meta_path_steps"}
_LEARNER_DICTS = ("evals", "metrics", "running", "diagnostics")
_OPTIONAL_DICTS = ("diagnostics",)  # absent from version-1 runs
_SLICE_ARRAYS = {"origin": "heavy", "basis": "heavy", "explained_variance": "light"}
_SURFACE_ARRAYS = ("alpha", "beta", "loss", "mean", "task_ids")
_VIEW_DICTS = ("coords", "residual", "plane_loss", "meta_coords", "meta_residual")
_BIRTH_ARRAYS = ("alpha", "beta", "task_ids", "specialisation", "predicted", "rank_correlation",
                 "birth", "birth_index")
_BIRTH_DICTS = ("mean", "spread", "learner_table", "learner_tasks")
_NUMERIC_KINDS = "biufc"
_TASK_ID_KINDS = "biufU"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


class RunError(ValueError):
    """A run folder that cannot be read: ``str(err)`` is one line naming the folder and
    the reason; ``err.path`` and ``err.reason`` hold the two parts."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"run {self.path}: {self.reason}")


@dataclass(frozen=True)
class RunEntry:
    """One folder of ``list_runs``: ok is False for a broken run, with ``reason`` saying
    why; the other fields are filled from run.json as far as it could be read
    (name and family from the config, created from info, learner and view names)."""

    run_id: str
    path: Path
    ok: bool
    reason: str
    name: str
    family: str
    learners: tuple[str, ...]
    created: str
    views: tuple[str, ...]


# ---------------------------------------------------------------------------- ids

def new_run_id(family: str, when: datetime | None = None) -> str:
    """A fresh run id ``YYYYMMDD-HHMMSS-<family>-<4 hex>``, e.g. ``20261127-063012-sinusoid-3fa9``.

    ``when`` defaults to now in UTC. The family is sanitised to lower-case
    ``[a-z0-9-]`` (a plugin ``pkg.mod:fn`` gives ``pkg-mod-fn``), at most 40
    characters, ``run`` if nothing is left.
    """
    when = datetime.now(UTC) if when is None else when
    slug = re.sub(r"[^a-z0-9]+", "-", str(family).lower()).strip("-")[:40].strip("-") or "run"
    return f"{when:%Y%m%d-%H%M%S}-{slug}-{secrets.token_hex(2)}"


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise ValueError(
            f"run_id {run_id!r} is not a safe folder name; accepted: 1-200 characters of "
            "letters, digits, '.', '_', '-', not starting with '.', '_' or '-' (see new_run_id)")
    return run_id


# ---------------------------------------------------------------------------- write

def write_run(run: Run, runs_dir: str | Path) -> Path:
    """Write ``run`` to ``<runs_dir>/<run.run_id>/`` atomically and return that path.

    Creates ``runs_dir`` if missing. Raises ValueError (one line) if the run id is
    unsafe, the folder already exists or an array is not plain numeric, and
    TypeError (one line) if a field has the wrong type or a JSON field holds
    something JSON cannot store; all of these are found before anything is
    written. If writing fails midway, the temporary folder is
    removed and the error re-raised: no run, and no half run, becomes visible.
    """
    runs_dir = Path(runs_dir)
    run_id = _check_run_id(run.run_id)
    text, arrays = _serialise(run)
    runs_dir.mkdir(parents=True, exist_ok=True)
    final = runs_dir / run_id
    if final.exists() or final.is_symlink():
        raise ValueError(f"run {final} already exists; a run is never overwritten, use a new run_id")
    tmp = _write_tmp(runs_dir, run_id, text, arrays)
    try:
        if final.exists() or final.is_symlink():  # another writer got there first
            raise ValueError(f"run {final} already exists; a run is never overwritten, use a new run_id")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _fsync_dir(runs_dir)
    except OSError:  # the rename is done; durability of the parent entry is best effort
        pass
    return final


def _serialise(run: Run) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """run.json's text (strict JSON, non-finite floats listed apart) and the arrays by file."""
    doc, arrays = _encode(run)
    doc, nonfinite = strict_json(doc)
    doc["nonfinite"] = nonfinite
    return json.dumps(doc, allow_nan=False, indent=1), arrays


def _write_tmp(runs_dir: Path, run_id: str, text: str, arrays: dict[str, dict[str, np.ndarray]]) -> Path:
    """Write a whole run into a fresh dot-folder in ``runs_dir`` (fsynced) and return it."""
    tmp = runs_dir / f".tmp-{run_id}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for part, name in _FILES.items():
            _write_npz(tmp / name, arrays[part])
        with open(tmp / RUN_FILE, "x", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "xb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Encoder:
    """Collects arrays under generated keys and their index entries."""

    def __init__(self) -> None:
        self.arrays: dict[str, dict[str, np.ndarray]] = {"light": {}, "heavy": {}}
        self.index: dict[str, dict[str, Any]] = {}

    def add(self, key: str, value: Any, part: str, where: str) -> str:
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{where} must be a numpy array, got {type(value).__name__}")
        if value.dtype.kind not in _NUMERIC_KINDS or value.dtype.fields is not None:
            raise ValueError(f"{where} has dtype {value.dtype}; accepted: plain numeric arrays "
                             "(bool, int, uint, float, complex), never objects")
        self.arrays[part][key] = value
        self.index[key] = {"file": part, "shape": list(value.shape), "dtype": value.dtype.str}
        return key

    def add_dict(self, prefix: str, values: Any, part: str, where: str) -> list[list[str]]:
        if not isinstance(values, dict):
            raise TypeError(f"{where} must be a dict of arrays, got {type(values).__name__}")
        pairs = []
        for j, (name, value) in enumerate(values.items()):
            if not isinstance(name, str):
                raise TypeError(f"{where} has a non-string key {name!r}")
            pairs.append([name, self.add(f"{prefix}.{j}", value, part, f"{where}[{name!r}]")])
        return pairs


def _encode(run: Run) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    enc = _Encoder()
    task_ids = run.task_ids
    if not isinstance(task_ids, np.ndarray) or task_ids.dtype.kind not in _TASK_ID_KINDS:
        raise TypeError(f"task_ids must be a numpy array of numbers or strings, got "
                         f"{getattr(task_ids, 'dtype', type(task_ids).__name__)}")
    learners = []
    for i, (name, rec) in enumerate(run.learners.items()):
        where = f"learners[{name!r}]"
        if not isinstance(rec, LearnerRecord):
            raise TypeError(f"{where} must be a LearnerRecord, got {type(rec).__name__}")
        entry: dict[str, Any] = {"name": rec.name, "arrays": {
            field: enc.add(f"learner{i}.{field}", getattr(rec, field), part, f"{where}.{field}")
            for field, part in _LEARNER_ARRAYS.items()}}
        for field in _LEARNER_DICTS:
            entry[field] = enc.add_dict(f"learner{i}.{field}", getattr(rec, field), "light",
                                        f"{where}.{field}")
        learners.append([name, entry])
    views = []
    for v, (name, view) in enumerate(run.views.items()):
        where = f"views[{name!r}]"
        if not isinstance(view, View):
            raise TypeError(f"{where} must be a View, got {type(view).__name__}")
        sl = view.slice
        entry = {
            "name": view.name,
            "slice": {
                "kind": _plain(sl.kind, f"{where}.slice.kind"),
                "label": _plain(sl.label, f"{where}.slice.label"),
                "extent": [float(x) for x in sl.extent],
                "explained_variance": _plain(np.asarray(sl.explained_variance, dtype=float),
                                             f"{where}.slice.explained_variance"),
                "arrays": {field: enc.add(f"view{v}.slice.{field}", getattr(sl, field), part,
                                          f"{where}.slice.{field}")
                           for field, part in _SLICE_ARRAYS.items()},
            },
            "surface": {field: enc.add(f"view{v}.surface.{field}", getattr(view.surface, field),
                                       "light", f"{where}.surface.{field}")
                        for field in _SURFACE_ARRAYS},
        }
        for field in _VIEW_DICTS:
            entry[field] = enc.add_dict(f"view{v}.{field}", getattr(view, field), "light",
                                        f"{where}.{field}")
        views.append([name, entry])
    birthmaps = [[name, _encode_birth_map(enc, bm, f"birthmap{b}", f"birthmaps[{name!r}]")]
                 for b, (name, bm) in enumerate(run.birthmaps.items())]
    doc = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "config": _plain(run.config, "config"),
        "info": _plain(run.info, "info"),
        "extra": _plain(run.extra, "extra"),
        "task_ids": _plain(task_ids.tolist(), "task_ids"),
        "task_ids_dtype": task_ids.dtype.str,
        "task_ids_shape": list(task_ids.shape),
        "task_info": enc.add_dict("task_info", run.task_info, "light", "task_info"),
        "learners": learners,
        "views": views,
        "birthmaps": birthmaps,
        "arrays": enc.index,
    }
    return doc, enc.arrays


def _encode_birth_map(enc: _Encoder, bm: BirthMap, prefix: str, where: str) -> dict[str, Any]:
    if not isinstance(bm, BirthMap):
        raise TypeError(f"{where} must be a BirthMap, got {type(bm).__name__}")
    entry: dict[str, Any] = {
        "view": _plain(bm.view, f"{where}.view"), "statistic": _plain(bm.statistic, f"{where}.statistic"),
        "learners": _plain(list(bm.learners), f"{where}.learners"),
        "settings": _plain(bm.settings, f"{where}.settings"),
        "arrays": {field: enc.add(f"{prefix}.{field}", np.asarray(getattr(bm, field)), "light",
                                  f"{where}.{field}") for field in _BIRTH_ARRAYS}}
    for field in _BIRTH_DICTS:
        entry[field] = enc.add_dict(f"{prefix}.{field}", getattr(bm, field), "light", f"{where}.{field}")
    return entry


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON data; numpy scalars/arrays become numbers/lists, tuples lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return _plain(value.item(), where)
    if isinstance(value, np.ndarray):
        return _plain(value.tolist(), where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has key {k!r}; run.json stores only string keys")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} holds a {type(value).__name__}, which run.json cannot store; "
                     "accepted: str, int, float, bool, None, list, tuple, dict, numpy scalars/arrays")


# ---------------------------------------------------------------------------- read

def load_run(path: str | Path, *, heavy: bool = True) -> Run:
    """Read and validate the run folder ``path``; any problem raises RunError (one line).

    Checked: run.json exists and is valid JSON, its schema_version equals
    ``SCHEMA_VERSION``, its index is well formed, both npz files are readable
    and hold every indexed array with the recorded shape and dtype.

    With ``heavy=False`` (what the app uses) heavy.npz is only checked, not read
    (its zip directory and array headers, not its data), and its arrays come
    back as zero-size float32 placeholders: the recorded shape with the last
    (P) axis set to 0, i.e. ``params``/``grads`` [T, K+1, 0], ``meta_path``
    [S'+1, 0], slice ``origin`` [0] and ``basis`` [2, 0]. Every light array is
    read in full and is identical to what was written.

    ``run_id`` is the folder name (the run's identity on disk).
    """
    path = Path(path)
    doc = _read_doc(path)
    index = _check_index(path, doc)
    arrays = _read_arrays(path, index, "light")
    if heavy:
        arrays.update(_read_arrays(path, index, "heavy"))
    else:
        _check_headers(path, index, "heavy")
        for key, spec in index.items():
            if spec["file"] == "heavy":
                arrays[key] = np.zeros(tuple(spec["shape"][:-1]) + (0,), dtype=np.float32)
    try:
        return _decode(path, doc, arrays)
    except RunError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RunError(path, f"{RUN_FILE} is malformed: {type(exc).__name__}: {exc}") from None


def check_run(path: str | Path) -> dict[str, Any]:
    """The cheap validation ``list_runs`` does, returning the parsed run.json.

    Reads run.json, checks the schema version and index, and that both npz
    files exist and are readable zip archives holding every indexed array with
    the recorded shape and dtype (zip directory and array headers; zipfile may
    read, and CRC-check, a small array whole). Raises RunError otherwise.
    Corruption inside a large array's data is found only by ``load_run``.
    """
    path = Path(path)
    doc = _read_doc(path)
    index = _check_index(path, doc)
    for part in _FILES:
        _check_headers(path, index, part)
    return doc


def _read_doc(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise RunError(path, "is not a folder")
    try:
        text = (path / RUN_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunError(path, f"{RUN_FILE} is missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(path, f"cannot read {RUN_FILE}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(path, f"{RUN_FILE} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RunError(path, f"{RUN_FILE} must hold a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        shown = "missing" if version is None else repr(version)
        older = ", ".join(str(v) for v in READABLE_VERSIONS if v != SCHEMA_VERSION)
        raise RunError(path, f"schema version {shown}, this trajviz reads {SCHEMA_VERSION} (and {older})")
    try:
        restore_nonfinite(doc, doc.pop("nonfinite", []))
    except ValueError as exc:
        raise RunError(path, f"{RUN_FILE} {exc}") from None
    _rename_old_keys(doc)
    return doc


def _rename_old_keys(doc: dict[str, Any]) -> None:
    """Give a learner's arrays their current names in a run written before a rename
    (``meta_steps`` -> ``meta_path_steps``); the stored arrays are unchanged."""
    learners = doc.get("learners")
    for item in learners if isinstance(learners, list) else ():
        entry = item[1] if isinstance(item, list) and len(item) == 2 else None
        arrays = entry.get("arrays") if isinstance(entry, dict) else None
        if isinstance(arrays, dict):
            for old, new in _RENAMED_LEARNER_ARRAYS.items():
                if old in arrays and new not in arrays:
                    arrays[new] = arrays.pop(old)


def _check_index(path: Path, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``arrays`` table after checking each entry, and that every key the
    learners, views and task_info name is in it, in the file it belongs to."""
    index = doc.get("arrays")
    if not isinstance(index, dict):
        raise RunError(path, f"{RUN_FILE} has no 'arrays' index")
    for key, spec in index.items():
        ok = (isinstance(spec, dict) and spec.get("file") in _FILES
              and isinstance(spec.get("shape"), list)
              and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                      for n in spec["shape"])
              and isinstance(spec.get("dtype"), str))
        if ok:
            try:
                ok = np.dtype(spec["dtype"]).kind in _NUMERIC_KINDS
            except TypeError:
                ok = False
        if not ok:
            raise RunError(path, f"{RUN_FILE} has a malformed entry for array {key!r}: {spec!r}")

    def need(key: Any, part: str, where: str) -> None:
        if not isinstance(key, str) or key not in index:
            raise RunError(path, f"{RUN_FILE} names array {key!r} for {where}, not in its index")
        if index[key]["file"] != part:
            raise RunError(path, f"{RUN_FILE} puts {where} in {index[key]['file']}, expected {part}")

    def need_pairs(pairs: Any, where: str) -> None:
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs):
            raise RunError(path, f"{RUN_FILE} has a malformed {where}")
        for name, key in pairs:
            need(key, "light", f"{where}[{name!r}]")

    try:
        need_pairs(doc["task_info"], "task_info")
        for name, entry in _named(path, doc, "learners"):
            for field, part in _LEARNER_ARRAYS.items():
                need(entry["arrays"][field], part, f"learner {name!r} {field}")
            for field in _LEARNER_DICTS:
                need_pairs(_learner_pairs(entry, field), f"learner {name!r} {field}")
        for name, entry in _named(path, doc, "views"):
            for field, part in _SLICE_ARRAYS.items():
                need(entry["slice"]["arrays"][field], part, f"view {name!r} slice {field}")
            for field in _SURFACE_ARRAYS:
                need(entry["surface"][field], "light", f"view {name!r} surface {field}")
            for field in _VIEW_DICTS:
                need_pairs(entry[field], f"view {name!r} {field}")
        for name, entry in _named(path, doc, "birthmaps", optional=True):
            for field in _BIRTH_ARRAYS:
                need(entry["arrays"][field], "light", f"birth map {name!r} {field}")
            for field in _BIRTH_DICTS:
                need_pairs(entry[field], f"birth map {name!r} {field}")
    except (KeyError, TypeError) as exc:
        raise RunError(path, f"{RUN_FILE} is malformed: missing or wrong entry {exc}") from None
    return index


def _learner_pairs(entry: dict[str, Any], field: str) -> Any:
    """A learner entry's [[name, key], ...] for ``field`` ([] for an optional one it lacks)."""
    return entry.get(field, []) if field in _OPTIONAL_DICTS else entry[field]


def _named(path: Path, doc: dict[str, Any], field: str,
           optional: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """``doc[field]``'s [name, entry] pairs; an ``optional`` field may be absent (older runs)."""
    items = doc.get(field, [] if optional else None)
    if not isinstance(items, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
            and isinstance(p[1], dict) for p in items):
        raise RunError(path, f"{RUN_FILE} has a malformed '{field}' list")
    return [(name, entry) for name, entry in items]


def _expected(index: dict[str, dict[str, Any]], part: str) -> dict[str, dict[str, Any]]:
    return {key: spec for key, spec in index.items() if spec["file"] == part}


def _mismatch(key: str, spec: dict[str, Any], shape: tuple, dtype: np.dtype) -> str | None:
    if list(shape) != spec["shape"] or dtype.str != spec["dtype"]:
        return (f"array {key!r} is {list(shape)} {dtype.str}, "
                f"{RUN_FILE} records {spec['shape']} {spec['dtype']}")
    return None


def _check_headers(path: Path, index: dict[str, dict[str, Any]], part: str) -> None:
    """Check an npz from its zip directory and .npy headers, without reading array data."""
    name = _FILES[part]
    file = path / name
    if not file.is_file():
        raise RunError(path, f"{name} is missing")
    try:
        with zipfile.ZipFile(file) as zf:
            members = set(zf.namelist())
            for key, spec in _expected(index, part).items():
                if key + ".npy" not in members:
                    raise RunError(path, f"{name} lacks array {key!r}")
                with zf.open(key + ".npy") as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise RunError(path, f"{name}: array {key!r} has npy version {version}")
                problem = _mismatch(key, spec, shape, dtype)
                if problem:
                    raise RunError(path, f"{name}: {problem}")
    except RunError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise RunError(path, f"{name} is not a readable npz: {type(exc).__name__}: {exc}") from None


def _read_arrays(path: Path, index: dict[str, dict[str, Any]], part: str) -> dict[str, np.ndarray]:
    name = _FILES[part]
    file = path / name
    if not file.is_file():
        raise RunError(path, f"{name} is missing")
    out = {}
    try:
        npz = np.load(file, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise RunError(path, f"{name} is not an npz archive")
        with npz:
            keys = set(npz.files)
            for key, spec in _expected(index, part).items():
                if key not in keys:
                    raise RunError(path, f"{name} lacks array {key!r}")
                value = npz[key]
                problem = _mismatch(key, spec, value.shape, value.dtype)
                if problem:
                    raise RunError(path, f"{name}: {problem}")
                out[key] = value
    except RunError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        raise RunError(path, f"{name} is not a readable npz: {type(exc).__name__}: {exc}") from None
    return out


def _decode(path: Path, doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Run:
    def pairs(entries: list[list[str]]) -> dict[str, np.ndarray]:
        return {name: arrays[key] for name, key in entries}

    learners = {}
    for name, entry in _named(path, doc, "learners"):
        fields = {field: arrays[entry["arrays"][field]] for field in _LEARNER_ARRAYS}
        fields.update({field: pairs(_learner_pairs(entry, field)) for field in _LEARNER_DICTS})
        learners[name] = LearnerRecord(name=entry["name"], **fields)
    views = {}
    for name, entry in _named(path, doc, "views"):
        sl = entry["slice"]
        extent = tuple(float(x) for x in sl["extent"])
        if len(extent) != 4:
            raise RunError(path, f"{RUN_FILE}: view {name!r} extent must have 4 numbers")
        slice_ = Slice(kind=sl["kind"], label=sl["label"], extent=extent,
                       **{field: arrays[sl["arrays"][field]] for field in _SLICE_ARRAYS})
        surface = Surface(**{field: arrays[entry["surface"][field]] for field in _SURFACE_ARRAYS})
        views[name] = View(name=entry["name"], slice=slice_, surface=surface,
                           **{field: pairs(entry[field]) for field in _VIEW_DICTS})
    birthmaps = {}
    for name, entry in _named(path, doc, "birthmaps", optional=True):
        fields = {field: arrays[entry["arrays"][field]] for field in _BIRTH_ARRAYS}
        fields["rank_correlation"] = float(fields["rank_correlation"])
        fields.update({field: pairs(entry[field]) for field in _BIRTH_DICTS})
        birthmaps[name] = BirthMap(view=str(entry["view"]), statistic=str(entry["statistic"]),
                                   learners=tuple(str(n) for n in entry["learners"]),
                                   settings=dict(entry["settings"]), **fields)
    dtype = np.dtype(doc["task_ids_dtype"])
    if dtype.kind not in _TASK_ID_KINDS:
        raise RunError(path, f"{RUN_FILE}: task_ids dtype {dtype.str} is not numbers or strings")
    task_ids = np.asarray(doc["task_ids"], dtype=dtype).reshape(doc["task_ids_shape"])
    return Run(run_id=path.name, config=doc["config"], info=doc["info"], task_ids=task_ids,
               task_info=pairs(doc["task_info"]), learners=learners, views=views,
               extra=doc.get("extra", {}), birthmaps=birthmaps)


# ---------------------------------------------------------------------------- list

def list_runs(runs_dir: str | Path) -> list[RunEntry]:
    """Every run folder in ``runs_dir``, newest first (by info's ``created``, then run_id).

    Cheap: reads run.json and the npz zip directories and array headers
    (``check_run``), never array data. A broken run is listed with ok=False and
    its reason and never stops the others. Dot-folders (including unfinished
    ``.tmp-*`` writes) and plain files are ignored; a missing runs_dir gives [].
    """
    runs_dir = Path(runs_dir)
    try:
        children = [p for p in runs_dir.iterdir() if not p.name.startswith(".") and p.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries = [_entry(p) for p in children]
    return sorted(entries, key=lambda e: (e.created, e.run_id), reverse=True)


def _entry(path: Path) -> RunEntry:
    doc: Any = None
    ok, reason = True, ""
    try:
        doc = check_run(path)
    except RunError as exc:
        ok, reason = False, exc.reason
    except Exception as exc:  # noqa: BLE001 (a broken run must never stop the listing)
        ok, reason = False, " ".join(f"{type(exc).__name__}: {exc}".split())
    if doc is None:  # schema mismatch etc.: still show what run.json says, if anything
        try:
            doc = json.loads((path / RUN_FILE).read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001
            doc = None
    doc = doc if isinstance(doc, dict) else {}
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    return RunEntry(
        run_id=path.name, path=path, ok=ok, reason=reason,
        name=_text(config.get("name")), family=_text(config.get("family")),
        learners=_names(doc.get("learners")), created=_text(info.get("created")),
        views=_names(doc.get("views")),
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _names(items: Any) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(p[0] for p in items if isinstance(p, list) and p and isinstance(p[0], str))
