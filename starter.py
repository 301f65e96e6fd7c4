"""The command line for people: start flows, decide approvals, look at status.

    python starter.py start-deal 1234 [--wait]
    REVOPS_TOKEN=<jwt> python starter.py approve q2c-hubspot-1234 [--note "ok"]   (through the approvals API)
    python starter.py reject  q2c-hubspot-1234 --approver dana@revops.example --note "discount too deep"
                                              (sandbox: mints a token with the local HS256 secret)
    python starter.py status  q2c-hubspot-1234
    python starter.py pending
    python starter.py recheck q2c-hubspot-1234
    python starter.py match q2c-hubspot-1234 [--pick <ERP record> | --new] --by NAME   (customer_match)
    python starter.py find stripe:customer:cus_00000000000001
    python starter.py serve | events [--vendor V] [--outcome O] [--limit N] | replay-event <id>
    python starter.py reconcile [--entity E] [--customer C] [--deal D] | exceptions [--entity E]
    python starter.py ack <finding> --reason R
    python starter.py amend <recordId> [--sequence N] | amendments contract-ironclad-<recordId>
    python starter.py backfill US01 [--rate 0.9] [--wait]
    python starter.py kpis [--entity US01] [--since 2026-11-01] [--json]
    python starter.py catalogue sync [--apply] [--json]   (billing prices against the product catalogue)
    python starter.py erp cutover EU01 --to <erp> [--tenant T] [--json]   (move an entity's books to another ERP)
    python starter.py sandbox seed-deal | move-deal | sign | decline | amend | pay ...   (act as the vendors)

Exit codes: 0 done, 1 refused or failed, 2 usage error or unknown ID; read commands take ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bootstrap import CliParts, for_cli
from canonical import Deal
from canonical.keys import backfill_workflow_id, parse_workflow_id
from canonical.ownership import SystemRole
from cli import amendments as amendments_cli
from cli import catalogue as catalogue_cli
from cli import erp as erp_cli
from cli import events as ingress_cli
from cli import invoicing as invoicing_cli
from cli import kpis as kpis_cli
from cli import ledger as ledger_cli
from cli import matching as matching_cli
from cli import process as cli
from cli import sandbox as sandbox_cli
from cli.deal_view import DealRunView, deal_run_view, deal_workflow_id
from connectors.errors import ConnectorError
from connectors.registry import default_registry
from runtime.launch import launch_quote_to_cash
from runtime.startup import StartRefused
from settings import Settings
from workflows.attributes import BUSINESS_KEYS, DEAL_SIZE, EXCEPTION_KIND, LEGAL_ENTITY, STAGE
from workflows.models import ApprovalOutcome, QuoteToCashResult, RecheckRequest, RecheckResult, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


def ui_link(settings: Settings, client: Client, workflow_id: str, run_id: str | None = None) -> str:
    return (f"{settings.temporal_ui_url}/namespaces/{client.namespace}/workflows/{workflow_id}"
            + (f"/{run_id}/history" if run_id else ""))


async def _load_deal(app: CliParts, deal_id: str) -> Deal | None:
    """The deal for the run's summary; the run itself reloads it, so failure here is not fatal."""
    try:
        return await app.crm().get_deal(deal_id)  # the adapter CRM_ADAPTER names
    except ConnectorError as exc:
        cli.error(f"note: could not read deal {deal_id} for the summary ({exc}); starting anyway")
        return None


