"""How long the chaos run waits for the ledger to settle before it counts events without an outcome.

A replica SIGKILLed while it routed an event leaves that event ``in_flight``; only the upkeep sweep routes it
again, once it counts as stranded (``ledger_stranded_after_seconds``) and at the sweep's next turn
(``ledger_upkeep_interval_seconds``). The run used to wait a fixed 240 s, shorter than the product's own bound
with the default 300 s sweep (up to 420 s), so a fresh-clone ``make test`` once failed the small chaos run with
an event that the next sweep would have settled."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from bench.chaos import ledger_settled, ledger_state, pending_events, swept_by
from settings import Settings
from stores.events import Outcome, claim_event, ledger_engine, settle_event


def _ledger(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite'}"


def test_an_event_stranded_by_a_killed_replica_is_waited_for_until_the_sweep_after_it_counts_as_stranded(
        tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    engine = ledger_engine(url)
    with Session(engine) as session:
        for event_id in ("stranded", "settled"):
            assert claim_event(session=session, vendor="hubspot", vendor_event_id=event_id).route
        settle_event(session=session, vendor="hubspot", vendor_event_id="settled", outcome=Outcome.STARTED,
                     workflow_id="q2c-hubspot-1")
        # a delivery that failed three times waits out its backoff (30 s doubled: 120 s after the third)
        assert claim_event(session=session, vendor="stripe", vendor_event_id="failing").route
        for _ in range(3):
            settle_event(session=session, vendor="stripe", vendor_event_id="failing", outcome=Outcome.FAILED,
                         workflow_id=None, error="Temporal away")
            claim_event(session=session, vendor="stripe", vendor_event_id="failing",
                        stranded_before=datetime.now(UTC))
        settle_event(session=session, vendor="stripe", vendor_event_id="failing", outcome=Outcome.FAILED,
                     workflow_id=None, error="Temporal away")
    engine.dispose()

    rows = pending_events(url)
    tally = ledger_state(url)
    assert tally["events_by_state"] == {"done": 1, "failed": 1, "in_flight": 1}
    assert sorted(row[2] for row in tally["unsettled_sample"]) == ["failed", "in_flight"]
    assert sorted(state for state, _, _ in rows) == ["failed", "in_flight"]  # the settled one is not waited for
    stranded = next(touched for state, touched, _ in rows if state == "in_flight")
    failing_due = next(due for state, _, due in rows if state == "failed")
    assert stranded is not None and failing_due is not None and stranded.tzinfo and failing_due.tzinfo

    defaults = Settings()
    bound = swept_by([r for r in rows if r[0] == "in_flight"], stranded_after=defaults.ledger_stranded_after_seconds,
                     sweep_every=defaults.ledger_upkeep_interval_seconds)
    assert bound == stranded + timedelta(seconds=120 + 300)  # stranded after 2 min, then the next 5-min sweep
    assert bound > stranded + timedelta(seconds=240)  # past the fixed wait that failed the small chaos run
    both = swept_by(rows, stranded_after=120, sweep_every=30)
    assert both == max(stranded + timedelta(seconds=120), failing_due) + timedelta(seconds=30)
    assert failing_due >= stranded + timedelta(seconds=110)  # the backoff is honoured, not skipped
    assert swept_by([], stranded_after=120, sweep_every=30) is None


async def test_the_wait_ends_at_once_when_every_event_has_its_outcome_and_not_before_the_sweeps_bound(
        tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    engine = ledger_engine(url)
    with Session(engine) as session:
        assert claim_event(session=session, vendor="hubspot", vendor_event_id="done").route
        settle_event(session=session, vendor="hubspot", vendor_event_id="done", outcome=Outcome.STARTED,
                     workflow_id="q2c-hubspot-1")
    start = time.monotonic()
    await ledger_settled(url, Settings(), slack=60)
    assert time.monotonic() - start < 30  # nothing to wait for: no fixed wait

    with Session(engine) as session:
        assert claim_event(session=session, vendor="hubspot", vendor_event_id="stranded").route
    engine.dispose()
    quick = Settings().model_copy(update={"ledger_stranded_after_seconds": 2, "ledger_upkeep_interval_seconds": 1})
    start = time.monotonic()
    await ledger_settled(url, quick, slack=0, cap=60)
    assert time.monotonic() - start >= 2.5  # the stranded event's bound (2 s + one 1-s sweep), not sooner
