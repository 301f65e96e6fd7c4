"""The ledger's settlement rules (``canonical.settlement``) without servers: every order of a scenario's
events, each delivered twice, reaches the same book and makes each ERP write once."""

from __future__ import annotations

import itertools
from collections import Counter, deque
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canonical import (
    Account,
    CreditNote,
    CreditNoteIssued,
    Invoice,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceStatus,
    InvoiceVoided,
    Money,
    Payment,
)
from canonical.events import DomainEvent
from canonical.exceptions import ExceptionKind
from canonical.ledger import BillingCustomer, ErpWriteKind
from canonical.settlement import (
    ERP_ACTIONS,
    Action,
    ArmTimer,
    LedgerBook,
    Notify,
    Outcome,
    OverdueChanged,
    PostCreditNote,
    PostInvoice,
    RecordPayment,
    RefreshCrmFigures,
    Repost,
    ReverseCreditNote,
    Tick,
    VoidInvoice,
    apply,
    balances,
    configure,
    fold,
    settle,
)

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
DUE = date(2026, 3, 31)
INVOICE = "in_1"
CUSTOMER = "cus_1"


def invoice(status: InvoiceStatus = InvoiceStatus.OPEN, *, paid: str = "0", total: str = "1000.00",
            invoice_id: str = INVOICE, entity: str | None = "US01") -> Invoice:
    money = Money.of(total, "USD")
    return Invoice(billing_id=invoice_id, number=f"INV-{invoice_id}", customer_id=CUSTOMER, currency="USD",
                   status=status, issued_on=date(2026, 3, 1), due_on=DUE, subtotal=money, tax=Money.of(0, "USD"),
                   total=money, amount_paid=Money.of(paid, "USD"),
                   amount_due=Money.of(Decimal(total) - Decimal(paid), "USD"), crm_deal_id="deal-1",
                   legal_entity=entity)


def base(event_id: str, minute: int = 0) -> dict[str, object]:
    return {"source_system": "stripe", "source_event_id": event_id, "correlation_id": event_id,
            "occurred_at": NOW + timedelta(minutes=minute)}


def finalized(**kw: object) -> InvoiceFinalized:
    return InvoiceFinalized(**base("evt_final"), invoice=invoice(**kw))  # type: ignore[arg-type]


def paid(event_id: str, payment_id: str, amount_paid: str, status: InvoiceStatus, total: str = "1000.00"
         ) -> InvoicePaid:
    payment = Payment(billing_id=payment_id, invoice_billing_id=INVOICE, amount=Money.of(amount_paid, "USD"),
                      paid_at=NOW)
    return InvoicePaid(**base(event_id), invoice=invoice(status, paid=amount_paid, total=total),  # type: ignore[arg-type]
                       payment=payment)


def credited(note_id: str = "cn_1", amount: str = "200.00", before_payment: bool | None = None
             ) -> CreditNoteIssued:
    note = CreditNote(billing_id=note_id, invoice_billing_id=INVOICE, amount=Money.of(amount, "USD"),
                      reason="order_change", before_payment=before_payment)
    return CreditNoteIssued(**base(f"evt_{note_id}"), credit_note=note, customer_id=CUSTOMER)  # type: ignore[arg-type]


def failed(total: str = "1000.00") -> InvoicePaymentFailed:
    return InvoicePaymentFailed(**base("evt_failed"), invoice=invoice(total=total),  # type: ignore[arg-type]
                                failure_reason="card_declined")


def voided(uncollectible: bool, paid_so_far: str = "0", total: str = "1000.00") -> InvoiceVoided:
    status = InvoiceStatus.UNCOLLECTIBLE if uncollectible else InvoiceStatus.VOID
    return InvoiceVoided(**base("evt_uncollectible" if uncollectible else "evt_void"),  # type: ignore[arg-type]
                         invoice=invoice(status, paid=paid_so_far, total=total), uncollectible=uncollectible)


