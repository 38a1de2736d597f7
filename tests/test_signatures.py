"""No function in trajviz/ takes more than ``MAX_PARAMETERS`` parameters (issue 21):
parameters that travel together go in the package's small frozen bundles instead
(``problem.batches.Rollouts``, ``engine.work.Work``, ``engine.learners.outer.Training``,
``figures.options.FigureOptions``, ``app.inputs.PageInputs``, the configs' dataclasses).
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "trajviz"
MAX_PARAMETERS = 7  # positional and keyword-only, not self/cls, not *args/**kwargs

# Registered Dash callbacks only: Dash calls them with one argument per Input/State, so
# their arity is the page's wiring, not a choice. Each is checked below to be decorated
# with ``app.callback``; a plain function cannot hide here.
DASH_CALLBACKS = {
    ("app/callbacks.py", "_draw"),  # 9 inputs: run, slice, task, learners, mode, zoom, frame, ...
    ("app/callbacks.py", "_job"),  # 12 inputs: the job form and its poll
}


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    return names[1:] if names and names[0] in ("self", "cls") else names


def _is_dash_callback(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute)
               and d.func.attr == "callback" for d in fn.decorator_list)


def functions(root: Path = PACKAGE):
    """(path relative to ``root``, function node) for every def under ``root``."""
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path.relative_to(root).as_posix(), node


def too_many(root: Path = PACKAGE) -> list[str]:
    return [f"{where}:{fn.lineno} {fn.name} takes {len(_parameters(fn))} parameters"
            for where, fn in functions(root)
            if len(_parameters(fn)) > MAX_PARAMETERS and (where, fn.name) not in DASH_CALLBACKS]


def test_no_function_takes_more_than_seven_parameters():
    assert too_many() == []


def test_the_allow_list_holds_registered_dash_callbacks_only():
    found = {(where, fn.name): fn for where, fn in functions() if (where, fn.name) in DASH_CALLBACKS}
    assert set(found) == DASH_CALLBACKS  # none stale
    for key, fn in found.items():
        assert _is_dash_callback(fn), f"{key} is not decorated with app.callback"


def test_the_scan_counts_what_it_should(tmp_path):
    (tmp_path / "m.py").write_text(
        "def ok(a, b, c, d, e, f, g): ...\n"
        "def many(a, b, c, d, e, f, g, *, h): ...\n"
        "def star(a, *args, b, c, d, e, f, g, **kw): ...\n"
        "class C:\n    def method(self, a, b, c, d, e, f, g): ...\n"
        "    def wide(self, a, b, c, d, e, f, g, h): ...\n", encoding="utf-8")
    assert too_many(tmp_path) == ["m.py:2 many takes 8 parameters",
                                  "m.py:6 wide takes 8 parameters"]
