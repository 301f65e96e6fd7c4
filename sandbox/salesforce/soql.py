"""A small real SOQL parser and evaluator: the subset the adapter and widely used clients send.

    SELECT field [, field ...] | COUNT()
    FROM Object
    [WHERE condition]          -- AND / OR / NOT, parentheses; = != <> < <= > >= LIKE IN (...) NOT IN (...)
    [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST] [, ...]]
    [LIMIT n] [OFFSET n]

Values: 'strings' (backslash escapes), numbers, true/false/null, date (2024-01-31) and datetime
(2024-01-31T10:00:00Z, .000, +hh:mm) literals. Fields may be relationship paths (``Contact.Email``).
Anything else is a ``MALFORMED_QUERY`` as Salesforce reports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
            "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


class SoqlError(ValueError):
    """A query Salesforce would refuse: ``MALFORMED_QUERY`` (or ``INVALID_FIELD`` when ``code`` says so)."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any = None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError(f"unexpected token: '{text[pos:pos + 20]}'")
        pos = match.end()
        kind = match.lastgroup or ""
        raw = match.group()
        if kind == "space":
            continue
        if kind == "string":
            tokens.append(Token("value", raw, re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)),
                                                     raw[1:-1])))
        elif kind == "datetime":
            tokens.append(Token("value", raw, parse_moment(raw)))
        elif kind == "date":
            tokens.append(Token("value", raw, date.fromisoformat(raw)))
        elif kind == "number":
            tokens.append(Token("value", raw, Decimal(raw)))
        elif kind == "name" and raw.upper() in ("TRUE", "FALSE", "NULL"):
            tokens.append(Token("value", raw, {"TRUE": True, "FALSE": False, "NULL": None}[raw.upper()]))
        elif kind == "name" and raw.upper() in KEYWORDS:
            tokens.append(Token("keyword", raw.upper()))
        else:
            tokens.append(Token(kind, raw))
    return tokens


