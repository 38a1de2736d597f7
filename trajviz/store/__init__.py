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

Kept what-if inner settings (``Run.inner_variants``) are the optional
``"inner_variants"`` list (``trajviz.store.inner_variants``); a run without it loads with none.

Writing is atomic: everything goes into ``<runs_dir>/.tmp-<run_id>-p<pid>-s<start>-<hex>/``
(dot-names are never listed), each file is fsynced, and the folder is renamed
to ``<run_id>``; on any error the temporary folder is removed, so no half run
is ever visible; temporary folders whose writer died are swept (``sweep.py``).
A broken run on disk is reported, never fatal to listing. The runs folder is
untrusted input (``safe.py``): symlinks, FIFOs and devices are never read, and
every size is capped before it is read or allocated.
"""
from __future__ import annotations

import numpy as np  # noqa: F401 (tests patch ``store.np.savez``)

from trajviz.store.listing import list_runs
from trajviz.store.read import check_run, load_run
from trajviz.store.schema import HEAVY_FILE, LIGHT_FILE, RUN_FILE, RunEntry, RunError, new_run_id
from trajviz.store.sweep import sweep_stale
from trajviz.store.write import _check_run_id, _fsync_dir, _serialise, _write_tmp, write_run  # noqa: F401

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
    "sweep_stale",
    "write_run",
]
