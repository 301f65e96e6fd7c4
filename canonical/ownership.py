"""Which system of record owns which field, and a write guard that honours it.

Owners are **roles** (:class:`SystemRole`: CRM, CLM, billing, ERP, and ``revops`` for our own
write-backs), never vendors: which vendor plays a role is configuration (``connectors/registry.py``),
so a Salesforce CRM owns exactly what HubSpot owned.

A write from one system never overwrites a field that another system owns: the guard raises
:class:`OwnershipViolation` naming the field, its owner and the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)


class SystemRole(StrEnum):
    """The role a system of record plays; the vendor behind each is configuration."""

    CRM = "crm"  # accounts, contacts, deals and pipeline
    CLM = "clm"  # executed legal terms, obligations, amendments
    BILLING = "billing"  # subscriptions, invoices, payment status, dunning
    ERP = "erp"  # legal entities, customer financial master data, tax, projects, receivables
    REVOPS = "revops"  # the integration layer's own write-backs

    @property
    def label(self) -> str:
        """How people write it: ``CRM``, ``CLM``, ``billing``, ``ERP``, ``revops``."""
        return self.value.upper() if self in (SystemRole.CRM, SystemRole.CLM, SystemRole.ERP) else self.value


CRM, CLM, BILLING, ERP, REVOPS = (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING, SystemRole.ERP,
                                  SystemRole.REVOPS)

# (entity, field) -> owning role. Fields not listed belong to the entity's home role below.
FIELD_OWNERSHIP: dict[tuple[str, str], SystemRole] = {
    # CRM: accounts, contacts, deals and pipeline
    ("account", "name"): CRM,
    ("account", "domain"): CRM,
    ("account", "address"): CRM,
    ("contact", "email"): CRM,
    ("deal", "amount"): CRM,
    ("deal", "stage"): CRM,
    ("deal", "lines"): CRM,
    # ERP: legal entities, customer financial master data, tax, projects, receivables
    ("account", "tax_number"): ERP,
    ("account", "payment_terms_days"): ERP,
    ("account", "erp_contact_id"): ERP,
    ("project", "budget"): ERP,
    ("invoice", "receivable_status"): ERP,
    # CLM: executed legal terms, obligations, amendments
    ("contract", "terms"): CLM,
    ("contract", "total_value"): CLM,
    ("contract", "end_date"): CLM,
    ("contract", "rate_card"): CLM,
    ("contract", "milestones"): CLM,
    # Billing: subscriptions, invoices, payment status, dunning
    ("invoice", "status"): BILLING,
    ("invoice", "amount_paid"): BILLING,
    ("subscription", "items"): BILLING,
    ("account", "billing_customer_id"): BILLING,
}

HOME_SYSTEM: dict[str, SystemRole] = {
    "account": CRM,
    "contact": CRM,
    "deal": CRM,
    "contract": CLM,
    "amendment": CLM,
    "project": ERP,
    "invoice": BILLING,
    "payment": BILLING,
    "subscription": BILLING,
    "credit_note": BILLING,
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

    def __init__(self, entity: str, field: str, owner: SystemRole, writer: SystemRole) -> None:
        self.entity, self.field, self.owner, self.writer = entity, field, owner, writer
        super().__init__(f"{entity}.{field} is owned by the {owner.label}; the {writer.label} may not overwrite it")


def role_of(writer: SystemRole | str) -> SystemRole:
    """``writer`` as a role; a vendor name (``"xero"``) is refused, since ownership never depends on one."""
    try:
        return SystemRole(writer)
    except ValueError:
        roles = ", ".join(r.value for r in SystemRole)
        raise ValueError(f"{writer!r} is not a system role ({roles}); ownership is keyed by role, "
                         "not by vendor") from None


def owner_of(entity: str, field: str) -> SystemRole:
    """The role of record for ``entity.field`` (``revops`` for our own write-backs)."""
    if (entity, field) in INTEGRATION_FIELDS:
        return REVOPS
    try:
        return FIELD_OWNERSHIP.get((entity, field)) or HOME_SYSTEM[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}") from None


def may_write(entity: str, field: str, writer: SystemRole | str, *, current: Any = None) -> bool:
    """True if ``writer`` may set the field: it owns it, or the field is empty so far (a first fill)."""
    owner = owner_of(entity, field)
    return owner in (role_of(writer), REVOPS) or current in (None, "", [], {})


def guard_write(
    entity: str, changes: Mapping[str, Any], *, writer: SystemRole | str, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Check a write of ``changes`` by ``writer`` against ownership.

    A field owned elsewhere may be filled when it is still empty in ``current`` (e.g. the first
    tax number on a brand-new ERP contact) but never overwritten. Returns the changes to send.
    """
    current = current or {}
    for field, _value in changes.items():
        if not may_write(entity, field, writer, current=current.get(field)):
            raise OwnershipViolation(entity, field, owner_of(entity, field), role_of(writer))
    return dict(changes)


def drop_foreign_fields(
    entity: str, changes: Mapping[str, Any], *, writer: SystemRole | str, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Like :func:`guard_write` but silently keeps only what ``writer`` may set (for upserts)."""
    current = current or {}
    return {f: v for f, v in changes.items() if may_write(entity, f, writer, current=current.get(f))}


def writable_over(entity: str, wanted: ModelT, held: ModelT | None, *, writer: SystemRole | str,
                  fields: tuple[str, ...]) -> ModelT:
    """``wanted`` as ``writer`` may write it over the record the other system ``held``: each of ``fields`` that
    another role owns and the record already holds is set to ``None`` (left as held; the adapter writes only the
    fields set), an empty one may be filled. The guard every adapter of a role gets, above the adapters."""
    if held is None:
        return wanted
    keep = {f: None for f in fields
            if not may_write(entity, f, writer, current=getattr(held, f))}
    return wanted.model_copy(update=keep)
