"""XeroErp's reads and writes for invoice feedback and reconciliation, against the Xero emulator:
voiding an invoice, listing projects with their codes, a corrected invoice posted after a void."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from canonical import Account, Invoice, InvoiceLine, InvoiceStatus, Money, Payment, Project
from connectors.errors import Rejected
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle


def uid() -> str:
    return uuid.uuid4().hex[:10]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest.fixture
def tenant(settings: Settings) -> str:
    return settings.entity("US01").erp_tenant_id


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def _contact(erp: XeroErp, tenant: str) -> str:
    account = await erp.upsert_customer(tenant, Account(name=f"Void Co {uid()}"), contact=None,
                                        reference=f"ref-{uid()}", idempotency_key=f"k-{uid()}")
    assert account.erp_contact_id
    return account.erp_contact_id


def _invoice(billing_id: str, amount: str, number: str | None = None) -> Invoice:
    today = datetime.now(UTC).date()
    return Invoice(billing_id=billing_id, number=number, customer_id="cus_x", currency="USD",
                   status=InvoiceStatus.OPEN, issued_on=today, due_on=today,
                   lines=[InvoiceLine(description="Fee", unit_amount=usd(amount), amount=usd(amount))],
                   subtotal=usd(amount), tax=usd("0"), total=usd(amount), amount_paid=usd("0"), amount_due=usd(amount))


async def test_xero_void_invoice_voids_once_and_a_corrected_one_can_follow(erp: XeroErp, tenant: str) -> None:
    contact = await _contact(erp, tenant)
    billing_id = f"in_{uid()}"
    first = await erp.post_invoice(tenant, _invoice(billing_id, "10.00"), erp_contact_id=contact,
                                   idempotency_key=f"k-{uid()}")

    await erp.void_invoice(tenant, first, idempotency_key=f"k-{uid()}")
    await erp.void_invoice(tenant, first, idempotency_key=f"k-{uid()}")  # already voided: success

    docs = {i.metadata["erp_invoice_id"]: i for i in await erp.list_invoices(tenant) if i.billing_id == billing_id}
    assert docs[first].status is InvoiceStatus.VOID and docs[first].metadata["erp_status"] == "VOIDED"
    second = await erp.post_invoice(tenant, _invoice(billing_id, "12.00", number=f"FIX-{uid()}"),
                                    erp_contact_id=contact, idempotency_key=f"k-{uid()}")
    assert second != first


async def test_xero_void_invoice_with_a_payment_is_rejected(erp: XeroErp, tenant: str) -> None:
    contact = await _contact(erp, tenant)
    billing_id = f"in_{uid()}"
    erp_id = await erp.post_invoice(tenant, _invoice(billing_id, "20.00"), erp_contact_id=contact,
                                    idempotency_key=f"k-{uid()}")
    await erp.record_payment(tenant, erp_id, Payment(billing_id=f"ch_{uid()}", invoice_billing_id=billing_id,
                                                     amount=usd("5.00"), paid_at=datetime.now(UTC)),
                             idempotency_key=f"k-{uid()}")

    with pytest.raises(Rejected, match="payment or credit note"):
        await erp.void_invoice(tenant, erp_id, idempotency_key=f"k-{uid()}")


async def test_xero_list_projects_reads_codes_and_skips_closed(erp: XeroErp, tenant: str) -> None:
    contact = await _contact(erp, tenant)
    code, closed_code = f"P-{uid()}-US01", f"P-{uid()}-US01"
    made = await erp.create_project(tenant, Project(code=code, name="Delivery", erp_contact_id=contact,
                                                    erp_tenant_id=tenant, budget=usd("900.00")),
                                    idempotency_key=f"k-{uid()}")
    gone = await erp.create_project(tenant, Project(code=closed_code, name="Old", erp_contact_id=contact,
                                                    erp_tenant_id=tenant, budget=usd("1.00")),
                                    idempotency_key=f"k-{uid()}")
    assert gone.erp_id
    await erp.close_project(tenant, gone.erp_id)

    projects = {p.code: p for p in await erp.list_projects(tenant)}
    every = {p.code for p in await erp.list_projects(tenant, include_closed=True)}

    assert projects[code].erp_id == made.erp_id and projects[code].budget == usd("900.00")
    assert projects[code].name == "Delivery" and projects[code].erp_contact_id == contact
    assert closed_code not in projects and closed_code in every
