"""Salesforce record IDs: 15 characters (case-sensitive) or 18 (the 15 plus a three-character checksum that makes
the ID safe in case-insensitive places). We always keep and send the 18-character form, and workflow IDs are built
from it, so a 15-character ID copied from the UI and the 18-character one the API returns name one workflow.

The suffix: split the 15 characters into three groups of five; for each group, a 5-bit number whose bit *i* is set
when character *i* is an upper-case letter; that number indexes ``A..Z0..5``.
"""

from __future__ import annotations

import re

from connectors.identifiers import InvalidIdentifier

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
ID15 = re.compile(r"[a-zA-Z0-9]{15}")
#: an 18-character ID (its checksum is checked by :func:`normalise_id`)
ID18 = re.compile(r"[a-zA-Z0-9]{18}")
#: what ``find`` and the webhook parser accept before normalising: 15 or 18 characters
RECORD_ID = re.compile(r"[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?")


def checksum(id15: str) -> str:
    """The three-character suffix of a 15-character ID."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, char in enumerate(id15[start:start + 5]) if "A" <= char <= "Z")
        suffix += _SUFFIX[bits]
    return suffix


def to_18(value: str) -> str:
    """The 18-character form of a 15- or 18-character ID; ``ValueError`` when it is neither or its checksum is
    wrong (a mistyped or case-mangled ID)."""
    text = value.strip() if isinstance(value, str) else ""
    if ID15.fullmatch(text):
        return text + checksum(text)
    if ID18.fullmatch(text):
        if text[15:].upper() != checksum(text[:15]):
            raise ValueError(f"{text!r}: checksum {text[15:]!r} does not match {checksum(text[:15])!r}")
        return text[:15] + text[15:].upper()
    raise ValueError(f"{value!r} is not a 15- or 18-character Salesforce ID")


def normalise_id(value: object, what: str = "Salesforce ID") -> str:
    """:func:`to_18`, raising :class:`InvalidIdentifier` (a ``Rejected``) for anything else."""
    try:
        return to_18(value)  # type: ignore[arg-type]
    except (ValueError, AttributeError):
        raise InvalidIdentifier(what, value, vendor="salesforce") from None


__all__ = ["ID15", "ID18", "RECORD_ID", "checksum", "normalise_id", "to_18"]
