"""``starter.py erp cutover``: move a legal entity's books to another ERP adapter.

    python starter.py erp cutover EU01 --to <erp> [--tenant <its tenant there>] [--json]

Starts (or, run again, reruns) the ``cutover-<entity>-<erp>`` workflow and waits for its report: exit 0 when
it moved (or found everything already moved), 1 when it was refused (runs mid-posting, named) or failed, 2 for
an unknown entity or ERP adapter. The report is printed (``--json`` for scripts) and written as JSON and text
under ``data_dir/cutover/``; it ends with the entity's ``LEGAL_ENTITIES`` entry for ``.env``.
"""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from activities.cutover import CutoverReport, CutoverRequest
from bootstrap import CliParts
from canonical.keys import cutover_workflow_id
from canonical.ownership import SystemRole
from cli import process as cli
from connectors.registry import default_registry
from workflows.cutover import CutoverWorkflow


async def cmd_erp_cutover(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    settings = app.settings
    registry = app.registry or default_registry(settings)
    known = [e.code for e in settings.legal_entities]
    if args.entity not in known:
        raise cli.UnknownId(f"unknown legal entity {args.entity!r} (known: {', '.join(known)})")
    if args.to not in registry.names(SystemRole.ERP):
        raise cli.UnknownId(f"unknown ERP adapter {args.to!r} (known: {', '.join(registry.names(SystemRole.ERP))})")
    workflow_id = cutover_workflow_id(args.entity, args.to)
    try:
        report: CutoverReport = await client.execute_workflow(
            CutoverWorkflow.run, CutoverRequest(entity=args.entity, to_adapter=args.to, to_tenant=args.tenant),
            id=workflow_id, task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,  # a second command joins a running cut-over
            static_summary=f"ERP cut-over of {args.entity} to {args.to}")
    except WorkflowFailureError as exc:
        cause = exc.cause
        raise cli.CliError(f"cut-over {workflow_id} failed: {getattr(cause, 'message', None) or cause}; run "
                           "the same command again to resume it") from exc
    if args.json:
        cli.emit_json(report)
    else:
        for text in report.text().splitlines():
            cli.line(text)
        cli.line(f"report: {report.json_path}")
    if report.outcome == "refused":
        if args.json:
            cli.error(f"refused: {args.entity} has runs mid-posting: {'; '.join(report.refused_by)}")
        return cli.REFUSED
    return cli.OK


async def cmd_erp(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    return await cmd_erp_cutover(client, app, args)


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("erp", help="the ERP of each legal entity: cut an entity over to another ERP")
    erp = s.add_subparsers(dest="erp_command", required=True)
    c = erp.add_parser("cutover", help="move an entity's contacts and open receivables to another ERP and "
                       "switch it there (resumable; refused while anything is posting in the entity)")
    c.add_argument("entity", help="the legal entity code (e.g. EU01)")
    c.add_argument("--to", required=True, help="the ERP adapter to move to (a registry name)")
    c.add_argument("--tenant", default=None, help="the entity's tenant / subsidiary in that ERP (default: the "
                   "same tenant ID as now)")
    c.add_argument("--json", action="store_true", help="the report as JSON")


COMMANDS = {"erp": cmd_erp}

__all__ = ["COMMANDS", "add_parsers", "cmd_erp_cutover"]