class FakeErp:
    """The ERP and billing as the actions meet them: every write recorded by its idempotency key; the steps
    named in ``refuse`` are refused (as often as they are tried, until removed).

    It keeps the receivables as the ERP does: a payment above the amount due is refused, an invoice with a
    payment or credit allocated cannot be voided, a credit note is allocated up to the amount due, and
    reversing a credit note takes its allocation back. ``amounts_due=False`` accepts any payment: a credit
    note delivered before the payment that preceded it is taken for a credit before payment (the canonical
    credit note does not say which it was), which the ERP's amounts due would refuse."""

    def __init__(self, billing: Invoice | None = None, *, amounts_due: bool = True) -> None:
        self.billing = billing or invoice()
        self.amounts_due = amounts_due
        self.writes: list[tuple[str, Action]] = []
        self.refuse: set[str] = set()
        self.notices: list[Notify] = []
        self.figures = 0
        self.receivables: dict[str, dict[str, Decimal | bool]] = {}
        self.credits: dict[str, dict[str, Decimal | bool | str]] = {}

    def _due(self, invoice_id: str) -> Decimal:
        held = self.receivables[invoice_id]
        if held["voided"]:
            return Decimal(0)
        return Decimal(held["total"]) - Decimal(held["paid"]) - Decimal(held["credited"])

    def _ledger(self, action: Action, loaded: Invoice | None) -> str | None:
        """The ERP's own rules; a reason when it refuses."""
        if isinstance(action, PostInvoice):
            posted = action.invoice or loaded or self.billing
            self.receivables.setdefault(action.invoice_id, {"total": posted.total.amount, "paid": Decimal(0),
                                                            "credited": Decimal(0), "voided": False})
            return None
        held = self.receivables[action.invoice_id]
        if isinstance(action, RecordPayment):
            if self.amounts_due and action.payment.amount.amount > self._due(action.invoice_id):
                return "Payment amount exceeds the amount outstanding on this document"
            held["paid"] = Decimal(held["paid"]) + action.payment.amount.amount
        elif isinstance(action, PostCreditNote):
            amount = action.credit_note.amount.amount
            allocated = (Decimal(0) if action.credit_note.before_payment is False
                         else min(amount, self._due(action.invoice_id)))
            held["credited"] = Decimal(held["credited"]) + allocated
            self.credits[action.credit_note.billing_id] = {"amount": amount, "allocated": allocated,
                                                           "invoice": action.invoice_id, "voided": False}
        elif isinstance(action, VoidInvoice):
            if held["paid"] or held["credited"]:
                return "This document cannot be edited as it has a payment or credit note allocated to it."
            held["voided"] = True
        elif isinstance(action, ReverseCreditNote):
            credit = self.credits.get(action.credit_note.billing_id)
            if credit is not None and not credit["voided"]:
                held["credited"] = Decimal(held["credited"]) - Decimal(credit["allocated"])
                credit.update(allocated=Decimal(0), voided=True)
        return None

    def books(self) -> dict[str, object]:
        """What the ERP's receivables say once everything is done (documents voided since have no effect)."""
        return {"receivables": {k: {**v, "due": self._due(k)} for k, v in self.receivables.items()},
                "credit": sorted((str(c["invoice"]), Decimal(c["amount"]), Decimal(c["allocated"]))
                                 for c in self.credits.values() if not c["voided"])}

    def answer(self, action: Action) -> Outcome:
        if isinstance(action, Notify):
            self.notices.append(action)
            return Outcome(ok=True)
        if isinstance(action, RefreshCrmFigures):
            self.figures += 1
            return Outcome(ok=True)
        assert isinstance(action, ERP_ACTIONS)
        loaded = self.billing if isinstance(action, PostInvoice) and action.invoice is None else None
        if action.step in self.refuse:
            return Outcome(ok=False, reason="ValidationException: refused", invoice=loaded)
        refused = self._ledger(action, loaded)
        if refused is not None:
            return Outcome(ok=False, reason=f"ValidationException: {refused}", invoice=loaded)
        self.writes.append((f"{action.invoice_id}:{action.step}", action))
        return Outcome(ok=True, erp_id=f"erp-{action.invoice_id}", contact_id="contact-1", invoice=loaded)

    def keys(self) -> Counter[str]:
        return Counter(key for key, _ in self.writes)

    def of(self, kind: type) -> list[Action]:
        return [a for _, a in self.writes if isinstance(a, kind)]


def new_book(entity: str | None = "US01") -> LedgerBook:
    customer = BillingCustomer(customer_id=CUSTOMER, account=Account(name="Acme", crm_id="c-1"), legal_entity=entity)
    book, _ = configure(LedgerBook(customer_id=CUSTOMER), entities={"US01": "tenant-us"}, dedupe_window=2000,
                        dso_window_days=90, customer=customer, customer_error=None, now=NOW)
    return book


def drain(book: LedgerBook, actions: list[Action], erp: FakeErp, now: datetime,
          seen: list[Action] | None = None) -> LedgerBook:
    """What the workflow does: carry out each action, settle its outcome, carry out what that asks for
    after the rest (actions come in the order the book emitted them; the last ArmTimer is the one that holds)."""
    queue = deque(actions)
    while queue:
        action = queue.popleft()
        if seen is not None:
            seen.append(action)
        if isinstance(action, (*ERP_ACTIONS, Notify, RefreshCrmFigures)):
            book, more = settle(book, action, erp.answer(action), now=now)
            queue.extend(more)
    return book


