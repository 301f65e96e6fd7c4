"""The command line for people: start flows, decide approvals, look at status.

    python starter.py start-deal 1234 [--wait]
    python starter.py approve q2c-hubspot-1234 --approver "Dana (Finance)" [--note "ok"]
    python starter.py reject  q2c-hubspot-1234 --approver "Dana (Finance)" --note "discount too deep"
    python starter.py status  q2c-hubspot-1234
    python starter.py pending
    python starter.py recheck q2c-hubspot-1234
    python starter.py find stripe:customer:cus_00000000000001
    python starter.py serve | events [--vendor V] [--outcome O] [--limit N] | replay-event <id>
    python starter.py reconcile [--entity E] [--customer C] [--deal D] | exceptions
    python starter.py amend <recordId> [--sequence N] | amendments contract-ironclad-<recordId>
    python starter.py backfill US01 [--rate 0.9] [--wait]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from canonical import Deal
from connectors.errors import ConnectorError
from ingress import cli as ingress_cli
from orchestration import amendments_cli, ledger_cli
from orchestration.connect import connect
from orchestration.launch import start_quote_to_cash
from settings import Settings
from workflows.models import ApprovalDecision, ApprovalOutcome, QuoteToCashStatus, RecheckRequest, RecheckResult
from workflows.quote_to_cash import QuoteToCashWorkflow


def ui_link(settings: Settings, client: Client, workflow_id: str) -> str:
    return f"{settings.temporal_ui_url}/namespaces/{client.namespace}/workflows/{workflow_id}"


async def _load_deal(settings: Settings, deal_id: str) -> Deal | None:
    """The deal for the run's summary; the run itself reloads it, so failure here is not fatal."""
    from connectors import hubspot

    crm = hubspot.from_settings(settings)
    try:
        return await crm.get_deal(deal_id)
    except ConnectorError as exc:
        print(f"note: could not read deal {deal_id} for the summary ({exc}); starting anyway", file=sys.stderr)
        return None
    finally:
        await crm.aclose()


