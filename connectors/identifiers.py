"""Identifiers and bodies from outside, checked at the connector boundary.

- :func:`checked_id` / :func:`segment`: a vendor ID must have the vendor's documented form (HubSpot
  numeric IDs, Stripe ``prefix_`` IDs, Xero GUIDs; otherwise URL-safe characters only) before it is used,
  and it goes into a URL path only quoted (:func:`segment`), so ``../../properties/deals`` can never
  reach another path. A bad one raises :class:`InvalidIdentifier`, a ``Rejected``: activities turn it into
  a non-retryable error that the workflow shows, never an endless retry.
- :func:`payload_id` is the same check for webhook bodies, raising ``PayloadInvalid`` (a 400).
- :func:`load_json`: a webhook body parsed with bounds (nesting depth checked *before* the parser
  recurses), every failure a ``PayloadInvalid``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from connectors.errors import PayloadInvalid, Rejected

#: HubSpot object, event and portal IDs are numbers
NUMERIC_ID = re.compile(r"[0-9]{1,20}")
#: Xero ContactID, InvoiceID, ProjectID, tenant IDs... are GUIDs
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
#: Stripe IDs: a lower-case object prefix, an underscore, letters, digits (and underscores: test fixtures)
PREFIXED_ID = re.compile(r"[a-z]{2,10}_[A-Za-z0-9_]{1,250}")
#: anything else: URL-unreserved characters, bounded
SAFE_ID = re.compile(r"[A-Za-z0-9_.:~-]{1,255}")

MAX_JSON_DEPTH = 32


def prefixed_id(*prefixes: str) -> re.Pattern[str]:
    """The pattern of Stripe IDs with one of ``prefixes`` (e.g. ``prefixed_id("cus")``)."""
    return re.compile(rf"(?:{'|'.join(map(re.escape, prefixes))})_[A-Za-z0-9_]{{1,250}}")


def shown(value: object, limit: int = 40) -> str:
    """A value safe to put in a message or a log line: printable, bounded."""
    text = value if isinstance(value, str) else repr(value)
    clean = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return clean + ("…" if len(text) > limit else "")


class InvalidIdentifier(Rejected):
    """An ID that does not have the vendor's form: refused before any request is made."""

    def __init__(self, what: str, value: object, *, vendor: str = "") -> None:
        super().__init__(f"invalid {what} {shown(value)!r}", vendor=vendor)
        self.what = what


def _text(value: object, pattern: re.Pattern[str]) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and pattern is NUMERIC_ID:
        value = str(value)
    if not isinstance(value, str) or value in (".", "..") or not pattern.fullmatch(value):
        return None
    return value


def checked_id(value: object, what: str, pattern: re.Pattern[str] = SAFE_ID, *, vendor: str = "") -> str:
    """``value`` as an ID of ``pattern``'s form, or :class:`InvalidIdentifier`."""
    text = _text(value, pattern)
    if text is None:
        raise InvalidIdentifier(what, value, vendor=vendor)
    return text


def segment(value: object, what: str, pattern: re.Pattern[str] = SAFE_ID, *, vendor: str = "") -> str:
    """A checked ID quoted for one URL path segment."""
    return quote(checked_id(value, what, pattern, vendor=vendor), safe="")


def payload_id(value: object, field: str, pattern: re.Pattern[str] = SAFE_ID) -> str:
    """An ID from a webhook body, or ``PayloadInvalid`` naming the field."""
    text = _text(value, pattern)
    if text is None:
        raise PayloadInvalid(field, f"not a valid ID: {shown(value)!r}")
    return text


def _depth(body: bytes, limit: int) -> int:
    """The deepest nesting of ``[``/``{`` outside strings, stopping once past ``limit``."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def load_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a webhook body with bounds: nesting at most ``max_depth`` (checked before parsing), numbers
    within Python's digit limit; anything else is ``PayloadInvalid("body", ...)``."""
    if _depth(body, max_depth) > max_depth:
        raise PayloadInvalid("body", f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise PayloadInvalid("body", f"not JSON: {shown(str(exc), 120)}") from exc


def bounded_count(items: list[Any], field: str, limit: int) -> list[Any]:
    """``items`` unless there are more than ``limit`` (a delivery of too many events is refused)."""
    if len(items) > limit:
        raise PayloadInvalid(field, f"{len(items)} events, more than the {limit} a delivery may carry")
    return items


__all__ = ["NUMERIC_ID", "MAX_JSON_DEPTH", "SAFE_ID", "PREFIXED_ID", "UUID", "InvalidIdentifier", "bounded_count",
           "checked_id", "load_json", "payload_id", "segment", "shown", "prefixed_id"]
