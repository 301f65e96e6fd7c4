"""ERP item codes from the product catalogue on Xero invoice lines (``ItemCode``), against the Xero emulator over
real HTTP: a catalogued SKU's line carries its item code, a line of another SKU none."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest_asyncio

from canonical import Account, Invoice, InvoiceLine, InvoiceStatus, Money
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    catalogue = {"PLAT-PRO": {"name": "Platform Pro seat", "erp_item_code": "SEAT-PRO",
                              "prices": [{"currency": "USD", "interval": "month", "unit_amount": "45.00"}]},
                 "ENG": {"name": "Engineer", "hourly_rates": {"USD": "150.00"}}}
    adapter = from_settings(settings.model_copy(update={"catalogue": catalogue}))
    yield adapter
    await adapter.aclose()


async def test_xero_invoice_lines_carry_the_catalogue_item_code(erp: XeroErp, settings: Settings,
                                                                xero_sandbox: SandboxHandle) -> None:
    tenant = settings.entity("US01").erp_tenant_id
    ref = f"crm:company:{uuid.uuid4().hex[:8]}"
    contact = await erp.upsert_customer(tenant, Account(name=f"Items {ref}", country="US"), contact=None,
                                        reference=ref, idempotency_key=f"cust-{ref}")
    assert contact.erp_contact_id
    billing_id = f"in_{uuid.uuid4().hex[:10]}"
    lines = [InvoiceLine(description="Seats", quantity=Decimal(20), unit_amount=usd("45.00"), amount=usd("900.00"),
                         product_code="PLAT-PRO"),
             InvoiceLine(description="Engineer", quantity=Decimal(1), unit_amount=usd("150.00"),
                         amount=usd("150.00"), product_code="ENG"),
             InvoiceLine(description="Stray", quantity=Decimal(1), unit_amount=usd("5.00"), amount=usd("5.00"),
                         product_code="NOT-LISTED"),
             InvoiceLine(description="No SKU", quantity=Decimal(1), unit_amount=usd("1.00"), amount=usd("1.00"))]
    invoice = Invoice(billing_id=billing_id, customer_id="cus_1", currency="USD", status=InvoiceStatus.OPEN,
                      issued_on=date(2027, 1, 1), due_on=date(2027, 1, 31), lines=lines, subtotal=usd("1056.00"),
                      tax=usd("0"), total=usd("1056.00"), amount_paid=usd("0"), amount_due=usd("1056.00"))

    await erp.post_invoice(tenant, invoice, erp_contact_id=contact.erp_contact_id, idempotency_key=f"i-{billing_id}")

    [doc] = xero_sandbox.store.list("invoice", tenant=tenant, where=lambda d: d.get("Reference") == billing_id)
    assert [item.get("ItemCode") for item in doc["LineItems"]] == ["SEAT-PRO", None, None, None]
    assert [item["Description"] for item in doc["LineItems"]] == ["Seats", "Engineer", "Stray", "No SKU"]
    assert doc["Total"] == "1056.00"
