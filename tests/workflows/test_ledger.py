"""Invoice feedback end to end: Stripe emulator events -> AccountLedgerWorkflow on the real dev server ->
Xero receivables and HubSpot figures in the emulators."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import stripe
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from activities.notify import NotifyActivities
from bootstrap import for_cli
from canonical import CreditNote, Invoice, InvoicePaid, Money
from canonical.books import RevenueRule
from canonical.keys import company_figures_workflow_id
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.deals import deal_properties
from tests.helpers.histories import save_history
from tests.helpers.ledger import (
    BillingAccount,
    billing_account_in,
    canonical,
    company_properties,
    draft_invoices,
    fail_payment,
    finalize,
    pay,
    signal,
    stripe_events,
)
from tests.helpers.ledger_pairs import PAIRS, RECORDED_PAIR, PairBooks, pair_sandboxes, pair_settings
from tests.helpers.servers import SandboxHandle, hubspot_auth, stripe_auth, vendor_settings
from tests.helpers.upserts import audit_upserts
from tests.helpers.waiting import eventually
from worker import Connectors, open_connectors
from workflows.company_figures import CompanyFiguresWorkflow
from workflows.ledger import LANES, AccountLedgerWorkflow
from workflows.models import CompanyFiguresStatus, LedgerStatus, LedgerStatusRequest, RepostRequest

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
US01_TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


@dataclass
class LedgerRig:
    client: Client
    settings: Settings
    connectors: Connectors
    sandboxes: dict[str, SandboxHandle]
    books: PairBooks

    @property
    def stripe(self) -> SandboxHandle:
        return self.sandboxes["stripe"]

    @property
    def hubspot(self) -> SandboxHandle:
        return self.sandboxes["hubspot"]

    async def account(self) -> BillingAccount:
        """A CRM company and deal (in the pair's CRM) billed from US01."""
        return await self.books.account(self.connectors.billing)

    async def invoices(self, account: BillingAccount, amounts: list[str], **kwargs: Any) -> list[str]:
        return await draft_invoices(self.connectors.billing, account, amounts, **kwargs)

    async def finalize(self, account: BillingAccount, invoice_id: str) -> WorkflowHandle:
        raw = await finalize(self.connectors.billing, self.stripe, invoice_id)
        return await signal(self.client, self.settings, account.customer_id, canonical(self.settings, raw[-1]))

    async def pay(self, account: BillingAccount, invoice_id: str, minor: int | None = None) -> WorkflowHandle:
        events = [e for raw in pay(self.stripe, invoice_id, minor) for e in canonical(self.settings, raw)]
        return await signal(self.client, self.settings, account.customer_id, events)

    async def erp_invoice(self, invoice_id: str) -> Invoice | None:
        """The invoice as US01's ERP (whichever it is) holds it, read through the ERP port."""
        found = [i for i in await self.connectors.erp.list_invoices(US01_TENANT) if i.billing_id == invoice_id]
        return found[0] if found else None

    def erp_count(self, kind: str, reference: str) -> int:
        """How many invoices or credit notes US01's ERP holds for billing's ``reference``."""
        if kind == "credit_note":
            return self.books.credit_notes(reference)
        return len(self.books.receivables(reference))

    async def save_history(self, handle: WorkflowHandle, name: str) -> None:
        """Saved (when recording) from the pair the committed histories were recorded on only."""
        if self.books.recorded:
            await save_history(handle, name)


@asynccontextmanager
async def ledger_rig(client: Client, settings: Settings, sandboxes: dict[str, SandboxHandle],
                     pair: str = RECORDED_PAIR) -> AsyncIterator[LedgerRig]:
    """The ledger's worker (workflow and activities with the real connectors; notices go to no channel) on
    the test's task queue, with the pair's CRM and US01 ERP chosen by settings."""
    settings = pair_settings(settings, pair)
    async with open_connectors(settings) as connectors, httpx.AsyncClient(timeout=10) as http:
        activities = role_activities(settings, crm=connectors.crm, clm=connectors.clm, billing=connectors.billing,
                                     erp=connectors.erp)
        async with Worker(client, task_queue=settings.task_queue,
                          workflows=[AccountLedgerWorkflow, CompanyFiguresWorkflow],
                          activities=[*activities, *NotifyActivities(notifications=None).all()]):
            yield LedgerRig(client=client, settings=settings, connectors=connectors, sandboxes=sandboxes,
                            books=PairBooks.of(pair, settings, sandboxes, http))


@pytest_asyncio.fixture
async def rig(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
              ) -> AsyncIterator[LedgerRig]:
    async with ledger_rig(client, flow_settings, sandboxes) as value:
        yield value


@pytest_asyncio.fixture(params=list(PAIRS))
async def pair_rig(request: pytest.FixtureRequest, client: Client, flow_settings: Settings,
                   sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[LedgerRig]:
    """The ledger's worker on each CRM/ERP pair (``tests/helpers/ledger_pairs.py``): HubSpot or Salesforce for the CRM,
    Xero or NetSuite for US01's books."""
    pair = str(request.param)
    async with ledger_rig(client, flow_settings, pair_sandboxes(request, pair, sandboxes), pair) as value:
        yield value


async def until(handle: WorkflowHandle, check: Any, what: str, timeout: float = 30) -> LedgerStatus:
    return await eventually(lambda: _settled_status(handle), check, timeout=timeout, what=what)


async def _settled_status(handle: WorkflowHandle) -> LedgerStatus:
    return await handle.query(AccountLedgerWorkflow.open_items, LedgerStatusRequest(include_settled=True))


def figure(props: dict[str, Any], name: str, currency: str = "usd") -> Decimal:
    value = props.get(f"revops_{name}_{currency}")
    return Decimal(str(value)) if value not in (None, "") else Decimal(-1)


# ---------------------------------------------------------------------------------------------------
async def test_ledger_posts_finalized_invoice_to_the_erp_and_writes_crm_figures(pair_rig: LedgerRig) -> None:
    rig = pair_rig
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["1250.00"])

    handle = await rig.finalize(account, invoice_id)

    status = await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "invoice posted")
    [item] = status.open_items
    assert item.invoice_id == invoice_id and item.legal_entity == "US01" and item.deal_id == account.deal_id
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.total == Money.of("1250.00", "USD") and erp.currency == "USD"
    assert erp.metadata["erp_invoice_id"] == item.erp_invoice_id and erp.status.value == "open"
    [seen] = rig.books.receivables(invoice_id)
    assert (seen.tenant, seen.total, seen.paid, seen.voided) == (US01_TENANT, Decimal("1250.00"), False, False)
    contact = await rig.connectors.erp.find_customer(US01_TENANT, rig.books.contact_reference(account))
    assert contact is not None and erp.customer_id == contact.erp_contact_id
    figures = await eventually(lambda: rig.books.figures(account.company_id), lambda f: f[0] is not None,
                               what="company figures")
    assert figures == (Decimal("1250.00"), Decimal(0))
    if rig.books.crm_name == "hubspot":  # the deal's figures (the acts read the company's only)
        deal = await eventually(lambda: _deal(rig, account.deal_id), lambda p: "revops_billed_usd" in p,
                                what="deal figures")
        assert Decimal(deal["revops_billed_usd"]) == Decimal("1250.00")
        company = await _props(rig, account.company_id)
        assert figure(company, "outstanding") == Decimal("1250.00") and figure(company, "overdue") == 0
    await rig.save_history(handle, "ledger_finalized")


