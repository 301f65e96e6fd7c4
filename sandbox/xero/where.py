"""The subset of Xero's ``where`` filter language the emulator understands.

``Field==value`` clauses (also ``!=``, ``>``, ``>=``, ``<``, ``<=``) on dotted paths such as
``Contact.ContactID``, joined by ``AND``/``&&`` and ``OR``/``||`` (AND binds tighter). Values are
``"strings"``, ``Guid("...")``, numbers, ``true``/``false``. String equality ignores case, as
Xero's does. Anything else raises :class:`WhereError` (answered as a ``QueryParseException``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.kit import field_text

_TOKEN = re.compile(
    r'\s*(?:'
    r'(?P<str>"(?:[^"\\]|\\.)*")'
    r'|(?P<guid>[Gg][Uu][Ii][Dd]\(\s*"(?P<gv>[^"]*)"\s*\))'
    r'|(?P<op>==|!=|>=|<=|>|<)'
    r'|(?P<logic>AND\b|OR\b|&&|\|\|)'
    r'|(?P<num>-?\d+(?:\.\d+)?)'
    r'|(?P<bool>true\b|false\b)'
    r'|(?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)'
    r')'
)


class WhereError(ValueError):
    """The filter uses syntax the emulator does not support (or is malformed)."""


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise WhereError(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
        pos = match.end()
        if match.group("str") is not None:
            raw = match.group("str")[1:-1]
            out.append(("value", re.sub(r"\\(.)", r"\1", raw)))
        elif match.group("guid") is not None:
            out.append(("value", match.group("gv").lower()))
        elif match.group("op") is not None:
            out.append(("op", match.group("op")))
        elif match.group("logic") is not None:
            out.append(("logic", "AND" if match.group("logic") in ("AND", "&&") else "OR"))
        elif match.group("num") is not None:
            out.append(("value", Decimal(match.group("num"))))
        elif match.group("bool") is not None:
            out.append(("value", match.group("bool") == "true"))
        else:
            out.append(("path", match.group("path")))
    return out


def _lookup(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _compare(actual: Any, op: str, expected: Any) -> bool:
    if isinstance(expected, bool):
        left: Any = bool(actual)
        right: Any = expected
    elif isinstance(expected, Decimal):
        try:
            left, right = Decimal(str(actual)), expected
        except (InvalidOperation, ValueError):
            return op == "!="
    else:
        left = "" if actual is None else str(actual).lower()
        right = expected.lower()
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    return bool(left <= right)


class Where:
    """A compiled ``where``: a predicate over stored documents, and, when every match must hold one of some
    values at one path (``Reference=="x" AND ...``, ``A=="x" OR A=="y"``), that path and those values (lower
    case), so the store can look them up by index instead of testing every document."""

    def __init__(self, predicate: Callable[[dict[str, Any]], bool],
                 equal: tuple[str, set[str]] | None = None) -> None:
        self.predicate = predicate
        self.equal = equal

    def __call__(self, doc: dict[str, Any]) -> bool:
        return self.predicate(doc)


def compile_where(text: str | None) -> Where:
    """A predicate over stored documents for a ``where`` query parameter."""
    if not text or not text.strip():
        return Where(lambda _doc: True)
    tokens = _tokens(text)
    groups: list[list[tuple[str, str, Any]]] = [[]]
    i = 0
    while i < len(tokens):
        if len(tokens) - i < 3:
            raise WhereError("incomplete expression")
        (k1, path), (k2, op), (k3, value) = tokens[i], tokens[i + 1], tokens[i + 2]
        if (k1, k2, k3) != ("path", "op", "value"):
            raise WhereError("expected <Field> <operator> <value>")
        groups[-1].append((path, op, value))
        i += 3
        if i < len(tokens):
            kind, logic = tokens[i]
            if kind != "logic" or i + 1 >= len(tokens):
                raise WhereError("expected AND or OR between clauses")
            if logic == "OR":
                groups.append([])
            i += 1

    # ``A=="x" OR A=="y" OR ...`` (a batch look-up by reference) is one set membership test per document.
    clauses = [group[0] for group in groups if len(group) == 1]
    if (len(clauses) == len(groups) and len({p for p, _, _ in clauses}) == 1
            and all(op == "==" and isinstance(value, str) for _, op, value in clauses)):
        path, wanted = clauses[0][0], {value.lower() for _, _, value in clauses}

        def any_of(doc: dict[str, Any]) -> bool:
            return field_text(doc, path) in wanted

        return Where(any_of, (path, wanted))

    def predicate(doc: dict[str, Any]) -> bool:
        return any(all(_compare(_lookup(doc, p), o, v) for p, o, v in group) for group in groups)

    equal = next(((p, {v.lower()}) for p, o, v in groups[0] if o == "==" and isinstance(v, str)),
                 None) if len(groups) == 1 else None
    return Where(predicate, equal)
