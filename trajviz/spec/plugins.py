"""Which task-family plugins may run: only code the user declared, decided before any import.

A config file or a web request is data; a family named there is resolved here, and
nothing that was not declared is imported or called. A plugin is declared by

* an **entry point** in group ``trajviz.families`` of its installed package
  (``[project.entry-points."trajviz.families"] cubic = "my_pkg.cubic:make_family"``):
  read from the package metadata (``importlib.metadata``), so knowing it imports
  nothing. A config names it ``family = "cubic"`` or ``"my_pkg.cubic:make_family"``.
  Its module is declared as a whole: another ``my_pkg.cubic:fn`` may be imported too,
  but ``fn`` is called only if it carries the decorator below.
* the **decorator** ``@trajviz.task_family`` on the factory: it registers the factory
  when its module is imported by your own code (a notebook, a script, the package an
  entry point names), so ``"module:function"`` (or ``name=``) resolves to the function
  already in hand, with no import.
* the explicit escape for one's own quick script: ``--trust-plugin module:function``
  on the command line, ``trust_plugins=["module:function"]`` in the Python API
  (``trajviz.config.from_dict``, ``load_toml``). Never from a config file or the page.

Trust lasts for the process, like an import. Everything else is refused in one line
naming what to do, with nothing imported. No torch here: the config layer checks
families with this module; ``trajviz.problem.tasks.plugin`` loads them.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from trajviz.spec.names import FAMILY_NAMES

GROUP = "trajviz.families"
MARK = "__trajviz_task_family__"  # set on a decorated factory
_SPEC = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_NAME = re.compile(r"[A-Za-z][\w.-]{0,63}")

_lock = threading.Lock()
_DECLARED: dict[str, Callable[..., Any]] = {}  # "module:qualname" and names -> decorated factory
_TRUSTED: set[str] = set()                      # "module:function" trusted by hand


@dataclass(frozen=True)
class Declaration:
    """How a family name is allowed to run: ``spec`` ("module:function") and either the
    ``factory`` already in hand (decorated), or leave to import ``spec``'s module;
    ``marked``: the imported function must carry ``@task_family`` (a declared module's
    function that is not itself an entry point). ``how``: for messages."""

    spec: str
    how: str
    factory: Callable[..., Any] | None = None
    marked: bool = False


def task_family(fn: Callable[..., Any] | None = None, *, name: str | None = None):
    """Declare a task-family factory: ``@trajviz.task_family`` (or ``(name="cubic")``).

    Registers ``fn`` under ``"its.module:its_name"`` (and ``name``) for this process and
    marks it, so a declared module's decorated functions may be called; returns ``fn``."""
    def declare(f: Callable[..., Any]) -> Callable[..., Any]:
        if not callable(f):
            raise TypeError(f"@task_family decorates a function, got {type(f).__name__}")
        if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)
                                 or name in FAMILY_NAMES):
            raise ValueError(f"@task_family name {name!r} must be 1-64 letters, digits, '_', "
                             f"'.', '-' and not a built-in family {sorted(FAMILY_NAMES)}")
        setattr(f, MARK, True)
        with _lock:
            _DECLARED[f"{f.__module__}:{f.__qualname__}"] = f
            if name is not None:
                _DECLARED[name] = f
        return f
    return declare if fn is None else declare(fn)


def trust(*specs: str) -> None:
    """Trust ``module:function`` for this process (``--trust-plugin``): your own code."""
    for spec in specs:
        if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
            raise ValueError(f"--trust-plugin takes 'package.module:function', got {spec!r}")
    with _lock:
        _TRUSTED.update(specs)


def is_marked(factory: Any) -> bool:
    """Whether ``factory`` carries ``@task_family``."""
    return getattr(factory, MARK, False) is True


def entry_point_families() -> dict[str, str]:
    """{name: "module:function"} of the installed ``trajviz.families`` entry points (read
    from package metadata: nothing is imported); built-in names are never shadowed."""
    found: dict[str, str] = {}
    for ep in metadata.entry_points(group=GROUP):
        if ep.name not in FAMILY_NAMES and ep.attr and ep.name not in found:
            found[ep.name] = f"{ep.module}:{ep.attr}"
    return found


def offered_families() -> tuple[str, ...]:
    """What the page offers and accepts: the built-in families and the entry points."""
    return (*sorted(FAMILY_NAMES), *sorted(entry_point_families()))


def declaration(family: str) -> Declaration:
    """How plugin ``family`` (not a built-in name) is declared; ValueError (one line)
    naming what to do if it is not. Imports nothing."""
    if not isinstance(family, str):
        raise ValueError(f"family must be text, got {type(family).__name__}")
    with _lock:
        factory, trusted = _DECLARED.get(family), family in _TRUSTED
    if factory is not None:
        return Declaration(f"{factory.__module__}:{factory.__qualname__}", "@task_family", factory)
    points = entry_point_families()
    if family in points:
        return Declaration(points[family], f"entry point {family!r}")
    if ":" not in family:
        raise ValueError(f"unknown family {family!r}; accepted: {list(offered_families())} or a "
                         "declared plugin 'package.module:function' (docs/plugins.md)")
    if not _SPEC.fullmatch(family):
        raise ValueError(f"plugin family {family!r} must look like 'package.module:function'")
    if trusted:
        return Declaration(family, "--trust-plugin")
    if family in points.values():
        return Declaration(family, "entry point")
    if family.partition(":")[0] in {s.partition(":")[0] for s in points.values()}:
        return Declaration(family, "a declared module", marked=True)
    raise ValueError(
        f"family {family!r} is not a declared plugin, so it is neither imported nor run; "
        f"declare it with @trajviz.task_family and an entry point in group {GROUP!r} "
        f"(docs/plugins.md), or for your own script pass --trust-plugin {family} "
        f"(Python: trust_plugins=[{family!r}])")


def check_family(family: str) -> None:
    """ValueError (one line) unless ``family`` is built in or a declared plugin."""
    if family not in FAMILY_NAMES:
        declaration(family)


__all__ = ["GROUP", "Declaration", "check_family", "declaration", "entry_point_families",
           "is_marked", "offered_families", "task_family", "trust"]
