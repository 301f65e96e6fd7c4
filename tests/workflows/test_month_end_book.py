"""Issue 24's done-when book, as a controller closes the month: four currencies (USD, EUR, JPY with no
decimals, KWD with three, billed by an entity configured for it), a customer billed from two entities, a
12-month subscription, partial payments, credit notes before and after payment, a void after a partial
payment, a write-off later paid, and a hand edit on each side (a figure typed in the CRM, an amount typed over
in the ERP). Every billing event goes through the real ledgers (production worker, real dev server, emulators
over HTTP); reconciliation finds exactly the two hand edits; their suggested repairs, applied as a person would
(the CLI's repost, the ERP's screens), leave zero findings; and billing, the ERP and the CRM agree per customer
with figures worked out by hand below."""

from __future__ import annotations

import shlex
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError

import starter
from bootstrap import for_cli
from canonical import (
    BillingInterval,
    BillingSchedule,
    BillingScheduleKind,
    CreditNote,
    Invoice,
    InvoiceStatus,
    LegalEntity,
    Money,
    ScheduledCharge,
)
from canonical.books import BooksMapping, EntityBooks, RevenueRule, TaxRule, TaxStatus
from canonical.keys import ledger_workflow_id
from canonical.reconciliation import Finding
from cli.ledger import start_reconciliation
from settings import DEFAULT_BOOKS, DEFAULT_ENTITIES, Settings
from tests.helpers.books import XeroByHand, fresh_sandboxes
from tests.helpers.ledger import (
    BillingAccount,
    billing_account,
    billing_account_in,
    canonical,
    company_properties,
    draft_invoices,
)
from tests.helpers.servers import SandboxHandle, hubspot_auth, stripe_auth, vendor_settings
from tests.helpers.waiting import eventually
from worker import Connectors, build_worker, open_connectors
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import LedgerStatus, LedgerStatusRequest, ReconciliationScope

JP01 = LegalEntity(code="JP01", name="RevOps KK", region="APAC", currency="JPY", tax_registration="JP000000001",
                   erp_tenant_id="4f7a0c1e-0004-4000-8000-000000000004", countries=["JP"])
KW01 = LegalEntity(code="KW01", name="RevOps Kuwait WLL", region="EMEA", currency="KWD",
                   tax_registration="KW000000001", erp_tenant_id="4f7a0c1e-0005-4000-8000-000000000005",
                   countries=["KW"])
#: their books as the controller sets them: the sandbox ERP's chart, each entity's bank in its own currency
EXTRA_BOOKS = [
    EntityBooks(entity=code, revenue=[RevenueRule(product="*", account="200")],
                tax=[TaxRule(status=TaxStatus.TAXABLE, tax_code="OUTPUT"),
                     TaxRule(status=TaxStatus.EXEMPT, tax_code="EXEMPTOUTPUT"),
                     TaxRule(status=TaxStatus.REVERSE_CHARGE, tax_code="NONE")],
                bank={currency: "090"}, bad_debt_account="485", accounts=["090", "200", "485"],
                tax_codes=["NONE", "EXEMPTOUTPUT", "OUTPUT"])
    for code, currency in (("JP01", "JPY"), ("KW01", "KWD"))
]
FIGURES = ("billed", "paid", "outstanding", "overdue", "credited")


@dataclass
class Book:
    """Fresh emulators, the production worker on them, and what was delivered to which ledger."""

    client: Client
    settings: Settings
    connectors: Connectors
    sandboxes: dict[str, SandboxHandle]
    delivered: set[str] = field(default_factory=set)
    applied: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def stripe(self) -> SandboxHandle:
        return self.sandboxes["stripe"]

    def stripe_post(self, path: str, data: dict[str, str] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{vendor_settings(self.settings, 'stripe').base_url}{path}", data=data or {},
                              headers=stripe_auth(self.settings), timeout=10)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def pay(self, invoice_id: str, minor: int | None = None) -> None:
        body = {"amount": minor} if minor is not None else {}
        httpx.post(f"{self.stripe.base_url}/_sandbox/invoices/{invoice_id}/payments", json=body,
                   timeout=10).raise_for_status()

    async def credit(self, invoice_id: str, amount: str, currency: str) -> CreditNote:
        return await self.connectors.billing.create_credit_note(
            CreditNote(billing_id="", invoice_billing_id=invoice_id, amount=Money.of(amount, currency),
                       reason="order_change"), idempotency_key=f"book-{uuid.uuid4()}")

    async def one_offs(self, account: BillingAccount, amounts: list[str], currency: str) -> list[str]:
        ids = await draft_invoices(self.connectors.billing, account, amounts, currency=currency)
        for invoice_id in ids:
            await self.connectors.billing.finalize_invoice(invoice_id)
        return ids

    async def deliver(self) -> None:
        """Every event billing emitted since the last delivery, in order, to its customer's ledger (signal-with-
        start, as the ingress does); then wait until each ledger has applied what it was sent."""
        from tests.helpers.ledger import signal  # the ingress's signal-with-start

        raw_events = self.stripe.store.list("event")
        for raw in sorted(raw_events, key=lambda e: (e["created"], e["id"])):
            if raw["id"] in self.delivered:
                continue
            self.delivered.add(raw["id"])
            customer = raw["data"]["object"].get("customer")
            events = canonical(self.settings, raw)
            if customer and events:
                await signal(self.client, self.settings, customer, events)
                self.applied[customer] += len(events)
        for customer, count in self.applied.items():
            await eventually(lambda c=customer: self.status(c),  # type: ignore[misc]
                             lambda s, n=count: s is not None and s.events_applied >= n and _idle(s),
                             what=f"ledger of {customer} applied {count} event(s)", timeout=60)

    async def status(self, customer_id: str) -> LedgerStatus:
        handle = self.client.get_workflow_handle(ledger_workflow_id("stripe", customer_id))
        status: LedgerStatus = await handle.query(AccountLedgerWorkflow.open_items,
                                                  LedgerStatusRequest(include_settled=True))
        return status


