"""The shape issue 18 set for the code users read and extend: no class in `sources/` or
`pipelines/` longer than 300 lines, no function longer than 60."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.repo import ROOT

MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 60
CHECKED = ("sources", "pipelines")


def definitions(source: str) -> Iterator[tuple[str, str, int]]:
    """(kind, name, lines) of every class and function in `source`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            yield kind, node.name, (node.end_lineno or node.lineno) - node.lineno + 1


def too_long(source: str) -> list[str]:
    limits = {"class": MAX_CLASS_LINES, "function": MAX_FUNCTION_LINES}
    return [
        f"{kind} {name}: {lines} lines"
        for kind, name, lines in definitions(source)
        if lines > limits[kind]
    ]


def python_files() -> list[Path]:
    return sorted(p for top in CHECKED for p in (ROOT / top).rglob("*.py"))


@pytest.mark.parametrize("path", python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_class_or_function_is_too_long(path: Path) -> None:
    assert not too_long(path.read_text()), path


def test_the_check_catches_a_long_function_and_a_long_class() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert too_long(f"def f():\n{body}\n") == [f"function f: {MAX_FUNCTION_LINES + 1} lines"]
    methods = "\n".join(f"    def m{i}(self):\n        return {i}\n" for i in range(110))
    [finding] = too_long(f"class C:\n{methods}")
    assert finding.startswith("class C: ")
