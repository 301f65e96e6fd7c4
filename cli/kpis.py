"""``starter.py kpis``: the business KPIs from the running system, per legal entity.

    python starter.py kpis [--entity US01] [--since 2026-11-01] [--json]

Exit codes: 0 printed, 1 Temporal could not be asked, 2 bad arguments (unknown entity, unreadable date).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio.client import Client
from temporalio.service import RPCError

from bootstrap import CliParts
from canonical.kpis import Durations, KpiReport, Rate
from observability.kpis import gather_kpis


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``kpis`` to ``starter.py``'s parser."""
    s = sub.add_parser("kpis", help="business KPIs per legal entity (cycle times, DSO, exception rates, ...)")
    s.add_argument("--entity", help="one legal entity code, e.g. US01 (default: each, and all together)")
    s.add_argument("--since", help="only runs started (events received) since this ISO date or time, UTC")
    s.add_argument("--json", action="store_true")


def parse_since(value: str | None) -> datetime | None:
    """An ISO date or date-time; naive values are UTC. Raises ``ValueError`` on anything else."""
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(d: Durations) -> str:
    if not d.n:
        return "-"
    return f"p50 {d.p50_seconds:.1f}s  p90 {d.p90_seconds:.1f}s  (n={d.n})"


def _rate(r: Rate) -> str:
    return "-" if r.rate is None else f"{r.rate:.1%}  ({r.count}/{r.total})"


def render(report: KpiReport) -> str:
    lines = [f"KPIs as of {report.as_of}" + (f" since {report.since:%Y-%m-%d %H:%M}" if report.since else "")
             + f" (DSO window {report.dso_window_days} days)"]
    for e in report.entities:
        lines += [
            "", f"{e.legal_entity}  ({e.deals} deal(s))",
            f"  contract signed -> project created     {_duration(e.contract_signed_to_project)}",
            f"  deal closed-won -> billing live        {_duration(e.closed_won_to_billing_live)}",
            f"  amendment executed -> propagated       {_duration(e.amendment_propagation)}",
            f"  billing exception rate                 {_rate(e.billing_exceptions)}",
            f"  invoices aligned to contract terms     {_rate(e.invoices_aligned)}",
            f"  deals entering a data exception        {_rate(e.data_exceptions)}",
            f"  duplicate customers avoided            {_rate(e.duplicate_customers_avoided)}",
            f"  keyed customers matched / asked        {e.customers_matched} / {e.customer_matches_asked}",
        ]
        for f in e.dso:
            lines.append(f"  DSO {f.currency}                                {f.dso_days or '-'} days "
                         f"(outstanding {f.outstanding}, billed in window {f.billed_in_window})")
    lines += ["", f"webhook -> workflow latency             {_duration(report.webhook_to_workflow)}"]
    for vendor, d in report.webhook_to_workflow_by_vendor.items():
        lines.append(f"  {vendor:<37}{_duration(d)}")
    return "\n".join(lines)


async def cmd_kpis(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    try:
        since = parse_since(args.since)
    except ValueError:
        print(f"refused: --since {args.since!r} is not an ISO date or date-time", file=sys.stderr)
        return 2
    if args.entity is not None and args.entity not in {e.code for e in settings.legal_entities}:
        known = ", ".join(e.code for e in settings.legal_entities)
        print(f"refused: unknown legal entity {args.entity!r} (known: {known})", file=sys.stderr)
        return 2
    try:
        report = await gather_kpis(client, settings, entity=args.entity, since=since)
    except RPCError as exc:
        print(f"failed: Temporal could not be asked: {exc.message}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
    else:
        print(render(report))
    return 0


#: commands that need a Temporal client
COMMANDS: dict[str, Callable[[Client, CliParts, argparse.Namespace], Awaitable[int]]] = {"kpis": cmd_kpis}

__all__ = ["COMMANDS", "add_parsers", "cmd_kpis", "parse_since", "render"]
