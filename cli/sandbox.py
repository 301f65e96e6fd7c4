"""``starter.py sandbox …``: act as the people behind each vendor while ``make up`` runs, through the emulators'
``/_sandbox/`` controls (the acts no public API offers). Each act makes the emulator send its signed webhook to
the ingress, exactly as the vendor would.

    python starter.py sandbox seed-deal [--model subscription] [--company NAME] [--discount 30] [--missing region]
    python starter.py sandbox move-deal <dealId> [--stage closedwon]      # a salesperson drags the deal
    python starter.py sandbox edit-deal <dealId> revops_region=NA ...      # fills in missing data
    python starter.py sandbox sign <dealId | Ironclad workflow ID>         # every party signs
    python starter.py sandbox decline <dealId | Ironclad workflow ID>      # the customer declines
    python starter.py sandbox amend <dealId | recordId> --sequence 1 --seats 30
    python starter.py sandbox bill <dealId | sub_…>                        # Stripe bills the next period
    python starter.py sandbox pay <in_…> [--amount 1000.00]                # the customer pays an invoice

Acts print what they made (``--json`` for scripts). Exit 1 when the emulator refuses, 2 for an unknown ID.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from bootstrap import CliParts
from canonical.deal import ProvisioningRecord
from cli import process as cli

VENDORS = ("hubspot", "ironclad", "stripe", "xero")


class Sandbox:
    """The emulators' control endpoints, one HTTP client."""

    def __init__(self, app: CliParts, http: httpx.AsyncClient) -> None:
        self.app = app
        self.settings = app.settings
        self.http = http

    def url(self, vendor: str, path: str) -> str:
        return f"{str(getattr(self.settings, f'{vendor}_base_url')).rstrip('/')}{path}"

    async def call(self, method: str, vendor: str, path: str, body: Any = None) -> Any:
        try:
            response = await self.http.request(method, self.url(vendor, path), json=body)
        except httpx.HTTPError as exc:
            raise cli.CliError(f"the {vendor} emulator at {self.url(vendor, '')} is not reachable ({exc}); "
                               "is `make up` running?") from exc
        if response.status_code == 404:
            raise cli.UnknownId(f"{vendor}: {_message(response)}")
        if response.status_code >= 400:
            raise cli.CliError(f"{vendor} refused ({response.status_code}): {_message(response)}")
        return response.json() if response.content else None

    async def deal(self, deal_id: str) -> dict[str, Any]:
        return dict(await self.call("GET", "hubspot", f"/_sandbox/deals/{_deal_id(deal_id)}"))

    async def deal_property(self, deal_id: str, field: str, what: str) -> str:
        from connectors.hubspot.mapping import WRITEBACK_PROPERTIES

        props = (await self.deal(deal_id)).get("properties") or {}
        value = str(props.get(WRITEBACK_PROPERTIES[field]) or "")
        if not value:
            raise cli.CliError(f"deal {_deal_id(deal_id)} has no {what} yet (see: starter.py status "
                               f"{_deal_id(deal_id)})")
        return value


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error or body.get("message") or body.get("Message") or body)
    return str(body)[:200]


def _deal_id(text: str) -> str:
    return text.removeprefix("q2c-hubspot-")


def _is_deal(text: str) -> bool:
    return _deal_id(text).isdigit()


def _properties(pairs: list[str]) -> dict[str, str]:
    props = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise cli.CliError(f"expected property=value, got {pair!r}", cli.USAGE)
        props[name] = value
    return props


def _show(args: argparse.Namespace, data: dict[str, Any], text: str) -> int:
    if args.json:
        cli.emit_json(data)
    else:
        cli.line(text)
    return cli.OK


# -- the acts ------------------------------------------------------------------------------------------
async def seed_deal(box: Sandbox, args: argparse.Namespace) -> int:
    from sandbox.hubspot.seed import LINES_BY_MODEL, DealSpec

    if args.model not in LINES_BY_MODEL:
        raise cli.CliError(f"unknown model {args.model!r} (one of {', '.join(LINES_BY_MODEL)})", cli.USAGE)
    spec = DealSpec(model=args.model, stage=args.stage or DealSpec.stage)
    if args.company:
        spec.company = args.company if " " in args.company else f"{args.company} Inc"
    if args.name:
        spec.name = args.name
    missing = {m.strip() for m in (args.missing or "").split(",") if m.strip()}
    unknown = missing - {"region", "start_date", "currency", "payment_terms", "contact"}
    if unknown:
        raise cli.CliError(f"--missing takes region, start_date, currency, payment_terms, contact; not "
                           f"{', '.join(sorted(unknown))}", cli.USAGE)
    spec.region = None if "region" in missing else spec.region
    spec.start_date = None if "start_date" in missing else spec.start_date
    spec.currency = None if "currency" in missing else spec.currency
    spec.payment_terms = None if "payment_terms" in missing else spec.payment_terms
    spec.with_contact = "contact" not in missing
    lines = [line for line in LINES_BY_MODEL[args.model]]
    if args.discount:
        lines = [type(line)(**{**line.__dict__, "discount": str(args.discount)}) for line in lines]
    spec.lines = lines
    seeded = await box.call("POST", "hubspot", "/_sandbox/seed/deal", spec.payload())
    deal_id = str(seeded["dealId"])
    if args.quiet:
        cli.line(deal_id)
        return cli.OK
    return _show(args, {"deal_id": deal_id, "company_id": seeded.get("companyId"), "name": spec.name,
                        "company": spec.company},
                 f"deal {deal_id} seeded ({spec.name}, {spec.company}, {args.model}); "
                 f"next: starter.py sandbox move-deal {deal_id}")