async def _props(rig: LedgerRig, company_id: str) -> dict[str, Any]:
    return company_properties(rig.hubspot, company_id)


async def _deal(rig: LedgerRig, deal_id: str) -> dict[str, Any]:
    return deal_properties(rig.hubspot, deal_id)


async def test_ledger_partial_payment_then_the_rest_settles_the_invoice(pair_rig: LedgerRig) -> None:
    rig = pair_rig
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["1000.00"])
    handle = await rig.finalize(account, invoice_id)

    await rig.pay(account, invoice_id, 40000)
    status = await until(handle, lambda s: s.open_items and s.open_items[0].paid == Decimal("400.00"),
                         "partial payment applied")
    assert status.open_items[0].outstanding == Decimal("600.00")
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.amount_paid.amount == Decimal("400.00") and erp.status.value == "open"
    erp_id = status.open_items[0].erp_invoice_id
    assert rig.books.payments(erp_id) == 1

    await rig.pay(account, invoice_id)
    status = await until(handle, lambda s: not s.open_items, "invoice settled")
    [settled] = status.settled_items
    assert settled.paid == Decimal("1000.00") and len(settled.payment_ids) == 2
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.status.value == "paid" and erp.amount_due.is_zero()
    assert rig.books.payments(erp_id) == 2 and [r.paid for r in rig.books.receivables(invoice_id)] == [True]
    figures = await eventually(lambda: rig.books.figures(account.company_id),
                               lambda f: f[1] == Decimal("1000.00"), what="paid figure")
    assert figures == (Decimal("1000.00"), Decimal("1000.00"))
    if rig.books.crm_name == "hubspot":
        company = await _props(rig, account.company_id)
        assert figure(company, "outstanding") == 0 and company.get("revops_last_payment_date")
    await rig.save_history(handle, "ledger_partial_payments")


async def test_ledger_failed_payment_then_success(rig: LedgerRig) -> None:
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["300.00"])
    handle = await rig.finalize(account, invoice_id)
    failed = [e for raw in fail_payment(rig.stripe, invoice_id) for e in canonical(rig.settings, raw)]
    await signal(rig.client, rig.settings, account.customer_id, failed)

    status = await until(handle, lambda s: s.exception_kind == "payment_failed", "payment failure visible")
    assert status.open_items[0].payment_failures == 1 and status.open_items[0].outstanding == Decimal("300.00")

    await rig.pay(account, invoice_id)
    status = await until(handle, lambda s: not s.open_items, "paid after the failure")
    assert status.exception_kind == ""
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.status.value == "paid"


