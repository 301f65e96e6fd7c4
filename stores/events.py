"""The event ledger (sqlmodel): every webhook delivery and poll finding, what we did with it, and why.

Tables:

- ``ingress_deliveries`` (:class:`Delivery`): one row per event of a delivery, or one per delivery that
  carried no event or was refused. Keeps the headers a replay or an audit needs, the signature result,
  the outcome and the workflow ID. A *refused* delivery keeps only the body's SHA-256, its size and the
  reason, never the body (anyone can send one); an accepted body and its canonical event are kept
  encrypted with the codec keys (:class:`stores.codec.Keyring`). Never updated: a redelivery is
  a new row. Rows older than ``ledger_retention_days`` are pruned by the ``event-ledger-upkeep`` schedule.
- ``ingress_events`` (:class:`AcceptedEvent`): one row per vendor event, unique on
  ``(vendor, vendor_event_id)``; ``vendor_event_id`` holds ``canonical.events.dedupe_key`` (the vendor's
  event ID, or ``amendment:<recordId>:<n>`` for an executed amendment, whether a webhook or the amendment
  poll brought it). This is the dedupe key: the insert that wins routes the event; a later
  delivery that finds it ``done`` is a duplicate; one that finds it ``failed``, or ``in_flight`` for longer
  than a route takes (stranded by a crash), takes it over and routes again; one that finds it ``in_flight``
  otherwise leaves it to the delivery routing it (once across replicas: :func:`claim_event`). It keeps the
  canonical event (encrypted), so that one stranded ``in_flight`` by a crash, or ``failed`` when Temporal
  was away, is routed again by the upkeep schedule with backoff (``next_attempt_at``) until it settles or
  is given up (``given_up``, visible).
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
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import UniqueConstraint, bindparam, insert, inspect, or_, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, func, select

from settings import Settings
from stores.codec import Keyring
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
    GIVEN_UP = "given_up"


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
    GIVEN_UP = "given_up"


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
    body: str = Field(default="", description="accepted deliveries: the raw body, encrypted (Keyring.seal); "
                                              "refused ones: empty")
    body_bytes: int = 0
    body_sha256: str = Field(default="", description="hex SHA-256 of the body as received")
    event: str | None = Field(default=None, description="the canonical event (EventEnvelope JSON), encrypted")
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
    updated_at: datetime = Field(default_factory=utcnow, index=True)
    event: str | None = Field(default=None, description="the canonical event (EventEnvelope JSON), encrypted, "
                                                        "so a sweep can route it again")
    next_attempt_at: datetime | None = Field(default=None, description="failed: when the sweep retries it")
    last_error: str = ""


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
    engine = open_engine(url, TABLES)
    if engine.dialect.name == "sqlite":  # a server's columns come from the migrations
        _add_new_columns(engine)
    return engine


def _add_new_columns(engine: Engine) -> None:
    """A ledger made by an earlier version gets the columns added since (all nullable or defaulted)."""
    inspector = inspect(engine)
    with engine.begin() as connection:
        for table in TABLES:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                default = column.default.arg if column.default is not None and not callable(column.default.arg) \
                    else None
                clause = "" if default is None else f" NOT NULL DEFAULT {default!r}" if isinstance(default, str) \
                    else f" NOT NULL DEFAULT {default}"
                connection.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}'))


# ---------------------------------------------------------------------------------------------
# Data functions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """Whether this delivery routes the event (``route``), or what the finished earlier one did; ``in_flight``:
    another delivery (this replica's or another's) is routing it right now."""

    route: bool
    retry: bool = False
    outcome: str | None = None
    workflow_id: str | None = None
    in_flight: bool = False


#: an event ``in_flight`` longer than this (when the caller names no moment) was stranded by a crash
STRANDED_AFTER = timedelta(seconds=120)


_EVENTS = AcceptedEvent.__table__  # type: ignore[attr-defined]
_DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]
_DELIVERY_COLUMNS = tuple(c.name for c in _DELIVERIES.columns if c.name != "id")


def _claim_insert(insert: Any) -> Any:
    return insert(_EVENTS).on_conflict_do_nothing(index_elements=["vendor", "vendor_event_id"]).returning(_EVENTS.c.id)


# The statements every event runs, built once: building one costs more than SQLite takes to run it.
#: ``INSERT … ON CONFLICT DO NOTHING RETURNING id`` of a dedupe record, by dialect
_CLAIM = {"postgresql": _claim_insert(postgresql_insert), "sqlite": _claim_insert(sqlite_insert)}
#: a handed-over event settled ``done``
_SETTLE_DONE = update(_EVENTS).where(
    _EVENTS.c.vendor == bindparam("key_vendor"), _EVENTS.c.vendor_event_id == bindparam("key_event_id"),
).values(state=EventState.DONE.value, next_attempt_at=None, last_error="", outcome=bindparam("new_outcome"),
         workflow_id=bindparam("new_workflow_id"), updated_at=bindparam("new_updated_at"))
_ADD_DELIVERY = insert(_DELIVERIES).returning(_DELIVERIES.c.id)


def _insert_if_absent(session: Session, row: dict[str, Any]) -> bool:
    """``INSERT … ON CONFLICT DO NOTHING`` on the dedupe key: True when this insert made the row."""
    statement = _CLAIM.get(session.get_bind().dialect.name)
    if statement is None:  # another server: the unique key still decides, by an error
        try:
            session.add(AcceptedEvent(**row))
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
            return False
    made = session.execute(statement, row).first()
    session.commit()
    return made is not None


def _add_delivery(session: Session, delivery: Delivery) -> None:
    """Insert the delivery row (in the session's transaction) and set its ID, without the ORM's unit of work."""
    values = {name: getattr(delivery, name) for name in _DELIVERY_COLUMNS}
    delivery.id = session.execute(_ADD_DELIVERY, values).scalar_one()


def claim_event(*, session: Session, vendor: str, vendor_event_id: str, event: str | None = None,
                stranded_before: datetime | None = None) -> Claim:
    """Take the event for routing, once across every replica: the first delivery inserts its dedupe record;
    a later one takes it over only from a ``failed`` state or from an ``in_flight`` one last touched before
    ``stranded_before`` (its process died; default: :data:`STRANDED_AFTER` ago), by one conditional
    ``UPDATE`` (a row lock on PostgreSQL, the write lock on SQLite), so that two replicas never both win.

    ``event`` is the canonical event, sealed: kept so that a sweep can route it again after a crash.
    """
    now = utcnow()
    if _insert_if_absent(session, {"vendor": vendor, "vendor_event_id": vendor_event_id, "attempts": 1,
                                   "state": EventState.IN_FLIGHT.value, "outcome": None, "workflow_id": None,
                                   "first_seen_at": now, "updated_at": now, "event": event, "next_attempt_at": None,
                                   "last_error": ""}):
        return Claim(route=True)
    stranded_before = stranded_before if stranded_before is not None else now - STRANDED_AFTER
    same = (col(AcceptedEvent.vendor) == vendor) & (col(AcceptedEvent.vendor_event_id) == vendor_event_id)
    takeover = (col(AcceptedEvent.state) == EventState.FAILED.value) | (
        (col(AcceptedEvent.state) == EventState.IN_FLIGHT.value) & (col(AcceptedEvent.updated_at) < stranded_before))
    taken = session.execute(update(AcceptedEvent).where(same & takeover).values(
        state=EventState.IN_FLIGHT.value, attempts=col(AcceptedEvent.attempts) + 1, updated_at=now,
        event=func.coalesce(col(AcceptedEvent.event), event)))
    session.commit()
    if taken.rowcount:  # type: ignore[attr-defined]
        return Claim(route=True, retry=True)
    row = session.exec(select(AcceptedEvent).where(same)).one()
    if row.state in (EventState.DONE.value, EventState.GIVEN_UP.value):
        return Claim(route=False, outcome=row.outcome, workflow_id=row.workflow_id)
    return Claim(route=False, in_flight=True)


def retry_delay(attempts: int, *, base_seconds: float, max_seconds: float) -> timedelta:
    """Exponential backoff of a failed event: base, 2x base, 4x base, ... capped."""
    return timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, min(attempts - 1, 30))))


def settle_event(*, session: Session, vendor: str, vendor_event_id: str, outcome: Outcome,
                 workflow_id: str | None, error: str = "", retry_base_seconds: float = 30,
                 retry_max_seconds: float = 3600, delivery: Delivery | None = None) -> Delivery | None:
    """Mark the event handed over (``done``), or ``failed`` so a redelivery or the sweep (after a backoff)
    routes it again; ``delivery``, the row saying so, is written in the same transaction (and returned with
    its ID). A handed-over event is settled by one ``UPDATE``: the ingress does this for every event."""
    now = utcnow()
    if outcome is Outcome.FAILED:
        row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor == vendor,
                                                       AcceptedEvent.vendor_event_id == vendor_event_id)).first()
        row = row if row is not None else AcceptedEvent(vendor=vendor, vendor_event_id=vendor_event_id)
        row.state, row.last_error = EventState.FAILED.value, error[:300]
        row.next_attempt_at = now + retry_delay(row.attempts, base_seconds=retry_base_seconds,
                                                max_seconds=retry_max_seconds)
        row.outcome, row.workflow_id, row.updated_at = outcome.value, workflow_id, now
        session.add(row)
    else:
        settled = session.execute(_SETTLE_DONE, {"key_vendor": vendor, "key_event_id": vendor_event_id,
                                                 "new_outcome": outcome.value, "new_workflow_id": workflow_id,
                                                 "new_updated_at": now})
        if not settled.rowcount:  # type: ignore[attr-defined]
            session.add(AcceptedEvent(vendor=vendor, vendor_event_id=vendor_event_id, state=EventState.DONE.value,
                                      outcome=outcome.value, workflow_id=workflow_id, updated_at=now))
            session.flush()
    if delivery is not None:
        _add_delivery(session, delivery)
    session.commit()
    return delivery


def events_to_retry(*, session: Session, now: datetime, stranded_before: datetime, limit: int = 100
                    ) -> list[AcceptedEvent]:
    """Events stranded ``in_flight`` (claimed before ``stranded_before``, never settled: the process died)
    and ``failed`` ones whose backoff has passed; oldest first."""
    query = select(AcceptedEvent).where(or_(
        (col(AcceptedEvent.state) == EventState.IN_FLIGHT.value) & (col(AcceptedEvent.updated_at) < stranded_before),
        (col(AcceptedEvent.state) == EventState.FAILED.value)
        & (col(AcceptedEvent.next_attempt_at).is_(None) | (col(AcceptedEvent.next_attempt_at) <= now)),
    )).order_by(col(AcceptedEvent.updated_at)).limit(limit)
    return list(session.exec(query).all())


def unsettled_events(*, session: Session) -> list[tuple[str, datetime, datetime | None]]:
    """(state, last touched, next attempt), in UTC, of each event without its outcome yet: ``in_flight`` or
    ``failed``, the ones the upkeep sweep will route again."""
    query = select(AcceptedEvent.state, AcceptedEvent.updated_at, AcceptedEvent.next_attempt_at).where(
        col(AcceptedEvent.state).in_([EventState.IN_FLIGHT.value, EventState.FAILED.value]))
    return [(state, _aware(touched), _aware(due) if due else None) for state, touched, due in session.exec(query)]


def find_event(*, session: Session, vendor_event_id: str, vendor: str | None = None) -> AcceptedEvent | None:
    """The dedupe record of an event (with its sealed canonical event)."""
    query = select(AcceptedEvent).where(AcceptedEvent.vendor_event_id == vendor_event_id)
    if vendor:
        query = query.where(AcceptedEvent.vendor == vendor)
    return session.exec(query).first()


def give_up_event(*, session: Session, vendor: str, vendor_event_id: str, reason: str) -> bool:
    """Stop retrying an event (``given_up``), with a ledger row saying why; ``False`` if it was settled."""
    row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor == vendor,
                                                   AcceptedEvent.vendor_event_id == vendor_event_id)).first()
    if row is None or row.state in (EventState.DONE.value, EventState.GIVEN_UP.value):
        return False
    row.state, row.outcome, row.next_attempt_at, row.updated_at = (EventState.GIVEN_UP.value,
                                                                   Outcome.GIVEN_UP.value, None, utcnow())
    row.last_error = reason[:300]
    session.add(row)
    session.add(Delivery(request_id=f"give-up-{row.id}", vendor=vendor, vendor_event_id=vendor_event_id,
                         signature=SignatureCheck.REPLAY.value, outcome=Outcome.GIVEN_UP.value,
                         reason=reason[:300], status_code=0))
    session.commit()
    return True


def prune_ledger(*, session: Session, before: datetime) -> dict[str, int]:
    """Delete deliveries received before ``before`` and settled dedupe records last touched before it.

    A redelivery of a pruned event routes again, which is safe: routing is idempotent by workflow ID.
    """
    deliveries = session.exec(select(func.count()).select_from(Delivery)
                              .where(col(Delivery.received_at) < before)).one()
    session.execute(delete(Delivery).where(col(Delivery.received_at) < before))
    settled = (col(AcceptedEvent.updated_at) < before) & col(AcceptedEvent.state).in_(
        [EventState.DONE.value, EventState.GIVEN_UP.value])
    events = session.exec(select(func.count()).select_from(AcceptedEvent).where(settled)).one()
    session.execute(delete(AcceptedEvent).where(settled))
    session.commit()
    return {"deliveries": int(deliveries), "events": int(events)}


def record_delivery(*, session: Session, delivery: Delivery) -> Delivery:
    """Write one ledger row; its ID is set by the insert (nothing is read back)."""
    _add_delivery(session, delivery)
    session.commit()
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


def handed_over_deliveries(*, session: Session, since: datetime | None = None, limit: int = 50_000
                           ) -> list[Delivery]:
    """Deliveries Temporal accepted (started or signalled) with their canonical event, most recent ``limit``
    first; ``event`` is still sealed (:meth:`EventLedger.handed_over_events` opens it)."""
    query = select(Delivery).where(col(Delivery.outcome).in_([Outcome.STARTED.value, Outcome.SIGNALLED.value]),
                                   col(Delivery.event).is_not(None))
    if since is not None:
        query = query.where(Delivery.received_at >= since.astimezone(UTC))
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


def probe_writable(*, session: Session) -> None:
    """A real write (and its commit), for ``/readyz``: the ``readyz`` checkpoint row."""
    save_checkpoint(session=session, name="readyz", checkpoint=utcnow())


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

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring
        workers = 1 if engine.url.get_backend_name() == "sqlite" else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledger")

    @classmethod
    def from_url(cls, url: str, keyring: Keyring) -> EventLedger:
        return cls(ledger_engine(url), keyring)

    @classmethod
    def from_settings(cls, settings: Settings) -> EventLedger:
        return cls.from_url(settings.ledger_url, Keyring.from_settings(settings))

    def seal(self, text: str) -> str:
        """Encrypt a body or event for storage (the codec keys; the first one encrypts)."""
        return self.keyring.seal(text)

    def open(self, sealed: str) -> str:
        """Decrypt what :meth:`seal` stored (any of the codec keys)."""
        return self.keyring.open(sealed)

    def handed_over_events(self, *, since: datetime | None = None, limit: int = 50_000
                           ) -> list[tuple[Delivery, str]]:
        """Deliveries Temporal accepted, each with its canonical event (``EventEnvelope`` JSON) decrypted."""
        rows = self.run_sync(handed_over_deliveries, since=since, limit=limit)
        return [(row, self.open(row.event or "")) for row in rows]

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
    "claim_event", "count_outcomes", "events_to_retry", "find_event", "get_delivery", "give_up_event",
    "handed_over_deliveries", "ledger_engine",
    "list_deliveries", "load_checkpoint", "probe_writable", "prune_ledger", "record_delivery", "retry_delay",
    "save_checkpoint", "settle_event", "unsettled_events", "utcnow",
]
