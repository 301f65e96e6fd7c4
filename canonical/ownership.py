"""Which system of record owns which field, and a write guard that honours it.

A write from one system never overwrites a field that another system owns: the guard raises
:class:`OwnershipViolation` naming the field, its owner and the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (entity, field) -> owning system. Fields not listed belong to the entity's home system below.
FIELD_OWNERSHIP: dict[tuple[str, str], str] = {
    # CRM: accounts, contacts, deals and pipeline
    ("account", "name"): "hubspot",
    ("account", "domain"): "hubspot",
    ("account", "address"): "hubspot",
    ("contact", "email"): "hubspot",
    ("deal", "amount"): "hubspot",
    ("deal", "stage"): "hubspot",
    ("deal", "lines"): "hubspot",
    # ERP: legal entities, customer financial master data, tax, projects, receivables
    ("account", "tax_number"): "xero",
    ("account", "payment_terms_days"): "xero",
    ("account", "erp_contact_id"): "xero",
    ("project", "budget"): "xero",
    ("invoice", "receivable_status"): "xero",
    # CLM: executed legal terms, obligations, amendments
    ("contract", "terms"): "ironclad",
    ("contract", "total_value"): "ironclad",
    ("contract", "end_date"): "ironclad",
    ("contract", "rate_card"): "ironclad",
    ("contract", "milestones"): "ironclad",
    # Billing: subscriptions, invoices, payment status, dunning
    ("invoice", "status"): "stripe",
    ("invoice", "amount_paid"): "stripe",
    ("subscription", "items"): "stripe",
    ("account", "billing_customer_id"): "stripe",
}

HOME_SYSTEM: dict[str, str] = {
    "account": "hubspot",
    "contact": "hubspot",
    "deal": "hubspot",
    "contract": "ironclad",
    "amendment": "ironclad",
    "project": "xero",
    "invoice": "stripe",
    "payment": "stripe",
    "subscription": "stripe",
    "credit_note": "stripe",
}

# Our own write-back fields (external IDs, rollups) are owned by the integration layer itself.
INTEGRATION_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("deal", "revops_status"),
        ("deal", "revops_exception"),
        ("deal", "write_backs"),
        ("account", "billing_figures"),
    }
)


class OwnershipViolation(ValueError):
    """A write tried to change a field that another system owns."""

    def __init__(self, entity: str, field: str, owner: str, writer: str) -> None:
        self.entity, self.field, self.owner, self.writer = entity, field, owner, writer
        super().__init__(f"{entity}.{field} is owned by {owner}; {writer} may not overwrite it")


def owner_of(entity: str, field: str) -> str:
    """The system of record for ``entity.field`` (``revops`` for our own write-backs)."""
    if (entity, field) in INTEGRATION_FIELDS:
        return "revops"
    try:
        return FIELD_OWNERSHIP.get((entity, field)) or HOME_SYSTEM[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}") from None


def may_write(entity: str, field: str, writer: str, *, current: Any = None) -> bool:
    """True if ``writer`` may set the field: it owns it, or the field is empty so far (a first fill)."""
    owner = owner_of(entity, field)
    return owner in (writer, "revops") or current in (None, "", [], {})


def guard_write(
    entity: str, changes: Mapping[str, Any], *, writer: str, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check a write of ``changes`` by ``writer`` against ownership.

    A field owned elsewhere may be filled when it is still empty in ``current`` (e.g. the first
    tax number on a brand-new ERP contact) but never overwritten. Returns the changes to send.
    """
    current = current or {}
    for field, _value in changes.items():
        if not may_write(entity, field, writer, current=current.get(field)):
            raise OwnershipViolation(entity, field, owner_of(entity, field), writer)
    return dict(changes)


def drop_foreign_fields(
    entity: str, changes: Mapping[str, Any], *, writer: str, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Like :func:`guard_write` but silently keeps only what ``writer`` may set (for upserts)."""
    current = current or {}
    return {f: v for f, v in changes.items() if may_write(entity, f, writer, current=current.get(f))}