async def move_deal(box: Sandbox, args: argparse.Namespace) -> int:
    stage = args.stage or box.settings.hubspot_closed_won_stage
    moved = await box.call("POST", "hubspot", f"/_sandbox/deals/{_deal_id(args.deal_id)}/stage", {"stage": stage})
    changed = "moved" if moved.get("changed") else "already"
    return _show(args, moved, f"deal {_deal_id(args.deal_id)} {changed} at {stage}"
                 + ("; its webhook starts quote-to-cash" if moved.get("changed") else ""))


async def edit_deal(box: Sandbox, args: argparse.Namespace) -> int:
    props = _properties(args.properties)
    if not props:
        raise cli.CliError("give at least one property=value", cli.USAGE)
    edited = await box.call("PATCH", "hubspot", f"/_sandbox/deals/{_deal_id(args.deal_id)}", {"properties": props})
    return _show(args, edited, f"deal {_deal_id(args.deal_id)}: set {', '.join(sorted(props))}")


async def _clm_workflow(box: Sandbox, target: str) -> str:
    if _is_deal(target):
        return await box.deal_property(target, "clm_workflow_id", "Ironclad contract")
    return target


async def sign(box: Sandbox, args: argparse.Namespace) -> int:
    workflow_id = await _clm_workflow(box, args.target)
    body = {"executed_date": args.executed_date} if args.executed_date else None
    signed = await box.call("POST", "ironclad", f"/_sandbox/workflows/{workflow_id}/sign", body)
    return _show(args, signed, f"Ironclad workflow {workflow_id} signed: record {signed.get('recordId')}")


async def decline(box: Sandbox, args: argparse.Namespace) -> int:
    workflow_id = await _clm_workflow(box, args.target)
    declined = await box.call("POST", "ironclad", f"/_sandbox/workflows/{workflow_id}/decline",
                              {"reason": args.reason})
    return _show(args, declined, f"Ironclad workflow {workflow_id} declined by the counterparty: cancelled")


async def amend(box: Sandbox, args: argparse.Namespace) -> int:
    record_id = (await box.deal_property(args.target, "clm_record_id", "executed Ironclad record")
                 if _is_deal(args.target) else args.target)
    props: dict[str, Any] = dict(_properties(args.set or []))
    if args.seats is not None:
        from connectors.ironclad.mapping import terms_to_attributes

        terms = await box.app.clm().get_signed_terms(record_id)
        if len(terms.recurring) != 1:
            raise cli.CliError(f"--seats needs a contract with one recurring charge; record {record_id} has "
                               f"{len(terms.recurring)} (use --set)", cli.USAGE)
        [charge] = terms.recurring
        after = terms.model_copy(update={
            "recurring": [charge.model_copy(update={"quantity": Decimal(args.seats)})],
            "total_value": charge.unit_price.times(Decimal(args.seats))})
        old, new = terms_to_attributes(terms), terms_to_attributes(after)
        props.update({k: v for k, v in new.items() if old.get(k) != v})
    if not props:
        raise cli.CliError("say what the amendment changes: --seats N or --set attribute=value", cli.USAGE)
    done = await box.call("POST", "ironclad", f"/_sandbox/records/{record_id}/amendments",
                          {"sequence": args.sequence, "properties": props})
    if args.quiet:
        cli.line(record_id)
        return cli.OK
    return _show(args, {"record_id": record_id, **done},
                 f"amendment {args.sequence} to record {record_id} executed: {done.get('recordId')}; "
                 f"see: starter.py amendments {record_id}")


async def bill(box: Sandbox, args: argparse.Namespace) -> int:
    if _is_deal(args.target):
        record = ProvisioningRecord.model_validate_json(
            await box.deal_property(args.target, "provisioned", "Stripe subscription"))
        ids = record.billing_ids
        subscriptions = [i for i in ids if i.startswith("sub_") and not i.startswith("sub_sched_")]
        if not subscriptions:
            raise cli.CliError(f"deal {_deal_id(args.target)} has no Stripe subscription to bill (milestone and "
                               "time-and-materials deals are invoiced by their own flows)")
        subscription = subscriptions[0]
    else:
        subscription = args.target
    billed = await box.call("POST", "stripe", f"/_sandbox/subscriptions/{subscription}/cycle")
    invoice = billed.get("invoice") or {}
    due = Decimal(invoice.get("amount_due", 0)) / 100 if invoice else Decimal(0)
    if args.quiet:
        cli.line(str(invoice.get("id") or ""))
        return cli.OK if invoice.get("id") else cli.REFUSED
    return _show(args, {"subscription": subscription, "invoice": invoice.get("id"), "status": invoice.get("status"),
                        "amount_due": str(due), "currency": invoice.get("currency")},
                 f"subscription {subscription} billed: invoice {invoice.get('id') or '-'} "
                 f"({invoice.get('status') or 'none'}, {due} {str(invoice.get('currency') or '').upper()}); "
                 f"next: starter.py sandbox pay {invoice.get('id') or '<invoice>'}")