def parse_moment(text: str) -> datetime:
    """A SOQL or stored datetime (``Z``, ``+0000`` or ``+00:00``) as aware UTC."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", value):
        value = f"{value[:-2]}:{value[-2:]}"
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the tree ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Any


@dataclass(frozen=True)
class Logical:
    op: str  # AND OR NOT
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False
    nulls_last: bool | None = None


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Any = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    count: bool = False


class Parser:
    """Recursive descent over the tokens of one query."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, *texts: str) -> bool:
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        return token is not None and token.kind in ("keyword", "op", "punct") and token.text in texts

    def take(self, kind: str | None = None, text: str | None = None) -> Token:
        if self.pos >= len(self.tokens):
            raise SoqlError(f"unexpected end of query; expected {text or kind}")
        token = self.tokens[self.pos]
        if (kind and token.kind != kind) or (text and token.text != text):
            raise SoqlError(f"unexpected token: '{token.text}'; expected {text or kind}")
        self.pos += 1
        return token

    def parse(self) -> Query:
        self.take("keyword", "SELECT")
        count = False
        fields: list[str] = []
        if self.peek("COUNT"):
            self.take()
            self.take("punct", "(")
            self.take("punct", ")")
            count = True
        else:
            fields.append(self.take("name").text)
            while self.peek(","):
                self.take()
                fields.append(self.take("name").text)
        self.take("keyword", "FROM")
        query = Query(fields=fields, sobject=self.take("name").text, count=count)
        if self.peek("WHERE"):
            self.take()
            query.where = self.condition()
        if self.peek("ORDER"):
            self.take()
            self.take("keyword", "BY")
            query.order.append(self.order())
            while self.peek(","):
                self.take()
                query.order.append(self.order())
        if self.peek("LIMIT"):
            self.take()
            query.limit = self.integer()
        if self.peek("OFFSET"):
            self.take()
            query.offset = self.integer()
        if self.pos != len(self.tokens):
            raise SoqlError(f"unexpected token: '{self.tokens[self.pos].text}'")
        return query

    def integer(self) -> int:
        value = self.take("value").value
        if not isinstance(value, Decimal) or value != int(value) or value < 0:
            raise SoqlError("LIMIT and OFFSET take a non-negative whole number")
        return int(value)

    def order(self) -> Order:
        name = self.take("name").text
        descending = False
        nulls_last: bool | None = None
        if self.peek("ASC", "DESC"):
            descending = self.take().text == "DESC"
        if self.peek("NULLS"):
            self.take()
            nulls_last = self.take("keyword").text == "LAST"
        return Order(name, descending, nulls_last)

    def condition(self) -> Any:
        parts = [self.conjunction()]
        while self.peek("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Logical("OR", tuple(parts))

    def conjunction(self) -> Any:
        parts = [self.factor()]
        while self.peek("AND"):
            self.take()
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else Logical("AND", tuple(parts))

    def factor(self) -> Any:
        if self.peek("NOT"):
            self.take()
            return Logical("NOT", (self.factor(),))
        if self.peek("("):
            self.take()
            inner = self.condition()
            self.take("punct", ")")
            return inner
        name = self.take("name").text
        if self.peek("IN") or self.peek("NOT"):
            negated = self.take().text == "NOT"
            if negated:
                self.take("keyword", "IN")
            return Comparison(name, "NOT IN" if negated else "IN", self.value_list())
        if self.peek("LIKE"):
            self.take()
            return Comparison(name, "LIKE", self.take("value").value)
        op = self.take("op").text
        return Comparison(name, "!=" if op == "<>" else op, self.take("value").value)

    def value_list(self) -> tuple[Any, ...]:
        self.take("punct", "(")
        values = [self.take("value").value]
        while self.peek(","):
            self.take()
            values.append(self.take("value").value)
        self.take("punct", ")")
        return tuple(values)


def parse(text: str) -> Query:
    """The query tree of ``text`` or :class:`SoqlError`."""
    return Parser(text).parse()


# -- evaluation --------------------------------------------------------------------------------------
Resolve = Callable[[dict[str, Any], str], Any]


def comparable(stored: Any, literal: Any) -> tuple[Any, Any]:
    """Both sides in one type: the literal decides (a datetime literal compares stored text as datetimes)."""
    if stored is None or literal is None:
        return stored, literal
    try:
        if isinstance(literal, datetime):
            return parse_moment(str(stored)), literal
        if isinstance(literal, date):
            return date.fromisoformat(str(stored)[:10]), literal
        if isinstance(literal, bool):
            return stored is True or str(stored).lower() == "true", literal
        if isinstance(literal, Decimal):
            return Decimal(str(stored)), literal
    except (ValueError, InvalidOperation):
        raise SoqlError(f"value of type {type(literal).__name__} does not match the field", "INVALID_FIELD") from None
    return str(stored), str(literal)


def _like(stored: Any, pattern: str) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return stored is not None and re.fullmatch(regex, str(stored), re.IGNORECASE | re.DOTALL) is not None


def matches(node: Any, record: dict[str, Any], resolve: Resolve) -> bool:
    """Whether ``record`` satisfies the WHERE tree (``resolve(record, field)`` reads a field or path)."""
    if node is None:
        return True
    if isinstance(node, Logical):
        if node.op == "NOT":
            return not matches(node.parts[0], record, resolve)
        results = (matches(p, record, resolve) for p in node.parts)
        return all(results) if node.op == "AND" else any(results)
    stored = resolve(record, node.field)
    if node.op in ("IN", "NOT IN"):
        inside = any(_equal(stored, v) for v in node.value)
        return inside if node.op == "IN" else not inside
    if node.op == "LIKE":
        return _like(stored, str(node.value))
    if node.op in ("=", "!="):
        return _equal(stored, node.value) == (node.op == "=")
    left, right = comparable(stored, node.value)
    if left is None or right is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[node.op]


def _equal(stored: Any, literal: Any) -> bool:
    left, right = comparable(stored, literal)
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()  # SOQL string comparison is case-insensitive
    return bool(left == right)


def sort_key(order: Order, record: dict[str, Any], resolve: Resolve) -> tuple[int, Any]:
    value = resolve(record, order.field)
    nulls_last = order.nulls_last if order.nulls_last is not None else order.descending
    if value is None:
        return (1 if nulls_last != order.descending else -1, "")
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float):
        return (0, Decimal(str(value)))
    return (0, str(value))


__all__ = ["Comparison", "Logical", "Order", "Query", "SoqlError", "matches", "parse", "parse_moment", "sort_key"]