def run(events: Sequence[DomainEvent | Tick | Repost], erp: FakeErp, book: LedgerBook | None = None,
        now: datetime = NOW) -> LedgerBook:
    book = book or new_book()
    for event in events:
        book, actions = apply(book, event, now=now)
        book = drain(book, actions, erp, now)
    return book


def final(book: LedgerBook) -> dict[str, object]:
    """What the book says of the invoice once every event is in (the order-free part of it)."""
    entry = book.invoices[INVOICE]
    return {"status": entry.status, "paid": entry.paid, "credited": entry.credited, "outstanding": entry.outstanding,
            "total": entry.total, "number": entry.number, "erp_invoice_id": entry.erp_invoice_id,
            "pending": entry.erp_pending, "credit_notes": sorted(entry.credit_note_ids),
            "failures": entry.payment_failures, "overdue": entry.overdue, "exception": book.exception,
            "events": book.events_applied, "balances": balances(book, today=NOW.date())}


# -- payments, a credit note and a failure in every order -----------------------------------------------
PAYMENT_EVENTS: list[DomainEvent] = [
    finalized(),
    paid("evt_partial", "py_1", "400.00", InvoiceStatus.OPEN),
    paid("evt_paid", "py_2", "1000.00", InvoiceStatus.PAID),
    credited(),
    failed(),
]


def test_every_order_of_payments_credit_and_failure_twice_gives_one_book_and_each_write_once() -> None:
    expected = None
    for order in itertools.permutations(PAYMENT_EVENTS):
        erp = FakeErp(amounts_due=False)
        book = run([*order, *reversed(order)], erp)  # every event a second time
        state = final(book)
        expected = expected or state
        assert state == expected, [e.source_event_id for e in order]
        assert all(n == 1 for n in erp.keys().values()), erp.keys()
        assert len(erp.of(PostInvoice)) == 1 and len(erp.of(PostCreditNote)) == 1
        payments = [a for a in erp.of(RecordPayment) if isinstance(a, RecordPayment)]
        assert sum(p.payment.amount.amount for p in payments) == Decimal("1000.00")
        assert len({p.payment.billing_id for p in payments}) == len(payments)
        assert not erp.of(VoidInvoice) and not erp.notices
    assert expected is not None
    assert (expected["status"], expected["paid"], expected["credited"], expected["outstanding"]) == (
        InvoiceStatus.PAID, Decimal("1000.00"), Decimal("200.00"), Decimal(0))
    assert expected["pending"] == [] and expected["exception"] is ExceptionKind.NONE and expected["events"] == 5


@settings(max_examples=150, deadline=None)
@given(st.permutations(PAYMENT_EVENTS), st.lists(st.sampled_from(PAYMENT_EVENTS), max_size=8))
def test_any_order_with_any_repeats_reaches_the_same_book(order: list[DomainEvent],
                                                          repeats: list[DomainEvent]) -> None:
    erp = FakeErp(amounts_due=False)
    book = run([*order[:2], *repeats[:4], *order[2:], *repeats[4:]], erp)
    reference = run(PAYMENT_EVENTS, FakeErp(amounts_due=False))
    assert final(book) == final(reference)
    assert all(n == 1 for n in erp.keys().values())


def test_a_duplicate_gives_no_actions_and_leaves_the_book_as_it_was() -> None:
    erp = FakeErp()
    book = run([finalized()], erp)
    again, actions = apply(book, finalized(), now=NOW)
    assert actions == [] and again == book


def test_paid_before_finalized_posts_the_invoice_first_from_the_events_snapshot() -> None:
    book, actions = apply(new_book(), paid("evt_paid", "py_1", "1000.00", InvoiceStatus.PAID), now=NOW)
    [post] = [a for a in actions if isinstance(a, ERP_ACTIONS)]
    assert isinstance(post, PostInvoice) and post.invoice is not None and post.tenant_id == "tenant-us"
    assert book.invoices[INVOICE].status is InvoiceStatus.PAID
    erp = FakeErp()
    seen: list[Action] = []
    drain(book, actions, erp, NOW, seen)
    assert [type(a) for a in seen if isinstance(a, ERP_ACTIONS)] == [PostInvoice, RecordPayment]


def test_credit_note_before_payment_lowers_what_is_owed_and_the_rest_settles() -> None:
    erp = FakeErp()
    book = run([finalized(), credited("cn_1", "300.00")], erp)
    assert book.invoices[INVOICE].outstanding == Decimal("700.00")
    book = run([paid("evt_rest", "py_1", "700.00", InvoiceStatus.PAID)], erp, book)
    entry = book.invoices[INVOICE]
    assert entry.status is InvoiceStatus.PAID and entry.outstanding == 0 and entry.credited == Decimal("300.00")


