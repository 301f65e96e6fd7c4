"""Invoice feedback and reconciliation in canonical terms: per-invoice ledger entries, per-currency
roll-ups (billed, paid, outstanding, overdue, credited, DSO) and reconciliation findings.

Pure functions and models only: no connector, Temporal or SQL code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.billing import CreditNote, Invoice, InvoiceStatus, Payment
from canonical.exceptions import ExceptionKind
from canonical.money import DecimalAmount, Money, round_amount
from canonical.parties import Account
from canonical.requests import AccountFigures


class BillingCustomer(BaseModel):
    """A billing customer: the account (``crm_id`` = CRM company) and the entity it was created for."""

    customer_id: str
    account: Account
    legal_entity: str | None = None


class ErpWriteKind(StrEnum):
    """A write the ledger owes the ERP for one billing invoice."""

    INVOICE = "invoice"
    PAYMENT = "payment"
    CREDIT_NOTE = "credit_note"
    WRITE_OFF = "write_off"
    REVERSAL = "reversal"
    VOID = "void"


class PendingErpWrite(BaseModel):
    """An ERP write not done yet: refused by the ERP, or waiting for the invoice it belongs to.

    It stays on its invoice (and so across continue-as-new) until it is posted: by the ledger when it
    wakes, or by an operator's ``repost``. ``step`` makes its idempotency key, the same on every attempt.
    ``reason`` is empty until it was refused (or waits for a refused invoice): only then is it a problem."""

    kind: ErpWriteKind
    step: str
    reason: str = ""
    problem: ExceptionKind = Field(default=ExceptionKind.ERP_REJECTED, description="its kind once it has a reason")
    payment: Payment | None = None
    credit_note: CreditNote | None = Field(default=None, description="the credit note to post (or, for a "
                                           "reversal, to reverse)")
    invoice: Invoice | None = Field(default=None, description="the invoice to post (the latest event's snapshot); "
                                    "None: read it from billing")
    attempts: int = 0
    notified: bool = Field(default=False, description="operations were told of its refusal (once per write)")


class LedgerInvoice(BaseModel):
    """What the ledger knows of one billing invoice, built from events in any order."""

    invoice_id: str
    number: str | None = None
    currency: str
    legal_entity: str | None = None
    deal_id: str | None = None
    total: DecimalAmount = Decimal(0)
    subtotal: DecimalAmount | None = Field(default=None, description="before tax (what a contract's schedule "
                                                                     "prices)")
    paid: DecimalAmount = Decimal(0)
    credited: DecimalAmount = Decimal(0)
    credited_before_payment: DecimalAmount = Decimal(0)
    billing_paid: DecimalAmount = Field(default=Decimal(0), description="the most any billing snapshot showed "
                                        "paid (a payment whose own event is still on the way counts)")
    closing_credit: CreditNote | None = Field(default=None, description="the write-off (or the credit of a "
                                              "voided invoice's unpaid remainder) standing in the ERP or queued")
    closing_step: str | None = Field(default=None, description="the step of ``closing_credit``'s posting")
    closing_credits: int = Field(default=0, description="closing credits issued so far (names the next one)")
    voided_in_erp: bool = Field(default=False, description="closed by voiding the ERP invoice itself")
    status: InvoiceStatus = InvoiceStatus.OPEN
    issued_on: date | None = None
    due_on: date | None = None
    settled_on: date | None = None
    erp_tenant_id: str | None = None
    erp_invoice_id: str | None = None
    payment_ids: list[str] = Field(default_factory=list)
    credit_note_ids: list[str] = Field(default_factory=list)
    payment_failures: int = 0
    needed_person: bool = Field(default=False, description="an ERP write of it was refused or it could not be "
                                                           "routed, even if settled since (the KPIs count it)")
    overdue: bool = False
    last_payment_on: date | None = None
    known: bool = Field(default=False, description="an invoice snapshot gave its amounts (a credit note alone "
                        "does not)")
    erp_pending: list[PendingErpWrite] = Field(default_factory=list, description="ERP writes not done yet, "
                                               "oldest first")

    @property
    def outstanding(self) -> Decimal:
        """Still owed: nothing once paid, voided or written off."""
        if self.status is not InvoiceStatus.OPEN:
            return Decimal(0)
        return max(self.total - self.paid - self.credited_before_payment, Decimal(0))

    def overdue_at(self) -> datetime | None:
        """The moment the due date has passed (the start of the next day, UTC)."""
        if self.due_on is None or self.status is not InvoiceStatus.OPEN:
            return None
        day = self.due_on + timedelta(days=1)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)


class CurrencyHistory(BaseModel):
    """Roll-ups of invoices settled long ago and dropped from the ledger's working state."""

    currency: str
    billed: DecimalAmount = Decimal(0)
    paid: DecimalAmount = Decimal(0)
    credited: DecimalAmount = Decimal(0)
    last_payment_on: date | None = None


