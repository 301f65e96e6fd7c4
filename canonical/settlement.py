"""The ledger's settlement rules as a pure state machine: a billing customer's :class:`LedgerBook` and what
to do next.

``apply(book, event, now=...)`` takes one billing event (or a :class:`Tick` of the clock, or an operator's
:class:`Repost`) and returns the next book and the :data:`Action` s the workflow must carry out: post the
invoice to the ERP, record a payment, post a credit note or a write-off, void, refresh the CRM figures,
notify, note, re-arm the timer (the book keeps its exception kind itself). What the vendors answer comes back through
``settle(book, action, outcome, now=...)``, which may ask for more (the writes that waited for their invoice).

Rules, whatever the order in which events arrive and however often:

* an invoice is in the ERP before anything else touches it there: posted from the first event's snapshot
  (a payment before ``finalized`` posts it first), or read from billing when only a credit note names it;
* an event already seen (same source event ID) does nothing; a payment is what the invoice shows paid less
  what the book recorded (``unrecorded_payment``), so partial then rest, or rest then partial, pay it once;
* a credit note before payment lowers what is owed; paid + credited-before-payment >= total settles it;
* uncollectible writes off what is still owed with a credit note; a void after a write-off only changes the
  status (the ERP invoice is already settled); a void of an invoice the ERP refused drops its writes;
* an open invoice is overdue from the day after its due date, and no longer once settled;
* a refused ERP write stays pending with its reason, is tried again with the next event, every hour, or on
  an operator's ``repost`` (same idempotency key), and operations are told of it once.

No I/O, no clock (``now`` is an argument), no Temporal: canonical is layer 0.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from canonical.billing import CreditNote, Invoice, InvoiceStatus, Payment
from canonical.events import (
    CreditNoteIssued,
    DomainEvent,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceVoided,
)
from canonical.exceptions import LEDGER_EXCEPTION_KINDS, ExceptionKind, most_urgent
from canonical.keys import write_off_credit_note_id
from canonical.ledger import (
    BillingCustomer,
    CurrencyHistory,
    ErpWriteKind,
    LedgerInvoice,
    PendingErpWrite,
    apply_invoice_snapshot,
    figures_by_currency,
    unrecorded_payment,
)
from canonical.money import Money
from canonical.requests import AccountFigures

#: how often a book with ERP writes pending tries them again by itself (the cause may have been fixed)
REPOST_EVERY = timedelta(hours=1)
#: the notice of a refused invoice posting keeps the key it always had (``<wf>:<invoice>:notice-erp-rejected``)
REFUSAL_NOTICE = "notice-erp-rejected"


# -- the book -------------------------------------------------------------------------------------------
class LedgerBook(BaseModel):
    """Everything the ledger knows of one billing customer; what continue-as-new carries (after :func:`fold`)."""

    customer_id: str
    crm_company_id: str | None = None
    customer_entity: str | None = Field(default=None, description="the billing customer's legal entity")
    entities: dict[str, str] = Field(default_factory=dict, description="legal entity code -> ERP tenant ID")
    erp_contacts: dict[str, str] = Field(default_factory=dict, description="legal entity -> ERP contact ID")
    dedupe_window: int = 2000
    dso_window_days: int = 90
    invoices: dict[str, LedgerInvoice] = Field(default_factory=dict)
    history: list[CurrencyHistory] = Field(default_factory=list, description="invoices folded away, per currency")
    seen_event_ids: list[str] = Field(default_factory=list, description="bounded, oldest first")
    events_applied: int = 0
    problems: dict[str, ExceptionKind] = Field(default_factory=dict, description="\"customer\" or \"crm\" -> kind")
    exception: ExceptionKind = ExceptionKind.NONE
    wake_at: datetime | None = None
    next_repost: datetime | None = None


class Tick(BaseModel):
    """The clock: the timer fired (or the ledger woke up for events). Marks overdue, re-posts when due."""

    kind: Literal["tick"] = "tick"


class Repost(BaseModel):
    """An operator asks to post again the pending ERP writes (of one invoice, or all)."""

    kind: Literal["repost"] = "repost"
    invoice_id: str | None = None


# -- actions --------------------------------------------------------------------------------------------
class ErpAction(BaseModel):
    """An external write to the ERP for one invoice; ``step`` makes its idempotency key."""

    invoice_id: str
    step: str
    title: str = Field(description="the invoice as people name it")


class PostInvoice(ErpAction):
    kind: Literal["post_invoice"] = "post_invoice"
    legal_entity: str
    tenant_id: str
    contact_id: str | None = Field(default=None, description="known ERP contact; None: find or create it")
    invoice: Invoice | None = Field(default=None, description="None: read it from billing first")


class RecordPayment(ErpAction):
    kind: Literal["record_payment"] = "record_payment"
    tenant_id: str
    erp_invoice_id: str
    payment: Payment


class PostCreditNote(ErpAction):
    kind: Literal["post_credit_note"] = "post_credit_note"
    tenant_id: str
    contact_id: str
    credit_note: CreditNote
    write_off: bool = False


class VoidInvoice(ErpAction):
    kind: Literal["void_invoice"] = "void_invoice"
    tenant_id: str
    erp_invoice_id: str


class RefreshCrmFigures(BaseModel):
    """Write the per-currency figures (:func:`crm_figures`) to the CRM company and deals (once per batch)."""

    kind: Literal["refresh_crm_figures"] = "refresh_crm_figures"


class Notify(BaseModel):
    """Tell operations; ``event_key`` (``<invoice>:<step>``) makes it once per event across retries."""

    kind: Literal["notify"] = "notify"
    scope: str
    step: str
    title: str
    text: str


class Note(BaseModel):
    kind: Literal["note"] = "note"
    text: str


class OverdueChanged(BaseModel):
    """An invoice became overdue (its due date passed) or no longer is (settled); ``text`` for the timeline."""

    kind: Literal["overdue_changed"] = "overdue_changed"
    invoice_id: str
    overdue: bool
    text: str


class ArmTimer(BaseModel):
    """Wake at ``at`` (the next due date passing, or the next re-post); None: only events wake the ledger."""

    kind: Literal["arm_timer"] = "arm_timer"
    at: datetime | None = None


Action = Annotated[
    PostInvoice | RecordPayment | PostCreditNote | VoidInvoice | RefreshCrmFigures | Notify | Note
    | OverdueChanged | ArmTimer,
    Field(discriminator="kind"),
]
ERP_ACTIONS = (PostInvoice, RecordPayment, PostCreditNote, VoidInvoice)


class Outcome(BaseModel):
    """What a vendor answered to an action."""

    ok: bool
    reason: str = Field(default="", description="why it was refused (for people)")
    erp_id: str | None = None
    contact_id: str | None = None
    invoice: Invoice | None = Field(default=None, description="the invoice as read from billing, if it was")


Event = DomainEvent | Tick | Repost


# -- entry points ---------------------------------------------------------------------------------------
def configure(book: LedgerBook, *, entities: dict[str, str], dedupe_window: int, dso_window_days: int,
              customer: BillingCustomer | None, customer_error: str | None, now: datetime
              ) -> tuple[LedgerBook, list[Action]]:
    """A run starts: the worker's settings and the billing customer (or why it could not be read)."""
    book = book.model_copy(deep=True)
    actions: list[Action] = []
    book.entities, book.dedupe_window, book.dso_window_days = dict(entities), dedupe_window, dso_window_days
    if customer is not None:
        book.problems.pop("customer", None)
        book.customer_entity = customer.legal_entity
        book.crm_company_id = customer.account.crm_id or book.crm_company_id
    elif customer_error is not None:
        book.problems["customer"] = ExceptionKind.CUSTOMER_NOT_FOUND
        actions.append(Note(text=f"the billing customer could not be read: {customer_error}"))
    book.next_repost = now + REPOST_EVERY
    return _finish(book, actions)


