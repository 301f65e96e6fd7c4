"""Reconciliation findings, stored (sqlmodel) so operators can list and act on them.

One row per finding key and scope. A run records what it saw, one section at a time (``receivables:US01``,
``delivery``, ``crm``): new keys open, keys seen again stay open (a closed one reopens, an acknowledged one
stays acknowledged), open or acknowledged keys of the same scope and section that the run no longer sees are
closed. An operator acknowledges a finding with a reason (``starter.py ack``): it stays listed as
acknowledged until a run no longer sees it. The engine is built by :func:`findings_engine` from
``settings.findings_database_url`` (a SQLite file under ``data_dir`` by default), never at import.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, or_, select

from canonical.reconciliation import Finding
from canonical.text import operator_text
from stores.database import open_engine

OPEN = "open"
ACKNOWLEDGED = "acknowledged"
CLOSED = "closed"
MAX_ACK_REASON = 500
MAX_ACK_BY = 100


class FindingRecord(SQLModel, table=True):
    """A reconciliation exception with the IDs on each side."""

    __tablename__ = "reconciliation_finding"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(index=True)
    section: str = Field(default="", index=True)
    key: str = Field(index=True)
    kind: str = Field(index=True)
    severity: str = ""
    status: str = Field(default=OPEN, index=True)
    legal_entity: str = Field(default="", index=True)
    currency: str = ""
    billing_id: str = ""
    erp_id: str = ""
    clm_id: str = ""
    crm_id: str = ""
    billing_amount: str = ""
    erp_amount: str = ""
    detail: str = ""
    refs: str = Field(default="[]", description="JSON list of system:object:id")
    repair: str = ""
    first_seen_at: datetime
    last_seen_at: datetime
    closed_at: datetime | None = None
    first_run_id: str = ""
    last_run_id: str = ""
    times_seen: int = 1
    acknowledged_at: datetime | None = None
    acknowledged_by: str = ""
    ack_reason: str = ""

    def ref_list(self) -> list[str]:
        return list(json.loads(self.refs or "[]"))


TABLES = [FindingRecord.__table__]  # type: ignore[attr-defined]
_ADDED_COLUMNS = {"section": "VARCHAR DEFAULT ''", "severity": "VARCHAR DEFAULT ''",
                  "refs": "VARCHAR DEFAULT '[]'", "repair": "VARCHAR DEFAULT ''", "acknowledged_at": "DATETIME",
                  "acknowledged_by": "VARCHAR DEFAULT ''", "ack_reason": "VARCHAR DEFAULT ''"}


class RunOutcome(BaseModel):
    """What recording one run (or section) changed, and what is open in it afterwards."""

    opened: int = 0
    closed: int = 0
    still_open: int = 0
    counts: dict[str, int] = PydanticField(default_factory=dict, description="open findings by kind")


def findings_engine(url: str) -> Engine:
    """The findings store's engine with its table created (columns added since 0.1 added in place)."""
    engine = open_engine(url, TABLES)
    if engine.dialect.name != "sqlite":  # a server's columns come from the migrations
        return engine
    held = {c["name"] for c in inspect(engine).get_columns("reconciliation_finding")}
    missing = [(n, t) for n, t in _ADDED_COLUMNS.items() if n not in held]
    if missing:
        with engine.begin() as connection:
            for name, sql_type in missing:
                connection.execute(text(f"ALTER TABLE reconciliation_finding ADD COLUMN {name} {sql_type}"))
    return engine


def record_run(*, session: Session, scope: str, run_id: str, findings: list[Finding], now: datetime,
               section: str | None = None) -> RunOutcome:
    """Open, refresh or reopen what the run saw; close what it no longer sees (same scope, and same section
    when given)."""
    query = select(FindingRecord).where(FindingRecord.scope == scope)
    if section is not None:  # rows stored before sections existed ("") are this run's to close too
        query = query.where(or_(FindingRecord.section == section, FindingRecord.section == ""))
    held = {r.key: r for r in session.exec(query).all()}
    seen: set[str] = set()
    outcome = RunOutcome()
    for finding in findings:
        if finding.key in seen:
            continue
        seen.add(finding.key)
        fields = finding.model_dump(exclude={"key", "refs"})
        fields["kind"] = finding.kind.value
        fields["severity"] = finding.severity.value
        fields["refs"] = json.dumps(finding.refs)
        if section is not None:
            fields["section"] = section
        record = held.get(finding.key)
        if record is None:
            record = FindingRecord(scope=scope, key=finding.key, first_seen_at=now, last_seen_at=now,
                                   first_run_id=run_id, last_run_id=run_id, **fields)
            acked = session.exec(select(FindingRecord).where(FindingRecord.key == finding.key,
                                                             FindingRecord.status == ACKNOWLEDGED)).first()
            if acked is not None:  # one finding, whatever scope found it: an operator's word on it holds here too
                record.status, record.acknowledged_at = ACKNOWLEDGED, acked.acknowledged_at
                record.acknowledged_by, record.ack_reason = acked.acknowledged_by, acked.ack_reason
            outcome.opened += 1
        else:
            if record.status == CLOSED:
                outcome.opened += 1
                record.times_seen = 0
                record.status, record.acknowledged_at, record.acknowledged_by, record.ack_reason = OPEN, None, "", ""
            for name, value in fields.items():
                setattr(record, name, value)
            record.closed_at = None
            record.last_seen_at, record.last_run_id = now, run_id
            record.times_seen += 1
        session.add(record)
    for key, record in held.items():
        if key not in seen and record.status != CLOSED:
            record.status, record.closed_at, record.last_run_id = CLOSED, now, run_id
            session.add(record)
            outcome.closed += 1
    session.commit()
    open_kinds = Counter(f.kind.value for f in findings if f.key in seen)
    outcome.still_open = len(seen)
    outcome.counts = dict(sorted(open_kinds.items()))
    return outcome