def test_credit_note_for_an_unknown_invoice_reads_it_from_billing_and_posts_it_first() -> None:
    erp = FakeErp(billing=invoice())
    seen: list[Action] = []
    book, actions = apply(new_book(), credited("cn_9", "1000.00"), now=NOW)
    assert book.invoices[INVOICE].status is InvoiceStatus.OPEN, "not settled before its total is known"
    book = drain(book, actions, erp, NOW, seen)
    erp_actions = [a for a in seen if isinstance(a, ERP_ACTIONS)]
    assert [type(a) for a in erp_actions] == [PostInvoice, PostCreditNote]
    assert isinstance(erp_actions[0], PostInvoice) and erp_actions[0].invoice is None
    entry = book.invoices[INVOICE]
    assert entry.total == Decimal("1000.00") and entry.status is InvoiceStatus.PAID and entry.number


# -- write-off and void in every order ------------------------------------------------------------------
CLOSING_EVENTS: list[DomainEvent] = [
    finalized(), paid("evt_partial", "py_1", "100.00", InvoiceStatus.OPEN), failed(),
    voided(uncollectible=True, paid_so_far="100.00"), voided(uncollectible=False, paid_so_far="100.00"),
]


def test_every_order_of_write_off_and_void_twice_closes_the_invoice_once() -> None:
    states = []
    for order in itertools.permutations(CLOSING_EVENTS):
        erp = FakeErp()
        book = run([*order, *order], erp)
        states.append(final(book))
        assert all(n == 1 for n in erp.keys().values()), erp.keys()
        assert len(erp.of(PostInvoice)) == 1
        closing = erp.of(VoidInvoice) + [a for a in erp.of(PostCreditNote)
                                         if isinstance(a, PostCreditNote) and a.write_off]
        assert len(closing) == 1, f"the receivable is closed once, got {closing}"
        if isinstance(closing[0], PostCreditNote):  # written off: the write-off and the payment make the total
            payments = [a.payment.amount.amount for a in erp.of(RecordPayment) if isinstance(a, RecordPayment)]
            assert closing[0].credit_note.amount.amount + sum(payments) == Decimal("1000.00"), order
    assert all(s == states[0] for s in states)
    assert states[0]["status"] is InvoiceStatus.VOID and states[0]["paid"] == Decimal("100.00")
    assert states[0]["exception"] is ExceptionKind.NONE


def test_uncollectible_writes_off_what_is_owed_then_void_changes_only_the_status() -> None:
    erp = FakeErp()
    book = run(CLOSING_EVENTS[:2] + [voided(uncollectible=True, paid_so_far="100.00")], erp)
    [write_off] = [a for a in erp.of(PostCreditNote) if isinstance(a, PostCreditNote)]
    assert write_off.write_off and write_off.credit_note.amount == Money.of("900.00", "USD")
    assert book.invoices[INVOICE].status is InvoiceStatus.UNCOLLECTIBLE
    writes = len(erp.writes)
    book = run([voided(uncollectible=False, paid_so_far="100.00")], erp, book)
    assert book.invoices[INVOICE].status is InvoiceStatus.VOID and len(erp.writes) == writes


def test_void_event_whose_snapshot_already_says_void_voids_the_erp_invoice() -> None:
    """Stripe's ``invoice.voided`` carries the invoice with status ``void``: the snapshot must not settle it
    before the event does, or the ERP invoice stays open (the old rules did exactly that)."""
    erp = FakeErp()
    book = run([finalized(), voided(uncollectible=False)], erp)
    [void] = erp.of(VoidInvoice)
    assert isinstance(void, VoidInvoice) and void.erp_invoice_id == f"erp-{INVOICE}"
    assert book.invoices[INVOICE].status is InvoiceStatus.VOID and book.invoices[INVOICE].settled_on == NOW.date()


def test_void_of_an_invoice_the_erp_refused_drops_its_writes() -> None:
    erp = FakeErp()
    erp.refuse.add("post")
    book = run([finalized(), paid("evt_partial", "py_1", "100.00", InvoiceStatus.OPEN)], erp)
    assert book.exception is ExceptionKind.ERP_REJECTED
    book = run([voided(uncollectible=False, paid_so_far="100.00")], erp, book)
    assert book.invoices[INVOICE].erp_pending == [] and book.exception is ExceptionKind.NONE and not erp.writes


