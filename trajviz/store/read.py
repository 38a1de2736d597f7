"""Reading and validating a run folder: run.json, npz headers, then the arrays."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from trajviz.data.jsonfloats import restore_nonfinite
from trajviz.data.run import (
    FULL_RECORD,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BirthMap,
    LearnerRecord,
    Run,
    Slice,
    Surface,
    View,
)
from trajviz.store.index import _check_index, _expected, _learner_pairs, _mismatch, _named
from trajviz.store.inner_variants import decode_variants
from trajviz.store.safe import (
    MAX_NPZ_BYTES,
    MAX_RUN_JSON_BYTES,
    array_bytes,
    check_folder,
    open_regular,
    read_capped,
)
from trajviz.store.schema import (
    _BIRTH_ARRAYS,
    _BIRTH_DICTS,
    _FILES,
    _LEARNER_ARRAYS,
    _LEARNER_DICTS,
    _RENAMED_LEARNER_ARRAYS,
    _SLICE_ARRAYS,
    _SURFACE_ARRAYS,
    _TASK_ID_KINDS,
    _VIEW_DICTS,
    RUN_FILE,
    RunError,
)


def load_run(path: str | Path, *, heavy: bool | str = True) -> Run:
    """Read and validate the run folder ``path``; any problem raises RunError (one line).

    Checked: run.json exists and is valid JSON, its schema_version equals
    ``SCHEMA_VERSION``, its index is well formed, both npz files are readable
    and hold every indexed array with the recorded shape and dtype.

    With ``heavy=False`` (what the app uses) heavy.npz is only checked, not read
    (its zip directory and array headers, not its data), and its arrays come
    back as zero-size float32 placeholders: the recorded shape with the last
    (P) axis set to 0, i.e. ``params``/``grads`` [T, K+1, 0], ``meta_path``
    [S'+1, 0], slice ``origin`` [0] and ``basis`` [2, 0]. Every light array is
    read in full and is identical to what was written. ``heavy="slices"`` reads, of
    heavy.npz, only the slices' ``origin`` and ``basis`` (3·P numbers a view: what a
    recomputation from θ0 needs, the page's workers), the rest as with ``heavy=False``.

    ``run_id`` is the folder name (the run's identity on disk).
    """
    path = Path(path)
    doc = _read_doc(path)
    index = _check_index(path, doc)
    arrays = _read_arrays(path, index, "light")
    if heavy not in (True, False, "slices"):
        raise ValueError(f"heavy must be True, False or 'slices', got {heavy!r}")
    if heavy is True:
        arrays.update(_read_arrays(path, index, "heavy"))
    else:
        only = _slice_keys(path, doc) if heavy == "slices" else set()
        arrays.update(_scan_npz(path, index, "heavy", read=bool(only), only=only))
        for key, spec in index.items():
            if spec["file"] == "heavy" and key not in arrays:
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
    check_folder(path)
    try:
        text = read_capped(path, RUN_FILE, MAX_RUN_JSON_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunError(path, f"cannot read {RUN_FILE}: {exc}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(path, f"{RUN_FILE} is not valid JSON: {exc}") from None
    except RecursionError:
        raise RunError(path, f"{RUN_FILE} is nested too deeply") from None
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
    _migrate_record(doc)
    return doc


def _migrate_record(doc: dict[str, Any]) -> None:
    """A run written before record policies (schema < 3) kept every path: say so in
    ``info["record"]`` (``data.run.FULL_RECORD``), as a schema-3 full run does."""
    info = doc.get("info")
    if doc.get("schema_version", SCHEMA_VERSION) < 3 and isinstance(info, dict) and "record" not in info:
        info["record"] = dict(FULL_RECORD)


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


def _slice_keys(path: Path, doc: dict[str, Any]) -> set[str]:
    """The index keys of every view's slice origin and basis."""
    return {entry["slice"]["arrays"][field] for _, entry in _named(path, doc, "views")
            for field in ("origin", "basis")}


def _check_headers(path: Path, index: dict[str, dict[str, Any]], part: str) -> None:
    """Check an npz from its zip directory and .npy headers, without reading array data."""
    _scan_npz(path, index, part, read=False)


def _read_arrays(path: Path, index: dict[str, dict[str, Any]], part: str) -> dict[str, np.ndarray]:
    return _scan_npz(path, index, part, read=True)


def _scan_npz(path: Path, index: dict[str, dict[str, Any]], part: str,
              read: bool, only: set[str] | None = None) -> dict[str, np.ndarray]:
    """Open one npz safely (``safe.open_regular``), check every indexed member's .npy
    header against run.json (whose sizes ``_check_index`` capped), and only then, if
    ``read``, read the member (only the keys in ``only``, if given): nothing is allocated
    from an unchecked header."""
    name = _FILES[part]
    out = {}
    try:
        with open_regular(path, name, MAX_NPZ_BYTES) as raw, zipfile.ZipFile(raw) as zf:
            members = {info.filename: info for info in zf.infolist()}
            for key, spec in _expected(index, part).items():
                info = members.get(key + ".npy")
                if info is None:
                    raise RunError(path, f"{name} lacks array {key!r}")
                limit = array_bytes(spec["shape"], np.dtype(spec["dtype"]).itemsize) + 2**16
                if info.file_size > limit:
                    raise RunError(path, f"{name}: array {key!r} is {info.file_size} bytes "
                                         f"unpacked, more than {RUN_FILE} records")
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, order, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, order, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise RunError(path, f"{name}: array {key!r} has npy version {version}")
                    problem = _mismatch(key, spec, shape, dtype)
                    if problem:
                        raise RunError(path, f"{name}: {problem}")
                    if read and (only is None or key in only):
                        out[key] = _read_data(f, shape, order, dtype, key, name, path)
    except RunError:
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise RunError(path, f"{name} is not a readable npz: {type(exc).__name__}: {reason}") from None
    return out


def _read_data(f: Any, shape: tuple, fortran: bool, dtype: np.dtype, key: str, name: str,
               path: Path) -> np.ndarray:
    """The data after a checked .npy header: exactly the recorded bytes, no more."""
    count = array_bytes(list(shape), dtype.itemsize)
    data = f.read(count)
    if len(data) != count:
        raise RunError(path, f"{name}: array {key!r} is truncated")
    array = np.frombuffer(data, dtype=dtype).copy()
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


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
    inner_variants = decode_variants(_named(path, doc, "inner_variants", optional=True), arrays,
                                     learners, views)  # kept what-ifs (variantstore)
    return Run(run_id=path.name, config=doc["config"], info=doc["info"], task_ids=task_ids,
               task_info=pairs(doc["task_info"]), learners=learners, views=views,
               extra=doc.get("extra", {}), birthmaps=birthmaps, inner_variants=inner_variants)

