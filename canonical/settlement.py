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
* a credit note before payment (or on an invoice closed unpaid) lowers what is owed; paid +
  credited-before-payment >= total settles it; billing says which it was (``before_payment``), so a credit
  delivered before the payment it followed is still a refund; only when billing does not say is it guessed
  from the invoice's status;
* the status only moves forward (open < uncollectible < void | paid), so a late event never undoes a later
  one; the ERP writes follow from the state, not from the order: whatever is still owed on a closed invoice
  is credited by one *closing credit* (uncollectible: the write-off; void after part payment or credit: the
  unpaid remainder, because the ERP refuses to void a part-settled invoice and the cash received must stay
  applied); when that amount changes (cash after a write-off, a late payment or credit), the standing one is
  reversed (or dropped if never posted) before anything else is written, and the new one, if any, issued;
  a void with nothing paid or credited voids the ERP invoice; a void of an invoice the ERP refused drops
  its writes;
* an open invoice is overdue from the day after its due date, and no longer once settled;
* a refused ERP write stays pending with its reason, is tried again with the next event, every hour, or on
  an operator's ``repost`` (same idempotency key), and operations are told of it once.

No I/O, no clock (``now`` is an argument), no Temporal: canonical is layer 0.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, Field

from canonical.billing import CreditNote, Invoice, InvoiceStatus, Payment
from canonical.company_figures import FiguresReport
from canonical.events import (
    CreditNoteIssued,
    DomainEvent,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceVoided,
)
from canonical.exceptions import LEDGER_EXCEPTION_KINDS, ExceptionKind, most_urgent
from canonical.keys import closing_credit_note_id
from canonical.ledger import (
    BillingCustomer,
    CurrencyHistory,
    ErpWriteKind,
    LedgerInvoice,
    PendingErpWrite,
    apply_invoice_snapshot,
    figures_by_currency,
    sums_by_currency,
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


class ReverseCreditNote(ErpAction):
    """Take back a closing credit the integration posted (unallocate it from the invoice, then void it)."""

    kind: Literal["reverse_credit_note"] = "reverse_credit_note"
    tenant_id: str
    credit_note: CreditNote


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
    PostInvoice | RecordPayment | PostCreditNote | ReverseCreditNote | VoidInvoice | RefreshCrmFigures | Notify
    | Note | OverdueChanged | ArmTimer,
    Field(discriminator="kind"),
]
ERP_ACTIONS = (PostInvoice, RecordPayment, PostCreditNote, ReverseCreditNote, VoidInvoice)
ErpWrite: TypeAlias = PostInvoice | RecordPayment | PostCreditNote | ReverseCreditNote | VoidInvoice
Dispatched: TypeAlias = ErpWrite | Notify  # what a dispatch hands to a vendor, one lane per invoice (or notice scope)


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


def apply(book: LedgerBook, event: Event, *, now: datetime, in_place: bool = False
          ) -> tuple[LedgerBook, list[Action]]:
    """One event in; the next book and what to do. A duplicate (same source event ID) changes nothing.

    The book given is left as it was, unless ``in_place``: then it is the book changed and returned. Copying
    costs the whole book (each invoice it holds) per event, so a caller that applies many events, and keeps no
    earlier book, changes one in place (the ledger workflow, which copies once per batch for its queries)."""
    if isinstance(event, Tick | Repost):
        book = book if in_place else book.model_copy(deep=True)
        if isinstance(event, Tick):
            return _finish(book, _tick(book, now))
        return _finish(book, _repost(book, event.invoice_id, now))
    if event.source_event_id in book.seen_event_ids:
        return book, []
    book = book if in_place else book.model_copy(deep=True)
    book.seen_event_ids.append(event.source_event_id)
    del book.seen_event_ids[:-book.dedupe_window]
    book.events_applied += 1
    return _finish(book, _event(book, event, now))


def settle(book: LedgerBook, action: Action, outcome: Outcome, *, now: datetime, in_place: bool = False
           ) -> tuple[LedgerBook, list[Action]]:
    """A vendor's answer to an action: a write done or refused, the CRM figures written or not (the book given
    left as it was unless ``in_place``, as in :func:`apply`)."""
    if not in_place:
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