# -- refusals: kept pending, told once, re-posted --------------------------------------------------------
@pytest.mark.parametrize("step, event", [
    ("payment:py_1", paid("evt_paid", "py_1", "1000.00", InvoiceStatus.PAID)),
    ("credit:cn_1", credited()),
    ("write-off", voided(uncollectible=True)),
    ("void", voided(uncollectible=False)),
])
def test_every_refused_erp_write_is_told_once_across_retries_and_posted_on_repost(step: str,
                                                                                  event: DomainEvent) -> None:
    erp = FakeErp()
    erp.refuse.add(step)
    book = run([finalized(), event], erp)
    entry = book.invoices[INVOICE]
    [pending] = entry.erp_pending
    assert pending.step == step and pending.reason.startswith("the ERP refused") and book.exception == "erp_rejected"
    # tried again with the next event, every hour, and by the operator: still one notice
    book = run([failed(), Tick(), Repost(invoice_id=INVOICE)], erp, book, now=NOW + timedelta(hours=2))
    [notice] = erp.notices
    assert notice.scope == INVOICE and notice.step == f"notice-erp-rejected:{step}" and "refused" in notice.title
    assert book.invoices[INVOICE].erp_pending[0].attempts == 4
    erp.refuse.clear()
    book = run([Repost(invoice_id=None)], erp, book, now=NOW + timedelta(hours=2))
    assert book.invoices[INVOICE].erp_pending == [] and erp.keys()[f"{INVOICE}:{step}"] == 1
    assert len(erp.notices) == 1 and book.exception in (ExceptionKind.NONE, ExceptionKind.PAYMENT_FAILED)
    assert book.invoices[INVOICE].needed_person, "settled by a re-post, the refusal still counts for the KPIs"


def test_refused_invoice_posting_is_told_with_its_own_key_and_its_writes_wait() -> None:
    erp = FakeErp()
    erp.refuse.add("post")
    book = run([finalized(), paid("evt_paid", "py_1", "1000.00", InvoiceStatus.PAID)], erp)
    [notice] = erp.notices
    assert notice.step == "notice-erp-rejected" and notice.title == f"ERP refused invoice INV-{INVOICE} (US01)"
    kinds = {w.kind: w.reason for w in book.invoices[INVOICE].erp_pending}
    assert kinds[ErpWriteKind.PAYMENT] == "waiting for the invoice to be posted to the ERP"
    # the hourly re-post takes it once the ERP does
    erp.refuse.clear()
    book, actions = apply(book, Tick(), now=NOW + timedelta(minutes=59))
    assert not [a for a in actions if isinstance(a, ERP_ACTIONS)], "not before the hour"
    book = run([Tick()], erp, book, now=NOW + timedelta(hours=1))
    assert book.invoices[INVOICE].erp_pending == [] and [type(a) for _, a in erp.writes] == [PostInvoice,
                                                                                             RecordPayment]


def test_invoice_without_a_known_legal_entity_is_unroutable_and_not_posted() -> None:
    erp = FakeErp()
    book = run([finalized(entity="ZZ99")], erp, new_book(entity=None))
    assert book.exception is ExceptionKind.UNROUTABLE_INVOICE and not erp.writes
    assert "no legal entity 'ZZ99'" in book.invoices[INVOICE].erp_pending[0].reason


