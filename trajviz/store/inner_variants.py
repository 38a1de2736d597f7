"""Kept "what if" inner settings (``Run.inner_variants``) in run.json + npz, and as bytes.

The store calls three hooks: ``encode_variants`` (writing), ``check_variant_entry``
(the index check) and ``decode_variants`` (reading). A variant's entry in run.json::

    "inner_variants": [[name, {"name", "inner", "info", "task_index": key,
        "learners": [[learner, {"arrays": {field: key}, "metrics": [[m, key]],
                                "running": [...], "diagnostics": [...]}]],
        "views": [[view, [[learner, {"coords": key, "residual": key, "plane_loss": key}]]]]}]]

Only the recomputed fields are stored (``run.ROLLOUT_FIELDS``, ``ROLLOUT_VIEW_FIELDS``);
the rest is the base learner's, filled in on reading. params and grads go to
heavy.npz like a learner's. Runs without the key (older ones) load with no
variants; the schema version is unchanged. ``variant_to_bytes`` /
``variant_from_bytes`` carry a variant (light fields only) between processes
as JSON + raw array bytes, never pickle. Torch-free.
"""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from trajviz.data.run import (
    ROLLOUT_FIELDS,
    ROLLOUT_VIEW_FIELDS,
    InnerVariant,
    LearnerRecord,
    ViewPaths,
)

_ARRAYS = {"params": "heavy", "losses": "light", "grads": "heavy", "query_losses": "light",
           "diverged_at": "light"}
_DICTS = ("metrics", "running", "diagnostics")
assert set(_ARRAYS) | set(_DICTS) == set(ROLLOUT_FIELDS)


def encode_variants(enc, variants: dict[str, InnerVariant], plain: Callable[[Any, str], Any],
                    light_only: bool = False) -> list:
    """run.json's "inner_variants" list; arrays go through ``enc`` (the store's encoder)."""
    out = []
    for v, (name, var) in enumerate(variants.items()):
        where, prefix = f"inner_variants[{name!r}]", f"variant{v}"
        if not isinstance(var, InnerVariant):
            raise TypeError(f"{where} must be an InnerVariant, got {type(var).__name__}")
        learners = []
        for i, (lname, rec) in enumerate(var.learners.items()):
            w, p = f"{where}.learners[{lname!r}]", f"{prefix}.learner{i}"
            entry: dict[str, Any] = {"arrays": {
                f: enc.add(f"{p}.{f}", getattr(rec, f), part, f"{w}.{f}")
                for f, part in _ARRAYS.items() if not (light_only and part == "heavy")}}
            for f in _DICTS:
                entry[f] = enc.add_dict(f"{p}.{f}", getattr(rec, f), "light", f"{w}.{f}")
            learners.append([lname, entry])
        views = []
        for j, (vname, paths) in enumerate(var.views.items()):
            views.append([vname, [[lname, {f: enc.add(f"{prefix}.view{j}.{k}.{f}", getattr(vp, f), "light",
                                                      f"{where}.views[{vname!r}][{lname!r}].{f}")
                                           for f in ROLLOUT_VIEW_FIELDS}]
                                  for k, (lname, vp) in enumerate(paths.items())]])
        out.append([name, {"name": plain(var.name, f"{where}.name"), "inner": plain(var.inner, f"{where}.inner"),
                           "info": plain(var.info, f"{where}.info"),
                           "task_index": enc.add(f"{prefix}.task_index",
                                                 np.asarray(var.task_index, dtype=np.int64), "light",
                                                 f"{where}.task_index"),
                           "learners": learners, "views": views}])
    return out


def check_variant_entry(name: str, entry: dict, need: Callable, need_pairs: Callable) -> None:
    """Every array key a variant entry names is indexed, in the right file (else KeyError/
    TypeError, which the store reports as a malformed run.json)."""
    need(entry["task_index"], "light", f"variant {name!r} task_index")
    for lname, le in entry["learners"]:
        for f, part in _ARRAYS.items():
            if f in le["arrays"]:
                need(le["arrays"][f], part, f"variant {name!r} learner {lname!r} {f}")
        for f in _DICTS:
            need_pairs(le[f], f"variant {name!r} learner {lname!r} {f}")
    for vname, paths in entry["views"]:
        for lname, keys in paths:
            for f in ROLLOUT_VIEW_FIELDS:
                need(keys[f], "light", f"variant {name!r} view {vname!r} {lname!r} {f}")


