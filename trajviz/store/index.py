"""Checking run.json's array index, and matching npz headers against it."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trajviz.store.inner_variants import check_variant_entry
from trajviz.store.safe import MAX_ARRAY_BYTES, array_bytes
from trajviz.store.schema import (
    _BIRTH_ARRAYS,
    _BIRTH_DICTS,
    _FILES,
    _LEARNER_ARRAYS,
    _LEARNER_DICTS,
    _NUMERIC_KINDS,
    _OPTIONAL_DICTS,
    _SLICE_ARRAYS,
    _SURFACE_ARRAYS,
    _VIEW_DICTS,
    RUN_FILE,
    RunError,
)


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
            raise RunError(path, f"{RUN_FILE} has a malformed entry for array {key!r}: {spec!r}"[:300])
        size = array_bytes(spec["shape"], np.dtype(spec["dtype"]).itemsize)
        if size > MAX_ARRAY_BYTES:
            raise RunError(path, f"{RUN_FILE} records array {key!r} of shape {spec['shape']} "
                                 f"({size} bytes), more than the {MAX_ARRAY_BYTES}-byte limit")

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
        for name, entry in _named(path, doc, "inner_variants", optional=True):
            check_variant_entry(name, entry, need, need_pairs)  # kept what-ifs (variantstore)
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

