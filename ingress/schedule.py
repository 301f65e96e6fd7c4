"""The ingress's schedules, created or updated idempotently: ``crm-deal-poll`` and
``event-ledger-upkeep`` (sweep stranded/failed events, prune past the retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.service import RPCError

from activities.event_ledger import LedgerSweepRequest
from activities.polling import DealPollRequest
from ingress.routing import ClientProvider, RoutingUnavailable
from runtime.schedules import upsert_schedule
from settings import Settings

log = logging.getLogger("revops.ingress")

POLL_SCHEDULE_ID = "crm-deal-poll"
POLL_WORKFLOW = "CrmDealPollWorkflow"
UPKEEP_SCHEDULE_ID = "event-ledger-upkeep"
UPKEEP_WORKFLOW = "EventLedgerUpkeepWorkflow"


def poll_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``poll_interval_seconds``, one poll; a poll still running makes the next one skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(POLL_WORKFLOW, DealPollRequest(), id=POLL_SCHEDULE_ID,
                                           task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30),
                                           static_summary="HubSpot poll: deals modified since the checkpoint"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.poll_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def upkeep_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``ledger_upkeep_interval_seconds``, one sweep and prune of the event ledger."""
    return Schedule(
        action=ScheduleActionStartWorkflow(UPKEEP_WORKFLOW, LedgerSweepRequest(), id=UPKEEP_SCHEDULE_ID,
                                           task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=timedelta(seconds=settings.ledger_upkeep_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_upkeep_schedule(client: Client, settings: Settings, *, schedule_id: str = UPKEEP_SCHEDULE_ID,
                                 task_queue: str | None = None) -> str:
    """Create the ledger upkeep schedule, or bring it up to the settings."""
    return await upsert_schedule(client, schedule_id, upkeep_schedule(settings, task_queue=task_queue))


async def ensure_poll_schedule(client: Client, settings: Settings, *, schedule_id: str = POLL_SCHEDULE_ID,
                               task_queue: str | None = None) -> str:
    """Create the schedule, or bring an existing one up to the settings. Returns ``created`` or ``updated``."""
    return await upsert_schedule(client, schedule_id, poll_schedule(settings, task_queue=task_queue))


def keep_poll_schedule(provider: ClientProvider, settings: Settings, *, retry_seconds: float = 10
                       ) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """Start and stop hooks: ensure the schedule in the background, retrying while Temporal is away."""
    tasks: list[asyncio.Task[None]] = []

    async def keep() -> None:
        while True:
            try:
                what = await ensure_poll_schedule(await provider.get(), settings)
                log.info("schedule %s %s (every %gs)", POLL_SCHEDULE_ID, what, settings.poll_interval_seconds)
                what = await ensure_upkeep_schedule(await provider.get(), settings)
                log.info("schedule %s %s (every %gs)", UPKEEP_SCHEDULE_ID, what,
                         settings.ledger_upkeep_interval_seconds)
                return
            except (RoutingUnavailable, RuntimeError, RPCError) as exc:
                log.warning("cannot ensure schedule %s yet: %s", POLL_SCHEDULE_ID, exc)
                provider.forget()
            except Exception:
                log.exception("cannot ensure schedule %s", POLL_SCHEDULE_ID)
            await asyncio.sleep(retry_seconds)

    async def start() -> None:
        tasks.append(asyncio.create_task(keep()))

    async def stop() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return start, stop


__all__ = ["POLL_SCHEDULE_ID", "POLL_WORKFLOW", "UPKEEP_SCHEDULE_ID", "UPKEEP_WORKFLOW", "ensure_poll_schedule",
           "ensure_upkeep_schedule", "keep_poll_schedule", "poll_schedule", "upkeep_schedule"]
