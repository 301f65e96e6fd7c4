"""Reconciliation findings, stored (sqlmodel) so operators can list and act on them.

One row per finding key and scope. A run records what it saw: new keys open, keys seen again stay open
(a closed one reopens), open keys of the same scope that the run no longer sees are closed. The engine is
built by :func:`findings_engine` from ``settings.findings_database_url`` (a SQLite file under
``data_dir`` by default), never at import.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from canonical.ledger import Finding
from stores.database import open_engine

OPEN = "open"
CLOSED = "closed"


class FindingRecord(SQLModel, table=True):
    """A reconciliation exception with the IDs on each side."""

    __tablename__ = "reconciliation_finding"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(index=True)
    key: str = Field(index=True)
    kind: str = Field(index=True)
    status: str = Field(default=OPEN, index=True)
    legal_entity: str = ""
    currency: str = ""
    billing_id: str = ""
    erp_id: str = ""
    clm_id: str = ""
    crm_id: str = ""
    billing_amount: str = ""
    erp_amount: str = ""
    detail: str = ""
    first_seen_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None = None
    first_run_id: str = ""
    last_run_id: str = ""
    times_seen: int = 1


TABLES = [FindingRecord.__table__]  # type: ignore[attr-defined]


class RunOutcome(BaseModel):
    """What recording one run changed, and what is open in its scope afterwards."""

    opened: int = 0
    closed: int = 0
    still_open: int = 0
    counts: dict[str, int] = PydanticField(default_factory=dict, description="open findings by kind")


def findings_engine(url: str) -> Engine:
    """The findings store's engine with its table created: SQLite (file or memory) or any SQLAlchemy URL."""
    return open_engine(url, TABLES)


def record_run(*, session: Session, scope: str, run_id: str, findings: list[Finding], now: datetime) -> RunOutcome:
    """Open, refresh or reopen what the run saw; close what it no longer sees (same scope only)."""
    held = {r.key: r for r in session.exec(select(FindingRecord).where(FindingRecord.scope == scope)).all()}
    seen: set[str] = set()
    outcome = RunOutcome()
    for finding in findings:
        if finding.key in seen:
            continue
        seen.add(finding.key)
        fields = finding.model_dump(exclude={"key"})
        fields["kind"] = finding.kind.value
        record = held.get(finding.key)
        if record is None:
            record = FindingRecord(scope=scope, key=finding.key, first_seen_at=now, last_seen_at=now,
                                   first_run_id=run_id, last_run_id=run_id, **fields)
            outcome.opened += 1
        else:
            if record.status == CLOSED:
                outcome.opened += 1
                record.times_seen = 0
            for name, value in fields.items():
                setattr(record, name, value)
            record.status, record.closed_at = OPEN, None
            record.last_seen_at, record.last_run_id = now, run_id
            record.times_seen += 1
        session.add(record)
    for key, record in held.items():
        if key not in seen and record.status == OPEN:
            record.status, record.closed_at, record.last_run_id = CLOSED, now, run_id
            session.add(record)
            outcome.closed += 1
    session.commit()
    open_kinds = Counter(f.kind.value for f in findings if f.key in seen)
    outcome.still_open = len(seen)
    outcome.counts = dict(sorted(open_kinds.items()))
    return outcome


def list_findings(*, session: Session, status: str | None = OPEN, kind: str | None = None,
                  scope: str | None = None, limit: int = 500) -> list[FindingRecord]:
    """Stored findings, newest first."""
    query = select(FindingRecord)
    if status:
        query = query.where(FindingRecord.status == status)
    if kind:
        query = query.where(FindingRecord.kind == kind)
    if scope:
        query = query.where(FindingRecord.scope == scope)
    query = query.order_by(col(FindingRecord.last_seen_at).desc(), col(FindingRecord.id).desc()).limit(limit)
    return list(session.exec(query).all())


__all__ = ["CLOSED", "OPEN", "FindingRecord", "RunOutcome", "findings_engine", "list_findings", "record_run"]
