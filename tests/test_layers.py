"""The package's shape, enforced: layers that import only downwards, the data side free of
torch, plotly and Dash only where they draw, files written only by the store and the
pipeline, and a top level a newcomer can read (docs/architecture.md draws it)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "trajviz"

# Bottom to top: a module may import from its own layer and the layers before it.
LAYERS = ("spec", "data", "store", "problem", "kernels", "engine", "pipeline", "viewmodel",
          "figures", "app", "cli")
TORCH_FREE = ("spec", "data", "store", "viewmodel", "figures", "app")
PLOTLY = ("figures", "app")  # only these draw
DASH = ("app",)
WRITERS = ("store", "pipeline")  # the only layers that write files
# Writes outside those two, each with its reason: the C kernels' build cache (a cache under
# XDG_CACHE_HOME, not data), and the log handle a background job's child process inherits.
WRITE_EXCEPTIONS = {"kernels/native.py", "app/jobs.py"}
WRITE_CALLS = re.compile(r"\.write_text\(|\.write_bytes\(|np\.savez|os\.replace\(|"
                         r"open\([^)]*,\s*['\"](?:w|wb|a|ab|x|xb)['\"]")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, at the top and inside functions alike."""
    found = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: None if is_package else -1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in the module itself
                found.add(module)
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "trajviz" and len(parts) > 1 and parts[1] in LAYERS else None


def test_the_top_level_is_the_layers():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 15, entries
    assert set(LAYERS) <= set(entries)
    loose = [e for e in entries if e.endswith(".py") and e not in ("__init__.py", "__main__.py")]
    assert loose == [], "modules belong in a layer package"


def test_imports_point_down_the_layers():
    wrong = []
    for name, path in MODULES.items():
        here = _layer(name)
        if here is None:
            continue
        for target in _imports(name, path):
            there = _layer(target)
            if there is not None and LAYERS.index(there) > LAYERS.index(here):
                wrong.append(f"{name} -> {target}")
    assert wrong == []


def test_the_rule_sees_a_violation():
    """The check itself: a module of a low layer that imports a higher one is caught."""
    assert _layer("trajviz.app.layout") == "app" and _layer("trajviz.spec.config") == "spec"
    assert LAYERS.index(_layer("trajviz.app.layout")) > LAYERS.index(_layer("trajviz.data.run"))
    assert "trajviz.engine.inner" in _imports("trajviz.pipeline.experiment",
                                              MODULES["trajviz.pipeline.experiment"])


@pytest.mark.parametrize(("library", "allowed"), [("torch", tuple(set(LAYERS) - set(TORCH_FREE))),
                                                  ("plotly", PLOTLY), ("dash", DASH)])
def test_heavy_libraries_stay_in_their_layers(library, allowed):
    wrong = sorted(name for name, path in MODULES.items()
                   if _layer(name) not in (*allowed, None)
                   and any(m == library or m.startswith(library + ".")
                           for m in _imports(name, path)))
    assert wrong == []


def test_only_the_store_and_the_pipeline_write_files():
    wrong = []
    for name, path in MODULES.items():
        rel = path.relative_to(PACKAGE).as_posix()
        if _layer(name) in WRITERS or rel in WRITE_EXCEPTIONS:
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WRITE_CALLS.search(line.split("#")[0]):
                wrong.append(f"{rel}:{i}: {line.strip()}")
    assert wrong == []


def test_the_import_cycle_tool_finds_none():
    tool = PACKAGE.parents[1] / "shared" / "tools" / "import_cycles.py"
    if not tool.is_file():
        pytest.skip("../shared/tools/import_cycles.py is not beside this checkout")
    import subprocess
    import sys
    out = subprocess.run([sys.executable, str(tool), "trajviz"], cwd=PACKAGE.parent,
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "import_cycles: 0", out.stdout


def test_no_module_imports_itself_back():
    """No cycles among trajviz's modules, imports inside functions counted (the same rule as
    ../shared/tools/import_cycles.py, checked here without it)."""
    graph = {name: {t for t in _imports(name, path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first: not an edge of the code's own
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_architecture_doc_places_every_module():
    """docs/architecture.md's module map names every module, under its layer."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index("## Module map")
    section = text[start:text.index("\n## ", start + 1)]
    missing = []
    for layer in LAYERS:
        block = section[section.index(f"      {layer}/\n"):]
        nxt = [block.find(f"      {other}/\n") for other in LAYERS if other != layer]
        block = block[:min([i for i in nxt if i > 0], default=len(block))]
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            rel = path.relative_to(PACKAGE / layer).as_posix()
            if not re.search(rf"^\s+{re.escape(rel)}\s", block, flags=re.M):
                missing.append(f"{layer}/{rel}")
    assert missing == []