def apply(book: LedgerBook, event: Event, *, now: datetime) -> tuple[LedgerBook, list[Action]]:
    """One event in; the next book and what to do. A duplicate (same source event ID) changes nothing."""
    if isinstance(event, Tick):
        book = book.model_copy(deep=True)
        return _finish(book, _tick(book, now))
    if isinstance(event, Repost):
        book = book.model_copy(deep=True)
        return _finish(book, _repost(book, event.invoice_id, now))
    if event.source_event_id in book.seen_event_ids:
        return book, []
    book = book.model_copy(deep=True)
    book.seen_event_ids.append(event.source_event_id)
    del book.seen_event_ids[:-book.dedupe_window]
    book.events_applied += 1
    return _finish(book, _event(book, event, now))


def settle(book: LedgerBook, action: Action, outcome: Outcome, *, now: datetime) -> tuple[LedgerBook, list[Action]]:
    """A vendor's answer to an action: a write done or refused, the CRM figures written or not."""
    book = book.model_copy(deep=True)
    actions: list[Action] = []
    if isinstance(action, RefreshCrmFigures):
        if outcome.ok:
            book.problems.pop("crm", None)
        else:
            book.problems["crm"] = ExceptionKind.WRITE_BACK_FAILED
            actions.append(Note(text=f"the CRM refused the figures: {outcome.reason}"))
    elif isinstance(action, Notify):
        if not outcome.ok:
            actions.append(Note(text=f"could not notify: {outcome.reason}"))
    elif isinstance(action, ERP_ACTIONS):
        entry = book.invoices.get(action.invoice_id)
        if entry is not None:
            actions += _settle_write(book, entry, action, outcome, now)
    return _finish(book, actions)