async def test_ledger_credit_note_after_payment(pair_rig: LedgerRig) -> None:
    rig = pair_rig
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["800.00"])
    handle = await rig.finalize(account, invoice_id)
    await rig.pay(account, invoice_id)
    await until(handle, lambda s: not s.open_items, "paid")

    note = await rig.connectors.billing.create_credit_note(
        CreditNote(billing_id="", invoice_billing_id=invoice_id, amount=Money.of("200.00", "USD"),
                   reason="order_change"), idempotency_key=f"test-{uuid.uuid4()}")
    [raw] = stripe_events(rig.stripe, note.billing_id, "credit_note.created")
    await signal(rig.client, rig.settings, account.customer_id, canonical(rig.settings, raw))

    status = await until(handle, lambda s: s.settled_items and s.settled_items[0].credited == Decimal("200.00"),
                         "credit note applied")
    assert status.settled_items[0].credit_note_ids == [note.billing_id]
    await eventually(lambda: asyncio.sleep(0, rig.erp_count("credit_note", note.billing_id)), lambda n: n == 1,
                     what="the credit note in the ERP")
    assert rig.erp_count("invoice", invoice_id) == 1
    figures = await eventually(lambda: rig.books.figures(account.company_id),
                               lambda f: f[1] == Decimal("800.00"), what="paid figure")
    assert figures == (Decimal("800.00"), Decimal("800.00"))
    if rig.books.crm_name == "hubspot":
        company = await eventually(lambda: _props(rig, account.company_id),
                                   lambda p: figure(p, "credited") == Decimal("200.00"), what="credited figure")
        assert figure(company, "outstanding") == 0
    await rig.save_history(handle, "ledger_credit_note")


async def test_ledger_out_of_order_and_duplicate_events_post_once(rig: LedgerRig) -> None:
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["450.00"])
    await finalize(rig.connectors.billing, rig.stripe, invoice_id)
    finalized = canonical(rig.settings, stripe_events(rig.stripe, invoice_id, "invoice.finalized")[-1])
    paid = [e for raw in pay(rig.stripe, invoice_id) for e in canonical(rig.settings, raw)]
    assert [type(e) for e in paid] == [InvoicePaid, InvoicePaid]  # payment_succeeded and paid

    # paid arrives before finalized, and every event twice
    handle = await signal(rig.client, rig.settings, account.customer_id, [*paid, *paid, *finalized, *finalized, *paid])

    status = await until(handle, lambda s: s.events_applied >= 3 and not s.open_items, "applied")
    [item] = status.settled_items
    assert item.paid == Decimal("450.00") and len(item.payment_ids) == 1 and item.number
    assert status.events_applied == 3, "duplicates are dropped before they are applied"
    assert rig.erp_count("invoice", invoice_id) == 1
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.amount_paid.amount == Decimal("450.00") and erp.status.value == "paid"
    company = await eventually(lambda: _props(rig, account.company_id),
                               lambda p: figure(p, "paid") == Decimal("450.00"), what="figures")
    assert figure(company, "billed") == Decimal("450.00") and figure(company, "outstanding") == 0
    await rig.save_history(handle, "ledger_out_of_order")


async def test_ledger_writes_several_invoices_side_by_side_and_each_invoice_in_order(rig: LedgerRig) -> None:
    """A month-end batch of six invoices finalized and paid, signalled at once: the ledger posts different
    invoices side by side (never more than ``LANES`` calls in flight), each invoice's payment only after its
    posting, each document once, and the search attributes still once per task (audited in every test)."""
    account = await rig.account()
    invoice_ids = await rig.invoices(account, [f"{100 + i}.00" for i in range(6)])
    events = []
    for invoice_id in invoice_ids:
        raw = await finalize(rig.connectors.billing, rig.stripe, invoice_id)
        events += [*canonical(rig.settings, raw[-1]),
                   *(e for paid in pay(rig.stripe, invoice_id) for e in canonical(rig.settings, paid))]

    handle = await signal(rig.client, rig.settings, account.customer_id, events)

    status = await until(handle, lambda s: len(s.settled_items) == 6 and not s.open_items, "all six paid",
                         timeout=60)
    calls: dict[int, tuple[str, str]] = {}  # scheduled event ID -> (activity, summary)
    in_flight, most, order = set(), 0, []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            if name in ("post_erp_invoice", "record_erp_payment"):
                [summary] = await rig.client.data_converter.decode([event.user_metadata.summary], [str])
                calls[event.event_id] = (name, summary)
                in_flight.add(event.event_id)
                most = max(most, len(in_flight))
        elif event.HasField("activity_task_completed_event_attributes"):
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in in_flight:
                in_flight.discard(scheduled)
                order.append(calls[scheduled])
    assert 2 <= most <= LANES, f"{most} ERP calls in flight at most"
    assert sorted(i.invoice_id for i in status.settled_items) == sorted(invoice_ids)
    for item in status.settled_items:
        title = f"invoice {item.number or item.invoice_id}"  # how the step summaries name it
        done = [activity for activity, summary in order if f"{title} to " in summary or f" on {title} in " in summary]
        assert done == ["post_erp_invoice", "record_erp_payment"], f"{item.invoice_id}: {done}"
        [seen] = rig.books.receivables(item.invoice_id)
        assert seen.paid and item.erp_invoice_id and rig.books.payments(item.erp_invoice_id) == 1


