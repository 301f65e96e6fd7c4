"""Upkeep of the ingress's event ledger, run by the ``event-ledger-upkeep`` schedule (``runtime/schedules.py``)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.event_ledger import (
        EventLedgerActivities,
        LedgerPruneResult,
        LedgerSweepRequest,
        LedgerSweepResult,
    )


class LedgerUpkeepResult(BaseModel):
    sweep: LedgerSweepResult
    prune: LedgerPruneResult


@workflow.defn(name="EventLedgerUpkeepWorkflow")
class EventLedgerUpkeepWorkflow:
    """One upkeep: route stranded and failed events again (or give them up), then prune old rows."""

    @workflow.run
    async def run(self, request: LedgerSweepRequest) -> LedgerUpkeepResult:
        retry = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1),
                            maximum_attempts=5)
        sweep = await workflow.execute_activity_method(
            EventLedgerActivities.sweep_event_ledger, request, start_to_close_timeout=timedelta(minutes=10),
            retry_policy=retry, summary="Route stranded and failed ledger events again")
        prune = await workflow.execute_activity_method(
            EventLedgerActivities.prune_event_ledger, request, start_to_close_timeout=timedelta(minutes=10),
            retry_policy=retry, summary="Prune ledger rows past the retention")
        return LedgerUpkeepResult(sweep=sweep, prune=prune)
