"""Task families, one file each, and the registry that names them."""
from __future__ import annotations

import dataclasses
from typing import Any

from .base import SPLITS, Batch, Problem, TaskFamily, TaskSet
from .digits import Digits
from .linear2d import ARC4, Linear2D
from .plugin import load_plugin
from .quadratic import Quadratic
from .sinusoid import Sinusoid

FAMILIES: dict[str, type] = {
    cls.name: cls for cls in (Sinusoid, Linear2D, Quadratic, Digits)
}


def make_family(name: str, options: dict[str, Any] | None = None) -> TaskFamily:
    """A family by registry name (``sinusoid``) or plugin (``pkg.mod:function``).

    Options must be fields of the family's dataclass; lists become tuples.
    """
    options = dict(options or {})
    if ":" in name:
        return load_plugin(name, options)
    if name not in FAMILIES:
        raise ValueError(f"unknown task family {name!r}; accepted: {sorted(FAMILIES)} "
                         "or a plugin 'package.module:function'")
    cls = FAMILIES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for family {name!r}; accepted: {sorted(fields)}")
    resolved = {}
    for key, value in options.items():
        default = fields[key].default
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"family {name!r} option {key!r} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"family {name!r} option {key!r} must be a number, got {value!r}")
            if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
                raise ValueError(f"family {name!r} option {key!r} must be an integer, got {value!r}")
            value = type(default)(value)
        if isinstance(default, tuple) and not isinstance(value, tuple):
            raise ValueError(f"family {name!r} option {key!r} must be a list, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"family {name!r} option {key!r} must be a string, got {value!r}")
        resolved[key] = value
    return cls(**resolved)


def family_options(family: TaskFamily) -> dict[str, Any]:
    """The resolved options of a family, as plain data for the run record."""
    if dataclasses.is_dataclass(family):
        return {f.name: getattr(family, f.name) for f in dataclasses.fields(family)}
    return {}


__all__ = [
    "ARC4",
    "FAMILIES",
    "SPLITS",
    "Batch",
    "Digits",
    "Linear2D",
    "Problem",
    "Quadratic",
    "Sinusoid",
    "TaskFamily",
    "TaskSet",
    "family_options",
    "load_plugin",
    "make_family",
]