async def test_ledger_month_of_invoices_across_continue_as_new(
        client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    settings = flow_settings.model_copy(update={"ledger_continue_after_events": 7})
    async with ledger_rig(client, settings, sandboxes) as rig:
        account = await rig.account()
        amounts = [f"{100 + day}.00" for day in range(30)]
        invoice_ids = await rig.invoices(account, amounts)
        handle = None
        for index, invoice_id in enumerate(invoice_ids):
            handle = await rig.finalize(account, invoice_id)
            if index % 3 != 2:  # two in three get paid
                handle = await rig.pay(account, invoice_id)
        assert handle is not None
        paid = sum(Decimal(a) for i, a in enumerate(amounts) if i % 3 != 2)
        status = await until(handle, lambda s: s.events_applied >= 70, "all events applied", timeout=120)
        assert status.runs >= 7, f"continued as new every 7 events, got {status.runs} runs"
        assert len(status.open_items) == 10
        [usd] = status.balances
        assert Decimal(usd.billed) == sum(Decimal(a) for a in amounts) and Decimal(usd.paid) == paid
        assert Decimal(usd.outstanding) == sum(Decimal(a) for i, a in enumerate(amounts) if i % 3 == 2)
        assert sum(rig.erp_count("invoice", i) for i in invoice_ids) == 30
        # every run posted with the key of the first: <workflowId>:<invoiceId>:<step>, whatever the run
        keys = rig.sandboxes["xero"].store
        assert all(keys.idempotency_get(f"xero:{US01_TENANT}", f"{handle.id}:{i}:post") is not None
                   for i in invoice_ids), "an invoice posted with another idempotency key"
        company = await eventually(lambda: _props(rig, account.company_id),
                                   lambda p: figure(p, "paid") == paid, what="figures", timeout=60)
        assert figure(company, "billed") == Decimal(usd.billed)
        described = await handle.describe()
        assert described.run_id != handle.first_execution_run_id


# -- due dates on the time-skipping server ---------------------------------------------------------
async def test_ledger_overdue_then_paid(time_skipping_env: WorkflowEnvironment, flow_settings: Settings,
                                        sandboxes: dict[str, SandboxHandle]) -> None:
    async with ledger_rig(time_skipping_env.client, flow_settings, sandboxes) as rig:
        account = await rig.account()
        [invoice_id] = await rig.invoices(account, ["700.00"], days_until_due=14)
        handle = await rig.finalize(account, invoice_id)
        await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")

        await time_skipping_env.sleep(timedelta(days=16))

        status = await until(handle, lambda s: s.exception_kind == "invoice_overdue", "overdue")
        assert status.open_items[0].overdue
        company = await eventually(lambda: _props(rig, account.company_id),
                                   lambda p: figure(p, "overdue") == Decimal("700.00"), what="overdue figure")
        assert figure(company, "outstanding") == Decimal("700.00")

        await rig.pay(account, invoice_id)
        status = await until(handle, lambda s: not s.open_items, "paid")
        assert status.exception_kind == "" and not status.settled_items[0].overdue
        company = await eventually(lambda: _props(rig, account.company_id),
                                   lambda p: figure(p, "overdue") == 0, what="overdue cleared")
        assert figure(company, "paid") == Decimal("700.00")
        await save_history(handle, "ledger_overdue")


async def test_ledger_posts_every_line_of_a_long_invoice_to_xero(rig: LedgerRig) -> None:
    """Stripe embeds ten lines (``has_more``); the ERP invoice still gets all 25, and the same total."""
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["1.00"])
    async with httpx.AsyncClient(base_url=rig.stripe.base_url, timeout=10,
                                 headers=stripe_auth(rig.settings)) as http:
        for i in range(24):
            response = await http.post("/v1/invoiceitems", data={
                "customer": account.customer_id, "invoice": invoice_id, "currency": "usd",
                "unit_amount": str(100 + i), "quantity": "1", "description": f"extra {i}"})
            response.raise_for_status()

    handle = await rig.finalize(account, invoice_id)
    [event] = stripe_events(rig.stripe, invoice_id, "invoice.finalized")
    assert len(event["data"]["object"]["lines"]["data"]) == 10 and event["data"]["object"]["lines"]["has_more"]

    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "invoice posted")
    erp = await rig.erp_invoice(invoice_id)
    expected = Decimal("1.00") + sum(Decimal(100 + i) / 100 for i in range(24))
    assert erp is not None and len(erp.lines) == 25
    assert erp.total == Money.of(expected, "USD")
    assert sum((line.amount.amount for line in erp.lines), Decimal(0)) == expected


