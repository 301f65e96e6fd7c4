"""``starter.py serve | events | replay-event``: the ingress's commands (added to starter.py's parser)."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Awaitable, Callable

from ingress.ledger import EventLedger, Outcome, list_deliveries
from settings import Settings


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ingress subcommands to ``starter.py``'s parser."""
    sub.add_parser("serve", help="serve the webhook ingress on settings.ingress_host:ingress_port")
    s = sub.add_parser("events", help="recent webhook deliveries and poll findings from the event ledger")
    s.add_argument("--vendor", choices=["hubspot", "ironclad", "stripe", "xero"])
    s.add_argument("--outcome", choices=[o.value for o in Outcome])
    s.add_argument("--event-id", help="one vendor event ID")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("replay-event", help="route a recorded event again (delivery ID or vendor event ID)")
    s.add_argument("id")


async def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import logging

    from ingress.app import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    await serve(settings)
    return 0


async def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    ledger = EventLedger.from_settings(settings)
    try:
        rows = ledger.run_sync(list_deliveries, vendor=args.vendor, outcome=args.outcome, event_id=args.event_id,
                               limit=args.limit)
    finally:
        ledger.close()
    if args.json:
        print(json.dumps([r.model_dump(mode="json", exclude={"body", "headers", "event"}) for r in rows], indent=2))
        return 0
    if not rows:
        print("no deliveries recorded")
        return 0
    print("id\treceived_at\tvendor\tevent_id\tsignature\toutcome\tstatus\tworkflow_id\treason")
    for r in rows:
        print(f"{r.id}\t{r.received_at:%Y-%m-%d %H:%M:%S}\t{r.vendor}\t{r.vendor_event_id or '-'}\t{r.signature}"
              f"\t{r.outcome}\t{r.status_code}\t{r.workflow_id or '-'}\t{r.reason}")
    return 0


async def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from connectors import ironclad
    from ingress.routing import ClientProvider, EventIntake, EventRouter, RoutingUnavailable
    from orchestration.connect import connect

    ledger = EventLedger.from_settings(settings)
    clm = ironclad.from_settings(settings)
    clients = ClientProvider(functools.partial(connect, settings), timeout=settings.ingress_temporal_timeout_seconds)
    intake = EventIntake(router=EventRouter(settings=settings, clients=clients, clm=clm), ledger=ledger)
    try:
        routed = await intake.replay(args.id)
    except LookupError as exc:
        print(f"refused: {exc}")
        return 1
    except RoutingUnavailable as exc:
        print(f"not handed over: {exc.reason}")
        return 3
    finally:
        await clm.aclose()
        ledger.close()
    print(f"{routed.outcome.value}\t{routed.workflow_id or '-'}\t{routed.reason}\t(delivery {routed.delivery_id})")
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[int]]] = {
    "serve": cmd_serve, "events": cmd_events, "replay-event": cmd_replay,
}
