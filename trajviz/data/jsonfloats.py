"""Strict JSON for data holding non-finite floats: null in place, the value listed apart.

``strict_json(data)`` returns a copy with every NaN/±inf float replaced by
``None`` and the list ``[[path, token], ...]`` of what was there: path the
keys and list indices from the root, token ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``. ``restore_nonfinite(data, listed)`` puts them back, so
``json.dumps(strict_json(x)[0], allow_nan=False)`` is RFC 8259 JSON and the
round trip is exact (any other ``null`` stays ``None``).
"""
from __future__ import annotations

import math
from typing import Any

TOKENS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def strict_json(value: Any, path: list[Any] | None = None,
                found: list[list[Any]] | None = None) -> tuple[Any, list[list[Any]]]:
    """(``value`` with non-finite floats as None, the list of their paths and tokens)."""
    path = [] if path is None else path
    found = [] if found is None else found
    if isinstance(value, float) and not math.isfinite(value):
        found.append([list(path), "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")])
        return None, found
    if isinstance(value, list):
        return [strict_json(v, path + [i], found)[0] for i, v in enumerate(value)], found
    if isinstance(value, dict):
        return {k: strict_json(v, path + [k], found)[0] for k, v in value.items()}, found
    return value, found


def restore_nonfinite(data: Any, listed: Any) -> None:
    """Put the floats ``listed`` by ``strict_json`` back in ``data`` (in place).

    Raises ValueError (one line) for a malformed list or a path that does not
    lead to a null, since run.json is untrusted input.
    """
    if not isinstance(listed, list):
        raise ValueError("has a malformed 'nonfinite' list")
    for entry in listed:
        ok = (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], list)
              and len(entry[0]) > 0 and entry[1] in TOKENS)
        node = data
        for key in entry[0][:-1] if ok else ():
            ok = _has(node, key)
            if not ok:
                break
            node = node[key]
        if not (ok and _has(node, entry[0][-1]) and node[entry[0][-1]] is None):
            raise ValueError(f"has a malformed 'nonfinite' entry {entry!r}")
        node[entry[0][-1]] = TOKENS[entry[1]]


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return isinstance(key, str) and key in node
    return (isinstance(node, list) and isinstance(key, int) and not isinstance(key, bool)
            and 0 <= key < len(node))
