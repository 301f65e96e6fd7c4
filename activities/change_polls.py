"""The billing and amendment polls: the nets for billing and CLM webhooks that never arrived.

Each asks its port for what changed since the last checkpoint (kept in the event ledger's database, re-read
``overlap_seconds`` earlier), paced under the adapter's own read limit, and hands every event to the intake,
the same dedupe path as the webhooks:

- billing (``BillingPort.changes_since``): the very events the billing webhooks give, under the same vendor
  event IDs, handed over oldest first (so a ledger sees an invoice finalized before it is paid);
- amendments (``ClmPort.records_changed_since``): every executed amendment of a changed contract as the
  ``AmendmentExecuted`` its webhook gives, claimed under the same key (``canonical.events.dedupe_key``:
  contract record and sequence), since a poll cannot know the webhook's own event ID.

An event the ledger already finished (its webhook came, or an earlier poll handed it over) is skipped without
a new ledger row, so re-reading the overlap costs nothing. The checkpoint moves only after every page was
read and handed over; a run cut short by ``max_pages`` leaves it (``complete`` false) and the next run reads
the same window again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol
from uuid import uuid4

from pydantic import BaseModel, Field
from temporalio import activity

from activities.retrying import to_application_error
from canonical import AmendmentExecuted, Contract, DomainEvent
from canonical.ownership import SystemRole
from connectors.errors import ConnectorError
from connectors.pacing import Pacer
from connectors.ports import BillingPort, ClmPort
from connectors.registry import AdapterRegistry, default_registry
from settings import Settings
from stores.events import EventLedger, load_checkpoint, save_checkpoint


class ChangePollRequest(BaseModel):
    """Input of a change poll's workflow and activity."""

    checkpoint_name: str
    overlap_seconds: float = Field(default=60, ge=0, description="re-read this much before the checkpoint")
    max_pages: int = Field(default=200, ge=1, description="bounds one run; the next run reads the window again")


class BillingPollRequest(ChangePollRequest):
    """Input of ``BillingEventPollWorkflow``."""

    checkpoint_name: str = "billing-events"


class AmendmentPollRequest(ChangePollRequest):
    """Input of ``AmendmentPollWorkflow``."""

    checkpoint_name: str = "clm-amendments"


class ChangePollResult(BaseModel):
    """What one poll read and did: ``outcomes`` counts the intake's answers, ``already_handled`` the events
    the ledger had finished before."""

    since: datetime
    checkpoint: datetime | None = None
    pages: int = 0
    events_seen: int = 0
    already_handled: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)
    complete: bool = False


class ChangePollSettings(BaseModel):
    """What the polls need from ``Settings`` and the registry (built in the composition root)."""

    initial_lookback_hours: float = 24
    billing_requests_per_second: float = 5.0
    clm_requests_per_second: float = 2.0
    clm_vendor: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, registry: AdapterRegistry | None = None) -> ChangePollSettings:
        """The look-back from ``settings``; each pace from its adapter's own read limit."""
        registry = registry or default_registry(settings)
        return cls(initial_lookback_hours=settings.poll_initial_lookback_hours,
                   billing_requests_per_second=registry.rate_limits(settings, SystemRole.BILLING).reads_per_second,
                   clm_requests_per_second=registry.rate_limits(settings, SystemRole.CLM).reads_per_second,
                   clm_vendor=registry.adapter_name(settings, SystemRole.CLM))


class PolledEventIntake(Protocol):
    """Where polled events go: the webhooks' dedupe-and-route path (``intake.EventIntake``)."""

    async def handled(self, event: DomainEvent, *, vendor: str | None = None) -> bool:
        """Whether the ledger already finished with the event."""
        ...

    async def accept_polled(self, event: DomainEvent, *, request_id: str) -> str:
        """Route the event unless handled before; the outcome (``started``, ``signalled``, ``duplicate``...)."""
        ...


class _Poll:
    """One run: the window, the result, the hand-over."""

    def __init__(self, request: ChangePollRequest, checkpoint: datetime | None, lookback_hours: float) -> None:
        now = datetime.now(UTC)
        self.now = now
        self.checkpoint = checkpoint
        self.since = (checkpoint - timedelta(seconds=request.overlap_seconds) if checkpoint
                      else now - timedelta(hours=lookback_hours))
        self.result = ChangePollResult(since=self.since, checkpoint=checkpoint)
        self.request_id = f"poll-{uuid4().hex}"

    async def hand_over(self, intake: PolledEventIntake, events: Sequence[DomainEvent]) -> None:
        for event in events:
            self.result.events_seen += 1
            if await intake.handled(event):
                self.result.already_handled += 1
                continue
            outcome = await intake.accept_polled(event, request_id=self.request_id)
            self.result.outcomes[outcome] = self.result.outcomes.get(outcome, 0) + 1


