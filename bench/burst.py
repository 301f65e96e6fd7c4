"""Benchmark 3, month-end burst: Stripe ``invoice.finalized`` and ``invoice.paid`` events posted to the
ingress as fast as it accepts them (bounded concurrency, loopback only). Reports the time until every
invoice is in Xero (paid) and the CRM's paid figures are right, events/s accepted, peak RSS of the worker
and the ingress, and duplicates in the sandbox (must be 0). The final check compares, invoice by invoice,
the Stripe total, the Xero invoice total and each Xero line against Stripe's lines, and each company's CRM
billed and paid figures against Stripe (mismatches must be 0).

Runs the ingress (``starter.py serve``) and the ledger (``AccountLedgerWorkflow``) as the product wires them.

Invoices are made in the Stripe emulator (subscription cycles, then payments) with its webhooks switched
off, so the events reach the ingress only from this harness: read from the emulator's event log, signed
with the webhook secret, and posted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import sqlite3
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.common import Table, Timer, bench_settings, gather_limited, peak_rss_mb, running_stack
from bench.cost import registered
from runtime.launch import start_quote_to_cash
from sandbox.hubspot.seed import DealSpec
from workflows.models import LEDGER_WORKFLOW, QuoteToCashResult, Stage


def stripe_signature(secret: str, body: bytes) -> str:
    t = int(time.time())
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def _rows(db_path: Path, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        rows = db.execute("SELECT tenant, data FROM sandbox_records WHERE kind = ? ORDER BY seq", (kind,)).fetchall()
    return [(t, json.loads(d)) for t, d in rows]


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    invoices_wanted = args.events // 2
    # four years of monthly billing each (about 47 cycles), within the approval policy's amount
    customers = max(args.customers, -(-invoices_wanted // 40))
    table = Table("burst", f"3. Month-end burst: {args.events} Stripe invoice.finalized + invoice.paid events "
                           f"over {customers} customers, {args.concurrency} deliveries in flight",
                  ["figure", "value"])
    if not registered(LEDGER_WORKFLOW):
        table.add("skipped", "AccountLedgerWorkflow is not in worker.WORKFLOWS")
        return table
    settings = bench_settings(data_dir, contract_poll_interval_seconds=args.poll, activity_retry_max_seconds=2.0)
    async with running_stack(settings, with_ingress=True) as bench:
        await bench.control("ironclad", "autosign", {"delay_seconds": 0})
        # 1. customers: subscription deals through quote-to-cash
        deal_ids = [await bench.seed_deal(DealSpec(model="subscription", end_date="2030-12-31"))
                    for _ in range(customers)]
        handles = [await start_quote_to_cash(bench.client, settings, d, trigger="bench") for d in deal_ids]
        results: list[QuoteToCashResult] = await asyncio.gather(*(h.result() for h in handles))
        assert all(r.outcome is Stage.PROVISIONED for r in results), [r.reason for r in results]
        subs = [(r, next(i for i in r.engagements[0].billing_schedule_ids if i.startswith("sub_"))) for r in results]
        # 2. invoices, with Stripe's webhooks off: only this harness delivers them
        await bench.control("stripe", "webhooks", method="DELETE")
        invoice_ids: list[str] = []
        made = 0
        live = [sub_id for _, sub_id in subs]
        while made < invoices_wanted and live:
            for sub_id in list(live):
                if made >= invoices_wanted:
                    break
                cycled = await bench.control("stripe", f"subscriptions/{sub_id}/cycle")
                if not cycled.get("invoice"):
                    live.remove(sub_id)  # past its end date
                    continue
                invoice_id = cycled["invoice"]["id"]
                await bench.control("stripe", f"invoices/{invoice_id}/payments")
                invoice_ids.append(invoice_id)
                made += 1
        stripe_db = data_dir / "sandbox-stripe.sqlite"
        events = [doc for _, doc in _rows(stripe_db, "event")
                  if doc.get("type") in ("invoice.finalized", "invoice.paid")
                  and doc["data"]["object"]["id"] in set(invoice_ids)]
        expected_paid: Counter[str] = Counter()
        for _, doc in _rows(stripe_db, "invoice"):
            if doc["id"] in set(invoice_ids):
                expected_paid[doc["customer"]] += doc["amount_paid"]
        # 3. the burst
        url = f"http://{settings.ingress_host}:{settings.ingress_port}/webhooks/stripe"
        statuses: Counter[int] = Counter()

        async def post(event: dict[str, Any]) -> None:
            body = json.dumps(event, separators=(",", ":")).encode()
            for _attempt in range(20):
                response = await bench.http.post(url, content=body, headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": stripe_signature(settings.stripe_webhook_secret, body)})
                statuses[response.status_code] += 1
                if response.status_code < 300:
                    return
                await asyncio.sleep(0.5)

        timer = Timer()
        await gather_limited((post(e) for e in events), args.concurrency)
        accepted_seconds = timer.elapsed
        # 4. until every invoice is paid in Xero and the CRM's paid figures match
        xero_db = data_dir / "sandbox-xero.sqlite"
        done_seconds = None
        deadline = time.monotonic() + args.burst_timeout
        while time.monotonic() < deadline:
            xero = [doc for _, doc in _rows(xero_db, "invoice") if doc.get("Type") == "ACCREC"]
            paid = sum(1 for doc in xero if doc.get("Status") == "PAID")
            if paid >= len(invoice_ids) and await crm_figures_right(bench, results, expected_paid):
                done_seconds = timer.elapsed
                break
            await asyncio.sleep(1)
        worker_rss = peak_rss_mb(bench.pid("worker"))
        ingress_rss = peak_rss_mb(bench.pid("ingress"))
        xero = [doc for _, doc in _rows(xero_db, "invoice") if doc.get("Type") == "ACCREC"]
        refs = Counter(str(doc.get("Reference")) for doc in xero)
        payments = Counter(str((doc.get("Invoice") or {}).get("InvoiceID")) for _, doc in _rows(xero_db, "payment"))
        stripe_invoices = {doc["id"]: doc for _, doc in _rows(stripe_db, "invoice") if doc["id"] in set(invoice_ids)}
        mismatches = compare_invoices(stripe_invoices, xero)
        billed_invoices = {doc["id"]: doc for _, doc in _rows(stripe_db, "invoice")
                           if doc.get("status") in ("open", "paid")}
        crm_mismatches = await crm_billed_mismatches(bench, results, billed_invoices)
    dup_invoices = sum(n - 1 for n in refs.values() if n > 1)
    dup_payments = sum(n - 1 for n in payments.values() if n > 1)
    table.add("events posted", len(events))
    table.add("HTTP statuses", dict(statuses))
    table.add("accepted in (s)", accepted_seconds)
    table.add("events/s accepted", len(events) / accepted_seconds)
    table.add("all invoices paid in Xero + CRM right (s)", done_seconds if done_seconds else "NOT within timeout")
    table.add("end-to-end events/s", len(events) / done_seconds if done_seconds else "-")
    table.add("Xero invoices / expected", f"{len(xero)} / {len(invoice_ids)}")
    table.add("duplicate Xero invoices (by Reference)", dup_invoices)
    table.add("duplicate Xero payments (per invoice)", dup_payments)
    table.add("invoices whose Stripe total, Xero total or lines differ", len(mismatches))
    table.add("companies whose CRM billed/paid differ from Stripe", len(crm_mismatches))
    for line in (mismatches + crm_mismatches)[:10]:
        table.add("  mismatch", line)
    table.add("peak RSS worker MiB", worker_rss or "-")
    table.add("peak RSS ingress MiB", ingress_rss or "-")
    table.data = {"events": len(events), "invoices": len(invoice_ids), "accepted_seconds": accepted_seconds,
                  "done_seconds": done_seconds, "statuses": dict(statuses), "duplicates": dup_invoices + dup_payments,
                  "amount_mismatches": len(mismatches), "crm_mismatches": len(crm_mismatches),
                  "worker_rss_mb": worker_rss, "ingress_rss_mb": ingress_rss}
    return table


def _cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def compare_invoices(stripe_invoices: dict[str, dict[str, Any]], xero: list[dict[str, Any]]) -> list[str]:
    """Invoice by invoice: the Stripe total against the Xero invoice total, and each Stripe line against
    the Xero line in the same place (amounts in cents; every line, not only those Stripe embeds)."""
    by_ref = {str(doc.get("Reference")): doc for doc in xero if doc.get("Status") != "VOIDED"}
    found: list[str] = []
    for invoice_id, inv in sorted(stripe_invoices.items()):
        doc = by_ref.get(invoice_id)
        if doc is None:
            found.append(f"{invoice_id}: not in Xero")
            continue
        stripe_lines = [int(line["amount"]) for line in inv["lines"]["data"]]
        xero_lines = [_cents(line.get("LineAmount") or 0) for line in doc.get("LineItems") or []]
        if _cents(doc.get("Total") or 0) != int(inv["total"]):
            found.append(f"{invoice_id}: Stripe total {inv['total']} vs Xero {doc.get('Total')}")
        elif stripe_lines != xero_lines:
            found.append(f"{invoice_id}: Stripe lines {stripe_lines} vs Xero lines {xero_lines}")
        elif sum(stripe_lines) != int(inv["total"]):
            found.append(f"{invoice_id}: Stripe lines add up to {sum(stripe_lines)}, its total is {inv['total']}")
    return found


async def crm_billed_mismatches(bench: Any, results: list[QuoteToCashResult],
                                stripe_invoices: dict[str, dict[str, Any]]) -> list[str]:
    """Each HubSpot company's billed and paid figures against its Stripe customer's finalized invoices."""
    found: list[str] = []
    for result in results:
        customer = result.engagements[0].billing_customer_id or ""
        company = next((k.split(":")[-1] for k in result.business_keys if k.startswith("hubspot:company:")), None)
        mine = [inv for inv in stripe_invoices.values() if inv["customer"] == customer]
        if company is None or not mine:
            continue
        response = await bench.http.get(f"{bench.url('hubspot')}/_sandbox/objects/companies/{company}")
        props = response.json().get("properties", {}) if response.status_code == 200 else {}
        billed = sum(int(inv["total"]) for inv in mine)
        paid = sum(int(inv["amount_paid"]) for inv in mine)
        crm = (props.get("revops_billed_usd"), props.get("revops_paid_usd"))
        if None in crm or (_cents(crm[0]), _cents(crm[1])) != (billed, paid):
            found.append(f"company {company}: CRM billed/paid {crm} vs Stripe {billed / 100}/{paid / 100}")
    return found


async def crm_figures_right(bench: Any, results: list[QuoteToCashResult], expected_paid: Counter[str]) -> bool:
    """The HubSpot company's ``revops_paid_usd`` equals what its Stripe customer paid (cents -> units)."""
    for result in results:
        engagement = result.engagements[0]
        company = next((k.split(":")[-1] for k in result.business_keys if k.startswith("hubspot:company:")), None)
        if company is None:
            return False
        response = await bench.http.get(f"{bench.url('hubspot')}/_sandbox/objects/companies/{company}")
        if response.status_code != 200:
            return False
        paid = response.json()["properties"].get("revops_paid_usd")
        want = Decimal(expected_paid[engagement.billing_customer_id or ""]) / 100
        if paid is None or Decimal(paid) != want:
            return False
    return True