async def cmd_start_deal(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    deal = await _load_deal(settings, args.deal_id)
    handle = await start_quote_to_cash(client, settings, args.deal_id, deal=deal, trigger="manual")
    print(f"quote-to-cash {handle.id} running: {ui_link(settings, client, handle.id)}")
    if args.wait:
        result = await handle.result()
        print(result.model_dump_json(indent=2))
    return 0


async def cmd_decide(client: Client, settings: Settings, args: argparse.Namespace, approved: bool) -> int:
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, args.workflow_id)
    try:
        decision = ApprovalDecision(approver=args.approver, approved=approved, note=args.note or "")
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    try:
        outcome: ApprovalOutcome = await handle.execute_update(QuoteToCashWorkflow.decide_approval, decision)
    except WorkflowUpdateFailedError as exc:
        print(f"refused: {exc.cause.message if exc.cause else exc}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    except RPCError as exc:
        print(f"refused: {exc.message}", file=sys.stderr)
        return 1
    print(f"{outcome.status} by {outcome.approver}" + (f": {outcome.note}" if outcome.note else ""))
    return 0


async def cmd_status(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, args.workflow_id)
    status: QuoteToCashStatus = await handle.query(QuoteToCashWorkflow.status)
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    print(f"{args.workflow_id}: {status.stage.value}" + (f" [{status.exception_kind.value}]"
                                                         if status.exception_kind.value else ""))
    print(f"  deal: {status.deal_name} ({status.deal_id}), {status.company}, {status.amount}, "
          f"entity {status.legal_entity or '-'}")
    if status.waiting_for:
        print(f"  waiting for: {status.waiting_for}")
    for missing in status.missing:
        print(f"  missing: {missing}")
    if status.approval:
        print(f"  approval: {status.approval.status} ({'; '.join(status.approval.reasons)})")
    if status.failure:
        print(f"  failure: {status.failure}")
    print(f"  ids: {', '.join(status.business_keys)}")
    print(f"  ui: {ui_link(settings, client, args.workflow_id)}")
    return 0


async def cmd_pending(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    query = ('WorkflowType = "QuoteToCashWorkflow" AND ExecutionStatus = "Running" '
             'AND Stage = "awaiting_approval"')
    count = 0
    async for execution in client.list_workflows(query):
        count += 1
        size = execution.search_attributes.get("DealSize")
        print(f"{execution.id}\tsize={size[0] if size else '?'}\tsince={execution.start_time:%Y-%m-%d %H:%M}")
    if not count:
        print("no deals are waiting for approval")
    return 0


async def cmd_recheck(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, args.workflow_id)
    try:
        result: RecheckResult = await handle.execute_update(QuoteToCashWorkflow.recheck_deal,
                                                            RecheckRequest(requested_by=args.by))
    except WorkflowUpdateFailedError as exc:
        print(f"refused: {exc.cause.message if exc.cause else exc}", file=sys.stderr)  # type: ignore[attr-defined]
        return 1
    print("complete" if result.complete else "still missing: " + "; ".join(str(m) for m in result.missing))
    return 0


async def cmd_find(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    count = 0
    async for execution in client.list_workflows(f'BusinessKeys = "{args.key}"'):
        count += 1
        print(f"{execution.id}\t{execution.workflow_type}\t{execution.status.name if execution.status else ''}"
              f"\t{ui_link(settings, client, execution.id)}")
    if not count:
        print(f"no workflow carries {args.key}")
    return 0 if count else 1


async def cmd_backfill(client: Client, settings: Settings, args: argparse.Namespace) -> int:
    """Every HubSpot company as a Xero contact of one legal entity (CompanyBackfillWorkflow), paced below the
    vendors' limits. One run per entity: a second start while one runs attaches to it."""
    from temporalio.common import WorkflowIDConflictPolicy

    from workflows.backfill import BackfillInput, BackfillResult, CompanyBackfillWorkflow

    try:
        entity = settings.entity(args.entity)
    except (KeyError, ValueError) as exc:
        print(f"unknown legal entity {args.entity!r}: {exc}", file=sys.stderr)
        return 2
    workflow_id = f"backfill-xero-contacts-{entity.code}"
    handle = await client.start_workflow(
        CompanyBackfillWorkflow.run,
        BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id,
                      xero_requests_per_second=args.rate, hubspot_requests_per_second=args.hubspot_rate),
        id=workflow_id, task_queue=settings.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Backfill HubSpot companies -> Xero contacts ({entity.code})")
    print(f"{workflow_id}\t{ui_link(settings, client, workflow_id)}")
    if args.wait:
        result: BackfillResult = await handle.result()
        totals = result.totals
        print(f"{totals.companies} companies: {totals.created} created, {totals.existing} existing "
              f"({totals.pages} pages, {totals.runs} runs)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description="Revenue-operations flows on Temporal")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start-deal", help="start quote-to-cash for a HubSpot deal (attaches if running)")
    s.add_argument("deal_id")
    s.add_argument("--wait", action="store_true", help="wait for the result and print it")
    for name in ("approve", "reject"):
        s = sub.add_parser(name, help=f"{name} a deal waiting for finance approval")
        s.add_argument("workflow_id")
        s.add_argument("--approver", required=True)
        s.add_argument("--note", default="")
    s = sub.add_parser("status", help="where a deal's run stands")
    s.add_argument("workflow_id")
    s.add_argument("--json", action="store_true")
    sub.add_parser("pending", help="deals waiting for finance approval")
    s = sub.add_parser("recheck", help="re-read a deal waiting in a data exception")
    s.add_argument("workflow_id")
    s.add_argument("--by", default="operator")
    s = sub.add_parser("find", help="find workflows by any ID, e.g. stripe:customer:cus_123")
    s.add_argument("key")
    s = sub.add_parser("backfill", help="create a Xero contact in one entity for every HubSpot company")
    s.add_argument("entity", help="legal entity code, e.g. US01")
    s.add_argument("--rate", type=float, default=0.9,
                   help="Xero requests/s (Xero allows 60 a minute per tenant; the emulators take more)")
    s.add_argument("--hubspot-rate", type=float, default=4.0, help="HubSpot requests/s")
    s.add_argument("--wait", action="store_true", help="wait for the result and print the totals")
    ingress_cli.add_parsers(sub)
    ledger_cli.add_parsers(sub)
    amendments_cli.add_parsers(sub)
    return p


async def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings()
    if args.command in ingress_cli.COMMANDS:  # no Temporal connection needed up front
        return await ingress_cli.COMMANDS[args.command](settings, args)
    if args.command in ledger_cli.LOCAL_COMMANDS:
        return await ledger_cli.LOCAL_COMMANDS[args.command](settings, args)
    client = await connect(settings)
    commands = {
        **ledger_cli.TEMPORAL_COMMANDS,
        **amendments_cli.COMMANDS,
        "start-deal": cmd_start_deal,
        "approve": lambda c, s, a: cmd_decide(c, s, a, True),
        "reject": lambda c, s, a: cmd_decide(c, s, a, False),
        "status": cmd_status,
        "pending": cmd_pending,
        "recheck": cmd_recheck,
        "find": cmd_find,
        "backfill": cmd_backfill,
    }
    return int(await commands[args.command](client, settings, args))


def main() -> None:
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()


