"""StripeBilling's reads for invoice feedback and reconciliation, against the Stripe emulator: a customer
with its CRM company and entity, billing objects by project, the legal entity quote-to-cash schedules set."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from canonical import Account, BillingSchedule, BillingScheduleKind, Money, ScheduledCharge
from connectors.errors import NotFound
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
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