def apply_invoice_snapshot(entry: LedgerInvoice, invoice: Invoice, *, status: bool = True) -> LedgerInvoice:
    """Fill in what the billing system says of the invoice without undoing what events applied:
    amounts come from the snapshot, paid/credited never go down, a settled status never reopens."""
    # status=False: the event itself settles the status (a void event's snapshot already says void)
    update: dict[str, object] = {"known": True,
        "number": invoice.number or entry.number, "total": invoice.total.amount,
        "subtotal": invoice.subtotal.amount,
        "legal_entity": invoice.legal_entity or entry.legal_entity,
        "deal_id": invoice.crm_deal_id or entry.deal_id, "issued_on": invoice.issued_on or entry.issued_on,
        "due_on": invoice.due_on or entry.due_on,
    }
    settled = (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)
    if status and entry.status is InvoiceStatus.OPEN and invoice.status in settled:
        update["status"] = invoice.status
    return entry.model_copy(update=update)


def unrecorded_payment(entry: LedgerInvoice, invoice: Invoice, payment: Payment | None) -> Payment | None:
    """The payment to post for an ``InvoicePaid`` event: what the invoice shows paid (``amount_paid``)
    less what the ledger has recorded, or ``None`` when nothing is new (a duplicate, an older snapshot
    arriving late, a settlement by credit note). The ID is the payment's own unless the ledger already
    used it (then suffixed with the paid total, so two amounts never share one ERP reference)."""
    if payment is None:
        return None
    paid = invoice.amount_paid.amount
    new = paid - entry.paid
    if new <= 0:
        return None
    billing_id = payment.billing_id
    if billing_id in entry.payment_ids:
        billing_id = f"{billing_id}:{round_amount(paid, entry.currency)}"
        if billing_id in entry.payment_ids:
            return None
    return payment.model_copy(update={"billing_id": billing_id, "amount": Money(amount=new, currency=entry.currency)})


class CurrencySums(BaseModel):
    """One currency's unrounded roll-ups of some invoices (one ledger's part of a CRM company or deal): what
    the CRM figures of several ledgers are summed from."""

    currency: str
    billed: DecimalAmount = Decimal(0)
    paid: DecimalAmount = Decimal(0)
    outstanding: DecimalAmount = Decimal(0)
    overdue: DecimalAmount = Decimal(0)
    credited: DecimalAmount = Decimal(0)
    billed_in_window: DecimalAmount = Field(default=Decimal(0), description="billed in the DSO window")
    last_payment_on: date | None = None

    def __add__(self, other: CurrencySums) -> CurrencySums:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        payments = [d for d in (self.last_payment_on, other.last_payment_on) if d]
        return CurrencySums(currency=self.currency, billed=self.billed + other.billed, paid=self.paid + other.paid,
                            outstanding=self.outstanding + other.outstanding, overdue=self.overdue + other.overdue,
                            credited=self.credited + other.credited,
                            billed_in_window=self.billed_in_window + other.billed_in_window,
                            last_payment_on=max(payments) if payments else None)


