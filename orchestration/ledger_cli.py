"""``starter.py reconcile`` and ``starter.py exceptions``, and the nightly ``reconciliation`` schedule.

    python starter.py reconcile [--entity US01] [--customer cus_1] [--deal 123] [--no-wait]
    python starter.py exceptions [--all] [--kind amount_mismatch] [--scope all] [--json]

A run may be narrowed to some legal entities, billing customers or CRM deals; its findings are stored under
that scope and only a later run of the same scope closes them (the nightly run's scope is ``all``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

from sqlmodel import Session
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from orchestration.findings import CLOSED, OPEN, findings_engine, list_findings
from orchestration.schedules import upsert_schedule
from settings import Settings
from workflows.models import RECONCILIATION_WORKFLOW, ReconciliationInput, ReconciliationResult, ReconciliationScope
from workflows.reconciliation import ReconciliationWorkflow

RECONCILIATION_SCHEDULE_ID = "reconciliation"


def reconciliation_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Nightly (``settings.reconciliation_cron``, UTC) over everything; a run still going makes the next skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(RECONCILIATION_WORKFLOW, ReconciliationInput(trigger="schedule"),
                                           id=RECONCILIATION_SCHEDULE_ID, task_queue=task_queue or settings.task_queue,
                                           static_summary="Nightly reconciliation (scope all)"),
        spec=ScheduleSpec(cron_expressions=[settings.reconciliation_cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings, *,
                                         schedule_id: str = RECONCILIATION_SCHEDULE_ID,
                                         task_queue: str | None = None) -> str:
    """Create the schedule, or bring an existing one up to the settings. Returns ``created`` or ``updated``."""
    return await upsert_schedule(client, schedule_id, reconciliation_schedule(settings, task_queue=task_queue))


async def start_reconciliation(client: Client, settings: Settings, scope: ReconciliationScope, *,
                               trigger: str = "manual") -> ReconciliationResult:
    """Run reconciliation now and wait for its summary."""
    return await client.execute_workflow(
        ReconciliationWorkflow.run, ReconciliationInput(scope=scope, trigger=trigger),
        id=f"reconciliation-manual-{uuid.uuid4().hex[:12]}", task_queue=settings.task_queue,
        static_summary=f"Reconciliation on demand ({scope.key()})")


def summary_text(result: ReconciliationResult) -> str:
    lines = [f"reconciliation {result.run_id} (scope {result.scope}): {result.still_open} open finding(s), "
             f"{result.opened} new, {result.closed} closed"]
    lines += [f"  {kind}: {count}" for kind, count in result.counts.items()]
    return "\n".join(lines)


async def cmd_reconcile(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    scope = ReconciliationScope(legal_entities=args.entity or [], customer_ids=args.customer or [],
                                deal_ids=args.deal or [])
    if args.no_wait:
        handle = await client.start_workflow(
            ReconciliationWorkflow.run, ReconciliationInput(scope=scope, trigger="manual"),
            id=f"reconciliation-manual-{uuid.uuid4().hex[:12]}", task_queue=settings.task_queue,
            static_summary=f"Reconciliation on demand ({scope.key()})")
        print(f"reconciliation {handle.id} started")
        return 0
    result = await start_reconciliation(client, settings, scope)
    print(summary_text(result))
    return 0


async def cmd_exceptions(settings: Settings, args: argparse.Namespace) -> int:
    def read() -> list[dict[str, object]]:
        engine = findings_engine(settings.findings_database_url)
        try:
            with Session(engine) as session:
                rows = list_findings(session=session, status=None if args.all else (CLOSED if args.closed else OPEN),
                                     kind=args.kind, scope=args.scope, limit=args.limit)
                return [r.model_dump(mode="json") for r in rows]
        finally:
            engine.dispose()

    rows = await asyncio.to_thread(read)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no findings")
        return 0
    for r in rows:
        ids = ", ".join(f"{side} {r[field]}" for side, field in (("stripe", "billing_id"), ("xero", "erp_id"),
                                                                  ("ironclad", "clm_id"), ("hubspot", "crm_id"))
                        if r[field])
        amounts = " vs ".join(str(r[f]) for f in ("billing_amount", "erp_amount") if r[f])
        print(f"[{r['status']}] {r['kind']} {r['legal_entity'] or '-'} {ids}"
              + (f" ({amounts})" if amounts else "") + f": {r['detail']}  (seen {r['times_seen']}x, "
              f"last {str(r['last_seen_at'])[:19]}, scope {r['scope']})")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``reconcile`` and ``exceptions`` to ``starter.py``'s parser."""
    s = sub.add_parser("reconcile", help="run reconciliation now and print its summary")
    s.add_argument("--entity", action="append", help="legal entity code (repeatable); default all")
    s.add_argument("--customer", action="append", help="Stripe customer ID (repeatable); default all")
    s.add_argument("--deal", action="append", help="HubSpot deal ID for contracts/projects (repeatable)")
    s.add_argument("--no-wait", action="store_true", help="start it and return")
    s = sub.add_parser("exceptions", help="reconciliation findings (open ones unless told otherwise)")
    s.add_argument("--all", action="store_true", help="open and closed")
    s.add_argument("--closed", action="store_true", help="closed ones only")
    s.add_argument("--kind", help="e.g. amount_mismatch, missing_in_erp, payment_mismatch, ...")
    s.add_argument("--scope", help='a run scope, e.g. "all"')
    s.add_argument("--limit", type=int, default=500)
    s.add_argument("--json", action="store_true")


#: commands that need a Temporal client
TEMPORAL_COMMANDS: dict[str, Callable[[Client, Settings, argparse.Namespace], Awaitable[int]]] = {
    "reconcile": cmd_reconcile,
}
#: commands that do not
LOCAL_COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Awaitable[int]]] = {
    "exceptions": cmd_exceptions,
}

__all__ = ["LOCAL_COMMANDS", "RECONCILIATION_SCHEDULE_ID", "TEMPORAL_COMMANDS", "add_parsers", "cmd_exceptions",
           "cmd_reconcile", "ensure_reconciliation_schedule", "reconciliation_schedule", "start_reconciliation"]
