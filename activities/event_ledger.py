"""Upkeep of the ingress's event ledger, run by the ``event-ledger-upkeep`` schedule.

- **sweep**: events stranded ``in_flight`` by a crash and ``failed`` ones whose backoff has passed are
  routed again through the one dedupe path (:meth:`intake.EventIntake.sweep`); after
  ``ledger_retry_max_attempts`` an event is given up, visibly (``given_up`` rows in the ledger);
- **prune**: ledger rows older than ``ledger_retention_days`` are deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, Field
from temporalio import activity

from settings import Settings
from stores.events import EventLedger, prune_ledger


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


class LedgerRetention(BaseModel):
    """The settings the upkeep needs (from ``Settings`` in the composition root)."""

    ledger_retention_days: int = Field(default=30, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerRetention:
        return cls(ledger_retention_days=settings.ledger_retention_days)


class StrandedEventIntake(Protocol):
    """Where stranded and failed events are routed again: the ingress's intake (built in the composition root)."""

    async def sweep(self, *, now: datetime, limit: int) -> Any:
        """Route again what is due; the counts (``routed``, ``failed``, ``given_up``)."""
        ...


class EventLedgerActivities:
    """Sweep and prune, with the ledger and the intake that routes events (built in worker.py)."""

    def __init__(self, *, settings: LedgerRetention, ledger: EventLedger, intake: StrandedEventIntake) -> None:
        self.settings = settings
        self.ledger = ledger
        self.intake = intake

    @activity.defn(name="sweep_event_ledger")
    async def sweep_event_ledger(self, request: LedgerSweepRequest) -> LedgerSweepResult:
        """Route stranded and due failed events again; give up on those out of attempts."""
        swept = await self.intake.sweep(now=datetime.now(UTC), limit=request.limit)
        return LedgerSweepResult(routed=swept.routed, failed=swept.failed, given_up=swept.given_up)

    @activity.defn(name="prune_event_ledger")
    async def prune_event_ledger(self, request: LedgerSweepRequest) -> LedgerPruneResult:
        """Delete ledger rows older than the retention."""
        before = datetime.now(UTC) - timedelta(days=self.settings.ledger_retention_days)
        pruned = await self.ledger.run(prune_ledger, before=before)
        return LedgerPruneResult(before=before, deliveries=pruned["deliveries"], events=pruned["events"])

    def all(self) -> list[Callable[..., Any]]:
        return [self.sweep_event_ledger, self.prune_event_ledger]


__all__ = ["EventLedgerActivities", "LedgerRetention", "LedgerPruneResult", "LedgerSweepRequest", "LedgerSweepResult"]
