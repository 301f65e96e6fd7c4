"""StripeBilling's reads for invoice feedback and reconciliation, against the Stripe emulator: a customer
with its CRM company and entity, billing objects by project, the legal entity quote-to-cash schedules set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from canonical import Account, BillingSchedule, BillingScheduleKind, DomainEvent, InvoicePaid, Money, ScheduledCharge
from connectors.errors import NotFound
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
from tests.helpers.ledger import BillingAccount, canonical, draft_invoices, finalize, pay
from tests.helpers.servers import SandboxHandle


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest_asyncio.fixture
async def billing(settings: Settings, stripe_sandbox: SandboxHandle) -> AsyncIterator[StripeBilling]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def test_stripe_get_customer_reads_crm_company_and_entity(billing: StripeBilling) -> None:
    customer_id = await billing.ensure_customer(Account(crm_id="co-77", name="Gamma AG", country="DE"), contact=None,
                                                reference=f"ref-{uid()}", legal_entity="EU01",
                                                idempotency_key=f"k-{uid()}")

    customer = await billing.get_customer(customer_id)

    assert customer.customer_id == customer_id and customer.legal_entity == "EU01"
    assert customer.account.crm_id == "co-77" and customer.account.name == "Gamma AG"
    assert customer.account.billing_customer_id == customer_id
    await billing.delete_customer(customer_id)
    with pytest.raises(NotFound):
        await billing.get_customer(customer_id)


async def test_stripe_schedules_by_project_and_revops_legal_entity(billing: StripeBilling) -> None:
    customer_id = await billing.ensure_customer(Account(name="Delta"), contact=None, reference=f"ref-{uid()}",
                                                legal_entity="US01", idempotency_key=f"k-{uid()}")
    code = f"P-{uid()}-UK01"
    schedule = BillingSchedule(
        kind=BillingScheduleKind.MILESTONE, customer_id=customer_id, currency="GBP",
        start_date=datetime.now(UTC).date(),
        metadata={"revops_deal_id": "D-1", "revops_legal_entity": "UK01", "revops_project": code},
        charges=[ScheduledCharge(product_code="MS-1", description="Phase 1", unit_amount=Money.of("10.00", "GBP"))])
    created = await billing.create_schedule(schedule, idempotency_key=f"k-{uid()}")
    [invoice_id] = [i for i in created.item_ids if i.startswith("in_")]

    by_project = await billing.billing_schedules_by_project()
    invoice = await billing.get_invoice(invoice_id)

    assert by_project[code] == [invoice_id]
    assert invoice.legal_entity == "UK01", "revops_legal_entity (set by quote-to-cash) names the entity"
    assert invoice.crm_deal_id == "D-1"


async def test_stripe_changes_since_gives_the_webhooks_events_page_by_page(
        billing: StripeBilling, settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    """The billing poll's read: the events list since a moment, as the very events the webhook receiver makes of
    the same Stripe events (same IDs), newest first, one page at a time."""
    since = datetime.now(UTC).replace(microsecond=0)
    customer_id = await billing.ensure_customer(Account(name="Poll Co"), contact=None, reference=f"ref-{uid()}",
                                                legal_entity="US01", idempotency_key=f"k-{uid()}")
    account = BillingAccount(company_id="", deal_id="", customer_id=customer_id, entity="US01")
    [invoice_id] = await draft_invoices(billing, account, ["40.00"], with_deal=False)
    raw = [*await finalize(billing, stripe_sandbox, invoice_id), *pay(stripe_sandbox, invoice_id, 1500)]
    expected = [e for r in raw for e in canonical(settings, r)]
    billing.page_size = 1

    pages: list[list[DomainEvent]] = []
    cursor: str | None = None
    while True:
        events, cursor = await billing.changes_since(since, cursor=cursor)
        pages.append(events)
        if cursor is None:
            break

    mine = [e for page in pages for e in page if _invoice_of(e) == invoice_id]
    assert [e.kind for e in expected] == ["invoice.finalized", "invoice.paid"]
    assert list(reversed(mine)) == expected, "the webhook's events, newest first"
    assert all(len(page) <= 1 for page in pages) and len(pages) >= 2
    paid = mine[0]
    assert isinstance(paid, InvoicePaid) and paid.payment is not None
    assert paid.payment.amount == Money.of("15.00", "USD")
    assert (await billing.changes_since(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))) == ([], None)


def _invoice_of(event: DomainEvent) -> str | None:
    invoice = getattr(event, "invoice", None)
    return invoice.billing_id if invoice is not None else None
