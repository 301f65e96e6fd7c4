"""The SuiteQL subset the emulator answers, parsed (tokenizer + recursive descent), never string-matched.

    query    := SELECT columns FROM name [WHERE or] [ORDER BY name [ASC|DESC] {, name [ASC|DESC]}]
    columns  := * | name {, name}
    or       := and {OR and}
    and      := not {AND not}
    not      := NOT not | ( or ) | value compare
    compare  := (= | <> | != | < | <= | > | >=) value | [NOT] LIKE value | [NOT] IN ( value {, value} )
              | IS [NOT] NULL
    value    := name | 'string' | number | TO_DATE ( 'string' , 'format' )

Names and keywords are case-insensitive (columns are the record's fields in lower case). A comparison with a
date converts the other side to a date; two numbers compare as numbers; else as text. NULL matches nothing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class SuiteQLError(ValueError):
    """A query outside the subset, or not SuiteQL at all (answered 400 with ``INVALID_PARAMETER``)."""


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),*])
""", re.VERBOSE)
KEYWORDS = {"select", "from", "where", "and", "or", "not", "like", "in", "is", "null", "order", "by", "asc",
            "desc", "to_date"}


@dataclass(frozen=True)
class Token:
    kind: str  # keyword, name, string, number, op, punct, end
    text: str


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SuiteQLError(f"unexpected character {text[position]!r} at {position}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "ws":
            continue
        if kind == "string":
            tokens.append(Token("string", value[1:-1].replace("''", "'")))
        elif kind == "name" and value.lower() in KEYWORDS:
            tokens.append(Token("keyword", value.lower()))
        elif kind == "name":
            tokens.append(Token("name", value.lower()))
        else:
            tokens.append(Token(kind, value))
    tokens.append(Token("end", ""))
    return tokens


@dataclass(frozen=True)
class Query:
    """A parsed query: the table, the columns (``["*"]`` for all), the filter and the order."""

    table: str
    columns: list[str]
    where: Predicate
    order: list[tuple[str, bool]]  # (column, descending)

    def run(self, rows: list[Row]) -> list[Row]:
        """The matching rows, ordered, with the selected columns."""
        found = [row for row in rows if self.where(row)]
        for column, descending in reversed(self.order):
            found.sort(key=functools.partial(_row_key, column), reverse=descending)
        if self.columns == ["*"]:
            return found
        return [{c: row.get(c) for c in self.columns} for row in found]


_ORACLE_FORMAT = (("YYYY", "%Y"), ("HH24", "%H"), ("MM", "%m"), ("DD", "%d"), ("MI", "%M"), ("SS", "%S"))


def to_date(text: str, oracle_format: str) -> datetime:
    """``TO_DATE(text, format)`` for the Oracle format elements YYYY MM DD HH24 MI SS."""
    pattern = oracle_format.upper()
    for element, directive in _ORACLE_FORMAT:
        pattern = pattern.replace(element, directive)
    try:
        return datetime.strptime(text, pattern)
    except ValueError as exc:
        raise SuiteQLError(f"TO_DATE({text!r}, {oracle_format!r}): {exc}") from exc


def _as_date(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _as_number(value)
    if number is not None:
        return (0, number)
    return (1, "") if value is None else (2, str(value))


def _row_key(column: str, row: Row) -> tuple[int, Any]:
    return _sort_key(row.get(column))


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    if left is None or right is None:
        return None
    if isinstance(left, datetime) or isinstance(right, datetime):
        a, b = _as_date(left), _as_date(right)
        return None if a is None or b is None else (a, b)
    a_num, b_num = _as_number(left), _as_number(right)
    if a_num is not None and b_num is not None:
        return a_num, b_num
    return str(left), str(right)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b), "<>": lambda a, b: bool(a != b), "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b), "<=": lambda a, b: bool(a <= b), ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def _like(pattern: str) -> re.Pattern[str]:
    out = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.compile(out, re.DOTALL)


def _column(name: str, row: Row) -> Any:
    return row.get(name)


def _constant(value: Any, _row: Row) -> Any:
    return value


def _always(_row: Row) -> bool:
    return True


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> Token | None:
        token = self.peek()
        if token.kind == kind and (text is None or token.text == text):
            return self.take()
        return None

    def expect(self, kind: str, text: str | None = None) -> Token:
        token = self.accept(kind, text)
        if token is None:
            got = self.peek()
            raise SuiteQLError(f"expected {text or kind}, found {got.text or 'the end'!r}")
        return token

    def query(self) -> Query:
        self.expect("keyword", "select")
        columns = ["*"] if self.accept("punct", "*") else self.names()
        self.expect("keyword", "from")
        table = self.expect("name").text
        where: Predicate = _always
        if self.accept("keyword", "where"):
            where = self.disjunction()
        order: list[tuple[str, bool]] = []
        if self.accept("keyword", "order"):
            self.expect("keyword", "by")
            while True:
                column = self.expect("name").text
                descending = bool(self.accept("keyword", "desc"))
                if not descending:
                    self.accept("keyword", "asc")
                order.append((column, descending))
                if not self.accept("punct", ","):
                    break
        self.expect("end")
        return Query(table=table, columns=columns, where=where, order=order)

    def names(self) -> list[str]:
        names = [self.expect("name").text]
        while self.accept("punct", ","):
            names.append(self.expect("name").text)
        return names

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.accept("keyword", "or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.accept("keyword", "and"):
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def negation(self) -> Predicate:
        if self.accept("keyword", "not"):
            inner = self.negation()
            return lambda row: not inner(row)
        if self.accept("punct", "("):
            inner = self.disjunction()
            self.expect("punct", ")")
            return inner
        return self.comparison()

    def value(self) -> Callable[[Row], Any]:
        token = self.take()
        if token.kind == "name":
            return functools.partial(_column, token.text)
        if token.kind == "string":
            return functools.partial(_constant, token.text)
        if token.kind == "number":
            return functools.partial(_constant, Decimal(token.text))
        if token.kind == "keyword" and token.text == "to_date":
            self.expect("punct", "(")
            text = self.expect("string").text
            self.expect("punct", ",")
            moment = to_date(text, self.expect("string").text)
            self.expect("punct", ")")
            return lambda _row: moment
        raise SuiteQLError(f"expected a column, a string, a number or TO_DATE, found {token.text or 'the end'!r}")

    def comparison(self) -> Predicate:
        left = self.value()
        if self.accept("keyword", "is"):
            negated = bool(self.accept("keyword", "not"))
            self.expect("keyword", "null")
            return lambda row: (left(row) is None) != negated
        negated = bool(self.accept("keyword", "not"))
        if self.accept("keyword", "like"):
            right = self.value()

            def like(row: Row) -> bool:
                value, pattern = left(row), right(row)
                if value is None or pattern is None:
                    return False
                return bool(_like(str(pattern)).fullmatch(str(value))) != negated

            return like
        if self.accept("keyword", "in"):
            self.expect("punct", "(")
            options = [self.value()]
            while self.accept("punct", ","):
                options.append(self.value())
            self.expect("punct", ")")

            def within(row: Row) -> bool:
                value = left(row)
                pairs = [_comparable(value, option(row)) for option in options]
                return any(p is not None and p[0] == p[1] for p in pairs) != negated

            return within
        if negated:
            raise SuiteQLError("NOT must be followed by LIKE or IN here")
        op = self.expect("op").text
        right = self.value()
        compare = _COMPARE[op]

        def compared(row: Row) -> bool:
            pair = _comparable(left(row), right(row))
            return pair is not None and compare(*pair)

        return compared


def parse(text: str) -> Query:
    """Parse one SuiteQL query of the subset, or raise :class:`SuiteQLError`."""
    return _Parser(text).query()


__all__ = ["Query", "SuiteQLError", "Token", "parse", "to_date", "tokenize"]
