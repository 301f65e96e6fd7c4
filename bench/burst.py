"""Benchmark 3, month-end burst: the billing system's invoice-finalized and invoice-paid events posted to the
ingress as fast as it accepts them (bounded concurrency, loopback only). Reports the time until every
invoice is paid in the ERP and the CRM's paid figures are right, events/s accepted, peak RSS of the worker
and the ingress, and duplicates in the sandbox (must be 0). The final check compares, invoice by invoice,
the billing total, the ERP invoice total and each ERP line against the billing lines, and each company's CRM
billed and paid figures against the billing system (mismatches must be 0).

Runs the ingress (``starter.py serve``) and the ledger (``AccountLedgerWorkflow``) as the product wires them.

Invoices are made in the billing emulator (subscription cycles, then payments) with its webhooks switched
off, so the events reach the ingress only from this harness: read from the emulator's event log by the billing
acts, signed as the vendor signs them, and posted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from bench.common import (
    BenchStack,
    SqliteRecords,
    Table,
    Timer,
    bench_settings,
    cpu_between,
    cpu_note,
    gather_limited,
    peak_rss_mb,
    records_of,
    running_stack,
    stack_cpu,
)
from bench.cost import registered
from canonical.ownership import SystemRole
from canonical.refs import ExternalRef
from connectors.acts import BilledInvoice, DealDraft, ReceivableSeen
from connectors.registry import default_registry, role_label
from runtime.launch import start_quote_to_cash
from workflows.models import LEDGER_WORKFLOW, QuoteToCashResult, Stage


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    invoices_wanted = args.events // 2
    # four years of monthly billing each (about 47 cycles), within the approval policy's amount
    customers = max(args.customers, -(-invoices_wanted // 40))
    table = Table("burst", f"3. Month-end burst: {args.events} billing invoice-finalized + invoice-paid events "
                           f"over {customers} customers, {args.concurrency} deliveries in flight",
                  ["figure", "value"])
    if not registered(LEDGER_WORKFLOW):
        table.add("skipped", "AccountLedgerWorkflow is not in worker.WORKFLOWS")
        return table
    settings = bench_settings(data_dir, contract_poll_interval_seconds=args.poll, activity_retry_max_seconds=2.0)
    billing_label, erp_label = role_label(settings, SystemRole.BILLING), role_label(settings, SystemRole.ERP)
    async with running_stack(settings, with_ingress=True) as bench:
        billing = bench.acts.billing
        await bench.acts.clm.auto_sign(0)
        # 1. customers: subscription deals through quote-to-cash
        deal_ids = [await bench.seed_deal(DealDraft(model="subscription", end_date="2030-12-31"))
                    for _ in range(customers)]
        handles = [await start_quote_to_cash(bench.client, settings, d, trigger="bench") for d in deal_ids]
        results: list[QuoteToCashResult] = await asyncio.gather(*(h.result() for h in handles))
        assert all(r.outcome is Stage.PROVISIONED for r in results), [r.reason for r in results]
        subs = [(r, billing.subscription_ids(r.engagements[0].billing_schedule_ids)[0]) for r in results]
        # 2. invoices, with the billing system's webhooks off: only this harness delivers them
        await billing.controls.webhooks_off()
        invoice_ids: list[str] = []
        made = 0
        live = [sub_id for _, sub_id in subs]
        while made < invoices_wanted and live:
            for sub_id in list(live):
                if made >= invoices_wanted:
                    break
                billed = await billing.bill_next_period(sub_id)
                if not billed.invoice_id:
                    live.remove(sub_id)  # past its end date
                    continue
                await billing.pay(billed.invoice_id)
                invoice_ids.append(billed.invoice_id)
                made += 1
        wanted = set(invoice_ids)
        billing_records = records_of(settings, SystemRole.BILLING)
        events = billing.invoice_events(billing_records, wanted)
        expected_paid: dict[str, Decimal] = defaultdict(Decimal)
        for invoice in billing.invoices(billing_records):
            if invoice.invoice_id in wanted:
                expected_paid[invoice.customer_id] += invoice.amount_paid
        # 3. the burst
        path = default_registry(settings).chosen(settings, SystemRole.BILLING).webhook_path
        url = f"http://{settings.ingress_host}:{settings.ingress_port}{path}"
        statuses: Counter[int] = Counter()

        async def post(body: bytes) -> None:
            for _attempt in range(20):
                response = await bench.http.post(url, content=body, headers=billing.signed_headers(url, body))
                statuses[response.status_code] += 1
                if response.status_code < 300:
                    return
                await asyncio.sleep(0.5)

        cpu = [stack_cpu(bench)]
        timer = Timer()
        await gather_limited((post(e) for e in events), args.concurrency)
        accepted_seconds = timer.elapsed
        cpu.append(stack_cpu(bench))
        # 4. until every invoice is paid in the ERP and the CRM's paid figures match
        erp_spec = default_registry(settings).chosen(settings, SystemRole.ERP)
        erp = next(a for a in bench.acts.every if a.controls.spec is erp_spec)
        erp_records = SqliteRecords(settings.data_dir, erp_spec)
        done_seconds = None
        deadline = time.monotonic() + args.burst_timeout
        while time.monotonic() < deadline:
            paid = sum(1 for doc in erp.receivables(erp_records) if doc.paid)
            if paid >= len(invoice_ids) and await crm_figures_right(bench, results, expected_paid):
                done_seconds = timer.elapsed
                break
            await asyncio.sleep(3)  # each look decodes every ERP invoice: on the stack's two cores too
        cpu.append(stack_cpu(bench))
        worker_rss = peak_rss_mb(bench.pid("worker"))
        ingress_rss = peak_rss_mb(bench.pid("ingress"))
        receivables = erp.receivables(erp_records)
        refs = Counter(doc.reference for doc in receivables)
        payments = erp.payments_per_invoice(erp_records)
        all_invoices = billing.invoices(billing_records)
        mismatches = compare_invoices({i.invoice_id: i for i in all_invoices if i.invoice_id in wanted}, receivables)
        billed_invoices = {i.invoice_id: i for i in all_invoices if i.status in ("open", "paid")}
        crm_mismatches = await crm_billed_mismatches(bench, results, billed_invoices)
    table.incomplete = done_seconds is None
    cpu_use = {"accepting": cpu_between(cpu[0], cpu[1]), "settling": cpu_between(cpu[1], cpu[2])}
    walls = {"accepting": accepted_seconds, "settling": (done_seconds or timer.elapsed) - accepted_seconds}
    slow = workflow_task_warnings(data_dir / "logs")
    dup_invoices = sum(n - 1 for n in refs.values() if n > 1)
    dup_payments = sum(n - 1 for n in payments.values() if n > 1)
    table.add("events posted", len(events))
    table.add("HTTP statuses", dict(statuses))
    table.add("accepted in (s)", accepted_seconds)
    table.add("events/s accepted", len(events) / accepted_seconds)
    table.add(f"all invoices paid in the {erp_label} + CRM right (s)",
              done_seconds if done_seconds else "NOT within timeout")
    table.add("end-to-end events/s", len(events) / done_seconds if done_seconds else "-")
    table.add(f"{erp_label} invoices / expected", f"{len(receivables)} / {len(invoice_ids)}")
    table.add(f"duplicate {erp_label} invoices (by reference)", dup_invoices)
    table.add(f"duplicate {erp_label} payments (per invoice)", dup_payments)
    table.add(f"invoices whose {billing_label} total, {erp_label} total or lines differ", len(mismatches))
    table.add(f"companies whose CRM billed/paid differ from the {billing_label}", len(crm_mismatches))
    for line in (mismatches + crm_mismatches)[:10]:
        table.add("  mismatch", line)
    table.add("workflow tasks over 5 s (SDK warning TMPRL1104)", slow["TMPRL1104"])
    table.add("activations stopped as deadlocked (TMPRL1101)", slow["TMPRL1101"])
    table.add("peak RSS worker MiB", worker_rss or "-")
    table.add("peak RSS ingress MiB", ingress_rss or "-")
    table.notes.extend(cpu_note(phase, use, walls[phase]) for phase, use in cpu_use.items())
    table.data = {"events": len(events), "invoices": len(invoice_ids), "accepted_seconds": accepted_seconds,
                  "done_seconds": done_seconds, "statuses": dict(statuses), "duplicates": dup_invoices + dup_payments,
                  "amount_mismatches": len(mismatches), "crm_mismatches": len(crm_mismatches),
                  "worker_rss_mb": worker_rss, "ingress_rss_mb": ingress_rss,
                  "slow_workflow_tasks": slow["TMPRL1104"], "deadlocked_activations": slow["TMPRL1101"],
                  "cpu_seconds": cpu_use, "phase_seconds": walls}
    return table


def workflow_task_warnings(logs: Path) -> dict[str, int]:
    """The SDK's warnings of workflow tasks in trouble, counted in the workers' logs: TMPRL1104, a workflow task
    that took over 5 s on the worker (its run waited there, for the GIL or a slot); TMPRL1101, an activation that
    did not yield within 2 s of wall time, which fails the task so the run is replayed (under load, again)."""
    counts = {"TMPRL1104": 0, "TMPRL1101": 0}
    for log in sorted(logs.glob("worker*.log")):
        with log.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                for code in counts:
                    counts[code] += code in line
    return counts


def compare_invoices(billed: dict[str, BilledInvoice], receivables: list[ReceivableSeen]) -> list[str]:
    """Invoice by invoice: the billing total against the ERP invoice total, and each billing line against
    the ERP line in the same place (every line, not only those the billing system embeds)."""
    by_ref = {doc.reference: doc for doc in receivables if not doc.voided}
    found: list[str] = []
    for invoice_id, inv in sorted(billed.items()):
        doc = by_ref.get(invoice_id)
        if doc is None:
            found.append(f"{invoice_id}: not in the ERP")
            continue
        if doc.total != inv.total:
            found.append(f"{invoice_id}: billing total {inv.total} vs ERP {doc.total}")
        elif list(inv.lines) != list(doc.lines):
            found.append(f"{invoice_id}: billing lines {list(inv.lines)} vs ERP lines {list(doc.lines)}")
        elif sum(inv.lines) != inv.total:
            found.append(f"{invoice_id}: billing lines add up to {sum(inv.lines)}, its total is {inv.total}")
    return found


def _company_of(bench: BenchStack, result: QuoteToCashResult) -> str | None:
    """The CRM company among the deal's business keys (``<crm>:company:<id>``)."""
    system = bench.acts.crm.controls.spec.system.name
    for key in result.business_keys:
        with contextlib.suppress(ValueError):
            ref = ExternalRef.parse(key)
            if (ref.system, ref.object) == (system, "company"):
                return ref.id
    return None


