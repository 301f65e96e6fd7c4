"""Stripe's request bodies: ``application/x-www-form-urlencoded`` with bracket nesting.

``{"metadata": {"k": "v"}, "items": [{"price": "p"}]}`` becomes
``metadata[k]=v&items[0][price]=p``. Booleans are ``true``/``false``, ``None`` is left out, dates
and datetimes become Unix timestamps. The one encoder every Stripe request goes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode


def flatten(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of ``params`` in Stripe's bracket syntax, in insertion order."""
    pairs: list[tuple[str, str]] = []

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                walk(f"{key}[{sub_key}]", sub_value)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):  # before int: bool is an int
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=UTC)
            pairs.append((key, str(int(stamp.timestamp()))))
        elif isinstance(value, date):
            pairs.append((key, str(unix_midnight(value))))
        elif isinstance(value, int | str | Decimal):
            pairs.append((key, str(value)))
        else:
            raise TypeError(f"cannot form-encode {key}={value!r} ({type(value).__name__})")

    for name, item in params.items():
        walk(name, item)
    return pairs


def encode_form(params: Mapping[str, Any]) -> str:
    """``params`` as a Stripe form body."""
    return urlencode(flatten(params))


def unix_midnight(day: date) -> int:
    """00:00 UTC of ``day`` as a Unix timestamp (how calendar dates are sent to Stripe)."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