def decode_variants(items: list[tuple[str, dict]], arrays: dict[str, np.ndarray],
                    learners: dict[str, LearnerRecord], views: dict[str, Any]) -> dict[str, InnerVariant]:
    """The variants of run.json's entries, their other fields taken from the base learners."""
    out = {}
    for name, entry in items:
        task_index = arrays[entry["task_index"]]
        records = {}
        for lname, le in entry["learners"]:
            base = learners[lname]
            fields: dict[str, Any] = {f: arrays[k] for f, k in le["arrays"].items()}
            for f, part in _ARRAYS.items():  # absent (sent light only): a zero-size placeholder
                if f not in fields:
                    lead = arrays[le["arrays"]["losses"]].shape
                    fields[f] = np.zeros((*lead, 0), dtype=np.float32)
            fields.update({f: {m: arrays[k] for m, k in le[f]} for f in _DICTS})
            records[lname] = replace(base, **fields)
        paths = {vname: {lname: ViewPaths(**{f: arrays[keys[f]] for f in ROLLOUT_VIEW_FIELDS},
                                          meta_coords=views[vname].meta_coords[lname],
                                          meta_residual=views[vname].meta_residual[lname])
                         for lname, keys in vpaths}
                 for vname, vpaths in entry["views"]}
        out[name] = InnerVariant(name=str(entry["name"]), inner=dict(entry["inner"]), task_index=task_index,
                                 learners=records, views=paths, info=dict(entry["info"]))
    return out


def variant_to_bytes(variant: InnerVariant) -> tuple[str, bytes]:
    """(JSON text, raw bytes) of ``variant``'s light fields, to send to another process: the
    arrays back to back, their name, dtype, shape and offset in the JSON (no zip: a
    what-if crosses the pipe on every slider step)."""
    from trajviz.data.jsonfloats import strict_json
    from trajviz.store.encode import Encoder, plain

    enc = Encoder()
    [[_, entry]] = encode_variants(enc, {variant.name: variant}, plain, light_only=True)
    doc, nonfinite = strict_json(entry)
    index, parts, offset = [], [], 0
    for key, value in enc.arrays["light"].items():
        a = np.ascontiguousarray(value)
        index.append([key, a.dtype.str, list(a.shape), offset])
        parts.append(a.tobytes())
        offset += a.nbytes
    text = json.dumps({"entry": doc, "nonfinite": nonfinite, "arrays": index}, allow_nan=False)
    return text, b"".join(parts)


def _arrays_from(index: list, data: bytes) -> dict[str, np.ndarray]:
    """The arrays ``variant_to_bytes`` laid out in ``data`` (numeric dtypes only, every
    extent checked); ValueError (one line) for anything else."""
    buf, arrays = bytearray(data), {}
    for key, dtype, shape, offset in index:
        dt = np.dtype(dtype)
        if dt.hasobject or dt.kind not in "biuf":
            raise ValueError(f"variant array {key!r} has dtype {dtype!r}; accepted: numbers")
        count = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or count < 0 or offset + count * dt.itemsize > len(buf):
            raise ValueError(f"variant array {key!r} runs past the {len(buf)} bytes sent")
        arrays[str(key)] = np.frombuffer(buf, dt, count, offset).reshape(shape)
    return arrays


def variant_from_bytes(text: str, data: bytes, learners: dict[str, LearnerRecord],
                       views: dict[str, Any]) -> InnerVariant:
    """The inverse of ``variant_to_bytes``, given the run's learners and views (never pickle)."""
    from trajviz.data.jsonfloats import restore_nonfinite

    doc = json.loads(text)
    entry = doc["entry"]
    restore_nonfinite(entry, doc["nonfinite"])
    arrays = _arrays_from(doc["arrays"], data)
    return decode_variants([(entry["name"], entry)], arrays, learners, views)[entry["name"]]
