"""Catching a ledger up with billing (the repair of a lost billing event): events from the invoice as it stands."""

from __future__ import annotations

from datetime import UTC, date, datetime

from canonical import CreditNote, Invoice, InvoiceStatus, Money
from canonical.catch_up import catch_up_events
from canonical.events import CreditNoteIssued, InvoiceFinalized, InvoicePaid, InvoiceVoided
from canonical.ledger import LedgerInvoice
from canonical.settlement import LedgerBook, apply

AT = datetime(2026, 11, 30, 9, tzinfo=UTC)


def invoice(status: InvoiceStatus = InvoiceStatus.OPEN, paid: str = "0.00", charges: list[str] | None = None
            ) -> Invoice:
    return Invoice(billing_id="in_1", number="N-1", customer_id="cus_1", currency="USD", status=status,
                   due_on=date(2026, 12, 30), subtotal=Money.of("100.00", "USD"), tax=Money.zero("USD"),
                   total=Money.of("100.00", "USD"), amount_paid=Money.of(paid, "USD"),
                   amount_due=Money.of("0.00", "USD"), crm_deal_id="d1", legal_entity="US01",
                   payment_ids=charges or [])


def test_catch_up_events_of_an_invoice_the_ledger_never_heard_of() -> None:
    note = CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=Money.of("10.00", "USD"))
    events = catch_up_events(invoice(InvoiceStatus.PAID, "90.00", ["ch_1"]), [note], None, source_system="stripe",
                             read_at=AT)
    assert [type(e) for e in events] == [InvoiceFinalized, InvoicePaid, CreditNoteIssued]
    paid = events[1]
    assert isinstance(paid, InvoicePaid) and paid.payment is not None
    assert (paid.payment.billing_id, paid.payment.amount) == ("ch_1", Money.of("90.00", "USD"))


def test_catch_up_events_only_what_the_ledger_lacks_and_nothing_when_it_agrees() -> None:
    held = LedgerInvoice(invoice_id="in_1", currency="USD", total=100, paid=40, known=True, payment_ids=["ch_1"])
    [paid] = catch_up_events(invoice(InvoiceStatus.OPEN, "100.00", ["ch_1", "ch_2"]), [], held,
                             source_system="stripe", read_at=AT)
    assert isinstance(paid, InvoicePaid) and paid.payment is not None and paid.payment.billing_id == "ch_2"
    agreed = held.model_copy(update={"paid": 100})
    assert catch_up_events(invoice(InvoiceStatus.OPEN, "100.00", ["ch_1", "ch_2"]), [], agreed,
                           source_system="stripe", read_at=AT) == []
    [void] = catch_up_events(invoice(InvoiceStatus.UNCOLLECTIBLE, "40.00", ["ch_1"]), [], held,
                             source_system="stripe", read_at=AT)
    assert isinstance(void, InvoiceVoided) and void.uncollectible
    assert catch_up_events(invoice(InvoiceStatus.DRAFT), [], None, source_system="stripe", read_at=AT) == []


def test_catch_up_events_applied_twice_change_the_book_once() -> None:
    events = catch_up_events(invoice(InvoiceStatus.PAID, "100.00", ["ch_1"]), [], None, source_system="stripe",
                             read_at=AT)
    book = LedgerBook(customer_id="cus_1", entities={"US01": "t-us"})
    for event in events:
        book, _ = apply(book, event, now=AT)
    again = catch_up_events(invoice(InvoiceStatus.PAID, "100.00", ["ch_1"]), [], book.invoices["in_1"],
                            source_system="stripe", read_at=AT)
    assert again == [] and book.invoices["in_1"].paid == 100 and book.invoices["in_1"].payment_ids == ["ch_1"]


def test_catch_up_of_a_written_off_invoice_the_ledger_never_heard_of_writes_off_the_rest() -> None:
    events = catch_up_events(invoice(InvoiceStatus.UNCOLLECTIBLE, "40.00", ["ch_1"]), [], None,
                             source_system="stripe", read_at=AT)
    assert [type(e) for e in events] == [InvoiceFinalized, InvoicePaid, InvoiceVoided]
    book = LedgerBook(customer_id="cus_1", entities={"US01": "t-us"})
    for event in events:
        book, _ = apply(book, event, now=AT)
    entry = book.invoices["in_1"]
    assert entry.status is InvoiceStatus.UNCOLLECTIBLE and entry.paid == 40
    [write_off] = [w for w in entry.erp_pending if w.credit_note is not None]
    assert write_off.credit_note is not None and write_off.credit_note.amount == Money.of("60.00", "USD")
