"""Xero keeps two decimals of an amount (none of a zero-decimal currency): what it cannot hold exactly is
refused as a business error, never rounded on the way (issue 24: 3703.701 KWD was posted as 3703.70)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from canonical import Money
from canonical.billing import CreditNote, Invoice, InvoiceLine, InvoiceStatus, Payment
from canonical.books import invoice_postings
from connectors.errors import Rejected
from connectors.registry import default_registry
from connectors.xero.mapping import (
    credit_note_to_xero,
    invoice_to_xero,
    payment_to_xero,
    xero_amount,
)
from settings import DEFAULT_BOOKS, Settings


def kwd_invoice(amount: str) -> Invoice:
    money = Money.of(amount, "KWD")
    line = InvoiceLine(description="Setup", quantity=Decimal(1), unit_amount=money, amount=money)
    return Invoice(billing_id="in_kwd", number="BILL-KWD", customer_id="cus_kwd", currency="KWD",
                   status=InvoiceStatus.OPEN, issued_on=date(2027, 1, 1), due_on=date(2027, 1, 31), lines=[line],
                   subtotal=money, tax=Money.of("0", "KWD"), total=money, amount_paid=Money.of("0", "KWD"),
                   amount_due=money, legal_entity="KW01")


def test_xero_precision_refuses_an_invoice_of_three_decimals() -> None:
    with pytest.raises(Rejected) as info:
        invoice_to_xero(kwd_invoice("3703.701"), contact_id="c", books=DEFAULT_BOOKS.of("US01"))
    assert "3703.701 KWD" in str(info.value) and "2 decimals" in str(info.value)


def test_xero_precision_refuses_a_payment_and_a_credit_note_it_would_round() -> None:
    paid = Payment(billing_id="py_1", invoice_billing_id="in_kwd", amount=Money.of("1000.001", "KWD"),
                   paid_at=datetime(2027, 1, 5, tzinfo=UTC))
    with pytest.raises(Rejected):
        payment_to_xero(paid, invoice_id="x-1", bank_account_code="090")
    note = CreditNote(billing_id="cn_1", invoice_billing_id="in_kwd", amount=Money.of("0.005", "KWD"))
    with pytest.raises(Rejected):
        credit_note_to_xero(note, contact_id="c", credited=invoice_postings(DEFAULT_BOOKS.of("US01"),
                                                                           kwd_invoice("3703.700")))


def test_xero_precision_sends_amounts_it_holds_exactly() -> None:
    body = invoice_to_xero(kwd_invoice("3703.700"), contact_id="c", books=DEFAULT_BOOKS.of("US01"))
    assert body["LineItems"][0]["UnitAmount"] == Decimal("3703.700")
    assert xero_amount(Money.of("1250", "JPY")) == Decimal(1250)
    assert xero_amount(Money.of("12.34", "USD")) == Decimal("12.34")


def test_xero_precision_is_declared_for_routing() -> None:
    erp = next(s for s in default_registry(Settings()).all() if s.name == "xero").system
    assert erp.money_decimals == 2
    assert erp.holds("USD") and erp.holds("JPY") and not erp.holds("KWD")
