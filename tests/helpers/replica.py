"""``python -m tests.helpers.replica``: one replica of the ingress (``deliver``), of the worker's CRM poll
(``poll``) or of its ledger sweep (``sweep``) in its own OS process, on a shared database, for the exactly-once
tests (tests/stores/test_replicas.py).

It runs the real :class:`intake.EventIntake` over the real ledger; only the router (our port to Temporal) is a
fake that counts what it was handed, after a pause as long as a start's round trip, which is the window two
replicas race in. It waits for ``--go-at`` (epoch seconds) so that both replicas run at once, and prints one
JSON line: the vendor event IDs it routed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

from canonical import DealStageReached, DomainEvent
from intake import EventIntake
from intake.routing import Received, Routed
from settings import Settings
from stores.events import EventLedger, Outcome, SignatureCheck
from tests.helpers.codec import keyring_for_tests

VENDOR = "hubspot"


def stage_event(event_id: str) -> DealStageReached:
    return DealStageReached(source_system=VENDOR, source_event_id=event_id,
                            occurred_at=datetime(2026, 3, 1, tzinfo=UTC), correlation_id="c",
                            deal_id=f"deal-{event_id}", stage="closedwon", is_closed_won=True)


class CountingRouter:
    """Stands in for :class:`intake.EventRouter`: records each event it is asked to route."""

    def __init__(self, settings: Settings, pause: float) -> None:
        self.settings = settings
        self.pause = pause
        self.routed: list[str] = []

    async def route(self, event: DomainEvent, *, trigger: str = "webhook") -> Routed:
        await asyncio.sleep(self.pause)
        self.routed.append(event.source_event_id)
        return Routed(Outcome.STARTED, f"quote-to-cash-{event.source_event_id}")


async def run(args: argparse.Namespace) -> list[str]:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    ledger = EventLedger.from_url(args.url, keyring_for_tests())  # opening it migrates (both replicas at once)
    router = CountingRouter(settings, args.pause)
    intake = EventIntake(router=router, ledger=ledger)  # type: ignore[arg-type]
    try:
        await asyncio.sleep(max(0.0, args.go_at - time.time()))
        if args.mode == "sweep":
            await intake.sweep(now=datetime.now(UTC), limit=args.events)
        else:
            async def deliver(event_id: str) -> None:
                if args.mode == "poll":  # the poll's finding, as the poll activity hands it over
                    await intake.accept_polled(stage_event(event_id), request_id=f"poll-{args.name}")
                    return
                received = Received(vendor=VENDOR, request_id=f"req-{event_id}-{args.name}",
                                    signature=SignatureCheck.VALID, headers={})
                await intake.accept(stage_event(event_id), received)

            prefix = "poll:evt" if args.mode == "poll" else "evt"
            ids = [f"{prefix}-{n}" for n in range(args.events)]
            for start in range(0, len(ids), 8):  # eight deliveries at a time, as a server's workers take them
                await asyncio.gather(*(deliver(i) for i in ids[start:start + 8]))
    finally:
        ledger.close()
    return router.routed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", choices=["deliver", "poll", "sweep"], required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--go-at", type=float, required=True)
    parser.add_argument("--pause", type=float, default=0.02)
    print(json.dumps({"routed": asyncio.run(run(parser.parse_args()))}), flush=True)


if __name__ == "__main__":
    main()