def _idle(status: LedgerStatus) -> bool:
    """Every invoice the ledger holds is in the ERP and owes it nothing."""
    return all(i.erp_invoice_id and not i.erp_pending for i in [*status.open_items, *status.settled_items])


@pytest_asyncio.fixture
async def book(client: Client, tmp_path: Path) -> AsyncIterator[Book]:
    books = BooksMapping(entities=[*DEFAULT_BOOKS.model_copy(deep=True).entities, *EXTRA_BOOKS])
    with fresh_sandboxes(tmp_path, legal_entities=[*DEFAULT_ENTITIES, JP01, KW01],
                         books_mapping=books) as (settings, sandboxes):
        async with open_connectors(settings) as connectors, build_worker(client, settings, connectors):
            made = Book(client=client, settings=settings, connectors=connectors, sandboxes=sandboxes)
            try:
                yield made
            finally:
                await _end_workflows(made)


async def _end_workflows(book: Book) -> None:
    """End the book's ledgers and figure owners: fresh emulators number customers and companies from one again,
    so another test's ledger would otherwise meet this one's, still running on a queue nobody serves."""
    ids = {ledger_workflow_id("stripe", c) for c in book.applied}
    async for execution in book.client.list_workflows(f'TaskQueue="{book.settings.task_queue}"'):
        ids.add(execution.id)
    for workflow_id in sorted(ids):
        try:
            await book.client.get_workflow_handle(workflow_id).terminate(reason="the month-end book test is over")
        except RPCError:
            pass  # already ended


def crm_figures(book: Book, company_id: str) -> dict[str, dict[str, Decimal]]:
    """The CRM company's figures per currency, as HubSpot holds them."""
    props = company_properties(book.sandboxes["hubspot"], company_id)
    found: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for name, value in props.items():
        for fig in FIGURES:
            prefix = f"revops_{fig}_"
            if name.startswith(prefix) and value not in (None, ""):
                found[name[len(prefix):].upper()][fig] = Decimal(str(value))
    return dict(found)


def _report(findings: list[Finding]) -> list[str]:
    return [f"{f.key}: {f.detail} | repair: {f.repair}" for f in findings]