def figures_report(book: LedgerBook, *, now: datetime) -> FiguresReport | None:
    """This ledger's part of its CRM company's figures, for the company's figures owner (``None`` when the
    customer has no CRM company: the ledger then writes its deals' figures itself)."""
    if not book.crm_company_id:
        return None
    today = now.date()
    entries = list(book.invoices.values())
    window = book.dso_window_days
    deals = {deal_id: sums_by_currency([e for e in entries if e.deal_id == deal_id], [], today=today,
                                       dso_window_days=window)
             for deal_id in sorted({e.deal_id for e in entries if e.deal_id})}
    return FiguresReport(customer_id=book.customer_id, company_id=book.crm_company_id, as_of=now,
                         dso_window_days=window,
                         company=sums_by_currency(entries, book.history, today=today, dso_window_days=window),
                         deals=deals)


def invoice_name(entry: LedgerInvoice) -> str:
    return f"invoice {entry.number or entry.invoice_id}"


# -- events ---------------------------------------------------------------------------------------------
def _event(book: LedgerBook, event: DomainEvent, now: datetime) -> list[Action]:
    if isinstance(event, InvoiceFinalized | InvoicePaid | InvoicePaymentFailed | InvoiceVoided):
        if event.invoice.customer_id and event.invoice.customer_id != book.customer_id:
            return [Note(text=f"ignored {event.kind} {event.source_event_id}: invoice of customer "
                              f"{event.invoice.customer_id}")]
        entry = _entry(book, event.invoice, status=False)
        entry.billing_paid = max(entry.billing_paid, event.invoice.amount_paid.amount)
        target = _later(entry.status, event.invoice.status)
        actions: list[Action] = []
        if isinstance(event, InvoicePaid):
            actions += _paid(entry, event)
        elif isinstance(event, InvoicePaymentFailed):
            entry.payment_failures += 1
            actions.append(Note(text=f"{invoice_name(entry)}: payment failed "
                                     f"({event.failure_reason or 'no reason given'})"))
        elif isinstance(event, InvoiceVoided):
            target = _later(target, InvoiceStatus.UNCOLLECTIBLE if event.uncollectible else InvoiceStatus.VOID)
            actions.append(Note(text=f"{invoice_name(entry)} "
                                     f"{'marked uncollectible' if event.uncollectible else 'voided'} in billing"))
        else:
            actions.append(Note(text=f"{invoice_name(entry)} finalized: {entry.total} {entry.currency} "
                                     f"due {entry.due_on}"))
        actions += _converge(entry, target, now, on=event.occurred_at)
        return [*actions, *_flush(book, entry), RefreshCrmFigures()]
    if isinstance(event, CreditNoteIssued):
        if event.customer_id != book.customer_id:
            return [Note(text=f"ignored credit note {event.credit_note.billing_id} of customer {event.customer_id}")]
        return _credited(book, event.credit_note, now)
    return [Note(text=f"ignored {event.kind} {event.source_event_id}: not a billing event")]


#: how far along its life an invoice is; a status never moves back (void and paid both end it)
_PROGRESS = {InvoiceStatus.DRAFT: 0, InvoiceStatus.OPEN: 0, InvoiceStatus.UNCOLLECTIBLE: 1,
             InvoiceStatus.VOID: 2, InvoiceStatus.PAID: 2}


def _later(held: InvoiceStatus, seen: InvoiceStatus) -> InvoiceStatus:
    """The further of two statuses (a late event's older snapshot changes nothing)."""
    return seen if _PROGRESS[seen] > _PROGRESS[held] else held


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


