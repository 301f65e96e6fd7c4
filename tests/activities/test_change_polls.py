"""The billing and amendment poll activities over in-memory ports and a recording intake: what they hand over,
in which order, under which key, and where the checkpoint goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.change_polls import (
    AmendmentPollActivities,
    AmendmentPollRequest,
    BillingPollActivities,
    BillingPollRequest,
    ChangePollSettings,
)
from canonical import (
    AmendmentExecuted,
    BillingModel,
    Contract,
    ContractStatus,
    ContractTerms,
    DomainEvent,
    InvoiceFinalized,
    Money,
)
from canonical.events import dedupe_key
from settings import Settings
from stores.events import EventLedger, load_checkpoint, save_checkpoint
from tests.helpers.fakes import FakeBilling, FakeClm, fake_invoice

POLLS = ChangePollSettings(billing_requests_per_second=1000, clm_requests_per_second=1000, clm_vendor="clm")


@dataclass
class RecordingIntake:
    """The intake as the polls see it: events handed over, in order; ``done`` keys count as handled."""

    accepted: list[DomainEvent] = field(default_factory=list)
    done: set[str] = field(default_factory=set)

    async def handled(self, event: DomainEvent, *, vendor: str | None = None) -> bool:
        return dedupe_key(event) in self.done

    async def accept_polled(self, event: DomainEvent, *, request_id: str) -> str:
        self.accepted.append(event)
        self.done.add(dedupe_key(event))
        return "signalled"


@pytest.fixture
def ledger(settings: Settings, tmp_path: Path) -> Iterator[EventLedger]:
    opened = EventLedger.from_settings(settings.model_copy(update={"data_dir": tmp_path}))
    yield opened
    opened.close()


def finalized(n: int, at: datetime) -> InvoiceFinalized:
    return InvoiceFinalized(source_system="billing", source_event_id=f"evt_{n}", occurred_at=at,
                            correlation_id=f"c-{n}", invoice=fake_invoice(f"in_{n}"))


async def test_billing_poll_hands_over_oldest_first_across_pages_and_checkpoints_the_newest(
        ledger: EventLedger) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    billing = FakeBilling(page_size=2)
    billing.events = [finalized(n, start + timedelta(minutes=n)) for n in range(5)]
    ledger.run_sync(save_checkpoint, name="billing-events", checkpoint=start)
    intake = RecordingIntake(done={"evt_1"})

    result = await ActivityEnvironment().run(BillingPollActivities(
        settings=POLLS, billing=billing, ledger=ledger, intake=intake).poll_billing_changes,
        BillingPollRequest(overlap_seconds=0))

    assert [e.source_event_id for e in intake.accepted] == ["evt_0", "evt_2", "evt_3", "evt_4"]
    assert (result.pages, result.events_seen, result.already_handled, result.complete) == (3, 5, 1, True)
    assert result.outcomes == {"signalled": 4}
    assert ledger.run_sync(load_checkpoint, name="billing-events") == start + timedelta(minutes=4)


async def test_billing_poll_cut_short_leaves_the_checkpoint_for_the_next_run(ledger: EventLedger) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    billing = FakeBilling(page_size=2)
    billing.events = [finalized(n, start + timedelta(minutes=n)) for n in range(5)]
    ledger.run_sync(save_checkpoint, name="billing-events", checkpoint=start)
    intake = RecordingIntake()
    poll = BillingPollActivities(settings=POLLS, billing=billing, ledger=ledger, intake=intake)

    cut = await ActivityEnvironment().run(poll.poll_billing_changes, BillingPollRequest(overlap_seconds=0,
                                                                                        max_pages=1))
    whole = await ActivityEnvironment().run(poll.poll_billing_changes, BillingPollRequest(overlap_seconds=0))

    assert not cut.complete and cut.checkpoint == start
    assert [e.source_event_id for e in intake.accepted] == ["evt_3", "evt_4", "evt_0", "evt_1", "evt_2"]
    assert whole.complete and whole.already_handled == 2 and whole.checkpoint == start + timedelta(minutes=4)


def _terms(value: str) -> ContractTerms:
    return ContractTerms(start_date=date(2027, 1, 1), total_value=Money.of(value, "USD"),
                         billing_model=BillingModel.FIXED_FEE, fixed_fee=Money.of(value, "USD"))


async def test_amendment_poll_hands_over_executed_amendments_under_the_webhooks_key(ledger: EventLedger) -> None:
    clm = FakeClm()
    record_id = "rec-poll-1"
    clm.contracts["wf-poll-1"] = Contract(clm_workflow_id="wf-poll-1", clm_record_id=record_id, title="t",
                                          counterparty="c", status=ContractStatus.EXECUTED, terms=_terms("100"))
    old = clm.amend(record_id, _terms("120"))
    old.executed_on = date(2020, 1, 1)  # long before the window: seen by an earlier poll or webhook
    new = clm.amend(record_id, _terms("150"))
    new.executed_on = datetime.now(UTC).date()
    webhook = AmendmentExecuted(source_system="clm", source_event_id="webhookEvent1", occurred_at=datetime.now(UTC),
                                correlation_id="c", clm_record_id=record_id, sequence=2)
    intake = RecordingIntake()

    result = await ActivityEnvironment().run(AmendmentPollActivities(
        settings=POLLS, clm=clm, ledger=ledger, intake=intake).poll_clm_amendments, AmendmentPollRequest())

    [event] = intake.accepted
    assert isinstance(event, AmendmentExecuted)
    assert (event.clm_record_id, event.sequence, event.clm_amendment_id) == (record_id, 2, new.clm_amendment_id)
    assert event.source_system == "clm" and dedupe_key(event) == dedupe_key(webhook) == f"amendment:{record_id}:2"
    assert result.since <= event.occurred_at <= datetime.now(UTC)
    assert result.complete and result.checkpoint is not None
    assert ledger.run_sync(load_checkpoint, name="clm-amendments") == result.checkpoint


async def test_billing_poll_paces_its_pages_at_the_adapters_read_limit(ledger: EventLedger) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    billing = FakeBilling(page_size=1)
    billing.events = [finalized(n, start + timedelta(minutes=n)) for n in range(4)]
    slow = POLLS.model_copy(update={"billing_requests_per_second": 10.0})
    began = time.monotonic()

    result = await ActivityEnvironment().run(BillingPollActivities(
        settings=slow, billing=billing, ledger=ledger, intake=RecordingIntake()).poll_billing_changes,
        BillingPollRequest())

    assert result.pages == 4 and time.monotonic() - began >= 0.3, "four pages at 10/s: three gaps of 0.1 s"


def test_change_poll_paces_come_from_each_adapters_own_limits(settings: Settings) -> None:
    paces = ChangePollSettings.from_settings(settings.model_copy(update={"adapter_settings": {
        **settings.adapter_settings, "stripe": {**settings.adapter_settings.get("stripe", {}),
                                                "requests_per_second": 7.0}}}))

    assert paces.billing_requests_per_second == 7.0
    assert paces.clm_requests_per_second > 0 and paces.clm_vendor == "ironclad"
