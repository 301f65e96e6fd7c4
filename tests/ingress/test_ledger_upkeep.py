"""The event ledger's upkeep: events stranded ``in_flight`` by a crash and ``failed`` ones are routed again
(with backoff) until settled or given up (visible), and rows past the retention are pruned, by the
``EventLedgerUpkeepWorkflow`` its schedule runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.worker import Worker

from activities.event_ledger import EventLedgerActivities, LedgerRetention, LedgerSweepRequest
from canonical import DealStageReached, EventEnvelope
from intake import ClientProvider, EventIntake, EventRouter
from runtime.schedules import UPKEEP_SCHEDULE_ID, ensure_upkeep_schedule
from settings import Settings
from stores.events import (
    AcceptedEvent,
    Delivery,
    EventLedger,
    EventState,
    Outcome,
    claim_event,
    list_deliveries,
    record_delivery,
    retry_delay,
    settle_event,
)
from tests.helpers.codec import keyring_for_tests
from tests.helpers.ids import quote_to_cash_id
from tests.helpers.webhooks import unique_deal_id
from workflows.event_ledger import EventLedgerUpkeepWorkflow


def _ledger(tmp_path: Path) -> EventLedger:
    return EventLedger.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}", keyring_for_tests())


def _stage_event(deal_id: str) -> DealStageReached:
    return DealStageReached(source_system="hubspot", source_event_id=f"evt-{uuid.uuid4().hex[:10]}",
                            occurred_at=datetime.now(UTC), correlation_id="c", deal_id=deal_id, stage="closedwon",
                            is_closed_won=True)


def _strand(ledger: EventLedger, event: DealStageReached, *, minutes_ago: float) -> None:
    """The ingress claimed the event, then its process died before routing it."""
    sealed = ledger.seal(EventEnvelope(event=event).model_dump_json())
    ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id=event.source_event_id, event=sealed)
    with Session(ledger.engine) as session:
        row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor_event_id == event.source_event_id)).one()
        row.updated_at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        session.add(row)
        session.commit()


def _state(ledger: EventLedger, event_id: str) -> AcceptedEvent:
    with Session(ledger.engine) as session:
        return session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor_event_id == event_id)).one()


async def test_ledger_upkeep_workflow_routes_a_stranded_event_again(
    client: Client, flow_settings: Settings, tmp_path: Path
) -> None:
    ledger = _ledger(tmp_path)
    deal_id = unique_deal_id()
    stranded, recent = _stage_event(deal_id), _stage_event(unique_deal_id())
    _strand(ledger, stranded, minutes_ago=10)
    _strand(ledger, recent, minutes_ago=0)  # maybe still being routed by a live ingress: left alone
    intake = EventIntake(router=EventRouter(settings=flow_settings, clients=ClientProvider.fixed(client)),
                         ledger=ledger)
    activities = EventLedgerActivities(settings=LedgerRetention.from_settings(flow_settings), ledger=ledger,
                                       intake=intake)
    try:
        async with Worker(client, task_queue=flow_settings.task_queue, workflows=[EventLedgerUpkeepWorkflow],
                          activities=activities.all()):
            result = await client.execute_workflow(EventLedgerUpkeepWorkflow.run, LedgerSweepRequest(),
                                                   id=f"upkeep-{uuid.uuid4()}", task_queue=flow_settings.task_queue)
        described = await client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
        swept, untouched = _state(ledger, stranded.source_event_id), _state(ledger, recent.source_event_id)
        rows = ledger.run_sync(list_deliveries, event_id=stranded.source_event_id)
    finally:
        ledger.close()

    assert (result.sweep.routed, result.sweep.failed, result.sweep.given_up) == (1, 0, 0)
    assert described.workflow_type == "QuoteToCashWorkflow"
    assert (swept.state, swept.outcome, swept.attempts) == ("done", "started", 2)
    assert untouched.state == "in_flight"
    assert [r.outcome for r in rows] == ["started"] and rows[0].event and rows[0].event.startswith("enc:v1:")


async def test_ledger_upkeep_failed_event_waits_its_backoff_then_settles(
    client: Client, flow_settings: Settings, tmp_path: Path
) -> None:
    ledger = _ledger(tmp_path)
    event = _stage_event(unique_deal_id())
    _strand(ledger, event, minutes_ago=0)
    ledger.run_sync(settle_event, vendor="hubspot", vendor_event_id=event.source_event_id, outcome=Outcome.FAILED,
                    workflow_id=None, error="Temporal unavailable", retry_base_seconds=60, retry_max_seconds=600)
    intake = EventIntake(router=EventRouter(settings=flow_settings, clients=ClientProvider.fixed(client)),
                         ledger=ledger)
    try:
        now = datetime.now(UTC)
        early = await intake.sweep(now=now)
        failed = _state(ledger, event.source_event_id)
        due = await intake.sweep(now=now + timedelta(seconds=61))
        settled = _state(ledger, event.source_event_id)
    finally:
        ledger.close()

    assert early.routed == 0 and failed.state == "failed" and failed.last_error == "Temporal unavailable"
    assert due.routed == 1 and (settled.state, settled.next_attempt_at) == ("done", None)
    assert [retry_delay(n, base_seconds=30, max_seconds=3600).total_seconds() for n in (1, 2, 3, 9, 50)] == [
        30, 60, 120, 3600, 3600]


async def test_ledger_upkeep_gives_up_visibly_after_the_last_attempt(
    client: Client, flow_settings: Settings, tmp_path: Path
) -> None:
    ledger = _ledger(tmp_path)
    event = _stage_event(unique_deal_id())
    _strand(ledger, event, minutes_ago=0)
    for _ in range(flow_settings.ledger_retry_max_attempts - 1):  # each attempt failed, then was taken again
        ledger.run_sync(settle_event, vendor="hubspot", vendor_event_id=event.source_event_id,
                        outcome=Outcome.FAILED, workflow_id=None, error="Temporal unavailable")
        ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id=event.source_event_id)
    ledger.run_sync(settle_event, vendor="hubspot", vendor_event_id=event.source_event_id, outcome=Outcome.FAILED,
                    workflow_id=None, error="Temporal unavailable", retry_base_seconds=0, retry_max_seconds=0)
    intake = EventIntake(router=EventRouter(settings=flow_settings, clients=ClientProvider.fixed(client)),
                         ledger=ledger)
    try:
        swept = await intake.sweep(now=datetime.now(UTC) + timedelta(seconds=1))
        again = await intake.sweep(now=datetime.now(UTC) + timedelta(days=1))
        row = _state(ledger, event.source_event_id)
        visible = ledger.run_sync(list_deliveries, outcome="given_up")
        redelivered = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id=event.source_event_id)
        replayed = await intake.replay(event.source_event_id)  # an operator routes it again by hand
        after_replay = _state(ledger, event.source_event_id)
    finally:
        ledger.close()

    assert (swept.given_up, swept.routed, again.given_up) == (1, 0, 0)
    assert row.state == EventState.GIVEN_UP.value and "gave up after" in row.last_error
    assert [(r.vendor_event_id, r.outcome) for r in visible] == [(event.source_event_id, "given_up")]
    assert "Temporal unavailable" in visible[0].reason
    assert not redelivered.route  # a given-up event stays given up until an operator replays it
    assert replayed.outcome is Outcome.STARTED and after_replay.state == "done"


def test_ledger_upkeep_prune_keeps_the_retention(store_url: str) -> None:
    from stores.events import prune_ledger

    ledger = EventLedger.from_url(store_url, keyring_for_tests())
    old, new = datetime.now(UTC) - timedelta(days=40), datetime.now(UTC)
    try:
        for when, name in ((old, "old"), (new, "new")):
            ledger.run_sync(record_delivery, delivery=Delivery(request_id=name, vendor="stripe", received_at=when,
                                                               signature="invalid", outcome="rejected",
                                                               status_code=401, vendor_event_id=name))
            ledger.run_sync(claim_event, vendor="stripe", vendor_event_id=name)
            ledger.run_sync(settle_event, vendor="stripe", vendor_event_id=name, outcome=Outcome.STARTED,
                            workflow_id=None)
        with Session(ledger.engine) as session:
            row = session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor_event_id == "old")).one()
            row.updated_at = old
            session.add(row)
            session.commit()
        pruned = ledger.run_sync(prune_ledger, before=datetime.now(UTC) - timedelta(days=30))
        left = [r.request_id for r in ledger.run_sync(list_deliveries)]
        with Session(ledger.engine) as session:
            events = [r.vendor_event_id for r in session.exec(select(AcceptedEvent)).all()]
    finally:
        ledger.close()

    assert pruned == {"deliveries": 1, "events": 1}
    assert left == ["new"] and events == ["new"]


async def test_ledger_upkeep_schedule_is_created_from_settings(client: Client, flow_settings: Settings) -> None:
    schedule_id = f"{UPKEEP_SCHEDULE_ID}-{uuid.uuid4().hex[:8]}"
    settings = flow_settings.model_copy(update={"ledger_upkeep_interval_seconds": 120})

    assert await ensure_upkeep_schedule(client, settings, schedule_id=schedule_id) == "created"
    description = await client.get_schedule_handle(schedule_id).describe()
    await client.get_schedule_handle(schedule_id).delete()

    assert description.schedule.action.workflow == "EventLedgerUpkeepWorkflow"  # type: ignore[attr-defined]
    assert description.schedule.spec.intervals[0].every == timedelta(seconds=120)


def test_ledger_upkeep_an_older_ledger_gets_the_new_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the tables as the previous version made them
        db.execute("CREATE TABLE ingress_events (id INTEGER PRIMARY KEY, vendor VARCHAR NOT NULL, "
                   "vendor_event_id VARCHAR NOT NULL, state VARCHAR NOT NULL, outcome VARCHAR, workflow_id VARCHAR, "
                   "attempts INTEGER NOT NULL, first_seen_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, "
                   "CONSTRAINT uq_ingress_events_vendor_event UNIQUE (vendor, vendor_event_id))")
        db.execute("INSERT INTO ingress_events VALUES (1, 'stripe', 'evt_old', 'done', 'started', NULL, 1, "
                   "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
    ledger = EventLedger.from_url(f"sqlite:///{path}", keyring_for_tests())
    try:
        claim = ledger.run_sync(claim_event, vendor="stripe", vendor_event_id="evt_old")
        row = _state(ledger, "evt_old")
    finally:
        ledger.close()
    assert not claim.route and (row.event, row.next_attempt_at, row.last_error) == (None, None, "")
