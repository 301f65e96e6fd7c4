"""``starter.py match``: a person settles an ambiguous customer match of a deal (the ``customer_match``
exception): shows the candidates, or picks one, or says the customer is new.

    python starter.py match <dealId | q2c workflow ID>                       # the candidates, per entity
    python starter.py match <deal> --pick <ERP record ID> --by NAME [--entity US01]
    python starter.py match <deal> --new --by NAME [--entity US01]

``--entity`` may be left out when one entity waits. Exit 0 done (or listed), 1 refused (nothing waits, a record
that is not a candidate), 2 unknown workflow or bad usage.
"""

from __future__ import annotations

import argparse
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from bootstrap import CliParts
from canonical.text import operator_text, printable
from cli import process as cli
from cli.deal_view import deal_workflow_id
from workflows.models import CustomerMatchChoice, CustomerMatchChosen, QuoteToCashStatus
from workflows.quote_to_cash import QuoteToCashWorkflow


def _listing(status: QuoteToCashStatus) -> list[str]:
    lines = []
    for pending in status.customer_matches:
        match = pending.match
        rule = match.rule.value if match.rule else "-"
        kind = "contact(s)" if pending.system == "erp" else "customer(s)"
        lines.append(f"{pending.legal_entity} [{pending.system}]: {len(match.candidates)} {pending.erp} {kind} "
                     f"found by {rule}")
        if match.refused:
            lines.append(f"  asked again: {printable(match.refused, limit=300)}")
        for c in match.candidates:
            facts = ", ".join(f"{k} {printable(v, limit=60)}" for k, v in (
                ("country", c.country), ("tax number", c.tax_number), ("email", c.email),
                ("number", c.reference)) if v)
            lines.append(f"  --pick {c.record_id}   {printable(c.name, limit=80)}" + (f"  ({facts})" if facts else ""))
    return lines


async def cmd_match(client: Client, app: CliParts, args: argparse.Namespace) -> int:
    workflow_id = deal_workflow_id(app.settings, args.workflow_id)
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
    try:
        status: QuoteToCashStatus = await handle.query(QuoteToCashWorkflow.status)
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise cli.UnknownId(f"no workflow {workflow_id!r}") from exc
        raise
    if args.pick is None and not args.new:
        if not status.customer_matches:
            cli.line(f"{workflow_id}: no customer match waits for a person")
            return cli.OK
        for line in _listing(status):
            cli.line(line)
        cli.line(f"settle with: starter.py match {workflow_id} --pick <id> --by NAME   (or --new)")
        return cli.OK
    if args.pick is not None and args.new:
        raise cli.CliError("give --pick <id> or --new, not both", cli.USAGE)
    if not args.by:
        raise cli.CliError("say who decides (--by NAME)", cli.USAGE)
    try:
        by = operator_text(args.by, what="who decides (--by)", max_length=200)
        pick = operator_text(args.pick, what="the record ID (--pick)", max_length=200) if args.pick else None
    except ValueError as exc:
        raise cli.CliError(str(exc), cli.USAGE) from exc
    waiting = [p for p in status.customer_matches
               if (args.entity is None or p.legal_entity == args.entity)
               and (args.system is None or p.system == args.system)]
    if len(waiting) == 1:
        entity, system = waiting[0].legal_entity, waiting[0].system
    elif args.entity is not None and len(waiting) == 0:
        entity, system = args.entity, args.system or "erp"  # the workflow's validator says what waits
    else:
        named = ", ".join(f"{p.legal_entity} [{p.system}]" for p in status.customer_matches)
        raise cli.CliError(f"refused: {workflow_id} waits for a match in {named}; name one with --entity and "
                           "--system" if named else f"refused: no customer match waits in {workflow_id}")
    try:
        chosen: CustomerMatchChosen = await handle.execute_update(
            QuoteToCashWorkflow.choose_customer_match,
            CustomerMatchChoice(legal_entity=entity, system=system, record_id=pick,  # type: ignore[arg-type]
                                new_customer=bool(args.new), chosen_by=by))
    except WorkflowUpdateFailedError as exc:
        raise cli.CliError(f"refused: {getattr(exc.cause, 'message', None) or exc.cause}") from exc
    picked = "a new customer" if chosen.new_customer else f"contact {chosen.record_id}"
    cli.line(f"{workflow_id}: {chosen.legal_entity} [{chosen.system}] takes {picked} (chosen by {by}); "
             "provisioning goes on")
    return cli.OK


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("match", help="settle an ambiguous customer match (customer_match): list, --pick or --new")
    s.add_argument("workflow_id", help="the deal ID or its quote-to-cash workflow ID")
    s.add_argument("--pick", default=None, help="the ERP record ID of the candidate that is this customer")
    s.add_argument("--new", action="store_true", help="none of them: create a new customer")
    s.add_argument("--entity", default=None, help="the legal entity (when more than one waits)")
    s.add_argument("--system", choices=("erp", "billing"), default=None,
                   help="the ERP contact or the billing customer (when both wait)")
    s.add_argument("--by", default=None, help="who decides")


COMMANDS = {"match": cmd_match}

__all__ = ["COMMANDS", "add_parsers", "cmd_match"]