def sums_by_currency(entries: list[LedgerInvoice], history: list[CurrencyHistory], *, today: date,
                     dso_window_days: int) -> list[CurrencySums]:
    """Billed (all but voids), paid, outstanding, overdue, credited, billed in the DSO window and the last
    payment, per currency, unrounded."""
    currencies = sorted({e.currency for e in entries} | {h.currency for h in history})
    window_start = today - timedelta(days=dso_window_days)
    sums: list[CurrencySums] = []
    for currency in currencies:
        mine = [e for e in entries if e.currency == currency]
        past = next((h for h in history if h.currency == currency), CurrencyHistory(currency=currency))
        live = [e for e in mine if e.status is not InvoiceStatus.VOID]
        payments = [d for d in [past.last_payment_on, *(e.last_payment_on for e in mine)] if d]
        sums.append(CurrencySums(
            currency=currency,
            billed=sum((e.total for e in live), Decimal(0)) + past.billed,
            paid=sum((e.paid for e in mine), Decimal(0)) + past.paid,
            credited=sum((e.credited for e in mine), Decimal(0)) + past.credited,
            outstanding=sum((e.outstanding for e in mine), Decimal(0)),
            overdue=sum((e.outstanding for e in mine if e.overdue), Decimal(0)),
            billed_in_window=sum((e.total for e in live if e.issued_on and e.issued_on > window_start), Decimal(0)),
            last_payment_on=max(payments) if payments else None))
    return sums


def figures_of(sums: list[CurrencySums], *, dso_window_days: int) -> list[AccountFigures]:
    """The CRM figures of per-currency sums, each in its currency's minor unit.

    DSO (days sales outstanding) = outstanding / billed in the last ``dso_window_days`` x the window,
    the standard formula; empty when nothing was billed in the window (zero when nothing is outstanding).
    """
    figures: list[AccountFigures] = []
    for s in sorted(sums, key=lambda s: s.currency):
        dso = None
        if s.billed_in_window > 0:
            dso = str((s.outstanding / s.billed_in_window * dso_window_days).quantize(Decimal("0.1")))
        currency = s.currency
        figures.append(AccountFigures(
            currency=currency, billed=_fmt(s.billed, currency), paid=_fmt(s.paid, currency),
            outstanding=_fmt(s.outstanding, currency), overdue=_fmt(s.overdue, currency),
            credited=_fmt(s.credited, currency), last_payment_date=s.last_payment_on,
            dso_days=dso if dso is not None else ("0" if s.outstanding == 0 else None)))
    return figures


def add_by_currency(*parts: list[CurrencySums]) -> list[CurrencySums]:
    """Several parts' sums added currency by currency (a customer billed from several ledgers)."""
    total: dict[str, CurrencySums] = {}
    for part in parts:
        for s in part:
            total[s.currency] = total[s.currency] + s if s.currency in total else s
    return [total[c] for c in sorted(total)]


def figures_by_currency(entries: list[LedgerInvoice], history: list[CurrencyHistory], *, today: date,
                        dso_window_days: int) -> list[AccountFigures]:
    """Billed, paid, outstanding, overdue, credited, last payment and DSO per currency (see :func:`figures_of`)."""
    return figures_of(sums_by_currency(entries, history, today=today, dso_window_days=dso_window_days),
                      dso_window_days=dso_window_days)


def _fmt(amount: Decimal, currency: str) -> str:
    return str(round_amount(amount, currency))


# -- reconciliation: the rules live in canonical.reconciliation (re-exported here for old imports) ------
from canonical.reconciliation import EntityTotals, Finding, FindingKind, compare_receivables, differs  # noqa: E402

__all__ = ["BillingCustomer", "CurrencyHistory", "CurrencySums", "EntityTotals", "ErpWriteKind", "Finding",
           "FindingKind", "LedgerInvoice", "PendingErpWrite",
           "add_by_currency", "apply_invoice_snapshot", "compare_receivables", "differs", "figures_by_currency",
           "figures_of", "sums_by_currency", "unrecorded_payment"]
