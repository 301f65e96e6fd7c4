"""The field mapping per object and vendor, as data: canonical field <-> vendor field, direction, owner system
and transform. ``make docs`` renders it into ``docs/field-mapping.md``.

Rows come from the tables the mappers use: HubSpot's property tables (``DEAL_FIELDS``, ``COMPANY_FIELDS``,
``CONTACT_FIELDS``, ``LINE_ITEM_FIELDS``: its reads ask for exactly those properties), its
``WRITEBACK_PROPERTIES`` and figure properties, Ironclad's ``TERM_KEYS``, and Stripe's and Xero's wire tables
(``connectors/wire.py``: ``CUSTOMER_OUT``, ``INVOICE_IN``, ... which their mapping functions build every payload
and read every document with, so a mapper change is a table change and shows in ``make docs``). The few rows
left declared here are held to the code by ``tests/observability/test_docs.py`` (every vendor field named in
that vendor's connector, every canonical field on its model). The owner is the system of record from
:func:`canonical.ownership.owner_of`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from canonical.ownership import SystemRole, owner_of
from canonical.requests import DealWriteBack
from connectors.hubspot import mapping as hubspot_mapping
from connectors.ironclad import mapping as ironclad_mapping
from connectors.stripe import mapping as stripe_mapping
from connectors.wire import NOT_MAPPED, Wire
from connectors.xero import mapping as xero_mapping


class Direction(StrEnum):
    IN = "vendor → canonical"
    OUT = "canonical → vendor"
    BOTH = "both ways"


@dataclass(frozen=True)
class FieldMapping:
    """One row: ``canonical`` is ``Model.field``; ``entity`` names it for ownership (account, deal, ...)."""

    vendor: str
    vendor_object: str
    canonical: str
    vendor_field: str
    direction: Direction
    entity: str
    transform: str = "as is"
    from_table: bool = False  # generated from a table the mapper itself uses

    @property
    def model(self) -> str:
        return self.canonical.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.canonical.split(".", 1)[1]

    @property
    def owner(self) -> SystemRole:
        if self.canonical == NOT_MAPPED:
            return owner_of(self.entity, "-")
        return owner_of(self.entity, self.field.split(".")[0])


def _rows(vendor: str, vendor_object: str, entity: str, direction: Direction,
          rows: list[tuple[str, str, str]]) -> list[FieldMapping]:
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=c, vendor_field=v, direction=direction,
                         entity=entity, transform=t) for c, v, t in rows]


_IN, _OUT, _BOTH = Direction.IN, Direction.OUT, Direction.BOTH

def _hubspot_table(vendor_object: str, entity: str, direction: Direction, table: dict[str, tuple[str, str]]
                   ) -> list[FieldMapping]:
    """Rows from one of the HubSpot mapper's property tables (the reads ask for exactly those properties)."""
    return [FieldMapping(vendor="hubspot", vendor_object=vendor_object, canonical=canonical_field, vendor_field=prop,
                         direction=direction, entity=entity, transform=transform, from_table=True)
            for prop, (canonical_field, transform) in table.items()]


HUBSPOT: list[FieldMapping] = [
    *_rows("hubspot", "deal", "deal", _IN, [
        ("Deal.crm_id", "id", "as text"),
        ("Deal.write_backs", "revops_* write-back properties",
         "every write-back read back, by field (the provisioning record from JSON)"),
    ]),
    *_hubspot_table("deal", "deal", _IN, hubspot_mapping.DEAL_FIELDS),
    *_rows("hubspot", "company", "account", _BOTH, [("Account.crm_id", "id", "as text")]),
    *_hubspot_table("company", "account", _BOTH, hubspot_mapping.COMPANY_FIELDS),
    *_rows("hubspot", "contact", "contact", _IN, [("Contact.crm_id", "id", "as text")]),
    *_hubspot_table("contact", "contact", _IN, hubspot_mapping.CONTACT_FIELDS),
    *_rows("hubspot", "line_item", "deal", _IN, [("DealLine.crm_id", "id", "as text")]),
    *_hubspot_table("line_item", "deal", _IN, hubspot_mapping.LINE_ITEM_FIELDS),
    *[FieldMapping(vendor="hubspot", vendor_object="deal", canonical=f"DealWriteBack.{field}", vendor_field=prop,
                   direction=_OUT, entity="deal", transform="text; only fields set are sent",
                   from_table=True)
      for field, prop in hubspot_mapping.WRITEBACK_PROPERTIES.items()],
    *[FieldMapping(vendor="hubspot", vendor_object="company", canonical=f"AccountFigures.{field}",
                   vendor_field=hubspot_mapping.figure_property(field, "<cur>"), direction=_OUT,
                   entity="account", transform="decimal text per currency (billing_figures)", from_table=True)
      for field in hubspot_mapping._FIGURE_FIELDS],
]