async def test_ledger_refused_payment_stays_pending_across_continue_as_new_until_reposted(
        client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Xero refuses a payment: the ledger keeps it pending and visible (erp_rejected), carries it across
    continue-as-new, and posts it on the operator's ``repost`` once Xero takes it again."""
    settings = flow_settings.model_copy(update={"ledger_continue_after_events": 2})
    async with ledger_rig(client, settings, sandboxes) as rig:
        account = await rig.account()
        [invoice_id, other_id] = await rig.invoices(account, ["800.00", "50.00"])
        handle = await rig.finalize(account, invoice_id)
        await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")

        with rig.sandboxes["xero"].faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/Payments",
                                          methods=["PUT"]):
            await rig.pay(account, invoice_id, 30000)
            status = await until(handle, lambda s: s.exception_kind == "erp_rejected", "refusal visible")
            [item] = [i for i in status.open_items if i.invoice_id == invoice_id]
            assert [w.kind.value for w in item.erp_pending] == ["payment"]
            assert item.erp_pending[0].payment is not None
            assert item.erp_pending[0].payment.amount == Money.of("300.00", "USD")
            # more events: the ledger continues as new, and the refused payment goes with it
            await rig.finalize(account, other_id)
            status = await until(handle, lambda s: s.runs >= 2 and len(s.open_items) == 2, "continued as new")
            assert status.exception_kind == "erp_rejected"
            [item] = [i for i in status.open_items if i.invoice_id == invoice_id]
            assert [w.kind.value for w in item.erp_pending] == ["payment"]
            described = await handle.describe()
            assert described.search_attributes.get("ExceptionKind") == ["erp_rejected"]
            erp = await rig.erp_invoice(invoice_id)
            assert erp is not None and erp.amount_paid.is_zero(), "Xero refused it: nothing recorded yet"

        # the operator's repair, as finance runs it (it re-reads billing: the deployment's settings)
        parts = for_cli(rig.settings, client=client)
        assert await starter.run(["repost", handle.id, "--invoice", invoice_id], parts=parts) == 0
        assert "posted 1 pending ERP write(s)" in capsys.readouterr().out
        erp = await rig.erp_invoice(invoice_id)
        assert erp is not None and erp.amount_paid.amount == Decimal("300.00")
        status = await until(handle, lambda s: s.exception_kind == "", "healthy again")
        assert all(not i.erp_pending for i in status.open_items)
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest(invoice_id="in_unknown"))
        again = await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest())
        assert again.posted == 0 and again.still_pending == []
        assert await starter.run(["repost", handle.id, "--invoice", "in_unknown"], parts=parts) == 1
        assert "not in this ledger" in capsys.readouterr().err
        await parts.aclose()


async def test_ledger_reposts_a_refused_payment_by_itself_once_xero_takes_it(
        time_skipping_env: WorkflowEnvironment, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    async with ledger_rig(time_skipping_env.client, flow_settings, sandboxes) as rig:
        account = await rig.account()
        [invoice_id] = await rig.invoices(account, ["120.00"])
        handle = await rig.finalize(account, invoice_id)
        await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
        with rig.sandboxes["xero"].faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/Payments",
                                          methods=["PUT"]):
            await rig.pay(account, invoice_id)
            await until(handle, lambda s: s.exception_kind == "erp_rejected", "refusal visible")

        await time_skipping_env.sleep(timedelta(hours=2))  # the cause is fixed; the ledger's hourly re-post

        status = await until(handle, lambda s: s.exception_kind == "", "re-posted by itself")
        assert all(not i.erp_pending for i in status.settled_items + status.open_items)
        erp = await rig.erp_invoice(invoice_id)
        assert erp is not None and erp.amount_paid.amount == Decimal("120.00") and erp.status.value == "paid"


