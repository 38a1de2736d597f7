"""Task families, one file each, and the registry that names them."""
from __future__ import annotations

import dataclasses
from typing import Any

from trajviz.problem.tasks.base import SPLITS, Batch, Problem, TaskFamily, TaskSet
from trajviz.problem.tasks.digits import Digits
from trajviz.problem.tasks.linear2d import ARC4, Linear2D
from trajviz.problem.tasks.plugin import load_plugin
from trajviz.problem.tasks.quadratic import Quadratic
from trajviz.problem.tasks.sinusoid import Sinusoid

FAMILIES: dict[str, type] = {
    cls.name: cls for cls in (Sinusoid, Linear2D, Quadratic, Digits)
}


def make_family(name: str, options: dict[str, Any] | None = None) -> TaskFamily:
    """A family by registry name (``sinusoid``) or declared plugin (an entry point's
    name, or ``pkg.mod:function``; ``plugin.py``): an undeclared one is refused before
    anything is imported.

    ``options`` are fields of the family's dataclass (lists become tuples),
    checked and bounded by ``trajviz.spec.config`` before they get here.
    """
    options = dict(options or {})
    if name not in FAMILIES:
        return load_plugin(name, options)
    return FAMILIES[name](**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})


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