async def test_month_end_book_reconciles_to_zero_after_the_suggested_repairs(book: Book) -> None:
    b = book
    billing, hubspot = b.connectors.billing, b.sandboxes["hubspot"]

    # -- a split customer: the same company billed in USD from US01 and from EU01 --------------------------
    split_us = await billing_account(billing, hubspot, entity="US01")
    split_eu = await billing_account_in(billing, split_us, "EU01")
    a1, a2 = await b.one_offs(split_us, ["1000.00", "500.00"], "USD")
    await b.credit(a1, "100.00", "USD")  # credit note before payment
    b.pay(a1)  # the remaining 900.00
    b.pay(a2)
    await b.credit(a2, "50.00", "USD")  # credit note after payment
    a3, a4 = await b.one_offs(split_eu, ["3333.33", "200.00"], "USD")
    b.pay(a3, 33333)  # part payment 333.33
    b.pay(a4, 5000)  # part payment 50.00, then billing voids the invoice
    b.stripe_post(f"/v1/invoices/{a4}/void")

    # -- EUR: an invoice paid, one open whose amount a bookkeeper types over in the ERP ----------------------
    berlin = await billing_account(billing, hubspot, entity="EU01")
    e1, e2 = await b.one_offs(berlin, ["800.00", "450.00"], "EUR")
    b.pay(e1)

    # -- JPY: a 12-month subscription at 120,000 a month; two periods billed, the second part paid ----------
    tokyo = await billing_account(billing, hubspot, entity="JP01")
    today = datetime.now(UTC).date()
    sub = await billing.create_schedule(BillingSchedule(
        kind=BillingScheduleKind.SUBSCRIPTION, customer_id=tokyo.customer_id, currency="JPY", start_date=today,
        end_date=_months_later(today, 12), metadata={"revops_legal_entity": "JP01", "revops_deal_id": tokyo.deal_id},
        charges=[ScheduledCharge(product_code="PLAT", description="Platform", unit_amount=Money.of("120000", "JPY"),
                                 interval=BillingInterval.MONTH)]), idempotency_key=f"book-{uuid.uuid4()}")
    assert sub.billing_id
    async with httpx.AsyncClient(timeout=10) as http:  # the next month's period
        (await http.post(f"{b.stripe.base_url}/_sandbox/subscriptions/{sub.billing_id}/cycle")).raise_for_status()
    t1, t2 = sorted([i.billing_id async for i in billing.list_invoices(customer_id=tokyo.customer_id)])
    b.pay(t1)
    b.pay(t2, 50000)  # part payment 50,000 yen

    # -- KWD (three decimals): part paid, written off, the rest paid later ---------------------------------
    kuwait = await billing_account(billing, hubspot, entity="KW01")
    [k1] = await b.one_offs(kuwait, ["1250.500"], "KWD")
    b.pay(k1, 500250)  # 500.250
    await b.deliver()
    b.stripe_post(f"/v1/invoices/{k1}/mark_uncollectible")
    await b.deliver()
    b.pay(k1)  # the customer pays the 750.250 written off
    await b.deliver()

    # -- hand edits on both sides ------------------------------------------------------------------------
    by_hand = XeroByHand(b.settings)
    eu01 = b.settings.entity("EU01").erp_tenant_id
    [e2_held] = [i for i in (await b.status(berlin.customer_id)).open_items if i.invoice_id == e2]
    assert e2_held.erp_invoice_id
    typed = by_hand.payment(eu01, e2_held.erp_invoice_id, amount="100.00", reference="cash typed in by hand",
                            on=str(today))  # the ERP: a payment billing never received
    await eventually(lambda: _async(crm_figures(b, berlin.company_id)), lambda f: "EUR" in f, what="EUR figures")
    async with httpx.AsyncClient(timeout=10) as http:  # the CRM: a figure typed over
        (await http.patch(f"{vendor_settings(b.settings, 'hubspot').base_url}/crm/v3/objects/companies/"
                          f"{berlin.company_id}", json={"properties": {"revops_paid_eur": "99.00"}},
                          headers=hubspot_auth(b.settings))).raise_for_status()

    # -- month-end: reconciliation finds the two hand edits, and nothing else ----------------------------
    first = await start_reconciliation(b.client, b.settings, ReconciliationScope())
    truth = {f"payment_missing_in_billing:EU01:{e2}", f"crm_figures_mismatch:EU01:hubspot:company:{berlin.company_id}"}
    assert {f.key for f in first.findings} == truth, _report(first.findings)

    # -- the suggested repairs, as a person applies them ---------------------------------------------------
    by_key = {f.key: f for f in first.findings}
    payment_gap = by_key[f"payment_missing_in_billing:EU01:{e2}"]
    assert e2_held.erp_invoice_id in payment_gap.repair and "delete the ones billing lacks" in payment_gap.repair
    by_hand.delete_payment(eu01, typed)  # in the ERP's screens
    figures_gap = by_key[f"crm_figures_mismatch:EU01:hubspot:company:{berlin.company_id}"]
    command = shlex.split(figures_gap.repair)
    assert command[:2] == ["starter.py", "repost"], figures_gap.repair
    parts = for_cli(b.settings, client=b.client)
    try:
        assert await starter.run(command[1:], parts=parts) == 0
    finally:
        await parts.aclose()
    await eventually(lambda: _async(crm_figures(b, berlin.company_id)),
                     lambda f: f.get("EUR", {}).get("paid") == Decimal("800.00"), what="CRM figure repaired")

    second = await start_reconciliation(b.client, b.settings, ReconciliationScope())
    assert second.findings == [] and second.still_open == 0, _report(second.findings)

    # -- billing = ERP = CRM per customer, to the minor unit, against the book worked out by hand -------------
    book_by_hand = {
        # a1 1000.00 (credited 100.00 before payment, 900.00 paid), a2 500.00 (paid, credited 50.00 after),
        # a3 3333.33 (333.33 paid), a4 200.00 (50.00 paid, then voided: billed no more, the cash stays)
        "split": ([split_us, split_eu], "USD", {"billed": "4833.33", "paid": "1783.33", "outstanding": "3000.00",
                                                "overdue": "0.00", "credited": "150.00"}),
        # e1 800.00 paid; e2 450.00 open (the typed payment deleted)
        "berlin": ([berlin], "EUR", {"billed": "1250.00", "paid": "800.00", "outstanding": "450.00",
                                     "overdue": "0.00", "credited": "0.00"}),
        # two months of 120,000 yen; the first paid, 50,000 of the second
        "tokyo": ([tokyo], "JPY", {"billed": "240000", "paid": "170000", "outstanding": "70000", "overdue": "0",
                                   "credited": "0"}),
        # 1250.500: 500.250 paid, written off, the 750.250 paid after the write-off (which is reversed)
        "kuwait": ([kuwait], "KWD", {"billed": "1250.500", "paid": "1250.500", "outstanding": "0.000",
                                     "overdue": "0.000", "credited": "0.000"}),
    }
    for name, (accounts, currency, want) in book_by_hand.items():
        expected = {k: Decimal(v) for k, v in want.items()}
        in_billing = await billing_figures(b, [a.customer_id for a in accounts], currency)
        assert in_billing == {k: expected[k] for k in in_billing}, (name, "billing", in_billing)
        in_erp = await erp_figures(b, accounts, currency)
        assert in_erp == {k: expected[k] for k in in_erp}, (name, "ERP", in_erp)
        props = company_properties(hubspot, accounts[0].company_id)
        in_crm = {k: Decimal(str(props[f"revops_{k}_{currency.lower()}"])) for k in FIGURES}
        assert in_crm == expected, (name, "CRM", in_crm)
        # written in the currency's minor unit (no decimals for JPY, three for KWD)
        assert [str(props[f"revops_{k}_{currency.lower()}"]) for k in FIGURES] == list(want.values()), (name, props)


