"""Declarative wire tables: the mappers of vendors whose mapping is code (Stripe, Xero) build their payloads
and read their documents from these tables, and ``connectors/fieldmap.py`` renders the same tables into
``docs/field-mapping.md``; so a change to a mapper is a change to the table, and so to the documentation.

A table is a tuple of :class:`Wire` rows. An outgoing table is turned into a payload by :func:`build` (rows in
order, dotted vendor paths make nested objects, a row whose value is left out by its ``omit`` rule is not
sent); an incoming table into the keyword arguments of a canonical model by :func:`read` (``canonical`` names
``Model.field``; the field is set from the row's value).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

S = TypeVar("S")

NOT_MAPPED = "-"


#: a value that is not there (``build`` leaves it out whatever the row's rule)
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()


def never(_value: Any) -> bool:
    """Send the value whatever it is (``None`` included)."""
    return False


def _is_none(value: Any) -> bool:
    return value is None


def falsy(value: Any) -> bool:
    """Leave out empty values (``None``, ``""``, ``0`` is kept only where the row says so)."""
    return not value


def blank(value: Any) -> bool:
    """Leave out ``None`` and the empty string (Stripe metadata)."""
    return value is None or str(value) == ""


@dataclass(frozen=True)
class Wire(Generic[S]):
    """One mapped field. ``canonical`` is ``Model.field`` (``-`` for a constant of the vendor's protocol);
    ``vendor`` the vendor's field as a dotted path; ``value`` computes what is sent (outgoing tables) or the
    canonical value read (incoming tables) from the table's source; ``omit`` leaves a value out of a payload."""

    canonical: str
    vendor: str
    transform: str
    value: Callable[[S], Any]
    entity: str = ""
    omit: Callable[[Any], bool] = field(default=_is_none)
    documented: bool = True  # False for a container row that only opens a nested object

    @property
    def field(self) -> str:
        return self.canonical.split(".", 1)[1] if "." in self.canonical else self.canonical


def build(table: Iterable[Wire[S]], source: S) -> dict[str, Any]:
    """The payload an outgoing table makes from ``source``, keys in the table's order."""
    payload: dict[str, Any] = {}
    for row in table:
        value = row.value(source)
        if value is ABSENT or row.omit(value):
            continue
        *parents, leaf = row.vendor.split(".")
        target = payload
        for name in parents:
            target = target.setdefault(name, {})
        target[leaf] = value
    return payload


def read(table: Iterable[Wire[S]], source: S) -> dict[str, Any]:
    """The canonical model's keyword arguments an incoming table reads from ``source``."""
    return {row.field: row.value(source) for row in table}


def paths(payload: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every leaf key of a payload as a dotted path (a nested object's keys under its own; lists are leaves)."""
    found: list[str] = []
    for key, value in payload.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            found += paths(value, f"{path}.")
        else:
            found.append(path)
    return found


def vendor_paths(table: Iterable[Wire[Any]]) -> set[str]:
    """The vendor paths a table may send."""
    return {row.vendor for row in table}


__all__ = ["ABSENT", "NOT_MAPPED", "never", "Wire", "blank", "build", "falsy", "paths", "read", "vendor_paths"]