# -- due dates ------------------------------------------------------------------------------------------
def test_overdue_from_the_day_after_the_due_date_and_cleared_by_payment() -> None:
    erp = FakeErp()
    book, actions = apply(new_book(), finalized(), now=NOW)
    assert ArmTimer(at=datetime(2026, 4, 1, tzinfo=UTC)) in actions
    book = drain(book, actions, erp, NOW)
    book, actions = apply(book, Tick(), now=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    assert not book.invoices[INVOICE].overdue and not actions
    book, actions = apply(book, Tick(), now=datetime(2026, 4, 1, tzinfo=UTC))
    assert book.invoices[INVOICE].overdue and book.exception is ExceptionKind.INVOICE_OVERDUE
    assert RefreshCrmFigures() in actions
    assert [(a.invoice_id, a.overdue) for a in actions if isinstance(a, OverdueChanged)] == [(INVOICE, True)]
    assert ArmTimer(at=None) in actions, "nothing more to wake for"
    [usd] = balances(book, today=date(2026, 4, 1))
    assert usd.overdue == "1000.00"
    cleared: list[Action] = []
    book, actions = apply(book, paid("evt_paid", "py_1", "1000.00", InvoiceStatus.PAID),
                          now=datetime(2026, 4, 3, tzinfo=UTC))
    book = drain(book, actions, erp, datetime(2026, 4, 3, tzinfo=UTC), cleared)
    assert [(a.invoice_id, a.overdue) for a in cleared if isinstance(a, OverdueChanged)] == [(INVOICE, False)]
    assert not book.invoices[INVOICE].overdue and book.exception is ExceptionKind.NONE
    assert balances(book, today=date(2026, 4, 3))[0].overdue == "0.00"


# -- continue-as-new --------------------------------------------------------------------------------------
def test_folding_keeps_the_answers_and_what_later_events_need() -> None:
    erp = FakeErp()
    book = run(PAYMENT_EVENTS, erp)
    later = datetime(2026, 9, 1, tzinfo=UTC)
    book = run([InvoiceFinalized(**base("evt_other"), invoice=invoice(invoice_id="in_2", total="50.00"))],  # type: ignore[arg-type]
               erp, book, now=later)
    erp.refuse.add("payment:py_9")
    book = run([InvoicePaid(**base("evt_other_paid"), invoice=invoice(  # type: ignore[arg-type]
        InvoiceStatus.PAID, invoice_id="in_3", total="20.00", paid="20.00"), payment=Payment(
        billing_id="py_9", invoice_billing_id="in_3", amount=Money.of("20.00", "USD"), paid_at=later))],
        erp, book, now=later)
    folded = fold(book, today=later.date())
    assert set(folded.invoices) == {"in_2", "in_3"}, "settled long ago: folded; open or owing the ERP: kept"
    assert balances(folded, today=later.date()) == balances(book, today=later.date())
    assert folded.seen_event_ids == book.seen_event_ids and folded.events_applied == book.events_applied
    # the next run: a late duplicate of a folded invoice's event does nothing, the refused payment still waits
    again, actions = apply(LedgerBook.model_validate_json(folded.model_dump_json()), PAYMENT_EVENTS[2], now=later)
    assert actions == [] and again.events_applied == folded.events_applied
    erp.refuse.clear()
    again = run([Repost()], erp, again, now=later)
    assert again.invoices["in_3"].erp_pending == [] and again.exception is ExceptionKind.NONE


def test_events_of_another_customer_are_noted_and_ignored() -> None:
    erp = FakeErp()
    other = InvoiceFinalized(**base("evt_x"), invoice=invoice().model_copy(update={"customer_id": "cus_9"}))  # type: ignore[arg-type]
    book = run([other], erp)
    assert book.invoices == {} and not erp.writes and book.events_applied == 1


def test_the_last_timer_the_actions_arm_is_the_books_own() -> None:
    """A refused write arms the hourly re-post; the dispatcher, taking actions in order, ends on that timer."""
    erp = FakeErp()
    erp.refuse.add("payment:py_1")
    seen: list[Action] = []
    book = new_book()
    for event in [finalized(), paid("evt_paid", "py_1", "1000.00", InvoiceStatus.PAID)]:
        book, actions = apply(book, event, now=NOW)
        book = drain(book, actions, erp, NOW, seen)
    timers = [a for a in seen if isinstance(a, ArmTimer)]
    assert timers[-1].at == book.wake_at == NOW + timedelta(hours=1)


# -- issue 24: cash after a write-off, a void after part payment, in every order ------------------------
def closing_writes(erp: FakeErp) -> list[Action]:
    return [a for a in erp.of(PostCreditNote) if isinstance(a, PostCreditNote) and a.write_off]


#: written off with 100 paid, then paid in full (billing allows it)
PAID_AFTER_WRITE_OFF: list[DomainEvent] = [
    finalized(), paid("evt_partial", "py_1", "100.00", InvoiceStatus.OPEN), failed(),
    voided(uncollectible=True, paid_so_far="100.00"), paid("evt_paid", "py_2", "1000.00", InvoiceStatus.PAID),
]
#: 100 paid and 200 credited, then voided: the remainder (700) is closed, the cash and the credit stay
VOID_AFTER_PART_PAYMENT: list[DomainEvent] = [
    finalized(), paid("evt_partial", "py_1", "100.00", InvoiceStatus.OPEN), credited("cn_1", "200.00"),
    voided(uncollectible=True, paid_so_far="100.00"), voided(uncollectible=False, paid_so_far="100.00"),
]
#: nothing paid, written off, then voided: the ERP invoice ends void and nothing else stands
VOID_AFTER_WRITE_OFF: list[DomainEvent] = [finalized(), voided(uncollectible=True), voided(uncollectible=False)]
#: paid 400 then the rest, with a 200.00 credit note billing issued after payment (a refund): delivered in any
#: order, the ERP takes every payment and never lets the refund lower what the invoice asks for
PAID_THEN_REFUNDED: list[DomainEvent] = [
    finalized(), paid("evt_partial", "py_1", "400.00", InvoiceStatus.OPEN),
    paid("evt_paid", "py_2", "1000.00", InvoiceStatus.PAID), credited(before_payment=False), failed(),
]


def test_cash_after_a_write_off_reverses_it_and_posts_the_payment() -> None:
    """The controller's book: 1000.00 billed, 100.00 paid, 900.00 written off, then 1000.00 paid in full.
    The ERP must end with 1000.00 of payments, no write-off standing and nothing due."""
    erp = FakeErp()
    book = run(PAID_AFTER_WRITE_OFF, erp)
    assert erp.books()["receivables"] == {INVOICE: {"total": Decimal("1000.00"), "paid": Decimal("1000.00"),
                                                    "credited": Decimal(0), "voided": False, "due": Decimal(0)}}
    assert erp.books()["credit"] == [], "the write-off is reversed"
    [write_off] = closing_writes(erp)
    [reversal] = erp.of(ReverseCreditNote)
    assert isinstance(reversal, ReverseCreditNote) and write_off.credit_note == reversal.credit_note
    entry = book.invoices[INVOICE]
    assert entry.status is InvoiceStatus.PAID and entry.paid == Decimal("1000.00") and entry.erp_pending == []
    assert book.exception in (ExceptionKind.NONE, ExceptionKind.PAYMENT_FAILED) and not erp.notices


def test_void_after_part_payment_credits_the_unpaid_remainder_and_keeps_the_cash() -> None:
    """1000.00 billed, 100.00 paid, voided: the ERP refuses a void of a part-paid invoice, so the remainder
    (900.00) is credited; the payment stays allocated."""
    erp = FakeErp()
    book = run([finalized(), paid("evt_partial", "py_1", "100.00", InvoiceStatus.OPEN),
                voided(uncollectible=False, paid_so_far="100.00")], erp)
    assert erp.books() == {"receivables": {INVOICE: {"total": Decimal("1000.00"), "paid": Decimal("100.00"),
                                                     "credited": Decimal("900.00"), "voided": False,
                                                     "due": Decimal(0)}},
                           "credit": [(INVOICE, Decimal("900.00"), Decimal("900.00"))]}
    assert not erp.of(VoidInvoice) and not erp.notices
    entry = book.invoices[INVOICE]
    assert entry.status is InvoiceStatus.VOID and entry.erp_pending == [] and book.exception is ExceptionKind.NONE


@pytest.mark.parametrize("events, receivable, credit", [
    (PAID_AFTER_WRITE_OFF, {"paid": Decimal("1000.00"), "credited": Decimal(0), "voided": False}, []),
    (VOID_AFTER_PART_PAYMENT, {"paid": Decimal("100.00"), "credited": Decimal("900.00"), "voided": False},
     [(INVOICE, Decimal("200.00"), Decimal("200.00")), (INVOICE, Decimal("700.00"), Decimal("700.00"))]),
    (VOID_AFTER_WRITE_OFF, {"paid": Decimal(0), "credited": Decimal(0), "voided": True}, []),
], ids=["paid-after-write-off", "void-after-part-payment", "void-after-write-off"])
def test_every_order_twice_ends_in_the_same_erp_books_with_each_write_once(
        events: list[DomainEvent], receivable: dict[str, object], credit: list[object]) -> None:
    expected = {"receivables": {INVOICE: {"total": Decimal("1000.00"), **receivable, "due": Decimal(0)}},
                "credit": credit}
    for order in itertools.permutations(events):
        erp = FakeErp()
        book = run([*order, *order], erp)
        assert erp.books() == expected, [e.source_event_id for e in order]
        assert all(n == 1 for n in erp.keys().values()), erp.keys()
        assert book.invoices[INVOICE].erp_pending == [] and not erp.notices, [e.source_event_id for e in order]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([PAID_AFTER_WRITE_OFF, VOID_AFTER_PART_PAYMENT, VOID_AFTER_WRITE_OFF, CLOSING_EVENTS,
                        PAYMENT_EVENTS[:3] + PAYMENT_EVENTS[4:], PAID_THEN_REFUNDED]).flatmap(
    lambda events: st.tuples(st.just(events), st.permutations(events),
                             st.lists(st.sampled_from(events), max_size=6))))
