"""The one-way layering (ARCHITECTURE.md): gru_core never imports streamlit; only its CLI
prints; in the dashboard only the Streamlit layer calls ``st.*``, and every chart is drawn by
one function."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "gru_core"
DASHBOARD = REPO / "dashboard"
PRINT_ALLOWED = {CORE / "cli.py", CORE / "sweep" / "cli.py"}  # the two command-line entry points
# The dashboard's Streamlit layer: the entry point, the pages, the sidebar (it draws the
# controls) and the views. charts/ (data -> figure), runs/ (saved runs, stores) and session/
# (a session's Lab, sharing, guards) are plain Python, testable without Streamlit; the
# ``st.cache_resource`` wrappers that hold their objects live in screens/resources.py.
STREAMLIT_LAYER = (
    DASHBOARD / "app.py",
    DASHBOARD / "screens",
    DASHBOARD / "sidebar",
    DASHBOARD / "views",
)
CHART_DRAWER = DASHBOARD / "views" / "display.py"  # display.chart: the room's look, once


def _python_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.py"))


def _imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _print_calls(tree: ast.AST) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]


def _attribute_uses(tree: ast.AST, name: str) -> list[int]:
    """Lines that name ``name`` as an attribute (``st.plotly_chart``, ``x.plotly_chart``) or
    import it (``from streamlit import plotly_chart``)."""
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == name]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == name for a in node.names):
            lines.append(node.lineno)
    return sorted(lines)


def _in_streamlit_layer(path: Path) -> bool:
    return any(path == p or p in path.parents for p in STREAMLIT_LAYER)


def test_scanners_detect_what_they_look_for() -> None:
    tree = ast.parse("import streamlit as st\nfrom streamlit.x import y\nprint(1)\n")
    assert {"streamlit", "streamlit.x"} <= _imported_modules(tree)
    assert _print_calls(tree) == [3]
    drawn = ast.parse("st.plotly_chart(f)\nfrom streamlit import plotly_chart\nc.plotly_chart\n")
    assert _attribute_uses(drawn, "plotly_chart") == [1, 2, 3]
    assert _in_streamlit_layer(DASHBOARD / "views" / "memory.py")
    assert not _in_streamlit_layer(DASHBOARD / "charts" / "training.py")
    assert not _in_streamlit_layer(DASHBOARD / "session" / "lab.py")


def test_core_has_python_files() -> None:
    files = _python_files(CORE)
    assert CORE / "model" / "cells.py" in files and CORE / "step" / "core.py" in files


@pytest.mark.parametrize("path", _python_files(CORE), ids=lambda p: p.name)
def test_core_does_not_import_streamlit(path: Path) -> None:
    modules = _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
    bad = sorted(m for m in modules if m == "streamlit" or m.startswith("streamlit."))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


@pytest.mark.parametrize(
    "path",
    [p for p in _python_files(DASHBOARD) if not _in_streamlit_layer(p)],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_only_the_streamlit_layer_uses_streamlit(path: Path) -> None:
    """Only app.py, screens/, sidebar/ and views/ import streamlit (and so call ``st.*``);
    charts/, runs/ and session/ take and return plain objects (STYLE rules 6 and 7)."""
    modules = _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
    bad = sorted(m for m in modules if m == "streamlit" or m.startswith("streamlit."))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}: move it to screens/ or views/"


def test_the_plain_dashboard_layers_exist() -> None:
    plain = [p for p in _python_files(DASHBOARD) if not _in_streamlit_layer(p)]
    folders = {p.parent.name for p in plain}
    assert {"charts", "runs", "session"} <= folders  # a move cannot make the scan vacuous


def test_every_chart_is_drawn_by_display_chart() -> None:
    """``st.plotly_chart`` appears in views/display.py only (``display.chart``: one look,
    projector mode included, for every figure)."""
    found = {
        str(path.relative_to(REPO)): lines
        for path in _python_files(DASHBOARD)
        if (lines := _attribute_uses(ast.parse(path.read_text(encoding="utf-8")), "plotly_chart"))
    }
    assert list(found) == [str(CHART_DRAWER.relative_to(REPO))], found


@pytest.mark.parametrize(
    "path",
    [p for p in _python_files(CORE, DASHBOARD) if p not in PRINT_ALLOWED],
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_no_print_outside_cli(path: Path) -> None:
    lines = _print_calls(ast.parse(path.read_text(encoding="utf-8")))
    assert not lines, f"{path.relative_to(REPO)} calls print() on lines {lines}"


def test_importing_core_does_not_load_streamlit() -> None:
    code = "import gru_core, gru_core.run.job, gru_core.cli, sys; print('streamlit' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
