"""Bring your own model and tasks: a task-family plugin, declared in one line.

Declare the factory, then name it as the family::

    import trajviz

    @trajviz.task_family                    # the one line, in your module
    def make_family(shots: int = 10): ...

    # installed package: one line in its pyproject.toml (then pip install -e .)
    # [project.entry-points."trajviz.families"]
    # cubic = "my_package.my_module:make_family"

``trajviz run --family cubic`` (or ``family = "cubic"`` in a TOML) then runs it.
For a quick script of your own, no declaration: ``trajviz run --family
my_script:make_family --trust-plugin my_script:make_family`` (Python:
``trajviz.config.from_dict(data, trust_plugins=["my_script:make_family"])``).
An undeclared ``module:function`` is refused before its module is imported
(``trajviz.spec.plugins``): a config file or a web request never names code to run.

The plugin protocol. ``make_family(**options)`` is a callable that returns a
*family*: any object with

* ``name: str``
* ``problem() -> trajviz.problem.tasks.Problem`` — a ``Model`` (wrap your template
  module with ``trajviz.problem.models.from_module``) and a pure, vmappable
  ``loss(params, batch) -> scalar`` for one task and one batch;
* ``sample(seed: int, n_tasks: int, split: str) -> trajviz.problem.tasks.TaskSet`` —
  deterministic in ``seed``; ``split`` is "train" or "heldout".

``demos/plugin_example.py`` is a complete, tested example and docs/plugins.md the
guide. A declared module is imported like ``python -m`` would: from ``sys.path``,
else from the current directory.
"""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

from trajviz.problem.tasks.base import TaskFamily
from trajviz.spec.plugins import declaration, is_marked


def load_plugin(spec: str, options: dict[str, Any] | None = None) -> TaskFamily:
    """The family of a declared plugin ``spec`` (an entry point's name or
    ``module:function``), called with ``options`` and checked.

    Refused in one line, before its module is imported, unless it is declared
    (``trajviz.spec.plugins.declaration``)."""
    declared = declaration(spec)
    factory = declared.factory
    if factory is None:
        factory = _factory(declared.spec)
        if declared.marked and not is_marked(factory):
            raise ValueError(f"plugin {spec!r}: {declared.spec.partition(':')[0]} is a declared "
                             f"module but {declared.spec.partition(':')[2]} is not marked "
                             "@trajviz.task_family; mark it, or name it as an entry point")
    try:
        inspect.signature(factory).bind(**(options or {}))
    except TypeError as exc:
        raise ValueError(f"plugin {spec!r} does not accept options {sorted(options or {})}: {exc}") from exc
    try:
        family = factory(**(options or {}))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"plugin {spec!r}: {_attr(declared.spec)}() raised {_one_line(exc)}") from None
    check_family(family, spec)
    check_problem(family, spec)
    return family


def _attr(spec: str) -> str:
    return spec.partition(":")[2]


def _factory(spec: str) -> Any:
    """Import a declared ``module:function`` and return the function."""
    module_name, _, attr = spec.partition(":")
    try:
        module = _import(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import plugin module {module_name!r}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - a plugin that raises or does not parse: one line
        raise ValueError(f"plugin module {module_name!r} failed to import: "
                         f"{_one_line(exc)}") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ValueError(f"plugin {spec!r}: {module_name} has no callable {attr!r}")
    return factory


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