def test_settlement_is_order_independent_and_writes_each_document_once(
        case: tuple[list[DomainEvent], list[DomainEvent], list[DomainEvent]]) -> None:
    """Any order of paid / partly paid / uncollectible / void / credit note, with any repeats, leaves the ERP
    books as the events in billing's own order do, and no idempotency key is written twice."""
    events, order, repeats = case
    reference = FakeErp()
    run(events, reference)
    erp = FakeErp()
    book = run([*order[:2], *repeats[:3], *order[2:], *repeats[3:]], erp)
    assert erp.books() == reference.books()
    assert all(n == 1 for n in erp.keys().values()), erp.keys()
    assert book.invoices[INVOICE].erp_pending == []


def test_a_refused_reversal_holds_the_payment_back_until_a_repost_takes_it() -> None:
    erp = FakeErp()
    erp.refuse.add("reverse-write-off")
    book = run(PAID_AFTER_WRITE_OFF, erp)
    pending = {w.step: w.reason for w in book.invoices[INVOICE].erp_pending}
    assert pending["reverse-write-off"].startswith("the ERP refused the reversal")
    assert pending["payment:py_2"] == "waiting for the closing credit to be reversed in the ERP"
    assert book.exception is ExceptionKind.ERP_REJECTED and len(erp.notices) == 1
    assert not [a for a in erp.of(RecordPayment) if isinstance(a, RecordPayment) and a.payment.billing_id == "py_2"]
    erp.refuse.clear()
    book = run([Repost(invoice_id=INVOICE)], erp, book)
    assert book.invoices[INVOICE].erp_pending == [] and erp.books()["credit"] == []
    assert erp.books()["receivables"][INVOICE]["paid"] == Decimal("1000.00")  # type: ignore[index]