async def cmd_start_deal(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    workflow_id = deal_workflow_id(settings, args.deal_id)
    parsed = parse_workflow_id(workflow_id)
    assert parsed is not None
    args.deal_id = parsed.id
    try:
        view: DealRunView | None = await deal_run_view(client, workflow_id, settings)
    except cli.UnknownId:
        view = None
    if view is not None and not view.running and view.stage == Stage.PROVISIONED.value:
        cli.line(f"deal {args.deal_id} is already provisioned by {workflow_id} (run {view.run_id}); nothing "
                 f"started. See: starter.py status {workflow_id}")
        return cli.OK
    deal = await _load_deal(app, args.deal_id)
    try:
        launched = await launch_quote_to_cash(client, settings, args.deal_id, deal=deal, trigger="manual",
                                              reopen=args.reopen)
    except WorkflowAlreadyStartedError as exc:
        raise cli.CliError(f"the deal's run is closed and its outcome stands; reopen it on purpose with "
                           f"`starter.py start-deal {args.deal_id} --reopen`") from exc
    handle = launched.handle
    verb = "started" if launched.started else "already running (attached)"
    cli.line(f"quote-to-cash {handle.id} {verb}: {ui_link(settings, client, handle.id)}")
    if args.wait:
        try:
            result: QuoteToCashResult = await handle.result()
        except WorkflowFailureError:
            view = await deal_run_view(client, handle.id, settings)
            cli.error(f"{handle.id} failed: {view.reason}")
            return cli.REFUSED
        cli.line(f"{handle.id} {result.outcome.value}: {result.reason}")
    return cli.OK


async def cmd_decide(client: Client, app: CliParts, args: argparse.Namespace, approved: bool) -> int:
    """Decide through the approvals API as the person of ``REVOPS_TOKEN`` (the only way the worker accepts)."""
    settings = app.settings
    import os

    from ingress.identity import mint_token

    authority = settings.approval_authority()
    workflow_id = deal_workflow_id(app.settings, args.workflow_id)
    token = os.environ.get("REVOPS_TOKEN", "").strip()
    if not token and not (args.approver or "").strip():
        raise cli.CliError("approver is required: --approver NAME (sandbox) or REVOPS_TOKEN", cli.USAGE)
    if not token:
        person = authority.approver(args.approver) or next(
            (a for a in authority.approvers if args.approver.strip().lower() == a.name.lower()), None)
        if person is None:
            raise cli.CliError("set REVOPS_TOKEN to your bearer token" + (
                f" ({args.approver!r} is not a registered approver)" if args.approver else ""), cli.USAGE)
        try:
            token = mint_token(settings, person.id, ttl_seconds=300)
        except ValueError as exc:
            raise cli.CliError(f"set REVOPS_TOKEN: {exc}") from exc
    url = f"{settings.approvals_base_url}/approvals/{workflow_id}"
    try:
        response = await app.http(timeout=30).post(url, json={"approved": approved, "note": args.note or ""},
                                                   headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise cli.CliError(f"the approvals API at {settings.approvals_base_url} cannot be reached: {exc}") from exc
    if response.status_code != 200:
        detail = response.json().get("detail", response.text) if "json" in response.headers.get(
            "content-type", "") else response.text
        if response.status_code == 404:
            raise cli.UnknownId(str(detail))
        raise cli.CliError(str(detail))
    outcome = ApprovalOutcome.model_validate(response.json())
    person = authority.approver(outcome.approver)
    cli.line(f"{outcome.status} by {person.name if person else outcome.approver}"
             + (f": {outcome.note}" if outcome.note else "")
             + (f" ({outcome.approvals} of {outcome.required} approvals)" if outcome.required > 1 else ""))
    return cli.OK


#: the stages a quote-to-cash run ends in
_OUTCOMES = frozenset({Stage.PROVISIONED, Stage.REJECTED, Stage.EXPIRED, Stage.CANCELLED, Stage.FAILED, Stage.SKIPPED})


async def _wait_for_stage(client: Client, settings: Settings, text: str, stage: str, timeout: float
                          ) -> DealRunView:
    """Poll the deal's run until it reaches ``stage``; refuse when it ends elsewhere or time runs out. A stage a
    run ends in (provisioned, cancelled, ...) is reached when the run has closed: it enters the stage, then
    finishes its last write-back to the CRM, and what is shown then is its outcome."""
    deadline = asyncio.get_running_loop().time() + timeout
    view: DealRunView | None = None
    while True:
        try:
            view = await deal_run_view(client, text, settings)
        except cli.UnknownId:
            view = None  # the webhook that starts it may still be on its way
        if view is not None and view.stage == stage and not (stage in _OUTCOMES and view.running):
            return view
        if view is not None and not view.running and view.stage:
            raise cli.CliError(f"{view.workflow_id} ended {view.stage} ({view.reason}), not {stage}")
        if asyncio.get_running_loop().time() > deadline:
            where = (f"it is at {view.stage or 'an unknown stage'}"
                     + (", still finishing" if view.stage in _OUTCOMES and view.running else "")) if view \
                else "no run exists"
            raise cli.CliError(f"{deal_workflow_id(settings, text)} did not reach {stage} within {timeout:g}s "
                               f"({where})")
        await asyncio.sleep(0.5)


async def cmd_status(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    if args.wait_for:
        view = await _wait_for_stage(client, settings, args.workflow_id, args.wait_for, args.timeout)
    else:
        view = await deal_run_view(client, args.workflow_id, settings)
    if args.json:
        cli.emit_json(view)
        return cli.OK
    status, result = view.status, view.result
    state = f"{view.stage or '?'}" + (f" [{view.exception_kind}]" if view.exception_kind else "")
    if not view.running:
        state += f" (run {view.execution_status.lower()})"
    contract = (status.contract if status else None) or (result.contract if result else None)
    engagements = (status.engagements if status else []) or (result.engagements if result else [])
    deal = ""
    if status and status.deal_name:
        deal = (f"{status.deal_name} ({status.deal_id}), {status.company or '-'}, {status.amount or '-'}, "
                f"entity {status.legal_entity or '-'}")
    pairs: list[tuple[str, object]] = [
        ("workflow", f"{view.workflow_id}  run {view.run_id}"),
        ("stage" if view.running else "outcome", state),
        ("reason" if not view.running else "failure", view.reason if not view.running else (
            status.failure if status else "")),
        ("deal", deal),
        ("waiting for", status.waiting_for if status else ""),
        ("missing", [str(m) for m in status.missing] if status else []),
        ("approval", f"{status.approval.status} ({'; '.join(status.approval.reasons)})"
         if status and status.approval else ""),
        ("contract", " / ".join(x for x in (contract.clm_workflow_id, contract.clm_record_id) if x)
         if contract else ""),
        ("provisioned", [f"{e.legal_entity}: ERP contact {e.erp_contact_id or '-'}, project "
                         f"{e.project.code if e.project else '-'}, billing customer {e.billing_customer_id or '-'}, "
                         f"billing {', '.join(e.billing_schedule_ids) or '-'}" for e in engagements]),
        ("ids", view.business_keys),
        ("later runs", [f"{r.run_id} {r.stage} ({r.started_at:%Y-%m-%d %H:%M} UTC)" for r in view.later_runs
                        if r.started_at]),
        ("note", view.note),
        ("ui", ui_link(settings, client, view.workflow_id, view.run_id)),
    ]
    cli.fields(pairs)
    return cli.OK


async def cmd_pending(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    query = ('WorkflowType = "QuoteToCashWorkflow" AND ExecutionStatus = "Running" '
             'AND Stage = "awaiting_approval"')
    rows: list[dict[str, Any]] = []
    async for execution in client.list_workflows(query):
        attrs = execution.typed_search_attributes
        rows.append({"workflow_id": execution.id, "deal_size": attrs.get(DEAL_SIZE) or "",
                     "legal_entity": attrs.get(LEGAL_ENTITY) or "", "exception_kind": attrs.get(EXCEPTION_KIND) or "",
                     "since": execution.start_time.isoformat(timespec="seconds")})
    if args.json:
        cli.emit_json(rows)
        return cli.OK
    if not rows:
        cli.line("no deals are waiting for approval")
        return cli.OK
    cli.table(["workflow", "size", "entity", "exception", "since (UTC)"],
              [[r["workflow_id"], r["deal_size"],
                r["legal_entity"], r["exception_kind"], r["since"][:16]]
               for r in rows])
    return cli.OK


async def require_running(client: Client, workflow_id: str, action: str) -> WorkflowExecution:
    """The run's description; refuses (exit 1) when it has finished and exits 2 when there is none."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise cli.UnknownId(f"no workflow {workflow_id!r}") from exc
        raise
    if description.status is not WorkflowExecutionStatus.RUNNING:
        state = description.status.name.lower() if description.status else "closed"
        raise cli.CliError(f"refused: {workflow_id} has finished ({state}); nothing to {action}. "
                           f"See: starter.py status {workflow_id}")
    return description


async def cmd_recheck(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    workflow_id = deal_workflow_id(app.settings, args.workflow_id)
    await require_running(client, workflow_id, "recheck")
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
    result: RecheckResult = await handle.execute_update(QuoteToCashWorkflow.recheck_deal,
                                                        RecheckRequest(requested_by=args.by))
    cli.line("complete" if result.complete else "still missing: " + "; ".join(str(m) for m in result.missing))
    return cli.OK


async def cmd_repost(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    """Catch a ledger up with billing (``--invoice``: re-read it and feed the events the ledger lacks), then post
    again the ERP writes it still owes; exit 1 when nothing changed."""
    from cli.repost import repost

    return await repost(client, app, args.workflow_id, args.invoice, args.by, figures=args.figures)


async def cmd_find(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    if not args.key.strip():
        raise cli.CliError("give an ID: system:object:id (e.g. <billing>:customer:<id>) or a bare vendor ID",
                           cli.USAGE)
    cli.visibility_literal(args.key.strip())  # refuses what no ID contains, before it reaches a query
    candidates = (app.registry or default_registry(settings)).candidate_refs(settings, args.key)
    query = (f"BusinessKeys = {cli.visibility_literal(candidates[0])}" if len(candidates) == 1 else
             "BusinessKeys IN (" + ", ".join(cli.visibility_literal(c) for c in candidates) + ")")
    rows = []
    async for execution in client.list_workflows(query):
        keys = execution.typed_search_attributes.get(BUSINESS_KEYS) or []
        rows.append({"workflow_id": execution.id, "run_id": execution.run_id, "workflow_type": execution.workflow_type,
                     "status": execution.status.name if execution.status else "",
                     "stage": execution.typed_search_attributes.get(STAGE) or "",
                     "matched": next((c for c in candidates if c in keys), candidates[0]),
                     "ui": ui_link(settings, client, execution.id)})
    if args.json:
        cli.emit_json(rows)
    elif rows:
        cli.table(["workflow", "type", "status", "stage", "matched"],
                  [[r["workflow_id"], r["workflow_type"], r["status"], r["stage"], r["matched"]] for r in rows])
    if rows:
        return cli.OK
    exact = len(candidates) == 1 and candidates[0] == args.key.strip()
    hint = "" if exact else " (looked for it as " + ", ".join(":".join(c.split(":", 2)[:2]) for c in candidates) + ")"
    if not args.json:
        cli.error(f"no workflow carries {args.key}{hint}")
    return cli.USAGE


async def cmd_backfill(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    """Every CRM company as an ERP contact of one legal entity (CompanyBackfillWorkflow), paced below the
    vendors' limits. One run per entity: a second start while one runs attaches to it."""
    settings = app.settings
    from temporalio.common import WorkflowIDConflictPolicy

    from workflows.backfill import BackfillInput, BackfillResult, CompanyBackfillWorkflow

    try:
        entity = settings.entity(args.entity)
    except (KeyError, ValueError) as exc:
        known = ", ".join(e.code for e in settings.legal_entities)
        raise cli.UnknownId(f"unknown legal entity {args.entity!r} (known: {known})") from exc
    registry = app.registry or default_registry(settings)
    systems = registry.systems(settings)
    crm, erp = systems.crm, systems.erp_of(entity.code)
    erp_rate = args.rate or registry.rate_limits(settings, SystemRole.ERP, entity).reads_per_second
    crm_rate = args.crm_rate or registry.rate_limits(settings, SystemRole.CRM).reads_per_second
    workflow_id = backfill_workflow_id(erp.name, entity.code)
    handle = await client.start_workflow(
        CompanyBackfillWorkflow.run,
        BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id, crm=crm, erp=erp,
                      erp_requests_per_second=erp_rate, crm_requests_per_second=crm_rate),
        id=workflow_id, task_queue=settings.task_queue, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Backfill {crm.label} companies -> {erp.label} contacts ({entity.code})")
    cli.line(f"{workflow_id}\t{ui_link(settings, client, workflow_id)}")
    if args.wait:
        result: BackfillResult = await handle.result()
        totals = result.totals
        cli.line(f"{totals.companies} companies: {totals.created} created, {totals.existing} existing "
              f"({totals.pages} pages, {totals.runs} runs)")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="starter.py", description="Revenue-operations flows on Temporal",
                                epilog="exit codes: 0 done, 1 refused or failed, 2 usage error or unknown ID")
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    s = sub.add_parser("start-deal", help="start quote-to-cash for a CRM deal (attaches if running)")
    s.add_argument("deal_id")
    s.add_argument("--wait", action="store_true", help="wait for the outcome and print it")
    s.add_argument("--reopen", action="store_true", help="start a new run for a deal whose run has closed")
    for name in ("approve", "reject"):
        s = sub.add_parser(name, help=f"{name} a deal (or contract amendment) waiting for finance approval")
        s.add_argument("workflow_id")
        s.add_argument("--approver", default="", help="sandbox only, without REVOPS_TOKEN: mint a token for this "
                                                         "approver (ID or name) with the local HS256 secret")
        s.add_argument("--note", default="")
    s = sub.add_parser("status", help="where a deal's run stands: outcome, reason and IDs")
    s.add_argument("workflow_id", help="q2c-<crm>-<dealId> or the CRM's deal ID")
    s.add_argument("--json", action="store_true")
    s.add_argument("--wait-for", choices=[stage.value for stage in Stage], metavar="STAGE",
                   help="wait until the run reaches STAGE (exit 1 if it ends elsewhere or --timeout passes)")
    s.add_argument("--timeout", type=float, default=120, help="seconds --wait-for waits (default 120)")
    s = sub.add_parser("pending", help="deals waiting for finance approval")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("recheck", help="re-read a deal waiting in a data exception")
    s.add_argument("workflow_id")
    s.add_argument("--by", default="operator")
    s = sub.add_parser("repost", help="re-read an invoice from billing, feed the ledger "
                                      "(ledger-<billing>-<customerId>) what it lacks, post again what the ERP refused")
    s.add_argument("workflow_id")
    s.add_argument("--invoice", help="only this billing invoice ID")
    s.add_argument("--figures", action="store_true",
                   help="also write the CRM figures again (over a figure typed by hand)")
    s.add_argument("--by", default="operator")
    s = sub.add_parser("find", help="find workflows by any ID: <system>:<object>:<id>, or a bare ID of any "
                                    "adapter in use (each adapter's descriptor says which IDs it recognises)")
    s.add_argument("key")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("backfill", help="create an ERP contact in one entity for every CRM company")
    s.add_argument("entity", help="legal entity code, e.g. US01")
    s.add_argument("--rate", type=float, default=None,
                   help="the entity's ERP requests/s (default: its adapter's own pace, below the vendor's limit)")
    s.add_argument("--crm-rate", type=float, default=None, help="CRM requests/s (default: its adapter's pace)")
    s.add_argument("--wait", action="store_true", help="wait for the result and print the totals")
    ingress_cli.add_parsers(sub)
    ledger_cli.add_parsers(sub)
    amendments_cli.add_parsers(sub)
    invoicing_cli.add_parsers(sub)
    matching_cli.add_parsers(sub)
    kpis_cli.add_parsers(sub)
    erp_cli.add_parsers(sub)
    sandbox_cli.add_parsers(sub)
    catalogue_cli.add_parsers(sub)
    return p


#: commands that need a Temporal client; command groups add theirs in their own module
TEMPORAL_COMMANDS: dict[str, Callable[[Client, CliParts, argparse.Namespace], Awaitable[int]]] = {
    "start-deal": cmd_start_deal,
    "approve": lambda c, s, a: cmd_decide(c, s, a, True),
    "reject": lambda c, s, a: cmd_decide(c, s, a, False),
    "status": cmd_status,
    "pending": cmd_pending,
    "recheck": cmd_recheck,
    "find": cmd_find,
    "repost": cmd_repost,
    "backfill": cmd_backfill,
}


async def _dispatch(args: argparse.Namespace, app: CliParts) -> int:
    if args.command in ingress_cli.COMMANDS:  # no Temporal connection needed up front
        return await ingress_cli.COMMANDS[args.command](app, args)
    if args.command in ledger_cli.LOCAL_COMMANDS:
        return await ledger_cli.LOCAL_COMMANDS[args.command](app, args)
    if args.command in sandbox_cli.COMMANDS:
        return await sandbox_cli.COMMANDS[args.command](app, args)
    if args.command in catalogue_cli.COMMANDS:
        return await catalogue_cli.COMMANDS[args.command](app, args)
    commands = {**ledger_cli.TEMPORAL_COMMANDS, **amendments_cli.COMMANDS, **invoicing_cli.COMMANDS,
                **matching_cli.COMMANDS,
                **kpis_cli.COMMANDS, **erp_cli.COMMANDS, **TEMPORAL_COMMANDS}
    try:
        client = await app.client()
    except (RuntimeError, RPCError, OSError) as exc:
        raise cli.CliError(f"cannot reach Temporal at {temporal_target()}: {exc}") from exc
    return int(await commands[args.command](client, app, args))


async def run(argv: Sequence[str] | None = None, *, parts: CliParts | None = None) -> int:
    """Run one command; expected errors become one line on stderr and the exit code (0, 1 or 2).

    ``parts``: what the commands use (``bootstrap.for_cli``), built from the environment unless given."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse printed usage (2) or help (0)
        return int(exc.code or 0)
    app: CliParts | None = parts
    try:
        app = app or for_cli()
        return await _dispatch(args, app)
    except StartRefused as exc:
        cli.error(f"refused to start: {exc}")
        return cli.REFUSED
    except cli.CliError as exc:
        cli.error(exc.message)
        return exc.code
    except ValidationError as exc:
        cli.error(f"invalid input: {cli.describe_validation(exc)}")
        return cli.USAGE
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        cli.error(f"refused: {getattr(cause, 'message', None) or cause or exc}")
        return cli.REFUSED
    except WorkflowQueryFailedError as exc:
        cli.error(f"the workflow could not answer: {exc}")
        return cli.REFUSED
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            cli.error(f"not found: {exc.message}")
            return cli.USAGE
        cli.error(f"Temporal refused: {exc.message}")
        return cli.REFUSED
    except ConnectorError as exc:
        cli.error(f"vendor call failed: {exc}")
        return cli.REFUSED
    except (httpx.HTTPError, OSError) as exc:
        cli.error(f"failed: {type(exc).__name__}: {exc}")
        return cli.REFUSED
    finally:
        if app is not None and parts is None:
            await app.aclose()


def temporal_target() -> str:
    import os

    return os.environ.get("TEMPORAL_ADDRESS", "localhost:7233")


def main(argv: Sequence[str] | None = None) -> None:
    """The one exit path: run the command, then end the process cleanly (see ``cli/process.py``)."""
    try:
        code = asyncio.run(run(argv))
    except KeyboardInterrupt:
        code = 130
    cli.exit_process(code)


if __name__ == "__main__":
    main()