async def _figures(bench: BenchStack, company: str, currency: str) -> tuple[str | None, str | None] | None:
    try:
        return await bench.acts.crm.company_figures(company, currency)
    except Exception:  # not there yet: the ledger has not written it
        return None


async def crm_billed_mismatches(bench: BenchStack, results: list[QuoteToCashResult],
                                billed: dict[str, BilledInvoice]) -> list[str]:
    """Each CRM company's billed and paid figures against its billing customer's finalized invoices."""
    found: list[str] = []
    for result in results:
        customer = result.engagements[0].billing_customer_id or ""
        company = _company_of(bench, result)
        mine = [inv for inv in billed.values() if inv.customer_id == customer]
        if company is None or not mine:
            continue
        crm = await _figures(bench, company, mine[0].currency) or (None, None)
        total = sum((inv.total for inv in mine), Decimal(0))
        paid = sum((inv.amount_paid for inv in mine), Decimal(0))
        if None in crm or (Decimal(str(crm[0])), Decimal(str(crm[1]))) != (total, paid):
            found.append(f"company {company}: CRM billed/paid {crm} vs billing {total}/{paid}")
    return found


async def crm_figures_right(bench: BenchStack, results: list[QuoteToCashResult],
                            expected_paid: dict[str, Decimal]) -> bool:
    """The CRM company's paid figure equals what its billing customer paid."""
    for result in results:
        engagement = result.engagements[0]
        company = _company_of(bench, result)
        if company is None:
            return False
        figures = await _figures(bench, company, "USD")
        if figures is None or figures[1] is None:
            return False
        if Decimal(figures[1]) != expected_paid.get(engagement.billing_customer_id or "", Decimal(0)):
            return False
    return True
