"""The CRM deal poll: the trigger for when webhooks are missing or lost.

Asks the CRM (``CrmPort.deals_modified_since``; HubSpot's search API) for deals modified since the last
checkpoint (kept in the event ledger's database), paced under the CRM's search limit, and sends every deal
at the approval or closed-won stage through the same dedupe path as the webhooks (the intake the
composition root passes in), with the vendor event ID ``poll:<dealId>:<stage>``. Paging through the
vendor's search window is the adapter's. The checkpoint moves only after every page was handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import uuid4

from pydantic import BaseModel, Field
from temporalio import activity

from activities.retrying import to_application_error
from canonical import DealStageReached
from canonical.ownership import SystemRole
from connectors.errors import ConnectorError
from connectors.pacing import Pacer
from connectors.ports import CrmPort
from connectors.registry import AdapterRegistry, default_registry
from settings import Settings
from stores.events import EventLedger, Outcome, load_checkpoint, save_checkpoint

PAGE_SIZE = 100


class DealPollRequest(BaseModel):
    """Input of ``CrmDealPollWorkflow`` and its activity."""

    checkpoint_name: str = "crm-deals"
    overlap_seconds: float = Field(default=60, ge=0,
                                   description="re-read this much before the checkpoint: search indexing lags")
    max_pages: int = Field(default=200, ge=1, description="bounds one run; the next run continues")


class DealPollResult(BaseModel):
    since: datetime
    checkpoint: datetime | None = None
    pages: int = 0
    deals_seen: int = 0
    outcomes: dict[str, int] = Field(default_factory=dict)


class DealPollSettings(BaseModel):
    """The settings the poll needs (from ``Settings`` in the composition root)."""

    poll_initial_lookback_hours: float = 24
    search_requests_per_second: float = 4.0

    @classmethod
    def from_settings(cls, settings: Settings, registry: AdapterRegistry | None = None) -> DealPollSettings:
        """The look-back from ``settings``; the search pace from the CRM adapter's own limits."""
        limits = (registry or default_registry(settings)).rate_limits(settings, SystemRole.CRM)
        return cls(poll_initial_lookback_hours=settings.poll_initial_lookback_hours,
                   search_requests_per_second=limits.search_per_second or limits.reads_per_second)


class PolledDealIntake(Protocol):
    """Where polled deals go: the ingress's dedupe-and-route path (built in the composition root)."""

    async def accept_polled(self, event: DealStageReached, *, request_id: str) -> str:
        """Route the event unless handled before; the outcome (``started``, ``duplicate``, ...)."""
        ...


class DealPollActivities:
    """The poll activity with its CRM port, the checkpoint store and the intake (built in worker.py)."""

    def __init__(self, *, settings: DealPollSettings, crm: CrmPort, ledger: EventLedger,
                 intake: PolledDealIntake) -> None:
        self.settings = settings
        self.crm = crm
        self.ledger = ledger
        self.intake = intake

    @activity.defn(name="poll_crm_deals")
    async def poll_crm_deals(self, request: DealPollRequest) -> DealPollResult:
        """Deals modified since the checkpoint; those at a stage we act on start quote-to-cash."""
        s = self.settings
        now = datetime.now(UTC)
        checkpoint = await self.ledger.run(load_checkpoint, name=request.checkpoint_name)
        since = (checkpoint - timedelta(seconds=request.overlap_seconds) if checkpoint
                 else now - timedelta(hours=s.poll_initial_lookback_hours))
        result = DealPollResult(since=since, checkpoint=checkpoint)
        newest = checkpoint
        request_id = f"poll-{uuid4().hex}"
        pages = self.crm.deals_modified_since(since, page_size=PAGE_SIZE,
                                              pacer=Pacer(s.search_requests_per_second))
        try:
            async for page in pages:
                result.pages += 1
                for deal in page.deals:
                    result.deals_seen += 1
                    if deal.stage not in (self.crm.approval_stage, self.crm.closed_won_stage):
                        continue
                    event = DealStageReached(
                        source_system=self.crm.vendor, source_event_id=f"poll:{deal.crm_id}:{deal.stage}",
                        occurred_at=now, correlation_id=f"poll-{deal.crm_id}", deal_id=deal.crm_id,
                        stage=deal.stage, is_closed_won=deal.stage == self.crm.closed_won_stage)
                    outcome = await self.intake.accept_polled(event, request_id=request_id)
                    result.outcomes[outcome] = result.outcomes.get(outcome, 0) + 1
                if page.checkpoint and (newest is None or page.checkpoint > newest):
                    newest = page.checkpoint
                activity.heartbeat(f"page {result.pages}, {result.deals_seen} deals")
                if result.pages >= request.max_pages:
                    break
        except ConnectorError as exc:
            raise to_application_error(exc) from exc
        finally:
            await pages.aclose()  # type: ignore[attr-defined]
        if newest is not None and newest != checkpoint:
            await self.ledger.run(save_checkpoint, name=request.checkpoint_name, checkpoint=newest)
        result.checkpoint = newest
        return result

    def all(self) -> list[Callable[..., Any]]:
        return [self.poll_crm_deals]


__all__ = ["DealPollActivities", "DealPollRequest", "DealPollSettings", "DealPollResult", "Outcome", "PolledDealIntake"]
