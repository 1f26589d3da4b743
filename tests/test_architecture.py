"""The tree shows the architecture (ARCHITECTURE.md): one-way layers, no import cycles.

Every module of ``gru_core`` and ``dashboard`` belongs to a *unit*: a sub-package
(``gru_core/step/``) or a top-level module (``gru_core/config.py``). ``LAYERS`` orders the units
from the bottom up; a module may import from its own unit and from the units below it, never
from a unit above it. ``dashboard`` sits above all of ``gru_core``. Imports inside functions
count as much as those at the top: a cycle hidden in a function is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("gru_core", "dashboard")

# Bottom to top. A unit may import its own modules and the units listed before it.
LAYERS: tuple[str, ...] = (
    "gru_core.i18n",  # the message catalogue: every unit may word its messages
    "gru_core.config",
    "gru_core.data",
    "gru_core.sources",
    "gru_core.perplexity",
    "gru_core.limits",
    "gru_core.model",
    "gru_core.step",
    "gru_core.theory",
    "gru_core.memory",
    "gru_core.run",
    "gru_core.exports",  # the command lines' CSV files
    "gru_core.interrupt",  # Ctrl-C as a request the command lines poll
    "gru_core.cli",  # python -m gru_core; its flag builder serves the sweep's command line too
    "gru_core.sweep",
    "gru_core.__main__",
    "gru_core",  # the package's __init__: its public names
    "dashboard.charts",
    "dashboard.runs",
    "dashboard.worksheet",  # the worksheet: runs and maps -> offline HTML and Markdown
    "dashboard.session",
    "dashboard.views",
    "dashboard.sidebar",
    "dashboard.investigate",  # the investigations: steps over the control table, checks
    "dashboard.screens",
    "dashboard.app",
    "dashboard",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for package in PACKAGES
        for p in sorted((REPO / package).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def unit_of(module: str) -> str:
    """The layer unit of a module: its sub-package or its own top-level name."""
    parts = module.split(".")
    return ".".join(parts[:2])


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a module imports (resolved to modules, not attributes)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            bases = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in bases:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    units = {unit_of(m) for m in project_modules()}
    assert units - set(LAYERS) == set(), "add the new unit to LAYERS (and ARCHITECTURE.md)"
    assert {"gru_core.step", "gru_core.run", "dashboard.views"} <= units  # the scan sees the tree


def test_scanner_resolves_relative_and_function_level_imports(tmp_path: Path) -> None:
    modules = {"gru_core.a": tmp_path / "a.py", "gru_core.b": tmp_path / "b.py"}
    source = "def f():\n    from .b import g\n"
    modules["gru_core.a"].write_text(source)
    assert imports_of("gru_core.a", modules["gru_core.a"], modules) == {"gru_core.b"}
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("module", sorted(project_modules()))
def test_imports_go_down_the_layers(module: str) -> None:
    rank = {unit: i for i, unit in enumerate(LAYERS)}
    own = rank[unit_of(module)]
    upward = sorted(
        target
        for target in import_graph_cached()[module]
        if rank[unit_of(target)] > own and unit_of(target) != unit_of(module)
    )
    assert not upward, f"{module} ({unit_of(module)}) imports from a layer above it: {upward}"


_GRAPH: dict[str, set[str]] = {}


def import_graph_cached() -> dict[str, set[str]]:
    if not _GRAPH:
        _GRAPH.update(import_graph())
    return _GRAPH


MAX_MODULE_LINES = 350
MAX_CLASS_LINES = 250


@pytest.mark.parametrize("module", sorted(project_modules()))
def test_modules_and_classes_stay_small(module: str) -> None:
    path = project_modules()[module]
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: split it by responsibility"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, f"class {node.name} in {path.name}: {lines} lines"
