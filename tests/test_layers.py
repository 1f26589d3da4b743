"""The one-way layering (ARCHITECTURE.md): gru_core never imports streamlit; only its CLI prints."""

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


def test_scanners_detect_what_they_look_for() -> None:
    tree = ast.parse("import streamlit as st\nfrom streamlit.x import y\nprint(1)\n")
    assert {"streamlit", "streamlit.x"} <= _imported_modules(tree)
    assert _print_calls(tree) == [3]


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