def fold(book: LedgerBook, *, today: date) -> LedgerBook:
    """The book for the next run: invoices settled before the DSO window (and owing the ERP nothing) fold
    into per-currency history; everything later events or figures need stays."""
    book = book.model_copy(deep=True)
    cutoff = today - timedelta(days=book.dso_window_days)
    history = {h.currency: h for h in book.history}
    for invoice_id, entry in list(book.invoices.items()):
        if (entry.status is InvoiceStatus.OPEN or entry.settled_on is None or entry.settled_on >= cutoff
                or entry.erp_pending):
            continue
        past = history.setdefault(entry.currency, CurrencyHistory(currency=entry.currency))
        if entry.status is not InvoiceStatus.VOID:
            past.billed += entry.total
        past.paid += entry.paid
        past.credited += entry.credited
        if entry.last_payment_on and (past.last_payment_on is None or entry.last_payment_on > past.last_payment_on):
            past.last_payment_on = entry.last_payment_on
        del book.invoices[invoice_id]
    book.history = list(history.values())
    return book


# -- reading the book -----------------------------------------------------------------------------------
def open_invoices(book: LedgerBook) -> list[LedgerInvoice]:
    return [e for e in book.invoices.values() if e.status is InvoiceStatus.OPEN]


def owed(book: LedgerBook) -> list[LedgerInvoice]:
    """Invoices with ERP writes still pending (refused or waiting), whatever their status."""
    return [e for e in book.invoices.values() if e.erp_pending]


def exception_kind(book: LedgerBook) -> ExceptionKind:
    """The most urgent of the book's problems (``LEDGER_EXCEPTION_KINDS`` order); NONE when healthy."""
    held = set(book.problems.values()) | {w.problem for e in owed(book) for w in e.erp_pending if w.reason}
    if any(e.overdue for e in open_invoices(book)):
        held.add(ExceptionKind.INVOICE_OVERDUE)
    if any(e.payment_failures for e in open_invoices(book)):
        held.add(ExceptionKind.PAYMENT_FAILED)
    return most_urgent(held, LEDGER_EXCEPTION_KINDS)


