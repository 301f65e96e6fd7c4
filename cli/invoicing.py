"""``starter.py accept-milestone``: a person accepts a milestone, and its invoice is finalised now.

    python starter.py accept-milestone <projectCode | invoicing workflow ID> <chargeCode> --by NAME

The update goes to the project's one-off invoicing flow (``invoicing-<billing>-<projectCode>``); the answer says
what is finalised and what still waits. Exit 0 done, 1 refused (nothing waits for that milestone), 2 unknown.
"""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from bootstrap import CliParts
from canonical.keys import invoicing_workflow_id, parse_workflow_id
from canonical.text import operator_text, printable
from cli import process as cli
from connectors.registry import default_registry
from workflows.invoicing import OneOffInvoicingWorkflow
from workflows.models import MilestoneAcceptance, OneOffInvoicingStatus


def invoicing_id(app: CliParts, text: str) -> str:
    """One of our invoicing workflow IDs as it is, or the project code of the configured billing system."""
    text = text.strip()
    parsed = parse_workflow_id(text)
    if parsed is not None and parsed.kind == "project":
        return text
    billing = (app.registry or default_registry(app.settings)).systems(app.settings).billing
    try:
        return invoicing_workflow_id(billing.name, text)
    except ValueError as exc:
        raise cli.CliError(f"not a project code: {printable(text, limit=80)} ({exc})", cli.USAGE) from exc


async def cmd_accept_milestone(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    try:
        by = operator_text(args.by, what="who accepts (--by)", max_length=200)
        charge = operator_text(args.charge_code, what="the milestone's charge code", max_length=100)
    except ValueError as exc:
        raise cli.CliError(str(exc), cli.USAGE) from exc
    workflow_id = invoicing_id(app, args.project)
    handle = client.get_workflow_handle_for(OneOffInvoicingWorkflow.run, workflow_id)
    try:
        status: OneOffInvoicingStatus = await handle.execute_update(
            OneOffInvoicingWorkflow.accept_milestone, MilestoneAcceptance(charge_code=charge, accepted_by=by))
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise cli.UnknownId(f"no invoicing flow {workflow_id} (give a project code like P-<deal>-<entity>)")\
                from exc
        raise
    except WorkflowUpdateFailedError as exc:
        raise cli.CliError(f"refused: {getattr(exc.cause, 'message', None) or exc.cause}") from exc
    cli.line(f"{workflow_id}: milestone {charge} accepted by {by}; finalized {', '.join(status.finalized) or '-'}; "
             f"still waiting {', '.join(d.charge_code for d in status.waiting) or 'nothing'}")
    return cli.OK


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("accept-milestone", help="a milestone was accepted: finalise its invoice now")
    s.add_argument("project", help="the project code (P-<deal>-<entity>) or its invoicing workflow ID")
    s.add_argument("charge_code", help="the milestone's charge (product) code")
    s.add_argument("--by", required=True, help="who accepted it")


COMMANDS = {"accept-milestone": cmd_accept_milestone}

__all__ = ["COMMANDS", "add_parsers", "cmd_accept_milestone", "invoicing_id"]
