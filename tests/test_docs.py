"""Docs that stay true: the README's Layout names every module, and nothing it names is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LISTED_ROOTS = ("gru_core", "dashboard", "benchmarks")


def layout_block(readme: str) -> str:
    """The first code block after the '## Layout' heading."""
    section = readme.split("\n## Layout", 1)[1]
    return section.split("```", 2)[1]


def listed_paths(block: str) -> set[str]:
    """Paths named by an indented tree: 'gru_core/' then '  step/' then '    core.py ...'.

    A line names an entry when its first word ends in '/' (a folder) or '.py' (a module);
    deeper-indented lines that do neither continue the description above them.
    """
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []  # (indent, folder name)
    for line in block.splitlines():
        match = re.match(r"( *)(\S+)", line)
        if not match:
            continue
        indent, word = len(match.group(1)), match.group(2)
        if not (word.endswith("/") or word.endswith(".py")):
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "/".join([name for _, name in stack] + [word.rstrip("/")])
        if word.endswith("/"):
            stack.append((indent, word.rstrip("/")))
        else:
            paths.add(path)
    return paths


def project_modules() -> set[str]:
    return {
        p.relative_to(REPO).as_posix()
        for root in LISTED_ROOTS
        for p in (REPO / root).rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts
    }


def test_the_parser_reads_an_indented_tree() -> None:
    block = "pkg/   the package\n  a.py   one\n         more words\n  sub/\n    b.py\n  c.py\n"
    assert listed_paths(block) == {"pkg/a.py", "pkg/sub/b.py", "pkg/c.py"}


def test_readme_layout_lists_every_module_and_no_missing_one() -> None:
    listed = listed_paths(layout_block((REPO / "README.md").read_text(encoding="utf-8")))
    modules = project_modules()
    assert sorted(modules - listed) == [], "modules the README's Layout does not name"
    assert sorted(listed - modules) == [], "the README's Layout names modules that do not exist"
