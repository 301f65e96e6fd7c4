"""The books mapping in Xero (the emulator over real HTTP): a VAT-registered UK customer of UK01 and a
tax-exempt US customer of US01 get their entity's tax codes and accounts on the invoice, the credit note and
the write-off, net and tax split as computed here by hand; a line nothing maps is refused, never booked to a
default account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio

from canonical import Account, Address, CreditNote, Invoice, InvoiceLine, InvoiceStatus, Money, Payment, TaxLine
from canonical.billing import TaxStatus
from canonical.books import BooksMapping, EntityBooks, RevenueRule, TaxRule, chart_problems
from canonical.keys import write_off_credit_note_id
from connectors.errors import Unmapped
from connectors.ports import ErpChart
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle

ACCOUNTS = ["090", "091", "200", "260", "485"]
CODES = ["OUTPUT2", "ZERORATEDOUTPUT", "EXEMPTOUTPUT", "TAX001", "ECZROUTPUTSERVICES"]


def uid() -> str:
    return uuid.uuid4().hex[:10]


def books() -> BooksMapping:
    """UK01: support to 260, everything else to 200; VAT 20 % at home, zero-rated abroad. US01: sales tax, or
    exempt; bad debts to 485."""
    return BooksMapping(entities=[
        EntityBooks(entity="UK01", revenue=[RevenueRule(product="SKU-SUP-*", account="260"),
                                            RevenueRule(product="SKU-LIC-*", account="200")],
                    tax=[TaxRule(status=TaxStatus.TAXABLE, region="GB", tax_code="OUTPUT2"),
                         TaxRule(status=TaxStatus.TAXABLE, tax_code="ZERORATEDOUTPUT")],
                    bank={"GBP": "091"}, bad_debt_account="485", accounts=ACCOUNTS, tax_codes=CODES),
        EntityBooks(entity="US01", revenue=[RevenueRule(product="*", account="200")],
                    tax=[TaxRule(status=TaxStatus.TAXABLE, tax_code="TAX001"),
                         TaxRule(status=TaxStatus.EXEMPT, tax_code="EXEMPTOUTPUT")],
                    bank={"USD": "090"}, bad_debt_account="485", accounts=ACCOUNTS, tax_codes=CODES),
    ])


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    adapter = from_settings(settings.model_copy(update={"books_mapping": books()}))
    yield adapter
    await adapter.aclose()


def stored(sandbox: SandboxHandle, kind: str, tenant: str, **match: Any) -> dict[str, Any]:
    [doc] = sandbox.store.list(kind, tenant=tenant, where=lambda d: all(d.get(k) == v for k, v in match.items()))
    return doc


def lines(doc: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(item["AccountCode"], item["TaxType"], item["LineAmount"], item["TaxAmount"])
            for item in doc["LineItems"]]


def line(code: str, net: str, tax: str, currency: str) -> InvoiceLine:
    taxes = [TaxLine(name="txr_vat", rate_percent=Decimal(20), amount=Money.of(tax, currency))] if Decimal(tax) else []
    return InvoiceLine(description=code, quantity=Decimal(1), unit_amount=Money.of(net, currency),
                       amount=Money.of(net, currency), product_code=code, taxes=taxes)


def invoice(billing_id: str, currency: str, lines_: list[InvoiceLine], *, status: TaxStatus,
            country: str) -> Invoice:
    net = sum((x.amount.amount for x in lines_), Decimal(0))
    tax = sum((t.amount.amount for x in lines_ for t in x.taxes), Decimal(0))
    m = lambda v: Money(amount=v, currency=currency)  # noqa: E731
    return Invoice(billing_id=billing_id, customer_id="cus_1", currency=currency, status=InvoiceStatus.OPEN,
                   issued_on=date(2026, 11, 1), due_on=date(2026, 12, 1), lines=lines_, subtotal=m(net), tax=m(tax),
                   total=m(net + tax), amount_paid=m(Decimal(0)), amount_due=m(net + tax),
                   customer_tax_status=status, customer_country=country)


async def contact(erp: XeroErp, tenant: str, country: str) -> str:
    ref = f"crm-company-{uid()}"
    made = await erp.upsert_customer(tenant, Account(name=f"Customer {ref}", tax_number="GB123456789",
                                                     address=Address(country=country)),
                                     contact=None, reference=ref, idempotency_key=ref)
    assert made.erp_contact_id
    return made.erp_contact_id


async def test_uk_vat_registered_customer_invoice_credit_and_write_off(erp: XeroErp, settings: Settings,
                                                                      xero_sandbox: SandboxHandle) -> None:
    tenant = settings.entity("UK01").erp_tenant_id
    who = await contact(erp, tenant, "GB")
    billed = invoice(f"in_{uid()}", "GBP", [line("SKU-LIC-ANNUAL", "1000.00", "200.00", "GBP"),
                                            line("SKU-SUP-GOLD", "500.00", "100.00", "GBP")],
                     status=TaxStatus.TAXABLE, country="GB")
    await erp.post_invoice(tenant, billed, erp_contact_id=who, idempotency_key=uid())
    posted = stored(xero_sandbox, "invoice", tenant, Reference=billed.billing_id)
    assert lines(posted) == [("200", "OUTPUT2", "1000.00", "200.00"), ("260", "OUTPUT2", "500.00", "100.00")]
    assert (posted["SubTotal"], posted["TotalTax"], posted["Total"]) == ("1500.00", "300.00", "1800.00")

    # a credit of 360.00 (tax-inclusive) over 1200 + 600 gross: 240 and 120, each one sixth VAT
    note = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billed.billing_id, amount=Money.of("360.00", "GBP"),
                      reason="Service credit")
    await erp.post_credit_note(tenant, note, erp_contact_id=who, idempotency_key=uid())
    credit = stored(xero_sandbox, "credit_note", tenant, Reference=note.billing_id)
    assert lines(credit) == [("200", "OUTPUT2", "200.00", "40.00"), ("260", "OUTPUT2", "100.00", "20.00")]
    assert (credit["SubTotal"], credit["TotalTax"], credit["Total"]) == ("300.00", "60.00", "360.00")

    # the rest, 1440.00, written off: net to bad debts, the output VAT reversed with the line's tax type
    write_off = CreditNote(billing_id=write_off_credit_note_id(billed.billing_id), invoice_billing_id=billed.billing_id,
                           amount=Money.of("1440.00", "GBP"))
    await erp.post_credit_note(tenant, write_off, erp_contact_id=who, idempotency_key=uid())
    bad = stored(xero_sandbox, "credit_note", tenant, Reference=write_off.billing_id)
    assert lines(bad) == [("485", "OUTPUT2", "800.00", "160.00"), ("485", "OUTPUT2", "400.00", "80.00")]
    assert (bad["SubTotal"], bad["TotalTax"], bad["Total"]) == ("1200.00", "240.00", "1440.00")
    after = stored(xero_sandbox, "invoice", tenant, Reference=billed.billing_id)
    assert (after["Status"], after["AmountDue"]) == ("PAID", "0.00")


async def test_us_tax_exempt_customer_invoice_credit_write_off_and_payment(erp: XeroErp, settings: Settings,
                                                                          xero_sandbox: SandboxHandle) -> None:
    tenant = settings.entity("US01").erp_tenant_id
    who = await contact(erp, tenant, "US")
    billed = invoice(f"in_{uid()}", "USD", [line("SKU-LIC-ANNUAL", "900.00", "0", "USD"),
                                            line("SKU-SUP-GOLD", "300.00", "0", "USD")],
                     status=TaxStatus.EXEMPT, country="US")
    erp_id = await erp.post_invoice(tenant, billed, erp_contact_id=who, idempotency_key=uid())
    posted = stored(xero_sandbox, "invoice", tenant, Reference=billed.billing_id)
    assert lines(posted) == [("200", "EXEMPTOUTPUT", "900.00", "0.00"), ("200", "EXEMPTOUTPUT", "300.00", "0.00")]
    note = CreditNote(billing_id=f"cn_{uid()}", invoice_billing_id=billed.billing_id, amount=Money.of("100.00", "USD"))
    await erp.post_credit_note(tenant, note, erp_contact_id=who, idempotency_key=uid())
    # 100 over 900 and 300: 75 and 25, no tax
    assert lines(stored(xero_sandbox, "credit_note", tenant, Reference=note.billing_id)) == [
        ("200", "EXEMPTOUTPUT", "75.00", "0.00"), ("200", "EXEMPTOUTPUT", "25.00", "0.00")]
    paid = Payment(billing_id=f"py_{uid()}", invoice_billing_id=billed.billing_id, amount=Money.of("500.00", "USD"),
                   paid_at=datetime(2026, 11, 5, tzinfo=UTC))
    await erp.record_payment(tenant, erp_id, paid, idempotency_key=uid())
    assert stored(xero_sandbox, "payment", tenant, Reference=paid.billing_id)["Account"]["Code"] == "090"
    write_off = CreditNote(billing_id=write_off_credit_note_id(billed.billing_id), invoice_billing_id=billed.billing_id,
                           amount=Money.of("600.00", "USD"))
    await erp.post_credit_note(tenant, write_off, erp_contact_id=who, idempotency_key=uid())
    assert lines(stored(xero_sandbox, "credit_note", tenant, Reference=write_off.billing_id)) == [
        ("485", "EXEMPTOUTPUT", "450.00", "0.00"), ("485", "EXEMPTOUTPUT", "150.00", "0.00")]


async def test_a_line_nothing_maps_is_refused_naming_entity_and_product(erp: XeroErp, settings: Settings,
                                                                       xero_sandbox: SandboxHandle) -> None:
    tenant = settings.entity("UK01").erp_tenant_id
    who = await contact(erp, tenant, "GB")
    unmapped = invoice(f"in_{uid()}", "GBP", [line("SKU-TRAINING", "100.00", "20.00", "GBP")],
                       status=TaxStatus.TAXABLE, country="GB")
    with pytest.raises(Unmapped, match="no revenue account for product SKU-TRAINING in the books mapping of UK01"):
        await erp.post_invoice(tenant, unmapped, erp_contact_id=who, idempotency_key=uid())
    exempt = invoice(f"in_{uid()}", "GBP", [line("SKU-LIC-ANNUAL", "100.00", "0", "GBP")],
                     status=TaxStatus.EXEMPT, country="GB")
    with pytest.raises(Unmapped, match="no tax code for exempt customers in GB in the books mapping of UK01"):
        await erp.post_invoice(tenant, exempt, erp_contact_id=who, idempotency_key=uid())
    assert xero_sandbox.store.list("invoice", tenant=tenant, where=lambda d: d.get("Reference") in (
        unmapped.billing_id, exempt.billing_id)) == []
    euro = Payment(billing_id=f"py_{uid()}", invoice_billing_id="in_x", amount=Money.of("1.00", "EUR"),
                   paid_at=datetime(2026, 11, 5, tzinfo=UTC))
    with pytest.raises(Unmapped, match="no bank account for EUR in the books mapping of UK01"):
        await erp.record_payment(tenant, "00000000-0000-0000-0000-000000000000", euro, idempotency_key=uid())


async def test_the_books_are_checked_against_the_charts_xero_holds(settings: Settings,
                                                                  xero_sandbox: SandboxHandle) -> None:
    """``GET Accounts`` and ``GET TaxRates`` of each organisation: the default books name only codes Xero holds;
    a code Xero does not hold is named with its entity and product."""
    adapter = from_settings(settings)
    try:
        assert isinstance(adapter, ErpChart)
        for entity in settings.legal_entities:
            held = await adapter.ledger_codes(entity.erp_tenant_id)
            assert {"090", "200", "485"} <= set(held.accounts) and "OUTPUT2" in held.tax_codes
            assert chart_problems(settings.books_mapping.of(entity.code), held) == []
        uk = books().of("UK01").model_copy(update={
            "revenue": [RevenueRule(product="SKU-TRAINING", account="4100")],
            "tax": [TaxRule(status=TaxStatus.TAXABLE, region="GB", tax_code="OUTPUT20")]})
        held = await adapter.ledger_codes(settings.entity("UK01").erp_tenant_id)
        assert chart_problems(uk, held) == ["UK01: product SKU-TRAINING maps to unknown account 4100",
                                            "UK01: taxable customers in GB map to unknown tax code OUTPUT20"]
    finally:
        await adapter.aclose()
