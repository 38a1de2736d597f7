"""Are two runs the same? Every array bitwise, and run.json minus timings and identities.

    python bench/compare_runs.py RUN_A RUN_B [--added-config-key KEY ...]

Arrays are compared as ``load_run`` gives them (so a run written before a stored
key was renamed, e.g. ``meta_steps`` -> ``meta_path_steps``, compares with one
written after), by dtype, shape and bytes: NaNs compare equal only bit for bit.
Raw files are compared too: each npz must hold the same number of arrays.
run.json is compared without ``run_id``, ``info.created``, ``info.timings`` and
the array index (names of stored keys; the arrays themselves are compared).
Prints every difference, one per line, then a verdict; exit status 0 when
identical, 1 otherwise. A config key present in only one run is a difference,
unless named with ``--added-config-key`` (a key added to the config since RUN_A
was made, present in RUN_B only; it is then printed as a note).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from trajviz.store import load_run

IGNORED_INFO = ("created", "timings")


def arrays_of(value: Any, where: str = "") -> dict[str, np.ndarray]:
    """Every numpy array reachable from a Run, by a dotted path."""
    found: dict[str, np.ndarray] = {}
    if isinstance(value, np.ndarray):
        found[where] = value
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            found.update(arrays_of(getattr(value, f.name), f"{where}.{f.name}".lstrip(".")))
    elif isinstance(value, dict):
        for k, v in value.items():
            found.update(arrays_of(v, f"{where}[{k!r}]"))
    return found


def compare_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> list[str]:
    diffs = [f"array {k}: only in A" for k in sorted(set(a) - set(b))]
    diffs += [f"array {k}: only in B" for k in sorted(set(b) - set(a))]
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if x.dtype != y.dtype or x.shape != y.shape:
            diffs.append(f"array {key}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        elif x.tobytes() != y.tobytes():
            differ = np.frombuffer(x.tobytes(), np.uint8) != np.frombuffer(y.tobytes(), np.uint8)
            diffs.append(f"array {key}: {int(differ.sum())} of {x.nbytes} bytes differ")
    return diffs


def compare_json(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        diffs = []
        for k in sorted(set(a) | set(b)):
            here = f"{where}.{k}".lstrip(".")
            if k not in a or k not in b:
                diffs.append(f"run.json {here}: only in {'B' if k not in a else 'A'} "
                             f"({(b if k not in a else a)[k]!r})")
            else:
                diffs += compare_json(a[k], b[k], here)
        return diffs
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in compare_json(x, y, f"{where}[{i}]")]
    same = a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)
    return [] if same and type(a) is type(b) else [f"run.json {where}: {a!r} vs {b!r}"]


def comparable_doc(path: Path) -> dict[str, Any]:
    doc = json.loads((path / "run.json").read_text(encoding="utf-8"))
    doc.pop("run_id", None)
    doc.pop("arrays", None)  # the index of stored keys: the arrays are compared themselves
    for key in IGNORED_INFO:
        doc.get("info", {}).pop(key, None)
    for _, entry in doc.get("learners", []):
        entry.pop("arrays", None)
    for _, entry in doc.get("views", []):
        entry.get("slice", {}).pop("arrays", None)
        for key in ("surface", "coords", "residual", "plane_loss", "meta_coords", "meta_residual"):
            entry.pop(key, None)  # key names only; their arrays are compared above
    for key in ("task_info",):
        doc.pop(key, None)
    return doc


def npz_counts(path: Path) -> dict[str, int]:
    return {name: len(np.load(path / name, allow_pickle=False).files)
            for name in ("light.npz", "heavy.npz")}


def compare(run_a: Path, run_b: Path, added: tuple[str, ...] = ()) -> list[str]:
    a, b = load_run(run_a), load_run(run_b)
    diffs = compare_arrays(arrays_of(a), arrays_of(b))
    doc_a, doc_b = comparable_doc(run_a), comparable_doc(run_b)
    for key in added:
        if key not in doc_a["config"] and key in doc_b["config"]:
            print(f"note: config.{key} = {doc_b['config'].pop(key)!r} only in B (added since A)")
    diffs += compare_json(doc_a, doc_b)
    counts_a, counts_b = npz_counts(run_a), npz_counts(run_b)
    if counts_a != counts_b:
        diffs.append(f"npz array counts: {counts_a} vs {counts_b}")
    return diffs


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(description="compare two runs bitwise")
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--added-config-key", action="append", default=[], metavar="KEY")
    args = parser.parse_args(argv)
    run_a, run_b = args.run_a, args.run_b
    diffs = compare(run_a, run_b, tuple(args.added_config_key))
    n_arrays = len(arrays_of(load_run(run_a)))
    for line in diffs:
        print(line)
    verdict = "IDENTICAL" if not diffs else f"{len(diffs)} DIFFERENCE(S)"
    print(f"{verdict}: {run_a.name} vs {run_b.name} ({n_arrays} arrays compared bitwise)")
    return 0 if not diffs else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