async def billing_figures(b: Book, customer_ids: list[str], currency: str) -> dict[str, Decimal]:
    """Billed (all but voids), paid, outstanding and credited as billing holds them."""
    invoices = [i for c in customer_ids async for i in _invoices(b, c) if i.currency == currency]
    ids = {i.billing_id for i in invoices}
    notes: list[CreditNote] = []
    cursor: str | None = None
    while True:
        page, cursor = await b.connectors.billing.credit_notes_page(cursor)  # type: ignore[attr-defined]
        notes += [c.credit_note for c in page if c.credit_note and c.credit_note.invoice_billing_id in ids]
        if cursor is None:
            break
    live = [i for i in invoices if i.status is not InvoiceStatus.VOID]
    return {"billed": sum((i.total.amount for i in live), Decimal(0)),
            "paid": sum((i.amount_paid.amount for i in invoices), Decimal(0)),
            "outstanding": sum((i.amount_due.amount for i in invoices if i.status is InvoiceStatus.OPEN), Decimal(0)),
            "credited": sum((n.amount.amount for n in notes), Decimal(0))}


async def _invoices(b: Book, customer_id: str) -> AsyncIterator[Invoice]:
    async for invoice in b.connectors.billing.list_invoices(customer_id=customer_id):
        yield invoice


async def erp_figures(b: Book, accounts: list[BillingAccount], currency: str) -> dict[str, Decimal]:
    """Billed (the invoices billing still bills), paid and outstanding as the ERP holds them, over the
    customer's entities."""
    figures = dict.fromkeys(("billed", "paid", "outstanding"), Decimal(0))
    for account in accounts:
        billing = {i.billing_id: i async for i in _invoices(b, account.customer_id) if i.currency == currency}
        docs = [d for d in await b.connectors.erp.list_invoices(b.settings.entity(account.entity).erp_tenant_id)
                if d.billing_id in billing and d.metadata.get("erp_status") not in ("VOIDED", "DELETED")]
        assert sorted(d.billing_id for d in docs) == sorted(
            i for i, inv in billing.items() if inv.status is not InvoiceStatus.VOID or inv.amount_paid.amount), (
            "one live ERP invoice per billing invoice", account.entity)
        for doc in docs:
            assert doc.currency == currency
            if billing[doc.billing_id].status is not InvoiceStatus.VOID:
                figures["billed"] += doc.total.amount
            figures["paid"] += doc.amount_paid.amount
            figures["outstanding"] += doc.amount_due.amount
    return figures


async def _async(value: Any) -> Any:
    return value


def _months_later(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, min(day.day, 28))
