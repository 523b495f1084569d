"""What shotgraph says names documented places and settings, never its package's own files
(a user of the wheel has no ``runner/data/families.yaml`` to look at)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import runner

PACKAGE = Path(runner.__file__).parent
PACKAGE_PATH = re.compile(r"\brunner/[a-z_]")


def _messages(tree: ast.AST) -> list[tuple[int, str]]:
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_message_names_a_path_inside_the_package() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [
            f"{path.relative_to(PACKAGE)}:{line}: {text!r}"
            for line, text in _messages(tree)
            if PACKAGE_PATH.search(text)
        ]
    assert found == []


def test_every_environment_variable_is_in_the_settings_table() -> None:
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"[\"']((?:SHOTGRAPH|FAL)_[A-Z_]+)[\"']", path.read_text()))
    docs = (PACKAGE.parent / "docs" / "running.md").read_text(encoding="utf-8")
    table = docs.split("## Settings", 1)[1]
    assert names and [name for name in sorted(names) if f"`{name}`" not in table] == []