def wake_at(book: LedgerBook) -> datetime | None:
    """The next moment the ledger must wake by itself: a due date passing, or the hourly re-post."""
    moments = [at for e in open_invoices(book) if not e.overdue and (at := e.overdue_at()) is not None]
    if book.next_repost is not None and any(w.reason for e in owed(book) for w in e.erp_pending):
        moments.append(book.next_repost)  # something was refused (a write just queued is being done)
    return min(moments) if moments else None


def balances(book: LedgerBook, *, today: date) -> list[AccountFigures]:
    return figures_by_currency(list(book.invoices.values()), book.history, today=today,
                               dso_window_days=book.dso_window_days)


def crm_figures(book: LedgerBook, *, today: date) -> tuple[list[AccountFigures], dict[str, list[AccountFigures]]]:
    """The company's figures and, per deal, those of the deal's invoices."""
    entries = list(book.invoices.values())
    deals = {deal_id: figures_by_currency([e for e in entries if e.deal_id == deal_id], [], today=today,
                                          dso_window_days=book.dso_window_days)
             for deal_id in sorted({e.deal_id for e in entries if e.deal_id})}
    return balances(book, today=today), deals


def invoice_name(entry: LedgerInvoice) -> str:
    return f"invoice {entry.number or entry.invoice_id}"


# -- events ---------------------------------------------------------------------------------------------
def _event(book: LedgerBook, event: DomainEvent, now: datetime) -> list[Action]:
    if isinstance(event, InvoiceFinalized | InvoicePaid | InvoicePaymentFailed | InvoiceVoided):
        if event.invoice.customer_id and event.invoice.customer_id != book.customer_id:
            return [Note(text=f"ignored {event.kind} {event.source_event_id}: invoice of customer "
                              f"{event.invoice.customer_id}")]
        entry = _entry(book, event.invoice, status=not isinstance(event, InvoiceVoided))
        actions: list[Action] = []
        if isinstance(event, InvoicePaid):
            actions += _paid(entry, event, now)
        elif isinstance(event, InvoicePaymentFailed):
            entry.payment_failures += 1
            actions.append(Note(text=f"{invoice_name(entry)}: payment failed "
                                     f"({event.failure_reason or 'no reason given'})"))
        elif isinstance(event, InvoiceVoided):
            actions += _voided(entry, event, now)
        else:
            actions.append(Note(text=f"{invoice_name(entry)} finalized: {entry.total} {entry.currency} "
                                     f"due {entry.due_on}"))
        return [*actions, *_flush(book, entry), RefreshCrmFigures()]
    if isinstance(event, CreditNoteIssued):
        if event.customer_id != book.customer_id:
            return [Note(text=f"ignored credit note {event.credit_note.billing_id} of customer {event.customer_id}")]
        return _credited(book, event.credit_note, now)
    return [Note(text=f"ignored {event.kind} {event.source_event_id}: not a billing event")]


def _entry(book: LedgerBook, invoice: Invoice, *, status: bool) -> LedgerInvoice:
    """The invoice's entry, with the snapshot applied; an invoice not in the ERP keeps the latest snapshot
    to post."""
    entry = book.invoices.get(invoice.billing_id) or LedgerInvoice(invoice_id=invoice.billing_id,
                                                                   currency=invoice.currency)
    entry = apply_invoice_snapshot(entry, invoice, status=status)
    book.invoices[entry.invoice_id] = entry
    if not entry.erp_invoice_id:
        _invoice_write(entry).invoice = invoice
    return entry


def _invoice_write(entry: LedgerInvoice) -> PendingErpWrite:
    """The pending posting of the invoice itself (queued first when missing)."""
    found = next((w for w in entry.erp_pending if w.kind is ErpWriteKind.INVOICE), None)
    if found is None:
        found = PendingErpWrite(kind=ErpWriteKind.INVOICE, step="post")
        entry.erp_pending.insert(0, found)
    return found


