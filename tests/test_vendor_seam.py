"""Fitness rules of the vendor seam: a vendor lives only in its connector package.

Stated as intended, not as today's imports happen to be:
- no string literal (docstrings and comments aside) names a vendor outside ``connectors/<vendor>/``, the
  emulators under ``sandbox/``, the tests and the generated docs;
- no vendor package is imported above ``connectors/`` except through the registry (``connectors/registry.py``
  lists the descriptors; everything else iterates it);
- the worker imports no CLI module.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from connectors.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]
#: the vendors of this build and those the round's issues add: none of them may be named above the seam
VENDORS = sorted({s.name for s in default_registry().all()} | {"salesforce", "docusign", "netsuite"})
VENDOR_WORDS = re.compile("|".join(VENDORS), re.IGNORECASE)
EXEMPT_DIRS = {"tests", "sandbox", "docs", ".venv", "node_modules", ".git", ".data", "tools"}


def _vendor_package(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[1] if len(parts) > 2 and parts[0] == "connectors" and parts[1] in VENDORS else None


def _sources() -> list[Path]:
    return [p for p in ROOT.rglob("*.py")
            if not EXEMPT_DIRS & set(p.relative_to(ROOT).parts) and _vendor_package(p) is None]


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    # a string standing alone as a statement (an attribute's docstring) is documentation too
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            found.add(id(node.value))
    return found


def vendor_literals(path: Path) -> list[str]:
    """``file:line: 'text'`` for every non-docstring string literal of ``path`` that names a vendor."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                and VENDOR_WORDS.search(node.value)):
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:60]!r}")
    return hits


def test_vendor_seam_no_vendor_named_above_the_connectors() -> None:
    hits = [hit for path in _sources() for hit in vendor_literals(path)]
    assert not hits, f"{len(hits)} string literal(s) name a vendor outside its package:\n" + "\n".join(hits)


def test_vendor_seam_the_rule_sees_a_vendor_literal(tmp_path: Path) -> None:
    """The scanner is not blind: a literal is caught, a docstring and a comment are not."""
    sample = ROOT / "canonical" / "_seam_probe_tmp.py"
    sample.write_text('"""Docs may name Xero."""\n# so may comments: Stripe\nKEY = "q2c-hubspot-"\n')
    try:
        assert vendor_literals(sample) == ["canonical/_seam_probe_tmp.py:3: 'q2c-hubspot-'"]
    finally:
        sample.unlink()


def _imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_vendor_seam_vendor_packages_are_reached_only_through_the_registry() -> None:
    allowed = {ROOT / "connectors" / "registry.py"}
    offenders = []
    for path in _sources():
        if path in allowed:
            continue
        for module in _imported_modules(path):
            parts = module.split(".")
            if len(parts) >= 2 and parts[0] == "connectors" and parts[1] in VENDORS:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(sorted(offenders))


def test_vendor_seam_the_worker_imports_no_cli_module() -> None:
    imported = _imported_modules(ROOT / "worker.py")
    assert not {m for m in imported if m == "cli" or m.startswith("cli.")}, imported
