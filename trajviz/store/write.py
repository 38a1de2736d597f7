"""Writing a run atomically: encode to JSON + npz, write into a temporary folder, rename."""
from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from trajviz.data.jsonfloats import strict_json
from trajviz.data.run import SCHEMA_VERSION, BirthMap, LearnerRecord, Run, View
from trajviz.store.encode import Encoder, plain
from trajviz.store.inner_variants import encode_variants
from trajviz.store.schema import (
    _BIRTH_ARRAYS,
    _BIRTH_DICTS,
    _FILES,
    _LEARNER_ARRAYS,
    _LEARNER_DICTS,
    _SLICE_ARRAYS,
    _SURFACE_ARRAYS,
    _TASK_ID_KINDS,
    _VIEW_DICTS,
    RUN_FILE,
    _check_run_id,
)
from trajviz.store.sweep import TMP_PREFIX, owner_tag, sweep_stale


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
    sweep_stale(runs_dir)
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
    tmp = runs_dir / f"{TMP_PREFIX}{run_id}-{owner_tag()}-{secrets.token_hex(4)}"
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


def _encode(run: Run) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    enc = Encoder()
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
                "kind": plain(sl.kind, f"{where}.slice.kind"),
                "label": plain(sl.label, f"{where}.slice.label"),
                "extent": [float(x) for x in sl.extent],
                "explained_variance": plain(np.asarray(sl.explained_variance, dtype=float),
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
        "config": plain(run.config, "config"),
        "info": plain(run.info, "info"),
        "extra": plain(run.extra, "extra"),
        "task_ids": plain(task_ids.tolist(), "task_ids"),
        "task_ids_dtype": task_ids.dtype.str,
        "task_ids_shape": list(task_ids.shape),
        "task_info": enc.add_dict("task_info", run.task_info, "light", "task_info"),
        "learners": learners,
        "views": views,
        "birthmaps": birthmaps,
        "inner_variants": encode_variants(enc, run.inner_variants, plain),  # variantstore
        "arrays": enc.index,
    }
    return doc, enc.arrays


def _encode_birth_map(enc: Encoder, bm: BirthMap, prefix: str, where: str) -> dict[str, Any]:
    if not isinstance(bm, BirthMap):
        raise TypeError(f"{where} must be a BirthMap, got {type(bm).__name__}")
    entry: dict[str, Any] = {
        "view": plain(bm.view, f"{where}.view"), "statistic": plain(bm.statistic, f"{where}.statistic"),
        "learners": plain(list(bm.learners), f"{where}.learners"),
        "settings": plain(bm.settings, f"{where}.settings"),
        "arrays": {field: enc.add(f"{prefix}.{field}", np.asarray(getattr(bm, field)), "light",
                                  f"{where}.{field}") for field in _BIRTH_ARRAYS}}
    for field in _BIRTH_DICTS:
        entry[field] = enc.add_dict(f"{prefix}.{field}", getattr(bm, field), "light", f"{where}.{field}")
    return entry
