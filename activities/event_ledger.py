"""Upkeep of the ingress's event ledger, run by the ``event-ledger-upkeep`` schedule.

- **sweep**: events stranded ``in_flight`` by a crash and ``failed`` ones whose backoff has passed are
  routed again through the one dedupe path (:meth:`ingress.routing.EventIntake.sweep`); after
  ``ledger_retry_max_attempts`` an event is given up, visibly (``given_up`` rows in the ledger);
- **prune**: ledger rows older than ``ledger_retention_days`` are deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import activity
from temporalio.client import Client

from connectors.ports import ClmPort, CrmPort
from ingress.ledger import EventLedger, prune_ledger
from ingress.routing import ClientProvider, EventIntake, EventRouter
from settings import Settings


class LedgerSweepRequest(BaseModel):
    """Input of ``EventLedgerUpkeepWorkflow`` and its sweep."""

    limit: int = Field(default=200, ge=1, le=5000, description="events routed again per run at most")


class LedgerSweepResult(BaseModel):
    routed: int = 0
    failed: int = 0
    given_up: int = 0


class LedgerPruneResult(BaseModel):
    before: datetime
    deliveries: int = 0
    events: int = 0


class EventLedgerActivities:
    """Sweep and prune, with the ledger, the Temporal client (the worker's own unless given) and the CLM/CRM
    routing needs (built in worker.py)."""

    def __init__(self, *, settings: Settings, ledger: EventLedger | None = None, client: Client | None = None,
                 clm: ClmPort | None = None, crm: CrmPort | None = None) -> None:
        self.settings = settings
        self._ledger = ledger
        self.client = client
        self.clm = clm
        self.crm = crm

    @property
    def ledger(self) -> EventLedger:
        if self._ledger is None:
            self._ledger = EventLedger.from_settings(self.settings)
        return self._ledger

    @activity.defn(name="sweep_event_ledger")
    async def sweep_event_ledger(self, request: LedgerSweepRequest) -> LedgerSweepResult:
        """Route stranded and due failed events again; give up on those out of attempts."""
        clients = ClientProvider.fixed(self.client or activity.client())
        intake = EventIntake(router=EventRouter(settings=self.settings, clients=clients, clm=self.clm, crm=self.crm),
                             ledger=self.ledger)
        swept = await intake.sweep(now=datetime.now(UTC), limit=request.limit)
        return LedgerSweepResult(routed=swept.routed, failed=swept.failed, given_up=swept.given_up)

    @activity.defn(name="prune_event_ledger")
    async def prune_event_ledger(self, request: LedgerSweepRequest) -> LedgerPruneResult:
        """Delete ledger rows older than the retention."""
        before = datetime.now(UTC) - timedelta(days=self.settings.ledger_retention_days)
        pruned = await self.ledger.run(prune_ledger, before=before)
        return LedgerPruneResult(before=before, deliveries=pruned["deliveries"], events=pruned["events"])

    def all(self) -> list[object]:
        return [self.sweep_event_ledger, self.prune_event_ledger]


__all__ = ["EventLedgerActivities", "LedgerPruneResult", "LedgerSweepRequest", "LedgerSweepResult"]
