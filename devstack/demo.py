"""``make demo``: the main job on the embedded default, from the CRM side.

Starts the stack (Temporal dev server + UI, emulators, ingress, worker) on a fresh data folder, seeds
deals in the CRM's emulator and moves them to closed-won: the emulator's signed webhooks reach the
ingress, which starts quote-to-cash. One deal needs finance approval and is approved through
``starter.py approve``; one lacks data and is corrected in the CRM. The CLM signs by itself after a few
seconds (the emulator's auto-sign). The systems are those settings choose, acted on through the registry's
acts (``connectors/acts.py``). Prints each deal's outcome and every ID it produced (full IDs, one per
line); from a terminal it keeps the stack up and prints each run's UI link, otherwise it stops the stack first
and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowFailureError

from canonical.keys import ledger_workflow_id
from canonical.ownership import SystemRole
from cli import process as cli
from cli.ledger import start_reconciliation
from connectors.acts import DealDraft, DealLineDraft, Paid, RoleActs
from connectors.errors import ConnectorError
from connectors.registry import default_registry, role_label
from devstack.runfile import leftovers
from devstack.stack import Stack, stack_ports, stop_on_signals
from runtime.connect import data_converter
from runtime.launch import quote_to_cash_id
from settings import ROOT, Settings
from workflows.models import (
    LedgerStatus,
    LedgerStatusRequest,
    QuoteToCashResult,
    QuoteToCashStatus,
    ReconciliationScope,
    Stage,
)
from workflows.quote_to_cash import QuoteToCashWorkflow


@dataclass
class DemoDeal:
    title: str
    spec: DealDraft
    expected: Stage
    needs_approval: bool = False
    fix: dict[str, str] | None = None
    accept: tuple[str, str] | None = None  # (entity, charge code): delivery accepts this milestone after provisioning
    deal_id: str = ""


def demo_deals() -> list[DemoDeal]:
    return [
        DemoDeal("subscription, auto-approved", DealDraft(model="subscription", company="Northwind Traders Inc",
                                                        name="Northwind platform"), Stage.PROVISIONED),
        DemoDeal("30% discount: finance approves", DealDraft(
            model="subscription", company="Globex Corporation", name="Globex enterprise",
            lines=[DealLineDraft("PLAT-ENT", "Enterprise seats", quantity="150", price="90.00", discount="30",
                        model="subscription", frequency="monthly")]), Stage.PROVISIONED, needs_approval=True),
        DemoDeal("missing region and start date: corrected in the CRM", DealDraft(
            model="milestone", company="Initech Ltd", name="Initech rollout", region=None, start_date=None),
            Stage.PROVISIONED, fix={"region": "NA", "start_date": "2027-03-01"}),
        DemoDeal("US platform + German rollout: split across two entities", DealDraft(
            model="subscription", company="Umbrella Holdings", name="Umbrella global",
            lines=[DealLineDraft("PLAT-PRO", "Platform seats", quantity="25", price="45.00", model="subscription",
                                 frequency="monthly"),
                   DealLineDraft("MS-ROLLOUT-DE", "German rollout", price="12000.00", model="milestone",
                                 entity="EU01")]),
            Stage.PROVISIONED, accept=("EU01", "MS-ROLLOUT-DE")),
        DemoDeal("time and materials in the UK", DealDraft(
            model="time_and_materials", company="Stark Consulting", name="Stark advisory", region="EMEA",
            currency="GBP", country="GB"), Stage.PROVISIONED),
    ]


def starter(*args: str) -> str:
    """Run ``starter.py`` as finance would, and show what it printed."""
    done = subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env=_stack_env)
    output = (done.stdout + done.stderr).rstrip()
    shown = "\n".join("    " + line for line in output.splitlines())
    print(f"  $ starter.py {' '.join(args)}\n{shown}")
    if done.returncode != 0:
        raise RuntimeError(f"starter.py {' '.join(args)} failed: {output}")
    return output


_stack_env: dict[str, str] = {}


async def wait_stage(client: Client, workflow_id: str, stage: Stage, timeout: float = 120) -> QuoteToCashStatus:
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            status: QuoteToCashStatus = await handle.query(QuoteToCashWorkflow.status)
            if status.stage is stage:
                return status
        except Exception:  # the run may not exist yet: the webhook is on its way
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{workflow_id} did not reach {stage.value} in {timeout:.0f}s")
        await asyncio.sleep(0.5)


Results = list[tuple[DemoDeal, QuoteToCashResult | None, str]]
#: the billing objects of a schedule the ID table lists (invoice items are reached through their invoice)
SCHEDULE_KINDS = ("subscription", "invoice", "product", "price")


async def run_demo(settings: Settings, stack: Stack) -> tuple[int, Results]:
    client = await Client.connect(stack.temporal_address, data_converter=data_converter(settings))
    crm_label, clm_label = role_label(settings, SystemRole.CRM), role_label(settings, SystemRole.CLM)
    async with httpx.AsyncClient(timeout=15) as http:
        acts = RoleActs.of(settings, http)
        await acts.clm.auto_sign(3.0)
        deals = demo_deals()
        print("\nFinance puts the product catalogue into billing once; every deal at a list price reuses it:")
        starter("catalogue", "sync", "--apply")
        print(f"\nSeeding deals in the {crm_label} emulator and moving them to closed-won (webhooks start the "
              f"flows; the {clm_label} signs by itself):")
        for deal in deals:
            deal.deal_id = (await acts.crm.seed_deal(deal.spec)).deal_id
            await acts.crm.move_deal(deal.deal_id)
            print(f"  deal {deal.deal_id}: {deal.spec.name} ({deal.title})")

        for deal in deals:
            workflow_id = quote_to_cash_id(settings, deal.deal_id)
            if deal.needs_approval:
                status = await wait_stage(client, workflow_id, Stage.AWAITING_APPROVAL)
                print(f"\n{workflow_id} waits for finance: {'; '.join(status.approval.reasons)}"  # type: ignore[union-attr]
                      )
                starter("pending")
                starter("approve", workflow_id, "--approver", "Chris (CFO)", "--note", "strategic account")
            if deal.fix:
                status = await wait_stage(client, workflow_id, Stage.DATA_EXCEPTION)
                print(f"\n{workflow_id} is in a data exception: " + "; ".join(str(m) for m in status.missing))
                print(f"  a salesperson fills in {', '.join(deal.fix)} in the {crm_label} (its webhook re-checks "
                      "the deal)")
                await acts.crm.edit_deal(deal.deal_id, deal.fix)

        print("\nWaiting for every deal to finish...")
        results: Results = []
        for deal in deals:
            handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run,
                                                    quote_to_cash_id(settings, deal.deal_id))
            try:
                result: QuoteToCashResult = await asyncio.wait_for(handle.result(), timeout=180)
                results.append((deal, result, ""))
            except (TimeoutError, WorkflowFailureError) as exc:
                results.append((deal, None, f"{type(exc).__name__}: {exc}"))
        failed = [d for d, r, _ in results if r is None or r.outcome is not d.expected]
        problems = [] if failed else await bill_pay_and_reconcile(client, settings, acts, results)
    print("\nThe catalogue after the deals (no deal made a price of its own at a list price):")
    starter("catalogue", "sync")
    return (1 if failed or problems else 0), results


async def bill_pay_and_reconcile(client: Client, settings: Settings, acts: RoleActs, results: Results) -> list[str]:
    """Billing runs a period of every subscription and delivery accepts the split deal's milestone; customers pay,
    one in part; the ledgers post invoices and payments to each entity's own ERP (billing's webhooks through the
    ingress); then reconciliation runs per entity against its ERP. Returns what went wrong (nothing: clean)."""
    billed: list[tuple[str, str, str]] = []  # (entity, billing customer ID, invoice ID)
    halves: dict[str, Decimal] = {}  # the invoice paid in part: half of what it bills
    print("\nBilling runs a period of each subscription; delivery accepts a milestone:")
    for deal, result, _ in results:
        for engagement in result.engagements if result else []:
            customer = engagement.billing_customer_id or ""
            for subscription_id in acts.billing.subscription_ids(engagement.billing_schedule_ids):
                invoice = await acts.billing.bill_next_period(subscription_id)
                if invoice.invoice_id:
                    billed.append((engagement.legal_entity, customer, invoice.invoice_id))
                    if not halves:
                        halves[invoice.invoice_id] = (invoice.amount_due / 2).quantize(Decimal("0.01"))
            if deal.accept and engagement.legal_entity == deal.accept[0] and engagement.project:
                starter("accept-milestone", engagement.project.code, deal.accept[1], "--by", "Dana (delivery)")
                drafts = [i for i in engagement.billing_schedule_ids if i.startswith("in_")]
                billed += [(engagement.legal_entity, customer, i) for i in drafts]
    print("\nCustomers pay (the first invoice in part, the others in full):")
    for entity, _customer, invoice_id in billed:
        paid = await _pay(acts, invoice_id, halves.get(invoice_id))
        print(f"  {entity} {invoice_id}: {paid.amount} {paid.currency} paid, {paid.amount_remaining} left due")
    return await _posted_and_reconciled(client, settings, billed)


async def _pay(acts: RoleActs, invoice_id: str, amount: Decimal | None) -> Paid:
    """Pay an invoice (``amount`` of it, else in full) once billing has finalised it (an accepted milestone's
    invoice is finalised by its invoicing run, a moment after the command)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await acts.billing.pay(invoice_id, amount)
        except (ConnectorError, httpx.HTTPError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def _posted_and_reconciled(client: Client, settings: Settings, billed: list[tuple[str, str, str]]
                                 ) -> list[str]:
    """Wait until every ledger has posted its invoices and payments to the ERP, then reconcile each entity."""
    deadline = time.monotonic() + 120
    while True:
        pending = await _unposted(client, settings, billed)
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    if pending:
        return [f"not posted to the ERP: {', '.join(pending)}"]
    print("\nInvoices and payments posted, each to its entity's ERP:")
    registry = default_registry(settings)
    problems: list[str] = []
    for code in sorted({e for e, _c, _i in billed}):
        erp = registry.erp_of(settings, settings.entity(code)).display_name
        invoices = [i for e, _c, i in billed if e == code]
        print(f"  {code} on {erp}: {len(invoices)} invoice(s) and their payments")
    print("\nReconciliation per entity, each against its own ERP:")
    for code in sorted({e for e, _c, _i in billed}):
        # the whole entity: a split company's CRM figures are the sum over every entity's ledger
        result = await start_reconciliation(client, settings, ReconciliationScope(legal_entities=[code]))
        reads = ", ".join(sorted(r.source for r in result.reads))
        print(f"  {code}: {len(result.findings)} finding(s) (read {reads})")
        problems += [f"{code}: {f.key}: {f.detail}" for f in result.findings]
        for finding in result.findings:
            print(f"    {finding.key}: {finding.detail}")
    return problems


async def _unposted(client: Client, settings: Settings, billed: list[tuple[str, str, str]]) -> list[str]:
    """The billed invoices whose ledger has not yet posted them (or a payment on them) to the ERP."""
    waiting = []
    billing = default_registry(settings).chosen(settings, SystemRole.BILLING).name
    for customer in sorted({c for _e, c, _i in billed}):
        handle = client.get_workflow_handle(ledger_workflow_id(billing, customer))
        try:
            status: LedgerStatus = await handle.query("open_items", LedgerStatusRequest(include_settled=True),
                                                      result_type=LedgerStatus)
        except Exception:  # the ledger starts with the first webhook
            waiting += [i for _e, c, i in billed if c == customer]
            continue
        items = {i.invoice_id: i for i in [*status.open_items, *status.settled_items]}
        for _e, c, invoice_id in billed:
            item = items.get(invoice_id)
            if c == customer and (item is None or not item.erp_invoice_id or item.erp_pending or not item.paid):
                waiting.append(invoice_id)
    return waiting


def id_rows(settings: Settings, deal: DemoDeal, result: QuoteToCashResult) -> list[tuple[str, str, str, str]]:
    """``(deal, entity, record, ID)`` rows: one per ID, full IDs (pasteable into ``starter.py find``); records
    named by the adapter's display name and the object kind (``Xero contact``)."""
    registry = default_registry(settings)
    clm = registry.chosen(settings, SystemRole.CLM)
    billing = registry.chosen(settings, SystemRole.BILLING)
    rows: list[tuple[str, str, str, str]] = []
    contract = result.contract
    if contract and contract.clm_workflow_id:
        rows.append((deal.deal_id, "", f"{clm.display_name} workflow", contract.clm_workflow_id))
    if contract and contract.clm_record_id:
        rows.append((deal.deal_id, "", f"{clm.display_name} record", contract.clm_record_id))
    for e in result.engagements:
        erp = registry.erp_of(settings, settings.entity(e.legal_entity)).display_name
        if e.erp_contact_id:
            rows.append((deal.deal_id, e.legal_entity, f"{erp} contact", e.erp_contact_id))
        if e.project:
            rows.append((deal.deal_id, e.legal_entity, f"{erp} project", e.project.erp_id or e.project.code))
        if e.billing_customer_id:
            rows.append((deal.deal_id, e.legal_entity, f"{billing.display_name} customer", e.billing_customer_id))
        for billing_id in e.billing_schedule_ids:  # invoice items are reached through their invoice
            kinds = billing.recognise(billing_id)
            if len(kinds) == 1 and kinds[0] in SCHEDULE_KINDS:
                rows.append((deal.deal_id, e.legal_entity, f"{billing.display_name} {kinds[0]}", billing_id))
    return rows


def print_table(settings: Settings, results: Results, *, stack_up: bool, data_dir: Path) -> None:
    """The outcome of each deal, then every ID it produced; UI links only while the stack is up."""
    print()
    cli.table(["deal", "name", "outcome", "entities", "reason"],
              [[d.deal_id, d.spec.name, r.outcome.value if r else "ERROR",
                ", ".join(e.legal_entity for e in r.engagements) if r else "", r.reason if r else err]
               for d, r, err in results], title="Outcomes", wrap=["reason"])
    print()
    cli.table(["deal", "entity", "record", "ID"],
              [row for d, r, _ in results if r is not None for row in id_rows(settings, d, r)], title="IDs")
    print("\nFind a run by any of these IDs:  .venv/bin/python starter.py find <ID>")
    if stack_up:
        print("\nThe stack is up; each run in the Temporal UI:")
        for deal, _result, _error in results:
            workflow_id = quote_to_cash_id(settings, deal.deal_id)
            print(f"  {settings.temporal_ui_url}/namespaces/default/workflows/{workflow_id}")
    else:
        print(f"\nThe demo's stack has been stopped (its state is in {data_dir}); `make up` starts a stack of your "
              "own, and `make demo` in a terminal keeps the demo's stack up until Ctrl-C.")


def main() -> None:
    settings = Settings()
    data_dir = settings.data_dir / "demo"
    # before the fresh folder replaces its run file: a stack left over (the demo's or `make up`'s) is named
    found = leftovers(settings.data_dir)
    if found:
        print("demo refused: " + "\n".join(f.describe() for f in found), file=sys.stderr)
        cli.exit_process(1)
    shutil.rmtree(data_dir, ignore_errors=True)
    # The demo's own services (a fresh folder) on the configured ports; nothing else may hold them.
    demo_settings = settings.model_copy(update={"data_dir": data_dir})
    temporal_port, ui_port = stack_ports(demo_settings)
    stack = Stack(settings=demo_settings, data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port)
    stop_on_signals(stack)
    stays_up = sys.stdin.isatty() and sys.stdout.isatty()
    code = 1
    try:
        print("Starting the embedded stack (Temporal dev server + UI, emulators, ingress, worker)...")
        stack.start()
        _stack_env.update(stack.env())
        code, results = asyncio.run(run_demo(demo_settings, stack))
        stack.check_alive()
        if not stays_up:
            stack.stop()
        print_table(demo_settings, results, stack_up=stays_up, data_dir=data_dir)
        if stays_up:
            print("\nPress Ctrl-C to stop the stack.")
            while True:
                time.sleep(1)
                stack.check_alive()
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print("\nstopping...")
    except Exception as exc:
        print(f"\ndemo failed: {exc}\nlogs: {data_dir / 'logs'}", file=sys.stderr)
        code = 1
    finally:
        stack.stop()
    print("\ndemo " + ("succeeded" if code == 0 else "FAILED") + f"; logs and state in {data_dir}")
    cli.exit_process(code)  # never a crash on exit: see cli/process.py


if __name__ == "__main__":
    main()