def _paid(entry: LedgerInvoice, event: InvoicePaid) -> list[Action]:
    payment = unrecorded_payment(entry, event.invoice, event.payment)
    if payment is None:
        return []
    entry.payment_ids.append(payment.billing_id)
    entry.paid += payment.amount.amount
    paid_on = payment.paid_at.date()
    entry.last_payment_on = max(entry.last_payment_on or paid_on, paid_on)
    entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.PAYMENT, step=f"payment:{payment.billing_id}",
                                             payment=payment))
    return [Note(text=f"{invoice_name(entry)}: received {payment.amount} ({entry.paid} of {entry.total} paid)")]


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
    before_payment = note.before_payment
    if before_payment is None:  # billing did not say: what the book knows now decides
        before_payment = entry.status is not InvoiceStatus.PAID and not entry.voided_in_erp
    if before_payment:
        # it lowered what is owed (open, or closed unpaid): paid + this covers the total, and it lowers what
        # a closing credit must cover; one issued after payment is a refund or a credit balance
        entry.credited_before_payment += note.amount.amount
        actions += _converge(entry, entry.status, now, on=note.issued_at or now)
    actions.append(Note(text=f"{invoice_name(entry)}: credit note {note.billing_id} for {note.amount}"))
    return [*actions, *_flush(book, entry), RefreshCrmFigures()]


def _converge(entry: LedgerInvoice, target: InvoiceStatus, now: datetime, *, on: datetime) -> list[Action]:
    """Bring the invoice to ``target`` (or paid, when payments and credits cover it) and queue the ERP writes
    that make the ERP's receivable match: the same end whatever the order the facts arrived in."""
    if not entry.known:
        return []  # amounts unknown (a credit note alone): decided once billing's copy is read
    if target in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE) and (
            entry.paid + entry.credited_before_payment >= entry.total):
        target = InvoiceStatus.PAID
    actions: list[Action] = []
    if target is not entry.status and _later(entry.status, target) is target:
        if entry.status is InvoiceStatus.OPEN:
            entry.settled_on = now.date()
            if entry.overdue:
                actions.append(OverdueChanged(invoice_id=entry.invoice_id, overdue=False,
                                              text=f"{invoice_name(entry)} no longer overdue ({target.value})"))
            entry.overdue = False
        entry.status = target
    return actions + _close(entry, on)


def _close(entry: LedgerInvoice, on: datetime) -> list[Action]:
    """The closing writes the invoice's state calls for (see the module's rules)."""
    name = invoice_name(entry)
    posting = next((w for w in entry.erp_pending if w.kind is ErpWriteKind.INVOICE), None)
    if entry.status is InvoiceStatus.VOID and not entry.erp_invoice_id and posting is not None and posting.attempts:
        # the ERP never took it and billing voided it: nothing is owed to the ERP any more
        dropped = len(entry.erp_pending)
        entry.erp_pending.clear()
        entry.closing_credit = entry.closing_step = None
        entry.voided_in_erp = True
        return [Note(text=f"{name}: {dropped} pending ERP write(s) dropped, the invoice is void")] if dropped else []
    paid = max(entry.paid, entry.billing_paid)
    remainder = max(entry.total - paid - entry.credited_before_payment, Decimal(0))
    settled_in_part = paid > 0 or entry.credited_before_payment > 0
    void_in_erp = entry.status is InvoiceStatus.VOID and (entry.voided_in_erp or not settled_in_part)
    closing = InvoiceStatus.UNCOLLECTIBLE if entry.status is InvoiceStatus.UNCOLLECTIBLE else None
    if entry.status is InvoiceStatus.VOID and not void_in_erp:
        closing = InvoiceStatus.VOID
    wanted = remainder if closing is not None else Decimal(0)
    actions: list[Action] = []
    standing = entry.closing_credit
    if standing is not None and standing.amount.amount != wanted:
        actions += _take_back(entry, standing)
    if wanted > 0 and entry.closing_credit is None:
        entry.closing_credits += 1
        n = entry.closing_credits
        written_off = closing is InvoiceStatus.UNCOLLECTIBLE
        base = "write-off" if written_off else "void-remainder"
        entry.closing_step = base if n == 1 else f"{base}-{n}"
        entry.closing_credit = CreditNote(
            billing_id=closing_credit_note_id(entry.invoice_id, written_off=written_off, n=n),
            invoice_billing_id=entry.invoice_id, amount=Money(amount=wanted, currency=entry.currency),
            reason=("Written off: uncollectible in billing" if written_off
                    else "Voided in billing after part payment: the unpaid remainder credited"),
            issued_at=on)
        entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.WRITE_OFF, step=entry.closing_step,
                                                 credit_note=entry.closing_credit))
        actions.append(Note(text=f"{name}: {wanted} {entry.currency} "
                                 + ("written off" if written_off else "unpaid when voided, credited")))
    if void_in_erp and not entry.voided_in_erp:
        entry.voided_in_erp = True
        entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.VOID, step="void"))
    return actions