def _paid(entry: LedgerInvoice, event: InvoicePaid, now: datetime) -> list[Action]:
    actions: list[Action] = []
    payment = unrecorded_payment(entry, event.invoice, event.payment)
    if payment is not None:
        entry.payment_ids.append(payment.billing_id)
        entry.paid += payment.amount.amount
        paid_on = payment.paid_at.date()
        entry.last_payment_on = max(entry.last_payment_on or paid_on, paid_on)
        entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.PAYMENT, step=f"payment:{payment.billing_id}",
                                                 payment=payment))
        actions.append(Note(text=f"{invoice_name(entry)}: received {payment.amount} "
                                 f"({entry.paid} of {entry.total} paid)"))
    if event.invoice.status is InvoiceStatus.PAID:
        actions += _settle(entry, InvoiceStatus.PAID, now)
    return actions + _settle_if_covered(entry, now)


def _voided(entry: LedgerInvoice, event: InvoiceVoided, now: datetime) -> list[Action]:
    if entry.status is InvoiceStatus.VOID or (event.uncollectible and entry.status is InvoiceStatus.UNCOLLECTIBLE):
        return []
    if entry.status is InvoiceStatus.UNCOLLECTIBLE:
        # voided after a write-off: the ERP invoice is already settled by the write-off credit note
        return [*_settle(entry, InvoiceStatus.VOID, now), Note(text=f"{invoice_name(entry)} voided after being "
                                                                    "written off")]
    if event.uncollectible:
        # what billing shows paid counts even when its payment event is still on the way (it is recorded
        # when it comes): a late partial payment and the write-off then add up to the total, in any order
        paid = max(entry.paid, event.invoice.amount_paid.amount)
        owed_amount = max(entry.total - paid - entry.credited_before_payment, Decimal(0))
        if owed_amount > 0 and entry.status is InvoiceStatus.OPEN:
            note = CreditNote(billing_id=write_off_credit_note_id(entry.invoice_id),
                              invoice_billing_id=entry.invoice_id,
                              amount=Money(amount=owed_amount, currency=entry.currency),
                              reason="Written off: uncollectible in billing", issued_at=event.occurred_at)
            entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.WRITE_OFF, step="write-off", credit_note=note))
        actions = _settle(entry, InvoiceStatus.UNCOLLECTIBLE, now)
        return [*actions, Note(text=f"{invoice_name(entry)} marked uncollectible: {owed_amount} {entry.currency} "
                                    "written off")]
    posting = next((w for w in entry.erp_pending if w.kind is ErpWriteKind.INVOICE), None)
    if entry.erp_invoice_id or posting is None or not posting.attempts:
        # in the ERP, or about to be posted (a void first): post, then void it there
        entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.VOID, step="void"))
        actions = []
    else:
        # the ERP never took it and billing voided it: nothing is owed to the ERP any more
        actions = [Note(text=f"{invoice_name(entry)}: {len(entry.erp_pending)} pending ERP write(s) dropped, "
                             "the invoice is void")]
        entry.erp_pending.clear()
    return [*actions, *_settle(entry, InvoiceStatus.VOID, now), Note(text=f"{invoice_name(entry)} voided")]


def _credited(book: LedgerBook, note: CreditNote, now: datetime) -> list[Action]:
    entry = book.invoices.get(note.invoice_billing_id)
    if entry is None:
        # a credit note names an invoice no event brought: post it from billing's copy first
        entry = LedgerInvoice(invoice_id=note.invoice_billing_id, currency=note.amount.currency)
        book.invoices[entry.invoice_id] = entry
        _invoice_write(entry)
    if note.billing_id in entry.credit_note_ids:
        return []
    entry.credit_note_ids.append(note.billing_id)
    entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.CREDIT_NOTE, step=f"credit:{note.billing_id}",
                                             credit_note=note))
    entry.credited += note.amount.amount
    actions: list[Action] = []
    if entry.status is InvoiceStatus.OPEN:
        entry.credited_before_payment += note.amount.amount
        actions += _settle_if_covered(entry, now)
    actions.append(Note(text=f"{invoice_name(entry)}: credit note {note.billing_id} for {note.amount}"))
    return [*actions, *_flush(book, entry), RefreshCrmFigures()]


