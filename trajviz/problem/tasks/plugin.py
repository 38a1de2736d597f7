"""Bring your own model and tasks: ``--family my_package.my_module:make_family``.

The plugin protocol. ``make_family(**options)`` is a callable that returns a
*family*: any object with

* ``name: str``
* ``problem() -> trajviz.problem.tasks.Problem`` — a ``Model`` (wrap your template
  module with ``trajviz.problem.models.from_module``) and a pure, vmappable
  ``loss(params, batch) -> scalar`` for one task and one batch;
* ``sample(seed: int, n_tasks: int, split: str) -> trajviz.problem.tasks.TaskSet`` —
  deterministic in ``seed``; ``split`` is "train" or "heldout".

``demos/plugin_example.py`` is a complete, tested example. The module is
imported like ``python -m`` would: from ``sys.path``, else from the current
directory (so ``--family demos.plugin_example:make_family`` works from the
repository root with the ``trajviz`` console script too).
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from trajviz.problem.tasks.base import TaskFamily


def load_plugin(spec: str, options: dict[str, Any] | None = None) -> TaskFamily:
    """Import ``module:function``, call it with ``options`` and check the result."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"plugin family {spec!r} must look like 'package.module:function'")
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import plugin module {module_name!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a plugin that raises or does not parse: one line
        raise ValueError(f"plugin module {module_name!r} failed to import: "
                         f"{_one_line(exc)}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"plugin {spec!r}: {module_name} has no callable {attr!r}")
    try:
        inspect.signature(factory).bind(**(options or {}))
    except TypeError as exc:
        raise ValueError(f"plugin {spec!r} does not accept options {sorted(options or {})}: {exc}") from exc
    try:
        family = factory(**(options or {}))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"plugin {spec!r}: {attr}() raised {_one_line(exc)}") from None
    check_family(family, spec)
    check_problem(family, spec)
    return family


def _one_line(exc: BaseException) -> str:
    where = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300] + where


def check_problem(family: Any, label: str) -> None:
    """Raise ``ValueError`` unless ``family.problem()`` returns a Problem (called once here,
    so a plugin that raises or returns None fails in one line before any work starts)."""
    from trajviz.problem.tasks.base import Problem

    try:
        problem = family.problem()
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"plugin {label!r}: problem() raised {_one_line(exc)}") from None
    if not isinstance(problem, Problem):
        raise ValueError(f"plugin {label!r}: problem() returned {type(problem).__name__}, "
                         "expected a trajviz.problem.tasks.Problem")


def _import(module_name: str) -> Any:
    """Import ``module_name``; if its top-level package is not on ``sys.path``, look in the
    current directory too, as ``python -m`` does (a console script's path starts at its own
    folder instead). The directory is appended, so it never shadows an installed module."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        top = module_name.partition(".")[0]
        if exc.name != top or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(module_name)


def check_family(family: Any, label: str) -> None:
    """Raise ``ValueError`` naming what the family lacks, per the protocol above."""
    if not isinstance(getattr(family, "name", None), str):
        raise ValueError(f"plugin {label!r} returned {type(family).__name__}, which has no str 'name'")
    for method, params in (("problem", ()), ("sample", ("seed", "n_tasks", "split"))):
        fn = getattr(family, method, None)
        if not callable(fn):
            raise ValueError(f"plugin {label!r}: family has no method {method}{params}")
        try:
            inspect.signature(fn).bind(*params)
        except TypeError as exc:
            raise ValueError(f"plugin {label!r}: {method} must accept {params}: {exc}") from exc
