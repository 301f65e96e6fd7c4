"""The event ledger's dedupe record: one winner per vendor event, even across threads; on SQLite and
PostgreSQL (``store_url``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from stores.events import (
    Claim,
    Delivery,
    EventLedger,
    EventState,
    Outcome,
    claim_event,
    find_event,
    get_delivery,
    give_up_event,
    ledger_engine,
    load_checkpoint,
    save_checkpoint,
    settle_event,
    unsettled_events,
)
from tests.helpers.codec import keyring_for_tests


def test_ledger_claim_has_one_winner_across_threads(store_url: str) -> None:
    engine = ledger_engine(store_url)

    def claim(_: int) -> Claim:
        with Session(engine) as session:
            return claim_event(session=session, vendor="stripe", vendor_event_id="evt_1")

    with ThreadPoolExecutor(max_workers=16) as pool:
        claims = list(pool.map(claim, range(32)))
    engine.dispose()

    assert [c.route for c in claims].count(True) == 1  # exactly one routes; the others find it in flight
    assert all(c.in_flight and not c.retry for c in claims if not c.route)


def test_ledger_in_flight_event_is_taken_over_only_once_stranded(store_url: str) -> None:
    ledger = EventLedger.from_url(store_url, keyring_for_tests())
    now = datetime.now(UTC)
    try:
        first = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="9", event="sealed-1")
        routing = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="9",
                                  stranded_before=now - timedelta(minutes=2))
        stranded = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="9",
                                   stranded_before=now + timedelta(seconds=1))  # its claimer died long ago
        again = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="9",
                                stranded_before=now - timedelta(minutes=2))
        row = ledger.run_sync(find_event, vendor="hubspot", vendor_event_id="9")
    finally:
        ledger.close()

    assert (first.route, routing.route, routing.in_flight) == (True, False, True)
    assert (stranded.route, stranded.retry) == (True, True)
    assert (again.route, again.in_flight) == (False, True)  # the takeover is itself in flight now
    assert row is not None and (row.attempts, row.state, row.event) == (2, "in_flight", "sealed-1")


def test_ledger_settled_event_is_a_duplicate_and_failed_one_routes_again(store_url: str) -> None:
    ledger = EventLedger.from_url(store_url, keyring_for_tests())
    try:
        ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="1")
        ledger.run_sync(settle_event, vendor="hubspot", vendor_event_id="1", outcome=Outcome.STARTED,
                        workflow_id="q2c-hubspot-1")
        ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="2")
        ledger.run_sync(settle_event, vendor="hubspot", vendor_event_id="2", outcome=Outcome.FAILED, workflow_id=None)

        done = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="1")
        failed = ledger.run_sync(claim_event, vendor="hubspot", vendor_event_id="2")
        other_vendor = ledger.run_sync(claim_event, vendor="stripe", vendor_event_id="1")
    finally:
        ledger.close()

    assert (done.route, done.outcome, done.workflow_id) == (False, "started", "q2c-hubspot-1")
    assert (failed.route, failed.retry) == (True, True)
    assert (other_vendor.route, other_vendor.retry) == (True, False)


def test_ledger_settles_an_event_and_writes_its_delivery_row_together(store_url: str) -> None:
    """The ingress settles a routed event and records the delivery in one transaction: the row comes back with
    its ID, and an event never claimed (a replay of a pruned one) is settled by a record made then."""
    ledger = EventLedger.from_url(store_url, keyring_for_tests())

    def row(event_id: str, outcome: Outcome) -> Delivery:
        return Delivery(request_id=f"r-{event_id}", vendor="stripe", vendor_event_id=event_id, signature="valid",
                        outcome=outcome.value, status_code=200)
    try:
        ledger.run_sync(claim_event, vendor="stripe", vendor_event_id="evt_a", event="sealed-a")
        settled = ledger.run_sync(settle_event, vendor="stripe", vendor_event_id="evt_a", outcome=Outcome.SIGNALLED,
                                  workflow_id="ledger-1", delivery=row("evt_a", Outcome.SIGNALLED))
        unclaimed = ledger.run_sync(settle_event, vendor="stripe", vendor_event_id="evt_b", outcome=Outcome.STARTED,
                                    workflow_id="ledger-2", delivery=row("evt_b", Outcome.STARTED))
        failed = ledger.run_sync(settle_event, vendor="stripe", vendor_event_id="evt_a", outcome=Outcome.FAILED,
                                 workflow_id=None, error="Temporal away", delivery=row("evt_a", Outcome.FAILED))
        a = ledger.run_sync(find_event, vendor="stripe", vendor_event_id="evt_a")
        b = ledger.run_sync(find_event, vendor="stripe", vendor_event_id="evt_b")
        kept = [ledger.run_sync(get_delivery, delivery_id=d.id) for d in (settled, unclaimed, failed)
                if d is not None and d.id is not None]
    finally:
        ledger.close()

    assert [(d.vendor_event_id, d.outcome) for d in kept if d is not None] == [
        ("evt_a", "signalled"), ("evt_b", "started"), ("evt_a", "failed")]
    assert b is not None and (b.state, b.outcome, b.workflow_id) == (EventState.DONE.value, "started", "ledger-2")
    assert a is not None and (a.state, a.event, a.last_error) == (EventState.FAILED.value, "sealed-a", "Temporal away")
    assert a.next_attempt_at is not None


def test_ledger_checkpoint_round_trips_as_utc(store_url: str) -> None:
    ledger = EventLedger.from_url(store_url, keyring_for_tests())
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC) + timedelta(microseconds=5)
    try:
        assert ledger.run_sync(load_checkpoint, name="crm-deals") is None
        ledger.run_sync(save_checkpoint, name="crm-deals", checkpoint=moment)
        assert ledger.run_sync(load_checkpoint, name="crm-deals") == moment
    finally:
        ledger.close()


def test_unsettled_events_are_the_ones_the_sweep_will_route_again_with_their_times_in_utc(store_url: str) -> None:
    engine = ledger_engine(store_url)
    before = datetime.now(UTC) - timedelta(seconds=1)
    with Session(engine) as session:
        for event_id in ("routing", "done", "failing", "dropped"):
            assert claim_event(session=session, vendor="stripe", vendor_event_id=event_id).route
        settle_event(session=session, vendor="stripe", vendor_event_id="done", outcome=Outcome.STARTED,
                     workflow_id="q2c-1")
        settle_event(session=session, vendor="stripe", vendor_event_id="failing", outcome=Outcome.FAILED,
                     workflow_id=None, error="Temporal away")
        assert give_up_event(session=session, vendor="stripe", vendor_event_id="dropped", reason="no such deal")
        rows = sorted(unsettled_events(session=session))
    engine.dispose()

    assert [state for state, _, _ in rows] == ["failed", "in_flight"]  # neither done nor given up
    (_, failed_touched, failed_due), (_, flight_touched, flight_due) = rows
    assert failed_due is not None and flight_due is None  # only a failed one has a backoff
    for moment in (failed_touched, failed_due, flight_touched):
        assert moment.utcoffset() == timedelta(0) and moment >= before  # aware, UTC, on either backend
    assert failed_due > failed_touched