def _settle_if_covered(entry: LedgerInvoice, now: datetime) -> list[Action]:
    if entry.known and entry.status is InvoiceStatus.OPEN and entry.paid + entry.credited_before_payment >= entry.total:
        return _settle(entry, InvoiceStatus.PAID, now)
    return []


def _settle(entry: LedgerInvoice, status: InvoiceStatus, now: datetime) -> list[Action]:
    actions: list[Action] = []
    if entry.status is InvoiceStatus.OPEN:
        entry.status = status
        entry.settled_on = now.date()
        if entry.overdue:
            actions.append(OverdueChanged(invoice_id=entry.invoice_id, overdue=False,
                                          text=f"{invoice_name(entry)} no longer overdue ({status.value})"))
        entry.overdue = False
    elif status is InvoiceStatus.VOID and entry.status is InvoiceStatus.UNCOLLECTIBLE:
        entry.status = status  # an uncollectible invoice voided later
    return actions


# -- the clock and re-posts -----------------------------------------------------------------------------
def _tick(book: LedgerBook, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for entry in open_invoices(book):
        at = entry.overdue_at()
        if not entry.overdue and at is not None and at <= now:
            entry.overdue = True
            text = f"{invoice_name(entry)} is overdue: {entry.outstanding} {entry.currency} unpaid since {entry.due_on}"
            actions.append(OverdueChanged(invoice_id=entry.invoice_id, overdue=True, text=text))
    if actions:
        actions.append(RefreshCrmFigures())
    if owed(book) and book.next_repost is not None and now >= book.next_repost:
        actions += _repost(book, None, now)
    return actions


def _repost(book: LedgerBook, invoice_id: str | None, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for entry in owed(book):
        if invoice_id in (None, entry.invoice_id):
            actions += _flush(book, entry)
    book.next_repost = now + REPOST_EVERY
    return actions


# -- ERP writes -----------------------------------------------------------------------------------------
def _flush(book: LedgerBook, entry: LedgerInvoice) -> list[Action]:
    """The writes to do now for the invoice: its posting first; the others once it is in the ERP."""
    if not entry.erp_pending:
        return []
    name = invoice_name(entry)
    if not entry.erp_invoice_id:
        posting = _invoice_write(entry)
        code = entry.legal_entity or book.customer_entity
        tenant = book.entities.get(code or "")
        if tenant is None or code is None:
            posting.attempts += 1
            posting.problem = ExceptionKind.UNROUTABLE_INVOICE
            entry.needed_person = True
            posting.reason = f"no legal entity {code!r} to post it to (invoice or customer metadata)"
            _waiting(entry)
            return [Note(text=f"{name}: {posting.reason}")]
        entry.legal_entity = code
        return [PostInvoice(invoice_id=entry.invoice_id, step=posting.step, title=name, legal_entity=code,
                            tenant_id=tenant, contact_id=book.erp_contacts.get(code), invoice=posting.invoice)]
    assert entry.erp_tenant_id is not None
    actions: list[Action] = []
    contact = book.erp_contacts.get(entry.legal_entity or "", "")
    for write in entry.erp_pending:
        if write.kind is ErpWriteKind.PAYMENT and write.payment is not None:
            actions.append(RecordPayment(invoice_id=entry.invoice_id, step=write.step, title=name,
                                         tenant_id=entry.erp_tenant_id, erp_invoice_id=entry.erp_invoice_id,
                                         payment=write.payment))
        elif write.kind in (ErpWriteKind.CREDIT_NOTE, ErpWriteKind.WRITE_OFF) and write.credit_note is not None:
            actions.append(PostCreditNote(invoice_id=entry.invoice_id, step=write.step, title=name,
                                          tenant_id=entry.erp_tenant_id, contact_id=contact,
                                          credit_note=write.credit_note,
                                          write_off=write.kind is ErpWriteKind.WRITE_OFF))
        elif write.kind is ErpWriteKind.VOID:
            actions.append(VoidInvoice(invoice_id=entry.invoice_id, step=write.step, title=name,
                                       tenant_id=entry.erp_tenant_id, erp_invoice_id=entry.erp_invoice_id))
    return actions


def _waiting(entry: LedgerInvoice) -> None:
    for write in entry.erp_pending:
        if write.kind is not ErpWriteKind.INVOICE and not write.reason:
            write.reason = "waiting for the invoice to be posted to the ERP"


def _settle_write(book: LedgerBook, entry: LedgerInvoice, action: ErpAction, outcome: Outcome,
                  now: datetime) -> list[Action]:
    write = next((w for w in entry.erp_pending if w.step == action.step), None)
    if write is None:
        return []  # dropped meanwhile (a void of an invoice the ERP never took)
    name = invoice_name(entry)
    if isinstance(action, PostInvoice) and outcome.invoice is not None:
        snapshot = apply_invoice_snapshot(entry, outcome.invoice)
        for field in ("number", "total", "legal_entity", "deal_id", "issued_on", "due_on", "status", "known"):
            setattr(entry, field, getattr(snapshot, field))
        entry.legal_entity = action.legal_entity
    write.attempts += 1
    actions: list[Action] = []
    if outcome.ok:
        entry.erp_pending.remove(write)
        if isinstance(action, PostInvoice):
            entry.erp_invoice_id = outcome.erp_id
            entry.erp_tenant_id = action.tenant_id
            if outcome.contact_id:
                book.erp_contacts[action.legal_entity] = outcome.contact_id
            for other in entry.erp_pending:
                other.reason = ""
            actions.append(Note(text=f"{name} posted to the ERP of {action.legal_entity} as {outcome.erp_id}"))
            actions += _settle_if_covered(entry, now)
            actions += _flush(book, entry)
        return actions
    what = write.kind.value.replace("_", " ")
    write.problem = ExceptionKind.ERP_REJECTED
    entry.needed_person = True
    write.reason = f"the ERP refused the {what}: {outcome.reason}"
    actions.append(Note(text=f"{name}: {write.reason} (kept pending)"))
    if isinstance(action, PostInvoice):
        _waiting(entry)
    if not write.notified:
        write.notified = True
        step = REFUSAL_NOTICE if write.kind is ErpWriteKind.INVOICE else f"{REFUSAL_NOTICE}:{write.step}"
        where = f" ({entry.legal_entity})" if entry.legal_entity else ""
        title = (f"ERP refused {name}{where}" if write.kind is ErpWriteKind.INVOICE
                 else f"ERP refused the {what} on {name}{where}")
        actions.append(Notify(scope=entry.invoice_id, step=step, title=title,
                              text=f"{write.reason}. It stays pending and is posted again every hour or on "
                                   "an operator's repost."))
    return actions


def _finish(book: LedgerBook, actions: list[Action]) -> tuple[LedgerBook, list[Action]]:
    """Keep the book's exception kind (the workflow shows it from the book) and add the timer change its new
    state calls for."""
    book.exception = exception_kind(book)
    at = wake_at(book)
    if at != book.wake_at:
        book.wake_at = at
        actions.append(ArmTimer(at=at))
    return book, actions


__all__ = ["ERP_ACTIONS", "REPOST_EVERY", "Action", "ArmTimer", "ErpAction", "Event",
           "LedgerBook", "Note", "Notify", "Outcome", "OverdueChanged", "PostCreditNote", "PostInvoice",
           "RecordPayment", "RefreshCrmFigures", "Repost", "Tick", "VoidInvoice", "apply", "balances", "configure",
           "crm_figures", "exception_kind", "fold", "invoice_name", "open_invoices", "owed", "settle", "wake_at"]
