"""A polled event claimed in the ledger reaches its outcome even when the poll activity that handed it over is
cancelled (the ingress shields its deliveries the same way). The 1,000-deal chaos run found a polled event left
``in_flight`` after its caller went away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from canonical import DealStageReached
from intake import EventIntake, Routed
from settings import Settings
from stores.events import EventLedger, EventState, Outcome, find_event
from tests.helpers.waiting import eventually


class HeldRouter:
    """Routes only when the test lets it (a Temporal call that takes its time)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def route(self, event: Any, *, trigger: str) -> Routed:
        self.entered.set()
        await self.release.wait()
        return Routed(Outcome.DUPLICATE, "q2c-hubspot-42", "the deal already has a run")


async def test_intake_settles_a_claimed_polled_event_when_the_poll_is_cancelled(settings: Settings,
                                                                           tmp_path: Path) -> None:
    own = settings.model_copy(update={"data_dir": tmp_path})
    ledger = EventLedger.from_settings(own)
    router = HeldRouter(own)
    intake = EventIntake(router=router, ledger=ledger)  # type: ignore[arg-type]
    event = DealStageReached(source_system="hubspot", source_event_id="poll:42:closedwon",
                             occurred_at=datetime.now(UTC), correlation_id="poll-42", deal_id="42",
                             stage="closedwon", is_closed_won=True)
    caller = asyncio.ensure_future(intake.accept_polled(event, request_id="poll-test"))
    await asyncio.wait_for(router.entered.wait(), timeout=10)
    claimed = ledger.run_sync(find_event, vendor_event_id=event.source_event_id)
    assert claimed is not None and claimed.state == EventState.IN_FLIGHT
    caller.cancel()  # the poll activity is cancelled while Temporal answers
    router.release.set()

    settled = await eventually(lambda: ledger.run_sync(find_event, vendor_event_id=event.source_event_id),
                               lambda row: row is not None and row.state == EventState.DONE,
                               what="the claimed event settled")
    assert settled is not None and settled.outcome == Outcome.DUPLICATE.value
    assert caller.cancelled()