_IRONCLAD_TERM_TRANSFORMS = {
    "start_date": "date `YYYY-MM-DDT00:00:00Z`", "end_date": "date `YYYY-MM-DDT00:00:00Z`",
    "total_value": "monetary amount {currency, amount}", "fixed_fee": "monetary amount {currency, amount}",
    "billing_model": "enum value", "payment_terms_days": "integer", "budget_hours": "decimal text",
}

IRONCLAD: list[FieldMapping] = [
    *[FieldMapping(vendor="ironclad", vendor_object="workflow attributes / record properties",
                   canonical=f"ContractTerms.{field}", vendor_field=key, direction=_BOTH, entity="contract",
                   transform=_IRONCLAD_TERM_TRANSFORMS.get(field, "JSON text of a list (camelCase keys)"),
                   from_table=True)
      for field, key in ironclad_mapping.TERM_KEYS.items()],
    *_rows("ironclad", "workflow / record", "contract", _BOTH, [
        ("Contract.counterparty", "counterpartyName", "text (Account.name)"),
        ("Contract.title", "contractTitle", "text"),
        ("Contract.deal_crm_id", "revopsDealId", "text"),
        ("Contract.clm_workflow_id", "id", "workflow ID"),
        ("Contract.executed_on", ironclad_mapping.AGREEMENT_DATE, "date (record only)"),
    ]),
    *_rows("ironclad", "workflow attributes", "contract", _OUT, [
        ("ContractRequest.legal_entity", "revopsLegalEntity", "text"),
        ("ContractRequest.signer", "counterpartySignerName", "full name"),
        ("ContractRequest.signer", "counterpartySignerEmail", "email"),
    ]),
    *_rows("ironclad", "amendment record", "amendment", _IN, [
        ("Amendment.sequence", ironclad_mapping.AMENDMENT_NUMBER, "integer"),
        ("Amendment.executed_on", ironclad_mapping.AGREEMENT_DATE, "date"),
        ("Amendment.contract_record_id", "parentId", "the contract record"),
    ]),
]

def _wire_table(vendor: str, vendor_object: str, entity: str, direction: Direction,
                table: Iterable[Wire[Any]]) -> list[FieldMapping]:
    """Rows from a wire table the mapper itself builds its payloads or reads its documents with; a row
    that names no canonical field (a protocol constant, an account code from settings) counts under
    ``entity``."""
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=row.canonical,
                         vendor_field=row.vendor, direction=direction, entity=row.entity or entity,
                         transform=row.transform, from_table=True)
            for row in table if row.documented]


def _one_row_per_field(rows: list[FieldMapping]) -> list[FieldMapping]:
    """One row per object, canonical field and vendor field: a pair read and written the same way is one row
    in both directions (the first one's place and transform; the other's transform joined when it differs)."""
    merged: dict[tuple[str, str, str], FieldMapping] = {}
    for row in rows:
        key = (row.vendor_object, row.canonical, row.vendor_field)
        held = merged.get(key)
        if held is None:
            merged[key] = row
        elif held.direction != row.direction:
            transform = held.transform if row.transform == held.transform else (
                f"{held.direction.name.lower()}: {held.transform}; {row.direction.name.lower()}: {row.transform}")
            merged[key] = replace(held, direction=Direction.BOTH, transform=transform)
    return list(merged.values())


