"""A test that asserts nothing cannot fail: every test function states what it expects."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# an assert, pytest.raises, or one of our helpers that asserts (eventually waits for a predicate and fails)
EXPECTING = ("assert", "raises", "eventually", "expect", "check")


def test_every_test_function_asserts_something() -> None:
    silent = []
    for path in sorted(TESTS.rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                if not any(word in ast.unparse(node) for word in EXPECTING):
                    silent.append(f"{path.relative_to(TESTS)}::{node.name}")
    assert silent == []
