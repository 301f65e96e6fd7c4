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
from connectors.wire import NOT_MAPPED, Wire


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


def rows(vendor: str, vendor_object: str, entity: str, direction: Direction,
          rows: list[tuple[str, str, str]]) -> list[FieldMapping]:
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=c, vendor_field=v, direction=direction,
                         entity=entity, transform=t) for c, v, t in rows]



def wire_rows(vendor: str, vendor_object: str, entity: str, direction: Direction,
                table: Iterable[Wire[Any]]) -> list[FieldMapping]:
    """Rows from a wire table the mapper itself builds its payloads or reads its documents with; a row
    that names no canonical field (a protocol constant, an account code from settings) counts under
    ``entity``."""
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=row.canonical,
                         vendor_field=row.vendor, direction=direction, entity=row.entity or entity,
                         transform=row.transform, from_table=True)
            for row in table if row.documented]


def one_row_per_field(rows: list[FieldMapping]) -> list[FieldMapping]:
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


def table_rows(vendor: str, vendor_object: str, entity: str, direction: Direction,
               table: dict[str, tuple[str, str]]) -> list[FieldMapping]:
    """Rows from a property table (vendor field -> (canonical field, transform)) a mapper reads or writes with."""
    return [FieldMapping(vendor=vendor, vendor_object=vendor_object, canonical=canonical_field, vendor_field=prop,
                         direction=direction, entity=entity, transform=transform, from_table=True)
            for prop, (canonical_field, transform) in table.items()]


def field_mappings() -> dict[str, list[FieldMapping]]:
    """Adapter name -> its rows, for every descriptor of the registry that declares wire tables."""
    from connectors.registry import default_registry

    return {spec.name: list(spec.wire_tables()) for spec in default_registry().all()
            if spec.wire_tables is not None}


def writeback_fields() -> list[str]:
    """Every ``DealWriteBack`` field (each CRM adapter has a row for each, generated from its mapper's table)."""
    return list(DealWriteBack.model_fields)


__all__ = ["NOT_MAPPED", "Direction", "FieldMapping", "field_mappings", "one_row_per_field", "rows", "table_rows",
           "wire_rows", "writeback_fields"]
