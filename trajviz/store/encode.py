"""Encoding a run's values for run.json and its npz files: arrays collected under generated
keys with their index entries, everything else as plain JSON data (used by write and by the
what-if variants' transfer between processes)."""
from __future__ import annotations

from pathlib import PurePath
from typing import Any

import numpy as np

from trajviz.store.schema import _NUMERIC_KINDS


class Encoder:
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


def plain(value: Any, where: str) -> Any:
    """``value`` as JSON data; numpy scalars/arrays become numbers/lists, tuples lists."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return plain(value.item(), where)
    if isinstance(value, np.ndarray):
        return plain(value.tolist(), where)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has key {k!r}; run.json stores only string keys")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    raise TypeError(f"{where} holds a {type(value).__name__}, which run.json cannot store; "
                     "accepted: str, int, float, bool, None, list, tuple, dict, numpy scalars/arrays")