class BillingPollActivities:
    """The billing poll with its port, the checkpoint store and the intake (built in worker.py)."""

    def __init__(self, *, settings: ChangePollSettings, billing: BillingPort, ledger: EventLedger,
                 intake: PolledEventIntake) -> None:
        self.settings = settings
        self.billing = billing
        self.ledger = ledger
        self.intake = intake

    @activity.defn(name="poll_billing_changes")
    async def poll_billing_changes(self, request: BillingPollRequest) -> ChangePollResult:
        """Billing events since the checkpoint, routed as their webhooks would have been."""
        checkpoint = await self.ledger.run(load_checkpoint, name=request.checkpoint_name)
        poll = _Poll(request, checkpoint, self.settings.initial_lookback_hours)
        pacer = Pacer(self.settings.billing_requests_per_second)
        collected: list[DomainEvent] = []
        cursor: str | None = None
        try:
            while poll.result.pages < request.max_pages:
                await pacer.take()
                events, cursor = await self.billing.changes_since(poll.since, cursor=cursor)
                poll.result.pages += 1
                collected += events
                activity.heartbeat(f"page {poll.result.pages}, {len(collected)} events")
                if cursor is None:
                    poll.result.complete = True
                    break
        except ConnectorError as exc:
            raise to_application_error(exc) from exc
        # billing lists newest first: oldest first is the order things happened in
        ordered = sorted(reversed(collected), key=lambda e: e.occurred_at)
        await poll.hand_over(self.intake, ordered)
        if poll.result.complete and ordered:
            newest = ordered[-1].occurred_at
            if checkpoint is None or newest > checkpoint:
                await self.ledger.run(save_checkpoint, name=request.checkpoint_name, checkpoint=newest)
                poll.result.checkpoint = newest
        return poll.result

    def all(self) -> list[Callable[..., Any]]:
        return [self.poll_billing_changes]


def amendment_events(contract: Contract, *, vendor: str, since: datetime, now: datetime) -> list[AmendmentExecuted]:
    """The ``AmendmentExecuted`` events of a changed contract, as its webhooks give them: each executed
    amendment from the day before ``since`` on (an older one was seen by an earlier poll or webhook, and its
    contract's run may long be closed). Executed on a day, not at a moment: ``occurred_at`` is the latest we
    can say it was executed by, never before the window opened."""
    events = []
    first_day = (since - timedelta(days=1)).date()
    for amendment in contract.amendments:
        if amendment.executed_on is not None and amendment.executed_on < first_day:
            continue
        day_start = (datetime.combine(amendment.executed_on, time(), tzinfo=UTC) if amendment.executed_on
                     else since)
        occurred = min(now, max(since, day_start))
        events.append(AmendmentExecuted(
            source_system=vendor, source_event_id=f"poll:amendment:{contract.clm_record_id}:{amendment.sequence}",
            occurred_at=occurred, correlation_id=f"poll-{contract.clm_record_id}",
            clm_record_id=amendment.contract_record_id or contract.clm_record_id or "", sequence=amendment.sequence,
            clm_amendment_id=amendment.clm_amendment_id))
    return events


class AmendmentPollActivities:
    """The amendment poll with its CLM port, the checkpoint store and the intake (built in worker.py)."""

    def __init__(self, *, settings: ChangePollSettings, clm: ClmPort, ledger: EventLedger,
                 intake: PolledEventIntake) -> None:
        self.settings = settings
        self.clm = clm
        self.ledger = ledger
        self.intake = intake

    @activity.defn(name="poll_clm_amendments")
    async def poll_clm_amendments(self, request: AmendmentPollRequest) -> ChangePollResult:
        """Executed amendments of contracts changed since the checkpoint, routed as their webhooks would be."""
        checkpoint = await self.ledger.run(load_checkpoint, name=request.checkpoint_name)
        poll = _Poll(request, checkpoint, self.settings.initial_lookback_hours)
        pacer = Pacer(self.settings.clm_requests_per_second)
        cursor: str | None = None
        try:
            while poll.result.pages < request.max_pages:
                await pacer.take()
                contracts, cursor = await self.clm.records_changed_since(poll.since, cursor=cursor)
                poll.result.pages += 1
                for contract in contracts:
                    await poll.hand_over(self.intake, amendment_events(
                        contract, vendor=self.settings.clm_vendor, since=poll.since, now=poll.now))
                activity.heartbeat(f"page {poll.result.pages}, {poll.result.events_seen} amendments")
                if cursor is None:
                    poll.result.complete = True
                    break
        except ConnectorError as exc:
            raise to_application_error(exc) from exc
        if poll.result.complete:
            # records carry no change time we keep: the run's start is where the next one picks up
            await self.ledger.run(save_checkpoint, name=request.checkpoint_name, checkpoint=poll.now)
            poll.result.checkpoint = poll.now
        return poll.result

    def all(self) -> list[Callable[..., Any]]:
        return [self.poll_clm_amendments]


__all__ = ["AmendmentPollActivities", "AmendmentPollRequest", "BillingPollActivities", "BillingPollRequest",
           "ChangePollRequest", "ChangePollResult", "ChangePollSettings", "PolledEventIntake", "amendment_events"]
