"""External references: ``system:object:id`` strings that find a record in any system."""

from __future__ import annotations

import hashlib
import re

from pydantic import BaseModel, ConfigDict, field_validator

#: a system is named by its adapter: lower-case letters and digits (``revops`` for our own records); the one
#: grammar of adapter names (references, workflow IDs, descriptors)
SYSTEM_NAME = re.compile(r"[a-z][a-z0-9]{1,30}")


class ExternalRef(BaseModel):
    """One record in one system, e.g. ``<erp>:invoice:INV-0042``."""

    model_config = ConfigDict(frozen=True)

    system: str
    object: str
    id: str

    @field_validator("system")
    @classmethod
    def _system(cls, value: str) -> str:
        value = value.lower()
        if not SYSTEM_NAME.fullmatch(value):
            raise ValueError(f"system {value!r} is not an adapter name (lower-case letters and digits)")
        return value

    @field_validator("object", "id")
    @classmethod
    def _no_blank(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("must not be blank")
        return value

    def __str__(self) -> str:
        return f"{self.system}:{self.object}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> ExternalRef:
        """Parse ``system:object:id`` (the id may itself contain colons)."""
        parts = text.split(":", 2)
        if len(parts) != 3:
            raise ValueError(f"{text!r} is not of the form system:object:id")
        return cls(system=parts[0], object=parts[1], id=parts[2])


def ref(system: str, obj: str, id_: str) -> str:
    """The string form of a reference, for search attributes and write-backs."""
    return str(ExternalRef(system=system, object=obj, id=id_))


def ownership_marker(idempotency_key: str) -> str:
    """The mark a create writes on the record it makes (Stripe metadata ``revops_created_by``, Xero
    ``AccountNumber``): derived from the create's idempotency key, so every retry of the same run writes
    and recognises the same mark. A record carrying it was made by that run (even when the answer to the
    create was lost) and is that run's to compensate; any other record pre-existed and is left alone."""
    return "revops-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


def contact_key(idempotency_key: str, reference: str) -> str:
    """The key of one contact within a batch create under ``idempotency_key`` (its ownership mark's source)."""
    return f"{idempotency_key}:{reference}"


def is_reference(text: str) -> bool:
    """Whether ``text`` already has the ``system:object:id`` form (else it is a bare ID)."""
    parts = text.strip().split(":", 2)
    return len(parts) == 3 and bool(SYSTEM_NAME.fullmatch(parts[0].lower())) and all(parts[1:])


__all__ = ["ExternalRef", "contact_key", "is_reference", "ownership_marker", "ref"]
