"""The event ledger (sqlmodel): every webhook delivery and poll finding, what we did with it, and why.

Tables:

- ``ingress_deliveries`` (:class:`Delivery`): one row per event of a delivery, or one per delivery that
  carried no event or was refused. Keeps the raw body, the headers a replay or an audit needs, the
  signature result, the outcome and the workflow ID. Never updated: a redelivery is a new row.
- ``ingress_events`` (:class:`AcceptedEvent`): one row per vendor event, unique on
  ``(vendor, vendor_event_id)``. This is the dedupe key: the insert that wins routes the event; a later
  delivery that finds it ``done`` is a duplicate; one that finds it ``in_flight`` or ``failed`` routes
  again (routing is idempotent by workflow ID).
- ``ingress_poll_checkpoints`` (:class:`PollCheckpoint`): where each poll stopped.

Data functions are keyword-only and take the session. :class:`EventLedger` runs them off the event loop
(SQLite: one writer thread, so writers never fight over the file lock). The engine is built by
:func:`ledger_engine` from ``settings.ledger_url``: a SQLite file by default, PostgreSQL by URL (with a
driver such as ``psycopg`` installed).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import UniqueConstraint
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, func, select

from settings import Settings
from stores.database import open_engine

T = TypeVar("T")


class Outcome(StrEnum):
    """What the ingress did with a delivery."""

    STARTED = "started"
    SIGNALLED = "signalled"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    REJECTED = "rejected"
    FAILED = "failed"
    ECHO = "echo"  # the vendor telling us about our own write: recorded, nothing routed


class SignatureCheck(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    UNCHECKED = "unchecked"
    POLL = "poll"
    REPLAY = "replay"


class EventState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Delivery(SQLModel, table=True):
    """One delivered event (or one refused / empty delivery)."""

    __tablename__ = "ingress_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, description="groups the rows of one HTTP delivery")
    vendor: str = Field(index=True)
    vendor_event_id: str | None = Field(default=None, index=True)
    event_kind: str | None = None
    received_at: datetime = Field(default_factory=utcnow, index=True)
    signature: str
    outcome: str = Field(index=True)
    workflow_id: str | None = None
    reason: str = ""
    status_code: int
    headers: str = Field(default="{}", description="JSON of the headers a replay or an audit needs")
    body: str = Field(default="", description="the raw body (utf-8, lossy), empty when oversized")
    body_bytes: int = 0
    event: str | None = Field(default=None, description="the canonical event (EventEnvelope JSON)")
    replay_of: int | None = None


class AcceptedEvent(SQLModel, table=True):
    """The dedupe record of one vendor event."""

    __tablename__ = "ingress_events"
    __table_args__ = (UniqueConstraint("vendor", "vendor_event_id", name="uq_ingress_events_vendor_event"),)

    id: int | None = Field(default=None, primary_key=True)
    vendor: str
    vendor_event_id: str
    state: str = EventState.IN_FLIGHT.value
    outcome: str | None = None
    workflow_id: str | None = None
    attempts: int = 1
    first_seen_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PollCheckpoint(SQLModel, table=True):
    """The latest modification time a poll has fully handled."""

    __tablename__ = "ingress_poll_checkpoints"

    name: str = Field(primary_key=True)
    checkpoint: datetime
    updated_at: datetime = Field(default_factory=utcnow)


TABLES = [Delivery.__table__, AcceptedEvent.__table__, PollCheckpoint.__table__]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------
def ledger_engine(url: str) -> Engine:
    """The ledger's engine with its tables created: SQLite (file or memory) or any SQLAlchemy URL."""
    return open_engine(url, TABLES)


# ---------------------------------------------------------------------------------------------
# Data functions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """Whether this delivery routes the event (``route``), or what the finished earlier one did."""

    route: bool
    retry: bool = False
    outcome: str | None = None
    workflow_id: str | None = None


def claim_event(*, session: Session, vendor: str, vendor_event_id: str) -> Claim:
    """Take the event for routing, unless an earlier delivery finished it (race-safe by the unique key)."""
    now = utcnow()
    session.add(AcceptedEvent(vendor=vendor, vendor_event_id=vendor_event_id, first_seen_at=now, updated_at=now))
    try:
        session.commit()
        return Claim(route=True)
    except IntegrityError:
        session.rollback()
    row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor == vendor,
                                                   AcceptedEvent.vendor_event_id == vendor_event_id)).one()
    if row.state == EventState.DONE.value:
        return Claim(route=False, outcome=row.outcome, workflow_id=row.workflow_id)
    row.state, row.attempts, row.updated_at = EventState.IN_FLIGHT.value, row.attempts + 1, now
    session.add(row)
    session.commit()
    return Claim(route=True, retry=True)