def _verdict_at(record: FindingRecord) -> datetime:
    """When a run last judged this row: seen (open) or no longer seen (closed)."""
    return max(record.last_seen_at, record.closed_at or record.last_seen_at)


def list_findings(*, session: Session, status: str | None = OPEN, kind: str | None = None,
                  scope: str | None = None, entity: str | None = None, limit: int = 500) -> list[FindingRecord]:
    """Stored findings, newest first. ``status`` ``open`` lists acknowledged ones too (they are not solved).

    Without ``scope``, each finding is listed once whatever scopes found it (a run over every entity and an
    entity's own run see the same key): the row of the run that judged it last speaks for it (see
    :func:`finding_scopes` for the scopes that hold it)."""
    query = select(FindingRecord)
    if kind:
        query = query.where(FindingRecord.kind == kind)
    if scope:
        query = query.where(FindingRecord.scope == scope)
    if entity:
        query = query.where(FindingRecord.legal_entity == entity)
    rows = list(session.exec(query).all())
    if not scope:
        latest: dict[str, FindingRecord] = {}
        for row in rows:
            held = latest.get(row.key)
            if held is None or (_verdict_at(row), row.id or 0) > (_verdict_at(held), held.id or 0):
                latest[row.key] = row
        rows = list(latest.values())
    if status == OPEN:
        rows = [r for r in rows if r.status in (OPEN, ACKNOWLEDGED)]
    elif status:
        rows = [r for r in rows if r.status == status]
    rows.sort(key=lambda r: (r.last_seen_at, r.id or 0), reverse=True)
    return rows[:limit]


def finding_scopes(*, session: Session, keys: list[str]) -> dict[str, list[str]]:
    """The scopes whose runs still hold each key (not closed there), sorted."""
    found: dict[str, set[str]] = {k: set() for k in keys}
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for row in session.exec(select(FindingRecord).where(col(FindingRecord.key).in_(chunk),
                                                            FindingRecord.status != CLOSED)).all():
            found[row.key].add(row.scope)
    return {k: sorted(v) for k, v in found.items()}


class UnknownFinding(LookupError):
    """No finding has this ID or key."""


def acknowledge(*, session: Session, finding: str, reason: str, by: str, now: datetime) -> list[FindingRecord]:
    """Acknowledge a finding, by row ID or by key: every scope's row of that key that is not closed.

    Raises :class:`UnknownFinding` when nothing matches and ``ValueError`` when only closed rows do, or when
    the reason or ``by`` is empty, too long or holds control characters (``canonical.text.operator_text``)."""
    reason = operator_text(reason, what="the reason", max_length=MAX_ACK_REASON)
    by = operator_text(by, what="who acknowledges (--by)", max_length=MAX_ACK_BY)
    finding = finding.strip().removeprefix("#")  # as `starter.py exceptions` prints row IDs
    if finding.isdigit():  # a listed row speaks for its key in every scope
        row = session.get(FindingRecord, int(finding))
        finding = row.key if row is not None else finding
        rows = list(session.exec(select(FindingRecord).where(FindingRecord.key == row.key)).all()) if row else []
    else:
        rows = list(session.exec(select(FindingRecord).where(FindingRecord.key == finding)).all())
    if not rows:
        raise UnknownFinding(finding)
    live = [r for r in rows if r.status != CLOSED]
    if not live:
        raise ValueError(f"finding {finding} is closed: nothing to acknowledge")
    for row in live:
        row.status, row.acknowledged_at, row.acknowledged_by, row.ack_reason = ACKNOWLEDGED, now, by, reason
        session.add(row)
    session.commit()
    for row in live:
        session.refresh(row)
    return live


__all__ = ["ACKNOWLEDGED", "CLOSED", "OPEN", "FindingRecord", "RunOutcome", "UnknownFinding", "acknowledge",
           "finding_scopes", "findings_engine", "list_findings", "record_run"]
