"""ERP cut-overs, stored: which legal entity moved from which ERP tenant to which, and every record the move
copied (old ERP ID -> new ERP ID).

Two tables in the findings database (``settings.findings_database_url``):

* ``erp_entity_switch``: one row per legal entity that was cut over (the latest move wins). It is the persisted
  override of that entity's ``erp_adapter`` and ``erp_tenant_id`` in ``LEGAL_ENTITIES``
  (:func:`switched_entities`, applied by ``bootstrap.load_settings``), and it forwards every ERP write still
  addressed to the old tenant (a ledger's book written before the move) to the new one.
* ``erp_moved_record``: one row per contact, invoice or payment the cut-over copied, unique per
  (cut-over, kind, old ID), so a rerun sees what is already done and a later payment on a moved invoice is
  recorded against the new invoice.

The engine is built by :func:`cutover_engine`, never at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import UniqueConstraint, bindparam, exists
from sqlalchemy import select as core_select
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from canonical import LegalEntity
from stores.database import open_engine


class ErpEntitySwitch(SQLModel, table=True):
    """A legal entity's books moved to another ERP adapter (and its tenant there)."""

    __tablename__ = "erp_entity_switch"

    entity: str = Field(primary_key=True)
    cutover_id: str
    from_adapter: str
    from_tenant: str = Field(index=True)
    to_adapter: str
    to_tenant: str
    switched_at: datetime


class ErpMovedRecord(SQLModel, table=True):
    """One record a cut-over copied: ``kind`` contact, project, invoice or payment; ``old_id`` in the source ERP,
    ``new_id`` in the target; ``reference`` our own key of it (contact reference, project code, billing invoice
    or payment)."""

    __tablename__ = "erp_moved_record"
    __table_args__ = (UniqueConstraint("cutover_id", "kind", "old_id", name="uq_erp_moved_record"),)

    id: int | None = Field(default=None, primary_key=True)
    cutover_id: str = Field(index=True)
    entity: str
    kind: str
    old_id: str = Field(index=True)
    new_id: str
    to_tenant: str = Field(index=True)
    reference: str = ""
    amount: str = ""
    currency: str = ""
    moved_at: datetime


TABLES = [ErpEntitySwitch.__table__, ErpMovedRecord.__table__]  # type: ignore[attr-defined]


def cutover_engine(url: str) -> Engine:
    """The cut-over tables in the database at ``url`` (created when missing)."""
    return open_engine(url, TABLES)


def record_switch(engine: Engine, *, entity: str, cutover_id: str, from_adapter: str, from_tenant: str,
                  to_adapter: str, to_tenant: str) -> ErpEntitySwitch:
    """Record (or keep) the switch of ``entity``; a rerun of the same cut-over keeps the first row's source."""
    with Session(engine) as session:
        held = session.get(ErpEntitySwitch, entity)
        if held is not None and held.cutover_id == cutover_id:
            return held
        row = held or ErpEntitySwitch(entity=entity, cutover_id=cutover_id, from_adapter=from_adapter,
                                      from_tenant=from_tenant, to_adapter=to_adapter, to_tenant=to_tenant,
                                      switched_at=datetime.now(UTC))
        if held is not None:
            for key, value in {"cutover_id": cutover_id, "from_adapter": from_adapter, "from_tenant": from_tenant,
                               "to_adapter": to_adapter, "to_tenant": to_tenant,
                               "switched_at": datetime.now(UTC)}.items():
                setattr(row, key, value)
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


def switch_of(engine: Engine, entity: str) -> ErpEntitySwitch | None:
    with Session(engine) as session:
        return session.get(ErpEntitySwitch, entity)


def moved(engine: Engine, cutover_id: str) -> dict[tuple[str, str], ErpMovedRecord]:
    """What a cut-over has copied so far, by (kind, old ID)."""
    with Session(engine) as session:
        rows = session.exec(select(ErpMovedRecord).where(ErpMovedRecord.cutover_id == cutover_id)).all()
        return {(r.kind, r.old_id): r for r in rows}


def record_moved(engine: Engine, record: ErpMovedRecord) -> None:
    """Record one copied record (a second record of the same (cut-over, kind, old ID) is ignored)."""
    with Session(engine) as session:
        held = session.exec(select(ErpMovedRecord).where(
            ErpMovedRecord.cutover_id == record.cutover_id, ErpMovedRecord.kind == record.kind,
            ErpMovedRecord.old_id == record.old_id)).first()
        if held is None:
            session.add(record)
            session.commit()


@dataclass(frozen=True)
class TenantMoves:
    """What cut-overs did to one ERP tenant: where its books went (``to_adapter``, ``to_tenant``; None: nowhere)
    and whether a cut-over copied records into it (only then can an ID from before a move name a copy there)."""

    forwarded_to: tuple[str, str] | None
    receives: bool


_SWITCH = ErpEntitySwitch.__table__  # type: ignore[attr-defined]
_MOVED = ErpMovedRecord.__table__  # type: ignore[attr-defined]


def _tenant_moves_statement() -> Any:
    tenant: Any = bindparam("tenant")
    switch = core_select(_SWITCH.c.to_adapter, _SWITCH.c.to_tenant).where(_SWITCH.c.from_tenant == tenant).limit(1)
    return core_select(switch.with_only_columns(_SWITCH.c.to_adapter).scalar_subquery(),
                       switch.with_only_columns(_SWITCH.c.to_tenant).scalar_subquery(),
                       exists().where(_MOVED.c.to_tenant == tenant))


#: built once: constructing a statement costs far more than SQLite takes to answer it
_TENANT_MOVES = _tenant_moves_statement()


def tenant_moves(engine: Engine, tenant_id: str) -> TenantMoves:
    """Where the tenant's books went (the switch from it) and whether records were copied into it, in one
    prepared statement without the ORM: every ERP activity asks this before its call, so it must cost little when
    (as almost always) nothing was ever moved."""
    with engine.connect() as connection:
        to_adapter, to_tenant, receives = connection.execute(_TENANT_MOVES, {"tenant": tenant_id}).one()
    return TenantMoves(forwarded_to=(to_adapter, to_tenant) if to_tenant is not None else None,
                       receives=bool(receives))


_NEW_ID = core_select(_MOVED.c.new_id).where(_MOVED.c.to_tenant == bindparam("tenant"),
                                             _MOVED.c.kind == bindparam("kind"),
                                             _MOVED.c.old_id == bindparam("old_id")).limit(1)


def new_id_of(engine: Engine, *, to_tenant: str, kind: str, old_id: str) -> str | None:
    """The ID in tenant ``to_tenant`` of a record a cut-over copied there from ``old_id`` (None: not moved)."""
    with engine.connect() as connection:
        found = connection.execute(_NEW_ID, {"tenant": to_tenant, "kind": kind, "old_id": old_id}).scalar()
    return str(found) if found is not None else None


def switched_entities(engine: Engine, entities: list[LegalEntity]) -> list[LegalEntity]:
    """``entities`` with each cut-over entity's ERP adapter and tenant as its switch says."""
    with Session(engine) as session:
        switches = {s.entity: s for s in session.exec(select(ErpEntitySwitch)).all()}
    return [e.model_copy(update={"erp_adapter": switches[e.code].to_adapter,
                                 "erp_tenant_id": switches[e.code].to_tenant}) if e.code in switches else e
            for e in entities]


__all__ = ["ErpEntitySwitch", "ErpMovedRecord", "TenantMoves", "cutover_engine", "moved", "new_id_of",
           "record_moved", "record_switch", "switch_of", "switched_entities", "tenant_moves"]
