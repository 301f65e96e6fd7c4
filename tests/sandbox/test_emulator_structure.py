"""Fitness test: the emulators stay split into small handlers over one state object.

A vendor emulator is a set of resource classes with short handlers and a ``register()`` that a
``create_app`` composes (as ``sandbox/xero`` does), never one route-table closure of hundreds of
lines. Nested functions count towards the function that holds them, so a ``create_app`` that defines
its routes inline is measured with all of them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"
#: the longest a function or method in ``sandbox/`` may be, in source lines from ``def`` to its last line
#: (decorators not counted, nested functions counted with their parent)
MAX_FUNCTION_LINES = 80


def _functions(path: Path) -> list[tuple[str, int, int]]:
    """Every function and method in ``path``: (qualified name, first line, length in lines)."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                end = child.end_lineno or child.lineno
                found.append((name, child.lineno, end - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def _sources() -> list[Path]:
    return sorted(SANDBOX.rglob("*.py"))


def test_emulator_structure_finds_the_emulators() -> None:
    """The test looks where the emulators are (a moved folder must not make it pass vacuously)."""
    names = {p.relative_to(SANDBOX).as_posix() for p in _sources()}
    assert {"kit.py", "hubspot/app.py", "ironclad/app.py", "stripe/app.py", "xero/app.py"} <= names
    assert sum(len(_functions(p)) for p in _sources()) > 200


def test_emulator_structure_measures_nested_functions_with_their_parent(tmp_path: Path) -> None:
    """A route-table closure is measured whole: its inline handlers do not hide its length."""
    handlers = "\n".join(f"    async def handler_{i}() -> int:\n        return {i}\n" for i in range(50))
    source = tmp_path / "closure.py"
    source.write_text(f"def create_app() -> None:\n{handlers}\n\nclass Api:\n    def small(self) -> int:\n"
                      "        return 1\n", encoding="utf-8")
    lengths = {name: length for name, _line, length in _functions(source)}
    assert lengths["create_app"] > MAX_FUNCTION_LINES
    assert lengths["create_app.handler_0"] == 2
    assert lengths["Api.small"] == 2


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.relative_to(SANDBOX).as_posix())
def test_emulator_functions_are_short(path: Path) -> None:
    """No function or method in ``sandbox/`` is longer than ``MAX_FUNCTION_LINES``."""
    too_long = [f"{path.relative_to(SANDBOX.parent)}:{line} {name} has {length} lines"
                for name, line, length in _functions(path) if length > MAX_FUNCTION_LINES]
    assert not too_long, f"split these into resource classes with small handlers (limit {MAX_FUNCTION_LINES}):\n" \
        + "\n".join(too_long)
