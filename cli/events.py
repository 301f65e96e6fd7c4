"""``starter.py serve | events | replay-event``: the ingress's commands (added to starter.py's parser)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable

from bootstrap import CliParts
from stores.events import Outcome, list_deliveries


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ingress subcommands to ``starter.py``'s parser."""
    sub.add_parser("serve", help="serve the webhook ingress on settings.ingress_host:ingress_port")
    s = sub.add_parser("events", help="recent webhook deliveries and poll findings from the event ledger")
    s.add_argument("--vendor", help="an adapter's name (its ingress path: /webhooks/<name>)")
    s.add_argument("--outcome", choices=[o.value for o in Outcome])
    s.add_argument("--event-id", help="one vendor event ID")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--all", action="store_true", help="include echoes of our own write-backs")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("replay-event", help="route a recorded event again (delivery ID or vendor event ID)")
    s.add_argument("id")


async def cmd_serve(app: CliParts, args: argparse.Namespace) -> int:
    from ingress.app import serve
    from runtime.logs import configure_logging

    configure_logging()  # one JSON object per line from the first line on
    await serve(app.settings)
    return 0


async def cmd_events(app: CliParts, args: argparse.Namespace) -> int:
    from cli import process as cli

    hide_echoes = not args.outcome and not args.all and not args.event_id
    rows = app.ledger().run_sync(list_deliveries, vendor=args.vendor, outcome=args.outcome, event_id=args.event_id,
                                 limit=args.limit * 5 if hide_echoes else args.limit)
    echoes = [r for r in rows if r.outcome == Outcome.ECHO.value] if hide_echoes else []
    rows = [r for r in rows if r not in echoes][:args.limit]
    if args.json:
        cli.emit_json([r.model_dump(mode="json", exclude={"body", "headers", "event"}) for r in rows])
        return 0
    if not rows:
        cli.line("no deliveries recorded")
    else:
        cli.table(["id", "received (UTC)", "vendor", "event", "kind", "signature", "outcome", "status", "workflow",
                   "reason"],
                  [[r.id, f"{r.received_at:%Y-%m-%d %H:%M:%S}", r.vendor, r.vendor_event_id, r.event_kind,
                    r.signature, r.outcome, r.status_code, r.workflow_id, r.reason] for r in rows], wrap=["reason"])
    if echoes:
        cli.line(f"({len(echoes)} echo(es) of our own write-backs not shown: --outcome echo or --all shows them)")
    return 0


async def cmd_replay(app: CliParts, args: argparse.Namespace) -> int:
    from intake import RoutingUnavailable

    try:
        routed = await app.intake().replay(args.id)  # the ingress's router and ledger, from the bootstrap
    except LookupError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2 if str(exc).startswith("no recorded delivery") else 1  # an unknown ID is a usage error
    except RoutingUnavailable as exc:
        print(f"not handed over: {exc.reason}", file=sys.stderr)
        return 1
    print(f"{routed.outcome.value}\t{routed.workflow_id or '-'}\t{routed.reason}\t(delivery {routed.delivery_id})")
    return 0


COMMANDS: dict[str, Callable[[CliParts, argparse.Namespace], Awaitable[int]]] = {
    "serve": cmd_serve, "events": cmd_events, "replay-event": cmd_replay,
}
