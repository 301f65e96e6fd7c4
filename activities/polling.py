"""The HubSpot deal poll: the trigger for when webhooks are missing or lost.

Asks HubSpot's search API for deals modified since the last checkpoint (kept in the event ledger's
database), paced under HubSpot's search limit, and sends every deal at the approval or closed-won
stage through the same dedupe path as the webhooks (:class:`ingress.routing.EventIntake`), with the
vendor event ID ``poll:<dealId>:<stage>``. The checkpoint moves only after every page was handed over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client

from activities.retrying import to_application_error
from canonical import DealStageReached
from connectors.errors import ConnectorError, RateLimited
from connectors.ports import ClmPort, CrmPort
from ingress.ledger import EventLedger, Outcome, SignatureCheck, load_checkpoint, save_checkpoint
from ingress.routing import ClientProvider, EventIntake, EventRouter, Received
from settings import Settings

#: HubSpot's search returns at most this many results per query; past it, restart from the newest seen
SEARCH_WINDOW = 10_000
PAGE_SIZE = 100


class DealPollRequest(BaseModel):
    """Input of ``HubSpotDealPollWorkflow`` and its activity."""

    checkpoint_name: str = "hubspot-deals"
    overlap_seconds: float = Field(default=60, ge=0,
                                   description="re-read this much before the checkpoint: search indexing lags")
    max_pages: int = Field(default=200, ge=1, description="bounds one run; the next run continues")


class DealPollResult(BaseModel):
    since: datetime
    checkpoint: datetime | None = None
    pages: int = 0
    deals_seen: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)


class Pacer:
    """At most ``rate`` calls per second (HubSpot's search limit is 5/s per account)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0

    async def wait(self) -> None:
        now = self._clock()
        if self._next > now:
            await asyncio.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class DealPollActivities:
    """The poll activity with its CRM port, event ledger and Temporal client (built in worker.py).

    Without an explicit ``client`` the activity uses the worker's own (``activity.client()``).
    """

    def __init__(self, *, settings: Settings, crm: CrmPort, ledger: EventLedger | None = None,
                 client: Client | None = None, clm: ClmPort | None = None) -> None:
        self.settings = settings
        self.crm = crm
        self._ledger = ledger
        self.client = client
        self.clm = clm

    @property
    def ledger(self) -> EventLedger:
        """The event ledger, opened from ``settings.ledger_url`` on first use unless given."""
        if self._ledger is None:
            self._ledger = EventLedger.from_settings(self.settings)
        return self._ledger

    def _intake(self) -> EventIntake:
        clients = ClientProvider.fixed(self.client or activity.client())
        return EventIntake(router=EventRouter(settings=self.settings, clients=clients, clm=self.clm, crm=self.crm),
                           ledger=self.ledger)

    @activity.defn(name="poll_hubspot_deals")
    async def poll_hubspot_deals(self, request: DealPollRequest) -> DealPollResult:
        """Deals modified since the checkpoint; those at a stage we act on start quote-to-cash."""
        s = self.settings
        intake = self._intake()
        now = datetime.now(UTC)
        checkpoint = await self.ledger.run(load_checkpoint, name=request.checkpoint_name)
        since = (checkpoint - timedelta(seconds=request.overlap_seconds) if checkpoint
                 else now - timedelta(hours=s.poll_initial_lookback_hours))
        result = DealPollResult(since=since, checkpoint=checkpoint)
        newest = checkpoint
        pacer = Pacer(s.poll_search_requests_per_second)
        query_since, after, offset = since, None, 0
        request_id = f"poll-{uuid4().hex}"
        while result.pages < request.max_pages:
            await pacer.wait()
            try:
                page = await self.crm.search_deals_modified_since(query_since, after=after, limit=PAGE_SIZE)
            except RateLimited as exc:
                activity.heartbeat(f"rate limited, waiting {exc.retry_after or 1:g}s")
                await asyncio.sleep(exc.retry_after or 1.0)
                continue
            except ConnectorError as exc:
                raise to_application_error(exc) from exc
            result.pages += 1
            for deal in page.deals:
                result.deals_seen += 1
                if deal.stage not in (s.hubspot_approval_stage, s.hubspot_closed_won_stage):
                    continue
                event = DealStageReached(source_system="hubspot", source_event_id=f"poll:{deal.crm_id}:{deal.stage}",
                                         occurred_at=now, correlation_id=f"poll-{deal.crm_id}", deal_id=deal.crm_id,
                                         stage=deal.stage, is_closed_won=deal.stage == s.hubspot_closed_won_stage)
                received = Received(vendor="hubspot", request_id=request_id, signature=SignatureCheck.POLL,
                                    headers={}, body=event.model_dump_json())
                routed = await intake.accept(event, received, trigger="poll")
                result.outcomes[routed.outcome.value] = result.outcomes.get(routed.outcome.value, 0) + 1
            if page.checkpoint and (newest is None or page.checkpoint > newest):
                newest = page.checkpoint
            activity.heartbeat(f"page {result.pages}, {result.deals_seen} deals")
            if not page.next_after:
                break
            offset = int(page.next_after) if page.next_after.isdigit() else offset + PAGE_SIZE
            if offset + PAGE_SIZE > SEARCH_WINDOW and newest is not None:
                query_since, after, offset = newest, None, 0  # the search window is exhausted: move it
            else:
                after = page.next_after
        if newest is not None and newest != checkpoint:
            await self.ledger.run(save_checkpoint, name=request.checkpoint_name, checkpoint=newest)
        result.checkpoint = newest
        return result

    def all(self) -> list[Callable[..., Any]]:
        return [self.poll_hubspot_deals]


__all__ = ["DealPollActivities", "DealPollRequest", "DealPollResult", "Outcome", "Pacer"]
