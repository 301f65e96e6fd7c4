"""``starter.py sandbox …``: act as the people behind each system while ``make up`` runs, through the emulators'
``/_sandbox/`` controls (the acts no public API offers). Each act makes the emulator send its signed webhook to
the ingress, exactly as the vendor would. The acts of the adapter each role is configured with come from the
registry (``connectors/acts.py``); texts name the role and the adapter ("the CRM (HubSpot)").

    python starter.py sandbox seed-deal [--model subscription] [--company NAME] [--discount 30] [--missing region]
    python starter.py sandbox move-deal <dealId> [--stage STAGE]           # a salesperson drags the deal
    python starter.py sandbox edit-deal <dealId> region=NA ...             # fills in missing data
    python starter.py sandbox sign <dealId | contract ID>                  # every party signs
    python starter.py sandbox decline <dealId | contract ID>               # the customer declines
    python starter.py sandbox amend <dealId | record ID> --sequence 1 --seats 30
    python starter.py sandbox bill <dealId | subscription ID>              # the billing system bills a period
    python starter.py sandbox pay <invoice ID> [--amount 1000.00]          # the customer pays an invoice
    python starter.py sandbox log-time <project> --hours 1.5 --user U --task ROLE [--date D]  # a consultant
    python starter.py sandbox accept-milestone <dealId | project> MS-DESIGN [--by NAME]  # the customer accepts

Acts print what they made (``--json`` for scripts). Exit 1 when the emulator refuses, 2 for an unknown ID.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from bootstrap import CliParts
from canonical import LegalEntity
from canonical.deal import ProvisioningRecord
from canonical.keys import parse_project_code
from canonical.ownership import SystemRole
from cli import process as cli
from connectors.acts import (
    LINES_BY_MODEL,
    MISSABLE_FIELDS,
    DealDraft,
    MilestoneAccepted,
    MilestoneActs,
    RoleActs,
    TimesheetActs,
    erp_acts,
)
from connectors.errors import ConnectorError, NotFound
from connectors.registry import default_registry, role_label


class Sandbox:
    """The acts of each role's system, over one HTTP client."""

    def __init__(self, app: CliParts, acts: RoleActs, http: Any = None) -> None:
        self.app = app
        self.settings = app.settings
        self.acts = acts
        self.acts_http = http
        registry = app.registry or default_registry(app.settings)
        self.display = {role: registry.chosen(app.settings, role).display_name
                        for role in (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING)}

    def label(self, role: SystemRole) -> str:
        """``the CRM (HubSpot)``."""
        return f"the {role_label(self.settings, role, self.app.registry)}"

    async def run(self, act: Awaitable[Any], role: SystemRole) -> Any:
        """Await an act; the emulator's refusals become the CLI's one-line errors."""
        try:
            return await act
        except NotFound as exc:
            raise cli.UnknownId(f"{self.label(role)}: {exc.message}") from exc
        except ConnectorError as exc:
            raise cli.CliError(f"{self.label(role)}: {exc.message}") from exc

    def deal_id(self, text: str) -> str:
        return self.acts.crm.deal_id(text)

    async def written_back(self, deal_id: str, field: str, what: str) -> str:
        value = await self.run(self.acts.crm.written_back(deal_id, field), SystemRole.CRM)
        if not value:
            raise cli.CliError(f"deal {self.deal_id(deal_id)} has no {what} yet (see: starter.py status "
                               f"{self.deal_id(deal_id)})")
        return str(value)


def _fields(pairs: list[str]) -> dict[str, str]:
    props = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise cli.CliError(f"expected field=value, got {pair!r}", cli.USAGE)
        props[name] = value
    return props