STRIPE: list[FieldMapping] = _one_row_per_field([
    *_wire_table("stripe", "customer", "account", _OUT, stripe_mapping.CUSTOMER_OUT),
    *_wire_table("stripe", "customer", "account", _IN, stripe_mapping.CUSTOMER_IN),
    *_wire_table("stripe", "product", "subscription", _OUT, stripe_mapping.PRODUCT_OUT),
    *_wire_table("stripe", "price", "subscription", _OUT, stripe_mapping.PRICE_OUT),
    *_wire_table("stripe", "invoice", "invoice", _IN, stripe_mapping.INVOICE_IN),
    FieldMapping(vendor="stripe", vendor_object="subscription / invoice item", canonical="Project.code",
                 vendor_field=f"metadata.{stripe_mapping.PROJECT_KEY}", direction=_BOTH, entity="project",
                 transform="our project code: sent in the schedule's metadata, read to find a project's billing"),
    *_wire_table("stripe", "credit note", "credit_note", _OUT, stripe_mapping.CREDIT_NOTE_OUT),
    *_wire_table("stripe", "credit note", "credit_note", _IN, stripe_mapping.CREDIT_NOTE_IN),
    *_wire_table("stripe", "subscription item", "subscription", _IN, stripe_mapping.SUBSCRIPTION_ITEM_IN),
    *_wire_table("stripe", "invoice (one-off)", "invoice", _IN, stripe_mapping.MILESTONE_INVOICE_IN),
    *_wire_table("stripe", "price (rate card)", "subscription", _IN, stripe_mapping.RATE_IN),
])

XERO: list[FieldMapping] = _one_row_per_field([
    *_wire_table("xero", "contact", "account", _OUT, xero_mapping.CONTACT_OUT),
    *_wire_table("xero", "contact", "account", _IN, xero_mapping.CONTACT_IN),
    *_wire_table("xero", "project", "project", _OUT, xero_mapping.PROJECT_OUT),
    *_wire_table("xero", "project", "project", _IN, xero_mapping.PROJECT_IN),
    *_wire_table("xero", "project task", "project", _OUT, xero_mapping.TASK_OUT),
    *_wire_table("xero", "project task", "project", _IN, xero_mapping.TASK_IN),
    *_wire_table("xero", "time entry", "project", _OUT, xero_mapping.TIME_ENTRY_OUT),
    *_wire_table("xero", "ACCREC invoice", "invoice", _OUT, xero_mapping.INVOICE_OUT),
    *_wire_table("xero", "ACCREC invoice", "invoice", _IN, xero_mapping.INVOICE_IN),
    *_wire_table("xero", "ACCREC invoice line", "invoice", _OUT, xero_mapping.LINE_OUT),
    *_wire_table("xero", "payment", "payment", _OUT, xero_mapping.PAYMENT_OUT),
    *_wire_table("xero", "payment", "payment", _IN, xero_mapping.PAYMENT_IN),
    *_wire_table("xero", "ACCRECCREDIT credit note", "credit_note", _OUT, xero_mapping.CREDIT_NOTE_OUT),
    *_wire_table("xero", "ACCRECCREDIT credit note", "credit_note", _IN, xero_mapping.CREDIT_NOTE_IN),
])

FIELD_MAPPINGS: dict[str, list[FieldMapping]] = {"hubspot": HUBSPOT, "ironclad": IRONCLAD, "stripe": STRIPE,
                                                 "xero": XERO}


def writeback_fields() -> list[str]:
    """Every ``DealWriteBack`` field (each has a HubSpot row, generated from the mapper's table)."""
    return list(DealWriteBack.model_fields)


__all__ = ["FIELD_MAPPINGS", "NOT_MAPPED", "Direction", "FieldMapping", "writeback_fields"]
