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
    VOID = "void"


class PendingErpWrite(BaseModel):
    """An ERP write not done yet: refused by the ERP, or waiting for the invoice it belongs to.

    It stays on its invoice (and so across continue-as-new) until it is posted: by the ledger when it
    wakes, or by an operator's ``repost``. ``step`` makes its idempotency key, the same on every attempt."""

    kind: ErpWriteKind
    step: str
    reason: str = ""
    problem: str = Field(default="erp_rejected", description="ExceptionKind while it is pending")
    payment: Payment | None = None
    credit_note: CreditNote | None = None
    attempts: int = 0


class LedgerInvoice(BaseModel):
    """What the ledger knows of one billing invoice, built from events in any order."""

    invoice_id: str
    number: str | None = None
    currency: str
    legal_entity: str | None = None
    deal_id: str | None = None
    total: DecimalAmount = Decimal(0)
    paid: DecimalAmount = Decimal(0)
    credited: DecimalAmount = Decimal(0)
    credited_before_payment: DecimalAmount = Decimal(0)
    status: InvoiceStatus = InvoiceStatus.OPEN
    issued_on: date | None = None
    due_on: date | None = None
    settled_on: date | None = None
    erp_tenant_id: str | None = None
    erp_invoice_id: str | None = None
    payment_ids: list[str] = Field(default_factory=list)
    credit_note_ids: list[str] = Field(default_factory=list)
    payment_failures: int = 0
    overdue: bool = False
    last_payment_on: date | None = None
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


def apply_invoice_snapshot(entry: LedgerInvoice, invoice: Invoice) -> LedgerInvoice:
    """Fill in what the billing system says of the invoice without undoing what events applied:
    amounts come from the snapshot, paid/credited never go down, a settled status never reopens."""
    update: dict[str, object] = {
        "number": invoice.number or entry.number, "total": invoice.total.amount,
        "legal_entity": invoice.legal_entity or entry.legal_entity,
        "deal_id": invoice.crm_deal_id or entry.deal_id, "issued_on": invoice.issued_on or entry.issued_on,
        "due_on": invoice.due_on or entry.due_on,
    }
    if entry.status is InvoiceStatus.OPEN and invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE):
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


def figures_by_currency(entries: list[LedgerInvoice], history: list[CurrencyHistory], *, today: date,
                        dso_window_days: int) -> list[AccountFigures]:
    """Billed, paid, outstanding, overdue, credited, last payment and DSO per currency.

    DSO (days sales outstanding) = outstanding / billed in the last ``dso_window_days`` x the window,
    the standard formula; empty when nothing was billed in the window.
    """
    currencies = sorted({e.currency for e in entries} | {h.currency for h in history})
    window_start = today - timedelta(days=dso_window_days)
    figures: list[AccountFigures] = []
    for currency in currencies:
        mine = [e for e in entries if e.currency == currency]
        past = next((h for h in history if h.currency == currency), CurrencyHistory(currency=currency))
        live = [e for e in mine if e.status is not InvoiceStatus.VOID]
        billed = sum((e.total for e in live), Decimal(0)) + past.billed
        paid = sum((e.paid for e in mine), Decimal(0)) + past.paid
        credited = sum((e.credited for e in mine), Decimal(0)) + past.credited
        outstanding = sum((e.outstanding for e in mine), Decimal(0))
        overdue = sum((e.outstanding for e in mine if e.overdue), Decimal(0))
        payments = [d for d in [past.last_payment_on, *(e.last_payment_on for e in mine)] if d]
        recent = sum((e.total for e in live if e.issued_on and e.issued_on > window_start), Decimal(0))
        dso = None
        if recent > 0:
            dso = str((outstanding / recent * dso_window_days).quantize(Decimal("0.1")))
        figures.append(AccountFigures(
            currency=currency, billed=_fmt(billed, currency), paid=_fmt(paid, currency),
            outstanding=_fmt(outstanding, currency), overdue=_fmt(overdue, currency),
            credited=_fmt(credited, currency), last_payment_date=max(payments) if payments else None,
            dso_days=dso if dso is not None else ("0" if outstanding == 0 else None)))
    return figures


def _fmt(amount: Decimal, currency: str) -> str:
    return str(round_amount(amount, currency))


# -- reconciliation --------------------------------------------------------------------------------
class FindingKind(StrEnum):
    """What reconciliation can find wrong."""

    AMOUNT_MISMATCH = "amount_mismatch"
    MISSING_IN_ERP = "missing_in_erp"
    PAYMENT_MISMATCH = "payment_mismatch"
    CONTRACT_WITHOUT_PROJECT = "contract_without_project"
    PROJECT_WITHOUT_BILLING = "project_without_billing"
    INVOICE_WITHOUT_CRM_REFERENCE = "invoice_without_crm_reference"


class Finding(BaseModel):
    """One discrepancy, with the IDs on each side. ``key`` identifies it across runs."""

    kind: FindingKind
    key: str
    legal_entity: str = ""
    currency: str = ""
    billing_id: str = ""
    erp_id: str = ""
    clm_id: str = ""
    crm_id: str = ""
    billing_amount: str = ""
    erp_amount: str = ""
    detail: str = ""