def _typed(value: str) -> Any:
    """An attribute value as typed: a JSON number, boolean or object as such (``60``, ``true``,
    ``{"amount": 100, "currency": "USD"}``), anything else as text."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float | bool | dict) else value


def _show(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    if args.json:
        cli.emit_json(data)
    else:
        cli.line(text)
    return cli.OK


# -- the acts ------------------------------------------------------------------------------------------
async def seed_deal(box: Sandbox, args: argparse.Namespace) -> int:
    if args.model not in LINES_BY_MODEL:
        raise cli.CliError(f"unknown model {args.model!r} (one of {', '.join(LINES_BY_MODEL)})", cli.USAGE)
    draft = DealDraft(model=args.model, stage=args.stage or None)
    if args.company:
        draft.company = args.company if " " in args.company else f"{args.company} Inc"
    if args.name:
        draft.name = args.name
    missing = {m.strip() for m in (args.missing or "").split(",") if m.strip()}
    unknown = missing - set(MISSABLE_FIELDS)
    if unknown:
        raise cli.CliError(f"--missing takes {', '.join(MISSABLE_FIELDS)}; not {', '.join(sorted(unknown))}",
                           cli.USAGE)
    draft = draft.without(missing)
    if args.discount:
        draft = draft.with_discount(args.discount)
    seeded = await box.run(box.acts.crm.seed_deal(draft), SystemRole.CRM)
    if args.quiet:
        cli.line(seeded.deal_id)
        return cli.OK
    return _show(args, {"deal_id": seeded.deal_id, "company_id": seeded.company_id, "name": draft.name,
                        "company": draft.company},
                 f"deal {seeded.deal_id} seeded in {box.label(SystemRole.CRM)} ({draft.name}, {draft.company}, "
                 f"{args.model}); next: starter.py sandbox move-deal {seeded.deal_id}")


async def move_deal(box: Sandbox, args: argparse.Namespace) -> int:
    moved = await box.run(box.acts.crm.move_deal(args.deal_id, args.stage), SystemRole.CRM)
    changed = "moved" if moved.changed else "already"
    return _show(args, {"dealId": moved.deal_id, "stage": moved.stage, "changed": moved.changed},
                 f"deal {moved.deal_id} {changed} at {moved.stage}"
                 + ("; its webhook starts quote-to-cash" if moved.changed else ""))


async def edit_deal(box: Sandbox, args: argparse.Namespace) -> int:
    fields = _fields(args.properties)
    if not fields:
        raise cli.CliError("give at least one field=value", cli.USAGE)
    edited = await box.run(box.acts.crm.edit_deal(args.deal_id, fields), SystemRole.CRM)
    return _show(args, edited, f"deal {box.deal_id(args.deal_id)}: set {', '.join(sorted(fields))}")


async def _contract(box: Sandbox, target: str) -> str:
    if box.acts.crm.is_deal_id(target):
        return await box.written_back(target, "clm_workflow_id", f"{box.display[SystemRole.CLM]} contract")
    return target


async def sign(box: Sandbox, args: argparse.Namespace) -> int:
    contract_id = await _contract(box, args.target)
    signed = await box.run(box.acts.clm.sign(contract_id, executed_date=args.executed_date), SystemRole.CLM)
    return _show(args, {"workflowId": signed.contract_id, "recordId": signed.record_id, "status": signed.status},
                 f"contract {contract_id} signed in {box.label(SystemRole.CLM)}: record {signed.record_id}")


async def decline(box: Sandbox, args: argparse.Namespace) -> int:
    contract_id = await _contract(box, args.target)
    declined = await box.run(box.acts.clm.decline(contract_id, reason=args.reason), SystemRole.CLM)
    return _show(args, {"workflowId": declined.contract_id, "status": declined.status},
                 f"contract {contract_id} declined by the counterparty in {box.label(SystemRole.CLM)}: cancelled")


async def amend(box: Sandbox, args: argparse.Namespace) -> int:
    clm = box.display[SystemRole.CLM]
    record_id = (await box.written_back(args.target, "clm_record_id", f"executed {clm} record")
                 if box.acts.crm.is_deal_id(args.target) else args.target)
    attributes: dict[str, Any] = {name: _typed(value) for name, value in _fields(args.set or []).items()}
    before = after = None
    if args.seats is not None:
        try:
            terms = await box.app.clm().get_signed_terms(record_id)
        except NotFound as exc:
            raise cli.UnknownId(f"{box.label(SystemRole.CLM)}: {exc.message}") from exc
        if len(terms.recurring) != 1:
            raise cli.CliError(f"--seats needs a contract with one recurring charge; record {record_id} has "
                               f"{len(terms.recurring)} (use --set)", cli.USAGE)
        [charge] = terms.recurring
        seats = charge.model_copy(update={"quantity": Decimal(args.seats)})  # priced per seat, never per period
        before, after = terms, terms.model_copy(update={
            "recurring": [seats], "total_value": terms.total_value - charge.over_term(terms.start_date, terms.end_date)
            + seats.over_term(terms.start_date, terms.end_date)})
    if not attributes and before is None:
        raise cli.CliError("say what the amendment changes: --seats N or --set attribute=value", cli.USAGE)
    done = await box.run(box.acts.clm.amend(record_id, sequence=args.sequence, before=before, after=after,
                                            attributes=attributes), SystemRole.CLM)
    if args.quiet:
        cli.line(record_id)
        return cli.OK
    return _show(args, {"record_id": record_id, **done},
                 f"amendment {args.sequence} to record {record_id} executed: {done.get('amendment_id')}; "
                 f"see: starter.py amendments {record_id}")


async def bill(box: Sandbox, args: argparse.Namespace) -> int:
    if box.acts.crm.is_deal_id(args.target):
        billing = box.display[SystemRole.BILLING]
        record = ProvisioningRecord.model_validate_json(
            await box.written_back(args.target, "provisioned", f"{billing} subscription"))
        subscriptions = box.acts.billing.subscription_ids(record.billing_ids)
        if not subscriptions:
            raise cli.CliError(f"deal {box.deal_id(args.target)} has no {billing} subscription to bill (milestone "
                               "and time-and-materials deals are invoiced by their own flows)")
        subscription = subscriptions[0]
    else:
        subscription = args.target
    billed = await box.run(box.acts.billing.bill_next_period(subscription), SystemRole.BILLING)
    if args.quiet:
        cli.line(billed.invoice_id)
        return cli.OK if billed.invoice_id else cli.REFUSED
    return _show(args, {"subscription": subscription, "invoice": billed.invoice_id or None,
                        "status": billed.status or None, "amount_due": str(billed.amount_due),
                        "currency": billed.currency.lower() or None},
                 f"subscription {subscription} billed: invoice {billed.invoice_id or '-'} "
                 f"({billed.status or 'none'}, {billed.amount_due} {billed.currency}); "
                 f"next: starter.py sandbox pay {billed.invoice_id or '<invoice>'}")


async def pay(box: Sandbox, args: argparse.Namespace) -> int:
    amount: Decimal | None = None
    if args.amount:
        try:
            amount = Decimal(args.amount)
            if not amount.is_finite() or amount <= 0:
                raise InvalidOperation
        except (InvalidOperation, ArithmeticError) as exc:
            raise cli.CliError(f"--amount must be a decimal amount like 1000.00, not {args.amount!r}",
                               cli.USAGE) from exc
    paid = await box.run(box.acts.billing.pay(args.invoice_id, amount), SystemRole.BILLING)
    return _show(args, {"invoice": args.invoice_id, "amount": str(paid.amount), "currency": paid.currency,
                        "status": paid.status, "amount_remaining": str(paid.amount_remaining)},
                 f"invoice {args.invoice_id}: paid {paid.amount} {paid.currency}, now {paid.status}")


async def log_time(box: Sandbox, args: argparse.Namespace) -> int:
    try:
        hours = Decimal(args.hours)
        if not hours.is_finite() or hours <= 0:
            raise InvalidOperation
    except (InvalidOperation, ArithmeticError) as exc:
        raise cli.CliError(f"--hours must be a positive number like 1.5, not {args.hours!r}", cli.USAGE) from exc
    try:
        day = date.fromisoformat(args.date) if args.date else None
    except ValueError as exc:
        raise cli.CliError(f"--date must be YYYY-MM-DD, not {args.date!r}", cli.USAGE) from exc
    parsed = parse_project_code(args.project)
    try:
        entity = box.settings.entity(parsed.entity_code) if parsed else None
    except KeyError as exc:
        raise cli.UnknownId(f"project {args.project}: no legal entity {parsed.entity_code if parsed else ''}") from exc
    acts = (erp_acts(box.settings, entity, box.acts_http, box.app.registry) if entity is not None
            else box.acts.erp)
    if not isinstance(acts, TimesheetActs):
        raise cli.CliError(f"{box.label(SystemRole.ERP)} takes no time entries here")
    logged = await box.run(acts.log_time(args.project, hours=hours, user=args.user, task=args.task, day=day,
                                         description=args.description), SystemRole.ERP)
    return _show(args, {"time_entry": logged.entry_id, "project": logged.project_id, "task": logged.task,
                        "user": logged.user, "minutes": logged.minutes, "date": logged.day.isoformat(),
                        "status": logged.status},
                 f"{logged.minutes} min logged on {logged.task} of project {args.project} by {logged.user} for "
                 f"{logged.day.isoformat()}: time entry {logged.entry_id} ({logged.status.lower()}); billed with "
                 "the project's time at the end of its month")


async def accept_milestone(box: Sandbox, args: argparse.Namespace) -> int:
    """The project manager records that the customer accepted a milestone, on the project's task in the ERP;
    the deal's one-off invoicing flow sees it at its next poll and finalizes that milestone's invoice."""
    projects: list[tuple[LegalEntity | None, str]]
    if box.acts.crm.is_deal_id(args.target):
        record = ProvisioningRecord.model_validate_json(
            await box.written_back(args.target, "provisioned", "project"))
        projects = [(box.settings.entity(e.legal_entity), e.project_code) for e in record.entities]
    else:
        parsed = parse_project_code(args.target)
        try:
            entity = box.settings.entity(parsed.entity_code) if parsed else None
        except KeyError as exc:
            raise cli.UnknownId(f"project {args.target}: no legal entity {parsed.entity_code if parsed else ''}") \
                from exc
        projects = [(entity, args.target)]
    accepted: MilestoneAccepted | None = None
    for entity, project in projects:
        acts = (erp_acts(box.settings, entity, box.acts_http, box.app.registry) if entity is not None
                else box.acts.erp)
        if not isinstance(acts, MilestoneActs):
            continue
        try:
            accepted = await acts.accept_milestone(project, args.milestone, accepted_by=args.by)
            break
        except NotFound:
            continue  # another entity's project may hold the milestone
        except ConnectorError as exc:
            raise cli.CliError(f"{box.label(SystemRole.ERP)}: {exc.message}") from exc
    if accepted is None:
        raise cli.UnknownId(f"no project of {args.target} has a milestone {args.milestone!r} to accept")
    return _show(args, {"project": accepted.project_id, "task": accepted.task, "task_id": accepted.task_id,
                        "status": accepted.status, "accepted_by": accepted.accepted_by},
                 f"milestone {args.milestone} ({accepted.task}) of {args.target} accepted by {accepted.accepted_by} "
                 f"in the project system; its invoice is finalized at the invoicing flow's next look")


ACTS: dict[str, Callable[[Sandbox, argparse.Namespace], Awaitable[int]]] = {
    "seed-deal": seed_deal, "move-deal": move_deal, "edit-deal": edit_deal, "sign": sign, "decline": decline,
    "amend": amend, "bill": bill, "pay": pay, "log-time": log_time, "accept-milestone": accept_milestone,
}


async def cmd_sandbox(app: CliParts, args: argparse.Namespace) -> int:
    http = app.http(timeout=30)
    acts = RoleActs.of(app.settings, http, app.registry)
    return await ACTS[args.act](Sandbox(app, acts, http), args)


def add_parsers(sub: Any) -> None:
    """Add ``sandbox <act>`` to ``starter.py``'s sub-parsers."""
    group = sub.add_parser("sandbox", help="act as the people behind the CRM, CLM and billing systems in `make up` "
                                           "(seed, move, sign, pay, ...)")
    acts = group.add_subparsers(dest="act", required=True, metavar="act")

    def act(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = acts.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true")
        return parser

    s = act("seed-deal", "CRM: create a deal with its company, billing contact and line items")
    s.add_argument("--model", default="subscription",
                   help="subscription, milestone, time_and_materials, retainer, fixed_fee")
    s.add_argument("--company", help="company name")
    s.add_argument("--name", help="deal name")
    s.add_argument("--discount", type=Decimal, help="discount percent on every line (above 20 needs finance)")
    s.add_argument("--missing", help=f"leave fields empty, comma-separated: {','.join(MISSABLE_FIELDS)}")
    s.add_argument("--stage", help="initial deal stage (default: the CRM's approval stage, before closed-won)")
    s.add_argument("--quiet", action="store_true", help="print only the deal ID")
    s = act("move-deal", "CRM: move a deal to a stage (default closed-won); its webhook starts the flow")
    s.add_argument("deal_id")
    s.add_argument("--stage")
    s = act("edit-deal", "CRM: set deal fields (e.g. fill in a missing region); its webhook re-checks")
    s.add_argument("deal_id")
    s.add_argument("properties", nargs="*", metavar="field=value",
                   help="region, start_date, end_date, legal_entity, payment_terms, currency, or a CRM property")
    s = act("sign", "CLM: every party signs the deal's contract (the webhook tells the flow)")
    s.add_argument("target", help="CRM deal ID or CLM contract (workflow) ID")
    s.add_argument("--executed-date", help="YYYY-MM-DD (default today)")
    s = act("decline", "CLM: the counterparty declines; the contract is cancelled")
    s.add_argument("target", help="CRM deal ID or CLM contract (workflow) ID")
    s.add_argument("--reason", default="declined by the counterparty")
    s = act("amend", "CLM: execute an amendment of a signed contract")
    s.add_argument("target", help="CRM deal ID or CLM record ID")
    s.add_argument("--sequence", type=int, required=True, help="amendment number: 1, 2, ...")
    s.add_argument("--seats", type=int, help="new quantity of the contract's recurring charge")
    s.add_argument("--set", action="append", metavar="attribute=value", help="any amendable CLM attribute")
    s.add_argument("--quiet", action="store_true", help="print only the contract's record ID")
    s = act("bill", "billing: bill the next period of the deal's subscription (invoice finalized)")
    s.add_argument("target", help="CRM deal ID or billing subscription ID")
    s.add_argument("--quiet", action="store_true", help="print only the invoice ID")
    s = act("pay", "billing: the customer pays an open invoice, fully or partly")
    s.add_argument("invoice_id", help="billing invoice ID")
    s.add_argument("--amount", help="decimal amount in the invoice's currency, e.g. 500.00 (default: what remains)")
    s = act("log-time", "ERP: a person logs time on a project's task (billed with its month, at the rate card)")
    s.add_argument("project", help="project code (P-<deal>-<ENTITY>) or the ERP's project ID")
    s.add_argument("--hours", required=True, help="hours, e.g. 1.5")
    s.add_argument("--user", required=True, help="who worked: the ERP user's name, email or ID")
    s.add_argument("--task", required=True, help="the rate-card role (its '<role> time' task) or a task name")
    s.add_argument("--date", help="YYYY-MM-DD the work was done (default today)")
    s.add_argument("--description", help="what was done")
    s = act("accept-milestone", "ERP: the customer accepted a milestone; a person records it on the project's task "
                                "(its invoice is finalized then)")
    s.add_argument("target", help="CRM deal ID, project code (P-<deal>-<ENTITY>) or the ERP's project ID")
    s.add_argument("milestone", help="the milestone code, e.g. MS-DESIGN")
    s.add_argument("--by", default="project manager", help="who accepted it")


COMMANDS: dict[str, Callable[[CliParts, argparse.Namespace], Awaitable[int]]] = {"sandbox": cmd_sandbox}

__all__ = ["ACTS", "COMMANDS", "Sandbox", "add_parsers"]