def _take_back(entry: LedgerInvoice, standing: CreditNote) -> list[Action]:
    """Withdraw the standing closing credit: drop it if it was never posted, else queue its reversal."""
    step = entry.closing_step or "write-off"
    entry.closing_credit = entry.closing_step = None
    queued = next((w for w in entry.erp_pending if w.step == step), None)
    if queued is not None:
        entry.erp_pending.remove(queued)
        return [Note(text=f"{invoice_name(entry)}: closing credit {standing.amount} withdrawn before posting")]
    entry.erp_pending.append(PendingErpWrite(kind=ErpWriteKind.REVERSAL, step=f"reverse-{step}",
                                             credit_note=standing))
    return [Note(text=f"{invoice_name(entry)}: closing credit {standing.amount} to be reversed "
                      "(what is owed changed)")]


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
    reversals = [w for w in entry.erp_pending if w.kind is ErpWriteKind.REVERSAL]
    if reversals:
        # what the reversal takes back must be gone before a payment, a credit or a void meets the invoice
        return [ReverseCreditNote(invoice_id=entry.invoice_id, step=w.step, title=name,
                                  tenant_id=entry.erp_tenant_id, credit_note=w.credit_note)
                for w in reversals if w.credit_note is not None]
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


def _waiting(entry: LedgerInvoice, reason: str = "waiting for the invoice to be posted to the ERP") -> None:
    for write in entry.erp_pending:
        if write.kind not in (ErpWriteKind.INVOICE, ErpWriteKind.REVERSAL) and not write.reason:
            write.reason = reason


def _settle_write(book: LedgerBook, entry: LedgerInvoice, action: ErpAction, outcome: Outcome,
                  now: datetime) -> list[Action]:
    write = next((w for w in entry.erp_pending if w.step == action.step), None)
    if write is None:
        return []  # dropped meanwhile (a void of an invoice the ERP never took)
    name = invoice_name(entry)
    if isinstance(action, PostInvoice) and outcome.invoice is not None:
        entry.billing_paid = max(entry.billing_paid, outcome.invoice.amount_paid.amount)
        snapshot = apply_invoice_snapshot(entry, outcome.invoice, status=False)
        for field in ("number", "total", "legal_entity", "deal_id", "issued_on", "due_on", "known"):
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
            # billing's copy (read when only a credit note named the invoice) moves the status like an event
            seen = outcome.invoice.status if outcome.invoice is not None else entry.status
            actions += _converge(entry, _later(entry.status, seen), now, on=now)
            actions += _flush(book, entry)
        elif isinstance(action, ReverseCreditNote):
            actions.append(Note(text=f"{name}: closing credit {action.credit_note.billing_id} reversed in the ERP"))
            if not any(w.kind is ErpWriteKind.REVERSAL for w in entry.erp_pending):
                for other in entry.erp_pending:
                    other.reason = ""
                actions += _flush(book, entry)
        return actions
    what = write.kind.value.replace("_", " ")
    write.problem = ExceptionKind.ERP_REJECTED
    entry.needed_person = True
    write.reason = f"the ERP refused the {what}: {outcome.reason}"
    actions.append(Note(text=f"{name}: {write.reason} (kept pending)"))
    if isinstance(action, PostInvoice):
        _waiting(entry)
    elif isinstance(action, ReverseCreditNote):
        _waiting(entry, "waiting for the closing credit to be reversed in the ERP")
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


__all__ = ["ERP_ACTIONS", "REPOST_EVERY", "Action", "ArmTimer", "Dispatched", "ErpAction", "ErpWrite", "Event",
           "LedgerBook", "Note", "Notify", "Outcome", "OverdueChanged", "PostCreditNote", "PostInvoice",
           "RecordPayment", "RefreshCrmFigures", "Repost",
           "ReverseCreditNote", "Tick", "VoidInvoice", "apply", "balances", "configure",
           "crm_figures", "exception_kind", "figures_report", "fold", "invoice_name", "open_invoices", "owed", "settle",
           "wake_at"]