def settle_event(*, session: Session, vendor: str, vendor_event_id: str, outcome: Outcome,
                 workflow_id: str | None) -> None:
    """Mark the event handed over (``done``), or ``failed`` so a redelivery routes it again."""
    row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor == vendor,
                                                   AcceptedEvent.vendor_event_id == vendor_event_id)).first()
    if row is None:
        row = AcceptedEvent(vendor=vendor, vendor_event_id=vendor_event_id)
    row.state = EventState.FAILED.value if outcome is Outcome.FAILED else EventState.DONE.value
    row.outcome, row.workflow_id, row.updated_at = outcome.value, workflow_id, utcnow()
    session.add(row)
    session.commit()


def record_delivery(*, session: Session, delivery: Delivery) -> Delivery:
    session.add(delivery)
    session.commit()
    session.refresh(delivery)
    return delivery


def list_deliveries(*, session: Session, vendor: str | None = None, outcome: str | None = None,
                    event_id: str | None = None, limit: int = 50) -> list[Delivery]:
    """Most recent first."""
    query = select(Delivery)
    if vendor:
        query = query.where(Delivery.vendor == vendor)
    if outcome:
        query = query.where(Delivery.outcome == outcome)
    if event_id:
        query = query.where(Delivery.vendor_event_id == event_id)
    rows = session.exec(query.order_by(col(Delivery.id).desc()).limit(limit)).all()
    for row in rows:
        row.received_at = _aware(row.received_at)
    return list(rows)


def get_delivery(*, session: Session, delivery_id: int) -> Delivery | None:
    row = session.get(Delivery, delivery_id)
    if row is not None:
        row.received_at = _aware(row.received_at)
    return row


def count_outcomes(*, session: Session, vendor: str | None = None, request_ids: list[str] | None = None
                   ) -> dict[str, int]:
    """Deliveries per outcome."""
    query = select(Delivery.outcome, func.count()).group_by(Delivery.outcome)
    if vendor:
        query = query.where(Delivery.vendor == vendor)
    if request_ids is not None:
        query = query.where(col(Delivery.request_id).in_(request_ids))
    return {outcome: count for outcome, count in session.exec(query).all()}


def load_checkpoint(*, session: Session, name: str) -> datetime | None:
    row = session.get(PollCheckpoint, name)
    return _aware(row.checkpoint) if row else None


def save_checkpoint(*, session: Session, name: str, checkpoint: datetime) -> None:
    row = session.get(PollCheckpoint, name) or PollCheckpoint(name=name, checkpoint=checkpoint)
    row.checkpoint, row.updated_at = checkpoint.astimezone(UTC), utcnow()
    session.add(row)
    session.commit()


# ---------------------------------------------------------------------------------------------
# The ledger as the ingress uses it
# ---------------------------------------------------------------------------------------------
class EventLedger:
    """The data functions, run off the event loop. SQLite gets one writer thread; servers get a pool."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        workers = 1 if engine.url.get_backend_name() == "sqlite" else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledger")

    @classmethod
    def from_url(cls, url: str) -> EventLedger:
        return cls(ledger_engine(url))

    @classmethod
    def from_settings(cls, settings: Settings) -> EventLedger:
        return cls.from_url(settings.ledger_url)

    def _in_session(self, fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
        with Session(self.engine, expire_on_commit=False) as session:
            return fn(session=session, **kwargs)

    async def run(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """Call a data function with a fresh session in the ledger's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self._in_session, fn, kwargs))

    def run_sync(self, fn: Callable[..., T], **kwargs: Any) -> T:
        """The same, for command-line use outside an event loop."""
        return self._in_session(fn, kwargs)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


__all__ = [
    "AcceptedEvent", "Claim", "Delivery", "EventLedger", "EventState", "Outcome", "PollCheckpoint", "SignatureCheck",
    "claim_event", "count_outcomes", "get_delivery", "ledger_engine", "list_deliveries", "load_checkpoint",
    "record_delivery", "save_checkpoint", "settle_event",
]