async def test_ledger_upserts_search_attributes_once_per_task_and_only_changes(rig: LedgerRig) -> None:
    """One invoice finalized and paid: every search-attribute upsert changes something, and a workflow task
    carries at most one (the ledger gathers them like quote-to-cash)."""

    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["640.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    # paid once the ledger sleeps until the due date (as a payment days later finds it), for a history that
    # does not depend on how fast the worker was
    await eventually(lambda: _event_types(handle), lambda types: EventType.EVENT_TYPE_TIMER_STARTED in types,
                     what="the ledger asleep until the due date")
    await rig.pay(account, invoice_id)
    await until(handle, lambda s: not s.open_items and s.settled_items, "paid")
    await eventually(lambda: _props(rig, account.company_id), lambda p: figure(p, "paid") == Decimal("640.00"),
                     what="paid figure")
    await eventually(lambda: _event_types(handle), _idle, what="the ledger idle again")

    audit = await audit_upserts(handle)
    state, stages, upserts, events, log = audit.state, audit.stages, audit.upserts, audit.events, audit.log
    assert (state["Stage"], state["ExceptionKind"]) == ("settled", "")
    # the first upsert already shows the invoice received with the start (never a "settled" empty book first)
    assert stages == ["open_items", "settled"], log
    assert f"hubspot:deal:{account.deal_id}" in state["BusinessKeys"]  # type: ignore[operator]
    assert upserts <= 4, f"{upserts} upserts in {events} events: {log}"
    # the reads (settings, customer, the ERP contact look-up) are local activities: a customer new to Xero (its
    # contact created here) fits in 52 events (the ERP payment's key is one upsert once Xero gave its ID), 55
    # when a loaded worker ends the first workflow task between two local reads (one more task of three
    # events); a customer quote-to-cash provisioned skips the create (-6)
    assert any(k.startswith("xero:payment:") for k in state["BusinessKeys"]), log  # type: ignore[union-attr]
    assert events <= 55, f"{events} events: {log}"
    print(f"ledger history: {events} events, {upserts} upserts for one invoice finalized and paid")
    # the current details: the status component's header, the ledger's own lines, the recent timeline
    details = (await handle.query("__temporal_workflow_metadata")).current_details
    assert details.startswith("**Stage:** settled\n\n**Waiting for:** billing events"), details
    assert f"**Customer:** Stripe `{account.customer_id}`, HubSpot company `{account.company_id}`" in details
    assert "**Open invoices:** 0" in details and "**Events applied:** 3 (run 1, 0 duplicate(s) ignored)" in details
    assert "- USD: billed 640.00, paid 640.00, outstanding 0.00, overdue 0.00, credited 0.00" in details, details
    assert "finalized: 640.00 USD" in details.split("**Recent:**")[1], details


async def _event_types(handle: WorkflowHandle) -> list[EventType.ValueType]:
    return [event.event_type async for event in handle.fetch_history_events()]


def _idle(types: list[EventType.ValueType]) -> bool:
    """The run's last task completed and every activity it scheduled is done."""
    return (types[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            and types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
            == types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED))


async def test_ledger_voids_the_erp_invoice_when_billing_voids_it(pair_rig: LedgerRig) -> None:
    rig = pair_rig
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["275.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")

    await rig.connectors.billing.void_invoice(invoice_id)
    [raw] = stripe_events(rig.stripe, invoice_id, "invoice.voided")
    await signal(rig.client, rig.settings, account.customer_id, canonical(rig.settings, raw))

    status = await until(handle, lambda s: not s.open_items and s.settled_items, "voided")
    [item] = status.settled_items
    assert item.status.value == "void" and item.erp_pending == []
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.status.value == "void"
    assert [r.voided for r in rig.books.receivables(invoice_id)] == [True]
    figures = await eventually(lambda: rig.books.figures(account.company_id), lambda f: f[0] == 0,
                               what="figures after the void")
    assert figures == (Decimal(0), Decimal(0))


async def test_repost_of_a_lost_billing_event_rereads_billing_feeds_the_ledger_and_refuses_when_nothing_changed(
        rig: LedgerRig, capsys: pytest.CaptureFixture[str]) -> None:
    """Reconciliation's repair for missing_in_erp / payment_missing_in_erp when the billing event was lost: the
    command re-reads the invoice, feeds (or starts) the ledger, which posts it; run again it changes nothing and
    says so with exit 1 (it used to post nothing and exit 0)."""
    parts = for_cli(rig.settings, client=rig.client)
    account = await rig.account()
    [posted, lost] = await rig.invoices(account, ["100.00", "250.00"])
    handle = await rig.finalize(account, posted)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    pay(rig.stripe, posted)  # invoice.paid lost: payment_missing_in_erp
    await finalize(rig.connectors.billing, rig.stripe, lost)  # invoice.finalized lost: missing_in_erp
    pay(rig.stripe, lost, 10000)
    assert await starter.run(["repost", handle.id, "--invoice", lost], parts=parts) == 0
    erp = await rig.erp_invoice(lost)
    assert erp is not None and erp.total == Money.of("250.00", "USD") and erp.amount_paid == Money.of("100.00", "USD")
    assert await starter.run(["repost", handle.id, "--invoice", posted], parts=parts) == 0
    erp = await rig.erp_invoice(posted)
    assert erp is not None and erp.amount_paid == Money.of("100.00", "USD")
    capsys.readouterr()
    assert await starter.run(["repost", handle.id, "--invoice", posted], parts=parts) == 1
    assert "nothing changed" in capsys.readouterr().err
    erp = await rig.erp_invoice(posted)
    assert erp is not None and erp.amount_paid == Money.of("100.00", "USD")  # posted once, not twice

    # a customer whose ledger never started (its first event lost): the repair starts it
    other = await rig.account()
    [first] = await rig.invoices(other, ["75.00"])
    await finalize(rig.connectors.billing, rig.stripe, first)
    ledger = handle.id.replace(account.customer_id, other.customer_id)
    assert await starter.run(["repost", ledger, "--invoice", first], parts=parts) == 0
    erp = await rig.erp_invoice(first)
    assert erp is not None and erp.total == Money.of("75.00", "USD")
    await parts.aclose()


async def _mark_uncollectible(rig: LedgerRig, account: BillingAccount, invoice_id: str) -> None:
    async with httpx.AsyncClient(base_url=rig.stripe.base_url, timeout=10) as http:
        marked = await http.post(f"/v1/invoices/{invoice_id}/mark_uncollectible", headers=stripe_auth(rig.settings))
        marked.raise_for_status()
    [raw] = stripe_events(rig.stripe, invoice_id, "invoice.marked_uncollectible")
    await signal(rig.client, rig.settings, account.customer_id, canonical(rig.settings, raw))


def _xero_docs(rig: LedgerRig, kind: str, reference_prefix: str) -> list[dict[str, Any]]:
    return rig.sandboxes["xero"].store.list(kind, tenant=US01_TENANT,
                                            where=lambda d: str(d.get("Reference", "")).startswith(reference_prefix))


async def test_ledger_cash_after_a_write_off_reverses_it_and_posts_the_payment_in_xero(rig: LedgerRig) -> None:
    """Issue 24: 1000.00 billed, 100.00 paid, written off (900.00), then paid in full. Xero must end with
    1000.00 received, the write-off voided and nothing due (it used to refuse the payment forever)."""
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["1000.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    await rig.pay(account, invoice_id, 10000)
    await _mark_uncollectible(rig, account, invoice_id)
    await eventually(lambda: asyncio.sleep(0, _xero_docs(rig, "credit_note", f"{invoice_id}-uncollectible")),
                     lambda docs: len(docs) == 1 and docs[0]["Status"] == "PAID", what="write-off allocated")

    await rig.pay(account, invoice_id)  # the customer pays the 900.00 left after all

    status = await until(handle, lambda s: s.settled_items and s.settled_items[0].status.value == "paid"
                         and not s.settled_items[0].erp_pending, "paid after the write-off")
    assert status.exception_kind.value == ""
    [write_off] = _xero_docs(rig, "credit_note", f"{invoice_id}-uncollectible")
    assert write_off["Status"] == "VOIDED" and write_off["Allocations"] == []
    [erp] = _xero_docs(rig, "invoice", invoice_id)
    assert (erp["Status"], Decimal(erp["AmountPaid"]), Decimal(erp["AmountCredited"]), Decimal(erp["AmountDue"])) \
        == ("PAID", Decimal("1000.00"), Decimal(0), Decimal(0))
    assert sum(Decimal(p["Amount"]) for p in erp["Payments"]) == Decimal("1000.00")


async def test_ledger_void_after_part_payment_credits_the_remainder_in_xero(rig: LedgerRig) -> None:
    """Issue 24: 1000.00 billed, 250.00 paid, voided in billing. Xero refuses to void a part-paid invoice, so
    the unpaid 750.00 is credited; the 250.00 received stays applied and nothing is left due."""
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["1000.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    await rig.pay(account, invoice_id, 25000)
    await rig.connectors.billing.void_invoice(invoice_id)
    [raw] = stripe_events(rig.stripe, invoice_id, "invoice.voided")
    await signal(rig.client, rig.settings, account.customer_id, canonical(rig.settings, raw))

    status = await until(handle, lambda s: s.settled_items and s.settled_items[0].status.value == "void"
                         and not s.settled_items[0].erp_pending, "voided")
    assert status.exception_kind.value == ""
    [remainder] = _xero_docs(rig, "credit_note", f"{invoice_id}-void-remainder")
    assert Decimal(remainder["Total"]) == Decimal("750.00") and remainder["Status"] == "PAID"
    [erp] = _xero_docs(rig, "invoice", invoice_id)
    assert (Decimal(erp["AmountPaid"]), Decimal(erp["AmountCredited"]), Decimal(erp["AmountDue"])) == (
        Decimal("250.00"), Decimal("750.00"), Decimal(0))


async def test_ledger_invoice_with_no_books_mapping_waits_visibly_until_the_mapping_is_added(
        client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    """A product the books mapping does not map is never booked to a default account: the invoice stays pending
    in the ledger's visible exception, saying what is missing, and posts once a person adds the row."""
    unmapped = flow_settings.books_mapping.model_copy(deep=True)
    for books in unmapped.entities:
        books.revenue = [RevenueRule(product="SKU-NOT-BILLED-HERE", account="200")]
    async with ledger_rig(client, flow_settings.model_copy(update={"books_mapping": unmapped}), sandboxes) as rig:
        account = await rig.account()
        [invoice_id] = await rig.invoices(account, ["640.00"])
        handle = await rig.finalize(account, invoice_id)
        status = await until(handle, lambda s: s.exception_kind == "erp_rejected", "missing mapping visible")
        [item] = status.open_items
        [pending] = item.erp_pending
        assert pending.kind.value == "invoice" and "no revenue account for product" in pending.reason
        assert "in the books mapping of US01" in pending.reason
        assert rig.erp_count("invoice", invoice_id) == 0, "nothing booked to a default account"
    # a person adds the mapping (here: the deployment's default, every product to 200) and reposts
    async with ledger_rig(client, flow_settings, sandboxes) as rig:
        done = await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest(invoice_id=invoice_id))
        assert done.posted == 1
        status = await until(handle, lambda s: s.exception_kind == "", "posted once mapped")
        erp = await rig.erp_invoice(invoice_id)
        assert erp is not None and [(line.ledger_account, line.tax_code) for line in erp.lines] == [("200", "TAX001")]


async def test_ledger_tax_exempt_us_customer_books_exempt_invoice_and_write_off_to_bad_debts(rig: LedgerRig) -> None:
    """A customer billing holds as tax exempt (set with Stripe's own SDK): the ledger posts its invoice with
    US01's exempt tax code to revenue, and its write-off with the same tax code to bad debts (485), in Xero."""
    account = await rig.account()
    sdk = stripe.StripeClient(vendor_settings(rig.settings, "stripe").api_key, max_network_retries=0,
                              base_addresses={"api": rig.stripe.base_url})
    sdk.customers.update(account.customer_id, params={"tax_exempt": "exempt",
                                                      "address": {"line1": "1 Main St", "country": "US"}})
    [invoice_id] = await rig.invoices(account, ["1000.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    [erp] = _xero_docs(rig, "invoice", invoice_id)
    assert [(i["AccountCode"], i["TaxType"], i["LineAmount"], i["TaxAmount"]) for i in erp["LineItems"]] == [
        ("200", "EXEMPTOUTPUT", "1000.00", "0.00")]
    await rig.pay(account, invoice_id, 40000)
    await _mark_uncollectible(rig, account, invoice_id)
    [write_off] = await eventually(
        lambda: asyncio.sleep(0, _xero_docs(rig, "credit_note", f"{invoice_id}-uncollectible")),
        lambda docs: len(docs) == 1 and docs[0]["Status"] == "PAID", what="write-off allocated")
    assert [(i["AccountCode"], i["TaxType"], i["LineAmount"], i["TaxAmount"]) for i in write_off["LineItems"]] == [
        ("485", "EXEMPTOUTPUT", "600.00", "0.00")]
    payment = rig.sandboxes["xero"].store.list("payment", tenant=US01_TENANT,
                                               where=lambda p: (p.get("Invoice") or {}).get("InvoiceID")
                                               == erp["InvoiceID"])
    assert [(p["Account"]["Code"], p["Amount"]) for p in payment] == [("090", "400.00")]
# -- a customer billed from two entities: one owner writes the sum ---------------------------------------
def _sums(props: dict[str, Any]) -> tuple[Decimal, Decimal, Decimal]:
    return figure(props, "billed"), figure(props, "paid"), figure(props, "outstanding")


async def test_split_customer_figures_are_the_sum_of_both_entities_ledgers(rig: LedgerRig) -> None:
    us = await rig.account()
    eu = await billing_account_in(rig.connectors.billing, us, "EU01")
    [us_invoice] = await rig.invoices(us, ["7777.77"])
    [eu_invoice] = await rig.invoices(eu, ["3333.33"])

    us_ledger = await rig.finalize(us, us_invoice)
    await until(us_ledger, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "US01 invoice posted")
    await rig.pay(us, us_invoice)
    await until(us_ledger, lambda s: not s.open_items, "US01 invoice paid")
    eu_ledger = await rig.finalize(eu, eu_invoice)
    await until(eu_ledger, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "EU01 invoice posted")
    await rig.pay(eu, eu_invoice, 33333)  # 333.33 of 3333.33
    await until(eu_ledger, lambda s: s.open_items and s.open_items[0].paid == Decimal("333.33"), "EU01 part paid")

    # by hand: billed 7777.77 + 3333.33, paid 7777.77 + 333.33, outstanding 3000.00
    truth = (Decimal("11111.10"), Decimal("8111.10"), Decimal("3000.00"))
    company = await eventually(lambda: _props(rig, us.company_id), lambda p: _sums(p) == truth,
                               what="company figures over both ledgers", timeout=30)
    assert figure(company, "overdue") == 0 and figure(company, "credited") == 0
    deal = await eventually(lambda: _deal(rig, us.deal_id), lambda p: _sums(p) == truth,
                            what="split deal figures over both ledgers", timeout=30)
    assert figure(deal, "overdue") == 0

    # one owner wrote them, and it holds both ledgers' parts
    owner: WorkflowHandle = rig.client.get_workflow_handle(company_figures_workflow_id("hubspot", us.company_id))
    status: CompanyFiguresStatus = await owner.query(CompanyFiguresWorkflow.figures)
    assert sorted(status.customers) == sorted([us.customer_id, eu.customer_id])
    [usd] = status.company
    assert (usd.currency, usd.billed, usd.paid, usd.outstanding) == ("USD", "11111.10", "8111.10", "3000.00")
    await save_history(owner, "company_figures_two_ledgers")



async def test_repost_figures_rewrites_a_crm_figure_typed_over_by_hand(rig: LedgerRig) -> None:
    """Reconciliation's repair for crm_figures_mismatch (``starter.py repost <ledger> --figures``): the ledger
    reports its figures again and the company's owner writes the sum over every ledger over the hand edit; exit 0.
    It used to have nothing to re-post and exit 1 with the hand edit still in the CRM."""
    parts = for_cli(rig.settings, client=rig.client)
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["640.00"])
    handle = await rig.finalize(account, invoice_id)
    await until(handle, lambda s: s.open_items and s.open_items[0].erp_invoice_id, "posted")
    await eventually(lambda: _props(rig, account.company_id), lambda p: figure(p, "billed") == Decimal("640.00"),
                     what="company figures")
    async with httpx.AsyncClient(timeout=10) as http:  # a person types over a figure in the CRM
        (await http.patch(f"{rig.hubspot.base_url}/crm/v3/objects/companies/{account.company_id}",
                          json={"properties": {"revops_billed_usd": "6400.00"}},
                          headers=hubspot_auth(rig.settings))).raise_for_status()
    assert figure(await _props(rig, account.company_id), "billed") == Decimal("6400.00")

    assert await starter.run(["repost", handle.id, "--figures"], parts=parts) == 0
    company = await eventually(lambda: _props(rig, account.company_id),
                               lambda p: figure(p, "billed") == Decimal("640.00"), what="hand edit overwritten")
    assert figure(company, "outstanding") == Decimal("640.00")
    await parts.aclose()
