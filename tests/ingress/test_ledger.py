"""The event ledger's dedupe record: one winner per vendor event, even across threads; on SQLite and
PostgreSQL (``store_url``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from stores.events import (
    EventLedger,
    Outcome,
    claim_event,
    ledger_engine,
    load_checkpoint,
    save_checkpoint,
    settle_event,
)
from tests.helpers.codec import keyring_for_tests


def test_ledger_claim_has_one_winner_across_threads(store_url: str) -> None:
    engine = ledger_engine(store_url)

    def claim(_: int) -> bool:
        with Session(engine) as session:
            return claim_event(session=session, vendor="stripe", vendor_event_id="evt_1").retry

    with ThreadPoolExecutor(max_workers=16) as pool:
        retries = list(pool.map(claim, range(32)))

    assert retries.count(False) == 1  # exactly one fresh claim; the others find it in flight


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


def test_ledger_checkpoint_round_trips_as_utc(store_url: str) -> None:
    ledger = EventLedger.from_url(store_url, keyring_for_tests())
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC) + timedelta(microseconds=5)
    try:
        assert ledger.run_sync(load_checkpoint, name="crm-deals") is None
        ledger.run_sync(save_checkpoint, name="crm-deals", checkpoint=moment)
        assert ledger.run_sync(load_checkpoint, name="crm-deals") == moment
    finally:
        ledger.close()
