"""``starter.py reconcile``, ``exceptions`` and ``ack`` (the nightly ``reconciliation`` schedule is in
``runtime/schedules.py``).

    python starter.py reconcile [--entity US01] [--customer cus_1] [--deal 123] [--full|--delta] [--no-wait] [--json]
    python starter.py exceptions [--entity US01] [--all] [--kind amount_mismatch] [--scope all] [--json]
    python starter.py ack <finding ID or key> --reason "..." [--by NAME] [--json]

A run may be narrowed to some legal entities, billing customers or CRM deals; its findings are stored under
that scope and only a later run of the same scope closes them (the nightly run's scope is ``all``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

from sqlmodel import Session
from temporalio.client import Client, WorkflowFailureError

import cli.process as cli
from bootstrap import CliParts
from canonical.text import printable
from connectors.errors import ConnectorError, NotFound
from settings import Settings
from stores.findings import CLOSED, OPEN, UnknownFinding, acknowledge, finding_scopes, list_findings
from workflows.models import ReconciliationInput, ReconciliationResult, ReconciliationScope
from workflows.reconciliation import ReconciliationWorkflow


async def start_reconciliation(client: Client, settings: Settings, scope: ReconciliationScope, *,
                               trigger: str = "manual", full_pass: bool | None = None) -> ReconciliationResult:
    """Run reconciliation now and wait for its summary."""
    return await client.execute_workflow(
        ReconciliationWorkflow.run, ReconciliationInput(scope=scope, trigger=trigger, full_pass=full_pass),
        id=f"reconciliation-manual-{uuid.uuid4().hex[:12]}", task_queue=settings.task_queue,
        static_summary=f"Reconciliation on demand ({scope.key()})")


def summary_text(result: ReconciliationResult) -> str:
    lines = [f"reconciliation {result.run_id} (scope {result.scope}): {result.still_open} open finding(s), "
             f"{result.opened} new, {result.closed} closed"]
    lines += [f"  {kind}: {count}" for kind, count in result.counts.items()]
    return "\n".join(lines)


def unknown_entities(settings: Settings, codes: list[str]) -> list[str]:
    """The codes that name no configured legal entity."""
    known = {e.code for e in settings.legal_entities}
    return [c for c in codes if c not in known]


async def unknown_customers(app: CliParts, customer_ids: list[str]) -> list[str]:
    """The billing customers billing does not have (deleted ones included)."""
    if not customer_ids:
        return []
    billing = app.billing()  # the adapter BILLING_ADAPTER names
    missing: list[str] = []
    for customer_id in customer_ids:
        try:
            await billing.get_customer(customer_id)
        except NotFound:
            missing.append(customer_id)
    return missing


async def cmd_reconcile(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    """Exit 0 when the run finished (findings or not), 1 when it failed, 2 for an unknown entity or customer."""
    settings = app.settings
    entities = args.entity or []
    if unknown := unknown_entities(settings, entities):
        known = ", ".join(e.code for e in settings.legal_entities)
        cli.error(f"unknown legal entity {', '.join(unknown)} (known: {known})")
        return 2
    try:
        if unknown := await unknown_customers(app, args.customer or []):
            cli.error(f"unknown billing customer {', '.join(unknown)}")
            return 2
    except ConnectorError as exc:
        cli.error(f"could not check the customers with billing: {exc}")
        return 1
    scope = ReconciliationScope(legal_entities=entities, customer_ids=args.customer or [], deal_ids=args.deal or [])
    full_pass = True if getattr(args, "full", False) else (False if getattr(args, "delta", False) else None)
    if args.no_wait:
        handle = await client.start_workflow(
            ReconciliationWorkflow.run, ReconciliationInput(scope=scope, trigger="manual", full_pass=full_pass),
            id=f"reconciliation-manual-{uuid.uuid4().hex[:12]}", task_queue=settings.task_queue,
            static_summary=f"Reconciliation on demand ({scope.key()})")
        print(f"reconciliation {handle.id} started")
        return 0
    try:
        result = await start_reconciliation(client, settings, scope, full_pass=full_pass)
    except WorkflowFailureError as exc:
        cause = exc.cause
        cli.error(f"reconciliation failed: {getattr(cause, 'message', None) or cause or exc}")
        return 1
    if getattr(args, "json", False):
        print(result.model_dump_json(indent=2))
    else:
        for text in summary_text(result).splitlines():
            cli.line(text)
    return 0


async def cmd_exceptions(app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    def read() -> list[dict[str, object]]:
        with Session(app.findings()) as session:
            rows = list_findings(session=session, status=None if args.all else (CLOSED if args.closed else OPEN),
                                 kind=args.kind, scope=args.scope, entity=getattr(args, "entity", None),
                                 limit=args.limit)
            scopes = finding_scopes(session=session, keys=[r.key for r in rows])
            return [{**r.model_dump(mode="json"), "refs": r.ref_list(), "scopes": scopes.get(r.key) or [r.scope]}
                    for r in rows]

    entity = getattr(args, "entity", None)
    if entity and unknown_entities(settings, [entity]):
        known = ", ".join(e.code for e in settings.legal_entities)
        cli.error(f"unknown legal entity {entity} (known: {known})")
        return 2
    rows = await asyncio.to_thread(read)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        cli.line("no findings")
        return 0
    for r in rows:
        ids = ", ".join(f"{side} {r[field]}" for side, field in (("billing", "billing_id"), ("ERP", "erp_id"),
                                                                  ("CLM", "clm_id"), ("CRM", "crm_id"))
                        if r[field])
        amounts = " vs ".join(str(r[f]) for f in ("billing_amount", "erp_amount") if r[f])
        cli.line(f"#{r['id']} [{r['status']}] {r.get('severity') or '-'} {r['kind']} {r['legal_entity'] or '-'} {ids}"
                 + (f" ({amounts})" if amounts else "") + f": {r['detail']}  (seen {r['times_seen']}x, "
                 f"last {str(r['last_seen_at'])[:19]}, scope {', '.join(cast(list[str], r['scopes']))})")
        if r.get("repair"):
            cli.line(f"    repair: {r['repair']}")
        if r.get("ack_reason"):
            cli.line(f"    acknowledged by {r['acknowledged_by']}: {r['ack_reason']}")
    return 0


async def cmd_ack(app: CliParts, args: argparse.Namespace) -> int:
    """Acknowledge a finding (row ID or key) with a reason: 0 done, 1 refused (closed, no reason), 2 unknown."""
    def write() -> list[dict[str, object]]:
        with Session(app.findings()) as session:
            rows = acknowledge(session=session, finding=args.finding, reason=args.reason, by=args.by,
                               now=datetime.now(UTC))
            return [{**r.model_dump(mode="json"), "refs": r.ref_list()} for r in rows]

    try:
        rows = await asyncio.to_thread(write)
    except UnknownFinding:
        cli.error(f"unknown finding {printable(args.finding, limit=80)} (see starter.py exceptions)")
        return 2
    except ValueError as exc:
        cli.error(f"refused: {exc}")
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            cli.line(f"acknowledged #{r['id']} {r['key']} (scope {r['scope']}): {r['ack_reason']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``reconcile`` and ``exceptions`` to ``starter.py``'s parser."""
    s = sub.add_parser("reconcile", help="run reconciliation now and print its summary")
    s.add_argument("--entity", action="append", help="legal entity code (repeatable); default all")
    s.add_argument("--customer", action="append", help="billing customer ID (repeatable); default all")
    s.add_argument("--deal", action="append", help="CRM deal ID for contracts/projects (repeatable)")
    s.add_argument("--no-wait", action="store_true", help="start it and return")
    mode = s.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true", help="read everything, not only what changed")
    mode.add_argument("--delta", action="store_true", help="read only what changed since the last run")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("exceptions", help="reconciliation findings (open and acknowledged unless told otherwise)")
    s.add_argument("--entity", help="legal entity code")
    s.add_argument("--all", action="store_true", help="open and closed")
    s.add_argument("--closed", action="store_true", help="closed ones only")
    s.add_argument("--kind", help="e.g. amount_mismatch, missing_in_erp, payment_mismatch, ...")
    s.add_argument("--scope", help='a run scope, e.g. "all"')
    s.add_argument("--limit", type=int, default=500)
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("ack", help="acknowledge a reconciliation finding with a reason")
    s.add_argument("finding", help="the finding's #ID or key (from starter.py exceptions)")
    s.add_argument("--reason", required=True)
    s.add_argument("--by", default="operator")
    s.add_argument("--json", action="store_true")


#: commands that need a Temporal client
TEMPORAL_COMMANDS: dict[str, Callable[[Client, CliParts, argparse.Namespace], Awaitable[int]]] = {
    "reconcile": cmd_reconcile,
}
#: commands that do not
LOCAL_COMMANDS: dict[str, Callable[[CliParts, argparse.Namespace], Awaitable[int]]] = {
    "exceptions": cmd_exceptions,
    "ack": cmd_ack,
}

__all__ = ["LOCAL_COMMANDS", "TEMPORAL_COMMANDS", "add_parsers", "cmd_ack", "cmd_exceptions", "cmd_reconcile",
           "start_reconciliation"]