async def pay(box: Sandbox, args: argparse.Namespace) -> int:
    body: dict[str, Any] | None = None
    if args.amount:
        try:
            cents = int((Decimal(args.amount) * 100).to_integral_exact())
        except (InvalidOperation, ArithmeticError) as exc:
            raise cli.CliError(f"--amount must be a decimal amount like 1000.00, not {args.amount!r}",
                               cli.USAGE) from exc
        body = {"amount": cents}
    paid = await box.call("POST", "stripe", f"/_sandbox/invoices/{args.invoice_id}/payments", body)
    invoice = paid.get("invoice") or {}
    amount = Decimal(paid.get("amount") or 0) / 100
    return _show(args, {"invoice": args.invoice_id, "amount": str(amount), "status": invoice.get("status"),
                        "amount_remaining": str(Decimal(invoice.get("amount_remaining") or 0) / 100)},
                 f"invoice {args.invoice_id}: paid {amount} {str(invoice.get('currency') or '').upper()}, "
                 f"now {invoice.get('status')}")


ACTS: dict[str, Callable[[Sandbox, argparse.Namespace], Awaitable[int]]] = {
    "seed-deal": seed_deal, "move-deal": move_deal, "edit-deal": edit_deal, "sign": sign, "decline": decline,
    "amend": amend, "bill": bill, "pay": pay,
}


async def cmd_sandbox(app: CliParts, args: argparse.Namespace) -> int:
    return await ACTS[args.act](Sandbox(app, app.http(timeout=30)), args)


def add_parsers(sub: Any) -> None:
    """Add ``sandbox <act>`` to ``starter.py``'s sub-parsers."""
    group = sub.add_parser("sandbox", help="act as the vendors' users in `make up` (seed, move, sign, pay, ...)")
    acts = group.add_subparsers(dest="act", required=True, metavar="act")

    def act(name: str, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = acts.add_parser(name, help=help_text)
        parser.add_argument("--json", action="store_true")
        return parser

    s = act("seed-deal", "HubSpot: create a deal with its company, billing contact and line items")
    s.add_argument("--model", default="subscription",
                   help="subscription, milestone, time_and_materials, retainer, fixed_fee")
    s.add_argument("--company", help="company name")
    s.add_argument("--name", help="deal name")
    s.add_argument("--discount", type=Decimal, help="discount percent on every line (above 20 needs finance)")
    s.add_argument("--missing", help="leave fields empty, comma-separated: region,start_date,currency,...")
    s.add_argument("--stage", help="initial deal stage (default: contractsent, before closed-won)")
    s.add_argument("--quiet", action="store_true", help="print only the deal ID")
    s = act("move-deal", "HubSpot: move a deal to a stage (default closed-won); its webhook starts the flow")
    s.add_argument("deal_id")
    s.add_argument("--stage")
    s = act("edit-deal", "HubSpot: set deal properties (e.g. fill in a missing region); its webhook re-checks")
    s.add_argument("deal_id")
    s.add_argument("properties", nargs="*", metavar="property=value")
    s = act("sign", "Ironclad: every party signs the deal's contract (the webhook tells the flow)")
    s.add_argument("target", help="HubSpot deal ID or Ironclad workflow ID")
    s.add_argument("--executed-date", help="YYYY-MM-DD (default today)")
    s = act("decline", "Ironclad: the counterparty declines; the contract is cancelled")
    s.add_argument("target", help="HubSpot deal ID or Ironclad workflow ID")
    s.add_argument("--reason", default="declined by the counterparty")
    s = act("amend", "Ironclad: execute an amendment of a signed contract")
    s.add_argument("target", help="HubSpot deal ID or Ironclad record ID")
    s.add_argument("--sequence", type=int, required=True, help="amendment number: 1, 2, ...")
    s.add_argument("--seats", type=int, help="new quantity of the contract's recurring charge")
    s.add_argument("--set", action="append", metavar="attribute=value", help="any amendable Ironclad attribute")
    s.add_argument("--quiet", action="store_true", help="print only the contract's record ID")
    s = act("bill", "Stripe: bill the next period of the deal's subscription (invoice finalized)")
    s.add_argument("target", help="HubSpot deal ID or Stripe subscription ID")
    s.add_argument("--quiet", action="store_true", help="print only the invoice ID")
    s = act("pay", "Stripe: the customer pays an open invoice, fully or partly")
    s.add_argument("invoice_id")
    s.add_argument("--amount", help="decimal amount, e.g. 500.00 (default: what remains)")


COMMANDS: dict[str, Callable[[CliParts, argparse.Namespace], Awaitable[int]]] = {"sandbox": cmd_sandbox}

__all__ = ["ACTS", "COMMANDS", "Sandbox", "add_parsers"]
