"""The ingress keeps its schedules (``crm-deal-poll``, ``billing-event-poll``, ``clm-amendment-poll``,
``event-ledger-upkeep``; defined in
``runtime/schedules.py`` with every other schedule) in step with settings, retrying while Temporal is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from temporalio.service import RPCError

from intake import ClientProvider, RoutingUnavailable
from runtime.schedules import (
    POLL_SCHEDULE_ID,
    UPKEEP_SCHEDULE_ID,
    ensure_change_poll_schedules,
    ensure_poll_schedule,
    ensure_upkeep_schedule,
)
from settings import Settings

log = logging.getLogger("revops.ingress")


def keep_poll_schedule(provider: ClientProvider, settings: Settings, *, retry_seconds: float = 10
                       ) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """Start and stop hooks: ensure the schedule in the background, retrying while Temporal is away."""
    tasks: list[asyncio.Task[None]] = []

    async def keep() -> None:
        while True:
            try:
                what = await ensure_poll_schedule(await provider.get(), settings)
                log.info("schedule %s %s (every %gs)", POLL_SCHEDULE_ID, what, settings.poll_interval_seconds)
                for schedule_id, what in (await ensure_change_poll_schedules(await provider.get(), settings)).items():
                    log.info("schedule %s %s", schedule_id, what)
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


__all__ = ["keep_poll_schedule"]