def test_a_credit_note_issued_after_payment_never_lowers_the_invoice_whatever_the_order() -> None:
    expected = {"receivables": {INVOICE: {"total": Decimal("1000.00"), "paid": Decimal("1000.00"),
                                          "credited": Decimal(0), "voided": False, "due": Decimal(0)}},
                "credit": [(INVOICE, Decimal("200.00"), Decimal(0))]}
    for order in itertools.permutations(PAID_THEN_REFUNDED):
        erp = FakeErp()
        book = run([*order, *order], erp)
        assert erp.books() == expected, [e.source_event_id for e in order]
        entry = book.invoices[INVOICE]
        assert (entry.status, entry.credited_before_payment, entry.erp_pending) == (InvoiceStatus.PAID, 0, [])
        assert not erp.notices and all(n == 1 for n in erp.keys().values())


def test_a_credit_note_issued_before_payment_lowers_the_invoice_even_when_delivered_after_the_payment() -> None:
    """Billing credited 200.00 while unpaid, then took 800.00: delivered payment first, the ledger must still
    count the credit against the invoice (it used to take it for a refund and leave 200.00 due)."""
    erp = FakeErp()
    book = run([finalized(), paid("evt_paid", "py_1", "800.00", InvoiceStatus.PAID),
                credited(before_payment=True)], erp)
    assert erp.books()["receivables"][INVOICE]["due"] == 0  # type: ignore[index]
    assert book.invoices[INVOICE].credited_before_payment == Decimal("200.00")


def test_in_place_reaches_the_same_book_and_only_the_default_leaves_the_book_given_as_it_was() -> None:
    """The ledger workflow changes its book in place (a copy per event cost the whole book each time); the result
    must be the book the copying functions give, and a caller that keeps an earlier book must still get copies."""
    events: list[DomainEvent | Tick | Repost] = [
        finalized(), paid("evt_p1", "py_1", "400.00", InvoiceStatus.OPEN), credited(), finalized(), Tick(),
        paid("evt_p2", "py_2", "800.00", InvoiceStatus.PAID), Repost(invoice_id=None)]
    copied, erp_a = new_book(), FakeErp()
    kept = copied
    before = kept.model_dump()
    changed, erp_b = new_book(), FakeErp()
    same = changed
    for event in events:
        copied, actions = apply(copied, event, now=NOW)
        changed, in_place_actions = apply(changed, event, now=NOW, in_place=True)
        assert changed is same and in_place_actions == actions
        queue, queue_b = deque(actions), deque(in_place_actions)
        while queue:
            action, action_b = queue.popleft(), queue_b.popleft()
            if isinstance(action, (*ERP_ACTIONS, Notify, RefreshCrmFigures)):
                copied, more = settle(copied, action, erp_a.answer(action), now=NOW)
                changed, more_b = settle(changed, action_b, erp_b.answer(action_b), now=NOW, in_place=True)
                assert changed is same and more_b == more
                queue.extend(more)
                queue_b.extend(more_b)
    assert changed.model_dump() == copied.model_dump() and erp_a.keys() == erp_b.keys()
    assert copied is not kept and kept.model_dump() == before  # the copying path never touched the first book
    assert final(changed)["status"] is InvoiceStatus.PAID
