"""``starter.py`` commands of amendment propagation (the signal-with-start itself is runtime/launch.py's).

    python starter.py amend <recordId> --sequence 2 [--amendment-id <ironcladId>] [--deal <dealId>]
    python starter.py amendments <recordId> [--json]
    python starter.py resolve-gap <recordId> --operator NAME
    python starter.py resolve-conflict <recordId> --operator NAME (--keep-erp | --overwrite) [--note TEXT]
    python starter.py retry-amendment <recordId> --operator NAME
    (finance decides with the existing ``approve|reject contract-ironclad-<recordId> --approver NAME``)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from bootstrap import CliParts
from canonical.keys import is_workflow_of
from runtime.launch import amendments_id, signal_amendment
from settings import Settings
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.models import (
    ConflictResolution,
    ContractAmendmentsStatus,
    GapResolution,
    GapResolutionResult,
    RetryRequest,
)


def _handle(client: Client, settings: Settings, record_id: str) -> WorkflowHandle:
    """The amendments workflow of a contract: one of our workflow IDs, or a record ID of the configured CLM."""
    workflow_id = record_id if is_workflow_of(record_id, "contract") else amendments_id(settings, record_id)
    return client.get_workflow_handle_for(ContractAmendmentsWorkflow.run, workflow_id)


async def cmd_amend(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    handle = await signal_amendment(client, settings, args.record_id, sequence=args.sequence,
                                    clm_amendment_id=args.amendment_id, deal_id=args.deal,
                                    source_event_id=f"cli-{args.record_id}-{args.sequence}")
    print(f"amendment {args.sequence if args.sequence is not None else '(from the CLM)'} sent to {handle.id}: "
          f"{settings.temporal_ui_url}/namespaces/{client.namespace}/workflows/{handle.id}")
    return 0


async def _status(client: Client, settings: Settings, args: argparse.Namespace) -> ContractAmendmentsStatus:
    """The status query; with ``--wait-for N``, polled until amendment N has an outcome (exit 1 on timeout)."""
    from cli import process as cli

    handle = _handle(client, settings, args.record_id)
    deadline = asyncio.get_running_loop().time() + args.timeout
    while True:
        try:
            status: ContractAmendmentsStatus = await handle.query(ContractAmendmentsWorkflow.status)
        except RPCError as exc:
            if exc.status is not RPCStatusCode.NOT_FOUND:
                raise
            if args.wait_for is None:
                raise cli.UnknownId(f"no amendments workflow {handle.id!r} (no amendment has arrived for "
                                    f"record {args.record_id})") from exc
            status = None  # type: ignore[assignment]  # the amendment's webhook may still be on its way
        if args.wait_for is None or (status is not None and any(
                record.sequence == args.wait_for for record in status.history)):
            return status
        if asyncio.get_running_loop().time() > deadline:
            raise cli.CliError(f"amendment {args.wait_for} of {handle.id} has no outcome after {args.timeout:g}s")
        await asyncio.sleep(0.5)


async def cmd_amendments(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    status = await _status(client, app.settings, args)
    if args.json:
        print(status.model_dump_json(indent=2))
        return 0
    print(f"contract {status.record_id} (deal {status.deal_id or '-'}): {status.stage.value}"
          + (f" [{status.exception_kind.value}]" if status.exception_kind.value else ""))
    print(f"  next amendment: {status.next_sequence}; received: {status.pending_sequences or '-'}; "
          f"missing: {status.missing_sequences or '-'}; duplicates ignored: {status.duplicates_ignored}")
    if status.waiting_for:
        print(f"  waiting for: {status.waiting_for}")
    for record in status.history:
        cycle = f"{record.cycle_time_seconds:.1f}s" if record.cycle_time_seconds is not None else "-"
        print(f"  amendment {record.sequence}: {record.outcome}, cycle time {cycle}; {record.summary}")
    for text in (status.conflict, status.failure):
        if text:
            print(f"  {text}")
    return 0


async def _update(call: Callable[[], Awaitable[Any]]) -> Any | None:
    try:
        return await call()
    except WorkflowUpdateFailedError as exc:
        print(f"refused: {exc.cause.message if exc.cause else exc}", file=sys.stderr)  # type: ignore[attr-defined]
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            from cli import process as cli

            raise cli.UnknownId(f"not found: {exc.message}") from exc
        print(f"refused: {exc.message}", file=sys.stderr)
    return None


async def cmd_resolve_gap(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    handle = _handle(client, app.settings, args.record_id)
    result: GapResolutionResult | None = await _update(lambda: handle.execute_update(
        ContractAmendmentsWorkflow.resolve_gap, GapResolution(operator=args.operator, note=args.note)))
    if result is None:
        return 1
    print(f"found {result.found or 'nothing'} in the CLM" + (f"; still missing {result.still_missing}"
                                                            if result.still_missing else ""))
    return 0 if not result.still_missing else 1


async def cmd_resolve_conflict(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    handle = _handle(client, app.settings, args.record_id)
    choice = ConflictResolution(operator=args.operator, keep_erp_value=not args.overwrite, note=args.note)
    done = await _update(lambda: handle.execute_update(ContractAmendmentsWorkflow.resolve_conflict, choice))
    if done is None:
        return 1
    print("keeping the ERP's value" if choice.keep_erp_value else "overwriting the ERP's value")
    return 0


async def cmd_retry_amendment(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    handle = _handle(client, app.settings, args.record_id)
    done = await _update(lambda: handle.execute_update(ContractAmendmentsWorkflow.retry_propagation,
                                                       RetryRequest(operator=args.operator)))
    if done is None:
        return 1
    print("retrying")
    return 0


COMMANDS: dict[str, Callable[[Client, CliParts, argparse.Namespace], Awaitable[int]]] = {
    "amend": cmd_amend,
    "amendments": cmd_amendments,
    "resolve-gap": cmd_resolve_gap,
    "resolve-conflict": cmd_resolve_conflict,
    "retry-amendment": cmd_retry_amendment,
}


def add_parsers(sub: Any) -> None:
    """Add the amendment commands to ``starter.py``'s sub-parsers."""
    s = sub.add_parser("amend", help="deliver an executed CLM amendment (signal-with-start)")
    s.add_argument("record_id", help="the CLM record of the contract (or its amendments workflow ID)")
    s.add_argument("--sequence", type=int, default=None, help="amendment number (omit: read from the CLM)")
    s.add_argument("--amendment-id", default=None, help="the amendment's CLM record ID")
    s.add_argument("--deal", default=None, help="the CRM deal (default: the one the record names)")
    s = sub.add_parser("amendments", help="where a contract's amendment propagation stands")
    s.add_argument("record_id")
    s.add_argument("--json", action="store_true")
    s.add_argument("--wait-for", type=int, metavar="N", help="wait until amendment N has an outcome")
    s.add_argument("--timeout", type=float, default=120, help="seconds --wait-for waits (default 120)")
    s = sub.add_parser("resolve-gap", help="fetch missing amendments from the CLM")
    s.add_argument("record_id")
    s.add_argument("--operator", required=True)
    s.add_argument("--note", default="")
    s = sub.add_parser("resolve-conflict", help="decide an ERP ownership conflict of an amendment")
    s.add_argument("record_id")
    s.add_argument("--operator", required=True)
    group = s.add_mutually_exclusive_group(required=True)
    group.add_argument("--keep-erp", action="store_true", help="keep the ERP's value, skip our write")
    group.add_argument("--overwrite", action="store_true", help="overwrite the ERP's value with the amendment's")
    s.add_argument("--note", default="")
    s = sub.add_parser("retry-amendment", help="retry a failed amendment propagation")
    s.add_argument("record_id")
    s.add_argument("--operator", required=True)