class EntityTotals(BaseModel):
    """Per legal entity and currency: what billing and the ERP say was invoiced, paid and is owed."""

    legal_entity: str
    currency: str
    billing_invoiced: str = "0"
    erp_invoiced: str = "0"
    billing_paid: str = "0"
    erp_paid: str = "0"
    billing_outstanding: str = "0"
    erp_outstanding: str = "0"


def differs(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    """More than rounding apart."""
    return abs(a - b) > tolerance


def compare_receivables(entity: str, billing: list[Invoice], erp: list[Invoice], *, tolerance: Decimal
                        ) -> tuple[list[Finding], list[EntityTotals]]:
    """Billing invoices of one legal entity against the ERP's receivables of its tenant.

    ERP invoices are matched by ``billing_id`` (their Reference); a voided ERP document is ignored when a
    live one exists for the same reference. Billing drafts and voids expect nothing in the ERP. An
    uncollectible invoice is expected to be written off in the ERP (nothing outstanding).
    """
    by_ref: dict[str, Invoice] = {}
    for erp_doc in erp:
        held = by_ref.get(erp_doc.billing_id)
        if held is None or held.status is InvoiceStatus.VOID:
            by_ref[erp_doc.billing_id] = erp_doc
    findings: list[Finding] = []
    totals: dict[str, EntityTotals] = {}
    for inv in billing:
        if inv.status is InvoiceStatus.DRAFT:
            continue
        if not inv.crm_deal_id:
            findings.append(Finding(kind=FindingKind.INVOICE_WITHOUT_CRM_REFERENCE,
                                    key=f"{FindingKind.INVOICE_WITHOUT_CRM_REFERENCE}:{inv.billing_id}",
                                    legal_entity=entity, currency=inv.currency, billing_id=inv.billing_id,
                                    detail=f"billing invoice {inv.number or inv.billing_id} has no CRM deal ID"))
        if inv.status is InvoiceStatus.VOID:
            continue
        doc = by_ref.get(inv.billing_id)
        sums = totals.setdefault(inv.currency, EntityTotals(legal_entity=entity, currency=inv.currency))
        outstanding = Decimal(0) if inv.status is InvoiceStatus.UNCOLLECTIBLE else inv.amount_due.amount
        _add(sums, "billing_invoiced", inv.total.amount)
        _add(sums, "billing_paid", inv.amount_paid.amount)
        _add(sums, "billing_outstanding", outstanding)
        if doc is None or doc.status is InvoiceStatus.VOID:
            findings.append(Finding(kind=FindingKind.MISSING_IN_ERP,
                                    key=f"{FindingKind.MISSING_IN_ERP}:{inv.billing_id}",
                                    legal_entity=entity, currency=inv.currency, billing_id=inv.billing_id,
                                    crm_id=inv.crm_deal_id or "", billing_amount=str(inv.total.amount),
                                    detail=f"billing invoice {inv.number or inv.billing_id} is not in the ERP"))
            continue
        erp_id = doc.metadata.get("erp_invoice_id", "")
        _add(sums, "erp_invoiced", doc.total.amount)
        _add(sums, "erp_paid", doc.amount_paid.amount)
        _add(sums, "erp_outstanding", doc.amount_due.amount)
        if doc.currency != inv.currency or differs(doc.total.amount, inv.total.amount, tolerance):
            findings.append(Finding(kind=FindingKind.AMOUNT_MISMATCH,
                                    key=f"{FindingKind.AMOUNT_MISMATCH}:{inv.billing_id}",
                                    legal_entity=entity, currency=inv.currency, billing_id=inv.billing_id,
                                    erp_id=erp_id, crm_id=inv.crm_deal_id or "",
                                    billing_amount=f"{inv.total.amount} {inv.currency}",
                                    erp_amount=f"{doc.total.amount} {doc.currency}",
                                    detail="invoice totals differ between billing and the ERP"))
            continue
        if differs(doc.amount_due.amount, outstanding, tolerance):
            findings.append(Finding(kind=FindingKind.PAYMENT_MISMATCH,
                                    key=f"{FindingKind.PAYMENT_MISMATCH}:{inv.billing_id}",
                                    legal_entity=entity, currency=inv.currency, billing_id=inv.billing_id,
                                    erp_id=erp_id, crm_id=inv.crm_deal_id or "",
                                    billing_amount=f"{outstanding} {inv.currency} outstanding",
                                    erp_amount=f"{doc.amount_due.amount} {doc.currency} outstanding",
                                    detail=f"billing has {inv.amount_paid.amount} paid, the ERP "
                                           f"{doc.amount_paid.amount}"))
    return findings, sorted(totals.values(), key=lambda t: t.currency)


def _add(totals: EntityTotals, field: str, amount: Decimal) -> None:
    setattr(totals, field, str(Decimal(getattr(totals, field)) + amount))


__all__ = ["BillingCustomer", "CurrencyHistory", "EntityTotals", "ErpWriteKind", "Finding", "FindingKind",
           "LedgerInvoice", "PendingErpWrite",
           "apply_invoice_snapshot", "compare_receivables", "differs", "figures_by_currency", "unrecorded_payment"]
