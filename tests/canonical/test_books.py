"""The books mapping's rules (pure, milliseconds): look-ups, the credit split computed by hand, and
reconciliation of the accounts and tax codes the ERP booked."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from canonical import Invoice, InvoiceLine, InvoiceStatus, Money, TaxLine
from canonical.billing import TaxStatus
from canonical.books import (
    BooksMapping,
    EntityBooks,
    MissingMapping,
    PostingLine,
    RevenueRule,
    TaxRule,
    credit_postings,
    invoice_postings,
)
from canonical.reconciliation import FindingKind, Receivables, compare_receivables
from tests.helpers.ids import SYSTEMS

UK = EntityBooks(entity="UK01", revenue=[RevenueRule(product="SKU-SUP-*", account="260"),
                                         RevenueRule(product="SKU-SUP-GOLD-*", account="261"),
                                         RevenueRule(product="SKU-LIC-1", account="200")],
                 tax=[TaxRule(status=TaxStatus.TAXABLE, region="gb", tax_code="OUTPUT2"),
                      TaxRule(status=TaxStatus.TAXABLE, tax_code="ZERORATEDOUTPUT"),
                      TaxRule(status=TaxStatus.REVERSE_CHARGE, tax_code="ECZROUTPUTSERVICES")],
                 bank={"gbp": "090"}, bad_debt_account="485", accounts=["090", "200", "260", "261", "485"],
                 tax_codes=["OUTPUT2", "ZERORATEDOUTPUT", "ECZROUTPUTSERVICES"])


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")


def test_books_look_up_exact_product_then_longest_family_then_fail() -> None:
    assert UK.revenue_account("SKU-LIC-1") == "200"
    assert UK.revenue_account("SKU-SUP-BASIC") == "260"
    assert UK.revenue_account("SKU-SUP-GOLD-24x7") == "261"
    with pytest.raises(MissingMapping, match="no revenue account for product SKU-LIC-2 in the books mapping of UK01"):
        UK.revenue_account("SKU-LIC-2")
    assert UK.tax_code(TaxStatus.TAXABLE, "GB") == "OUTPUT2"
    assert UK.tax_code(TaxStatus.TAXABLE, "US") == "ZERORATEDOUTPUT"
    assert UK.tax_code(TaxStatus.REVERSE_CHARGE, "DE") == "ECZROUTPUTSERVICES"
    with pytest.raises(MissingMapping, match="no tax code for exempt customers in US"):
        UK.tax_code(TaxStatus.EXEMPT, "US")
    assert UK.bank_account("GBP") == "090"
    with pytest.raises(MissingMapping, match="no bank account for EUR"):
        UK.bank_account("eur")
    assert BooksMapping(entities=[UK]).problems(["UK01", "US01"]) == ["US01: no books mapping"]


def line(net: str, tax: str, account: str = "200", code: str = "OUTPUT2") -> PostingLine:
    return PostingLine(description="x", net=gbp(net), tax=gbp(tax), account=account, tax_code=code)


def split(lines: list[PostingLine]) -> list[tuple[str, str, str, str]]:
    return [(p.account, p.tax_code, str(p.net.amount), str(p.tax.amount)) for p in lines]


def test_credit_split_by_hand() -> None:
    # 100.00 + 20.00 VAT and 33.33 zero-rated; credit 50.00 of 153.33 gross:
    # 50 x 120 / 153.33 = 39.1313... -> 39.13 (VAT 39.13 x 20/120 = 6.5216... -> 6.52, net 32.61); the rest 10.87
    originals = [line("100.00", "20.00"), line("33.33", "0.00", "260", "ZERORATEDOUTPUT")]
    assert split(credit_postings(originals, gbp("50.00"), description="credit")) == [
        ("200", "OUTPUT2", "32.61", "6.52"), ("260", "ZERORATEDOUTPUT", "10.87", "0.00")]
    # a write-off of everything: the lines reversed whole, net to bad debts
    assert split(credit_postings(originals, gbp("153.33"), description="w/o", account="485")) == [
        ("485", "OUTPUT2", "100.00", "20.00"), ("485", "ZERORATEDOUTPUT", "33.33", "0.00")]
    with pytest.raises(ValueError, match="cannot reverse"):
        credit_postings(originals, gbp("153.34"), description="too much")
    with pytest.raises(ValueError, match="another currency"):
        credit_postings(originals, Money.of("1.00", "EUR"), description="wrong currency")


def uk_invoice(*, booked: tuple[str, str] | None = None) -> Invoice:
    taxes = [TaxLine(name="VAT", rate_percent=Decimal(20), amount=gbp("200.00"))]
    item = InvoiceLine(description="Licence", unit_amount=gbp("1000.00"), amount=gbp("1000.00"),
                       product_code="SKU-LIC-1", taxes=taxes,
                       **({"ledger_account": booked[0], "tax_code": booked[1]} if booked else {}))
    return Invoice(billing_id="in_uk", customer_id="cus_uk", currency="GBP", status=InvoiceStatus.OPEN,
                   due_on=date(2026, 12, 29), lines=[item], subtotal=gbp("1000.00"), tax=gbp("200.00"),
                   total=gbp("1200.00"), amount_paid=gbp("0"), amount_due=gbp("1200.00"), legal_entity="UK01",
                   crm_deal_id="d1", customer_tax_status=TaxStatus.TAXABLE, customer_country="GB",
                   metadata={"erp_invoice_id": "x-uk", "erp_status": "AUTHORISED"} if booked else {})


def test_invoice_postings_use_the_customers_status_and_country() -> None:
    assert split(invoice_postings(UK, uk_invoice())) == [("200", "OUTPUT2", "1000.00", "200.00")]
    abroad = uk_invoice().model_copy(update={"customer_country": "US"})
    assert split(invoice_postings(UK, abroad))[0][1] == "ZERORATEDOUTPUT"


def test_reconciliation_compares_the_accounts_and_tax_codes_the_erp_booked() -> None:
    right = Receivables(billing_invoices=[uk_invoice()], erp_invoices=[uk_invoice(booked=("200", "OUTPUT2"))])
    findings, _ = compare_receivables("UK01", right, tolerance=Decimal("0.01"), systems=SYSTEMS, books=UK)
    assert findings == []
    wrong = Receivables(billing_invoices=[uk_invoice()], erp_invoices=[uk_invoice(booked=("260", "NONE"))])
    [found] = compare_receivables("UK01", wrong, tolerance=Decimal("0.01"), systems=SYSTEMS, books=UK)[0]
    assert found.kind is FindingKind.AMOUNT_MISMATCH and found.billing_id == "in_uk"
    assert "the books map to 200/OUTPUT2, the ERP holds 260/NONE" in found.detail
    # without the books (or an ERP that does not say) only the amounts are compared
    assert compare_receivables("UK01", wrong, tolerance=Decimal("0.01"), systems=SYSTEMS)[0] == []
