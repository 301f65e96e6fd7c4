"""Reconciliation as a controller signs it off: the comparison rules, as pure functions.

Three controls, each a function from what the systems hold to findings:

- :func:`compare_receivables`, per legal entity and currency, in both directions: billing invoices
  against the ERP tenant's receivables (missing, orphan, duplicate, amount, currency, status, due date),
  payments (one side only, allocated to the wrong invoice) and credit notes (one side only);
- :func:`compare_delivery`: every executed contract has its project(s) in the right entity and, where the
  contract bills fixed amounts, a billing schedule and project budget equal to its value as amended;
  projects without a contract or without billing;
- :func:`compare_crm_figures`: billed / paid / outstanding / overdue / credited on the CRM company and deal
  equal what billing says.

A :class:`Finding` names its entity, kind, severity, the records on each side as ``system:object:id``,
and a suggested repair; ``key`` identifies it across runs. No connector, Temporal or SQL code here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from canonical.amendments import BillingRecord, BillingRecordKind
from canonical.billing import CreditNote, Invoice, InvoiceStatus
from canonical.books import EntityBooks, booking_differences
from canonical.contract import Contract, ContractTerms
from canonical.deal import BillingInterval, BillingModel, billing_periods
from canonical.keys import ledger_workflow_id, quote_to_cash_workflow_id, written_off_invoice
from canonical.money import Money, minor_unit
from canonical.project import Project
from canonical.systems import Systems


class FindingKind(StrEnum):
    """What reconciliation can find wrong."""

    # receivables: billing <-> ERP
    MISSING_IN_ERP = "missing_in_erp"
    ORPHAN_IN_ERP = "orphan_in_erp"
    DUPLICATE_IN_ERP = "duplicate_in_erp"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    DUE_DATE_MISMATCH = "due_date_mismatch"
    PAYMENT_MISSING_IN_ERP = "payment_missing_in_erp"
    PAYMENT_MISSING_IN_BILLING = "payment_missing_in_billing"
    PAYMENT_MISALLOCATED = "payment_misallocated"
    CREDIT_NOTE_MISSING_IN_ERP = "credit_note_missing_in_erp"
    CREDIT_NOTE_MISSING_IN_BILLING = "credit_note_missing_in_billing"
    CREDIT_NOTE_MISMATCH = "credit_note_mismatch"
    UNROUTABLE_INVOICE = "unroutable_invoice"
    INVOICE_WITHOUT_CRM_REFERENCE = "invoice_without_crm_reference"
    # contract -> delivery -> billing
    CONTRACT_WITHOUT_PROJECT = "contract_without_project"
    PROJECT_IN_WRONG_ENTITY = "project_in_wrong_entity"
    PROJECT_WITHOUT_CONTRACT = "project_without_contract"
    PROJECT_WITHOUT_BILLING = "project_without_billing"
    PROJECT_BUDGET_MISMATCH = "project_budget_mismatch"
    BILLING_SCHEDULE_MISMATCH = "billing_schedule_mismatch"
    # CRM figures
    CRM_FIGURES_MISMATCH = "crm_figures_mismatch"
    # billable time: project system <-> billing
    TIME_NOT_BILLED = "time_not_billed"
    TIME_BILLED_TWICE = "time_billed_twice"


class Severity(StrEnum):
    """How soon a person must act: money misstated (high), a control gap (medium), hygiene (low)."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY: dict[FindingKind, Severity] = {
    FindingKind.MISSING_IN_ERP: Severity.HIGH, FindingKind.ORPHAN_IN_ERP: Severity.HIGH,
    FindingKind.DUPLICATE_IN_ERP: Severity.HIGH, FindingKind.AMOUNT_MISMATCH: Severity.HIGH,
    FindingKind.CURRENCY_MISMATCH: Severity.HIGH, FindingKind.STATUS_MISMATCH: Severity.HIGH,
    FindingKind.DUE_DATE_MISMATCH: Severity.LOW, FindingKind.PAYMENT_MISSING_IN_ERP: Severity.HIGH,
    FindingKind.PAYMENT_MISSING_IN_BILLING: Severity.HIGH, FindingKind.PAYMENT_MISALLOCATED: Severity.HIGH,
    FindingKind.CREDIT_NOTE_MISSING_IN_ERP: Severity.HIGH, FindingKind.CREDIT_NOTE_MISSING_IN_BILLING: Severity.HIGH,
    FindingKind.CREDIT_NOTE_MISMATCH: Severity.HIGH, FindingKind.UNROUTABLE_INVOICE: Severity.HIGH,
    FindingKind.INVOICE_WITHOUT_CRM_REFERENCE: Severity.LOW, FindingKind.CONTRACT_WITHOUT_PROJECT: Severity.MEDIUM,
    FindingKind.PROJECT_IN_WRONG_ENTITY: Severity.MEDIUM, FindingKind.PROJECT_WITHOUT_CONTRACT: Severity.MEDIUM,
    FindingKind.PROJECT_WITHOUT_BILLING: Severity.MEDIUM, FindingKind.PROJECT_BUDGET_MISMATCH: Severity.MEDIUM,
    FindingKind.BILLING_SCHEDULE_MISMATCH: Severity.HIGH, FindingKind.CRM_FIGURES_MISMATCH: Severity.LOW,
    FindingKind.TIME_NOT_BILLED: Severity.HIGH, FindingKind.TIME_BILLED_TWICE: Severity.HIGH,
}


class Finding(BaseModel):
    """One discrepancy. ``key`` identifies it across runs; ``refs`` are the records on each side."""

    kind: FindingKind
    key: str
    severity: Severity = Field(default=Severity.MEDIUM, description="by kind unless given")
    legal_entity: str = ""
    currency: str = ""
    billing_id: str = ""
    erp_id: str = ""
    clm_id: str = ""
    crm_id: str = ""
    billing_amount: str = ""
    erp_amount: str = ""
    detail: str = ""
    refs: list[str] = Field(default_factory=list, description="system:object:id on each side")
    repair: str = Field(default="", description="the suggested repair, a command when it is mechanical")

    @model_validator(mode="before")
    @classmethod
    def _severity_of_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("severity") and data.get("kind"):
            data = {**data, "severity": SEVERITY[FindingKind(data["kind"])]}
        return data


def finding(kind: FindingKind, entity: str, subject: str, **fields: object) -> Finding:
    """A finding of ``kind`` about ``subject`` (its key), with the kind's severity."""
    refs = [r for r in fields.pop("refs", []) or [] if r and not str(r).endswith(":")]  # type: ignore[attr-defined]
    return Finding(kind=kind, key=f"{kind.value}:{entity}:{subject}" if entity else f"{kind.value}:{subject}",
                   severity=SEVERITY[kind], legal_entity=entity, refs=refs, **fields)  # type: ignore[arg-type]


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


class SourceRead(BaseModel):
    """How one run read one source (billing, or one entity's ERP tenant): a full pass or a delta."""

    source: str
    mode: str = Field(description="full or delta")
    documents: int = 0
    requests: int = 0
    rate_limited: int = Field(default=0, description="429 answers waited out")
    read_at: datetime


class ErpPayment(BaseModel):
    """A payment as the ERP holds it: ``reference`` is the billing payment it records."""

    erp_id: str
    reference: str = ""
    erp_invoice_id: str
    amount: Money
    status: str = "AUTHORISED"
    updated_at: datetime | None = Field(default=None, description="the ERP's last change (its clock)")


class ErpCreditNote(BaseModel):
    """A receivable credit note as the ERP holds it: ``reference`` is the billing credit note."""

    erp_id: str
    reference: str = ""
    amount: Money
    status: str = "AUTHORISED"
    erp_invoice_ids: list[str] = Field(default_factory=list, description="invoices it is allocated to")
    updated_at: datetime | None = Field(default=None, description="the ERP's last change (its clock)")


class BillingChange(BaseModel):
    """One billing object as it now stands (or gone), from a list or from the vendor's event feed."""

    object: str = Field(description="invoice, credit_note or customer")
    id: str
    deleted: bool = False
    invoice: Invoice | None = None
    credit_note: CreditNote | None = None
    company_id: str = Field(default="", description="customers: the CRM company")
    legal_entity: str = Field(default="", description="customers: the entity billing them")
    changed_at: datetime | None = Field(default=None, description="when billing recorded the change (its clock)")

    @property
    def stands(self) -> bool:
        """True when this copy is how the object stands: deleted, a customer, or the object itself came with the
        newest event about it. An event about something else (an item added to a draft invoice) names its
        invoice without a copy of it: that one must be read."""
        return self.deleted or self.object == "customer" or (self.invoice if self.object == "invoice"
                                                             else self.credit_note) is not None


class Receivables(BaseModel):
    """Everything one entity's receivables control compares."""

    billing_invoices: list[Invoice] = Field(default_factory=list)
    billing_credit_notes: list[CreditNote] = Field(default_factory=list)
    erp_invoices: list[Invoice] = Field(default_factory=list)
    erp_payments: list[ErpPayment] = Field(default_factory=list)
    erp_credit_notes: list[ErpCreditNote] = Field(default_factory=list)
    customer_of_invoice: dict[str, str] = Field(default_factory=dict, description="billing invoice -> customer")


def tolerance_for(currency: str, tolerance: Decimal) -> Decimal:
    """Rounding tolerance: the configured one, but never below one minor unit of the currency."""
    return max(tolerance, Decimal(1).scaleb(-minor_unit(currency)) if currency else tolerance)


def differs(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    """More than rounding apart."""
    return abs(a - b) > tolerance


def repost_command(systems: Systems, customer_id: str, invoice_id: str) -> str:
    """The ledger's repair (money-path issue): re-post one invoice and its payments to the ERP."""
    return f"starter.py repost {ledger_workflow_id(systems.billing.name, customer_id)} --invoice {invoice_id}"


def figures_command(systems: Systems, customer_id: str) -> str:
    """The CRM figures' repair: a ledger of the company reports its figures again and the company's owner
    writes the sum over every ledger (over a figure typed by hand)."""
    return f"starter.py repost {ledger_workflow_id(systems.billing.name, customer_id)} --figures"


def recheck_command(systems: Systems, deal_id: str) -> str:
    """Quote-to-cash's repair: re-read the deal (a new run when the last one ended)."""
    return f"starter.py recheck {quote_to_cash_workflow_id(systems.crm.name, deal_id)}"


_LIVE_ERP = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)


def _erp_live(doc: Invoice) -> bool:
    return doc.status in _LIVE_ERP and doc.metadata.get("erp_status") not in ("DELETED", "VOIDED", "DRAFT")


def _erp_id(doc: Invoice) -> str:
    return doc.metadata.get("erp_invoice_id", "")


def compare_receivables(entity: str, data: Receivables, *, tolerance: Decimal, systems: Systems,
                        books: EntityBooks | None = None) -> tuple[list[Finding], list[EntityTotals]]:
    """Billing against the ERP tenant of one legal entity, both ways, with per-currency totals. With the entity's
    ``books``, an ERP invoice whose lines carry their accounts and tax codes is also checked against them.

    ERP invoices are matched by ``billing_id`` (their Reference). Billing drafts and voids expect nothing in
    the ERP; an uncollectible invoice is expected written off there (nothing outstanding). More than one live
    ERP document for one billing invoice is a duplicate (the one with most paid is compared). A payment whose
    Reference is a payment of another billing invoice is misallocated; it counts for the invoice it belongs to.
    """
    _bill, _erp = systems.billing, systems.erp_of(entity)
    findings: list[Finding] = []
    totals: dict[str, EntityTotals] = {}
    billing = {i.billing_id: i for i in data.billing_invoices if i.status is not InvoiceStatus.DRAFT}
    customers = data.customer_of_invoice
    live_by_ref: dict[str, list[Invoice]] = defaultdict(list)
    voided_refs: dict[str, list[str]] = defaultdict(list)  # billing invoice -> its voided ERP documents
    for erp_doc in data.erp_invoices:
        if _erp_live(erp_doc):
            live_by_ref[erp_doc.billing_id].append(erp_doc)
        elif erp_doc.billing_id and erp_doc.metadata.get("erp_status") != "DRAFT":
            voided_refs[erp_doc.billing_id].append(_erp_id(erp_doc))
    erp_by_id = {_erp_id(d): d for d in data.erp_invoices}

    # payments: which billing invoice each billing payment belongs to; which ERP invoice it sits on
    owner_of_payment = {p: i.billing_id for i in billing.values() for p in i.payment_ids}
    paid_by_ref: dict[str, Decimal] = defaultdict(Decimal)  # ERP money received per billing invoice
    live_payments = [p for p in data.erp_payments if p.status != "DELETED"]
    misplaced: set[str] = set()  # invoices a misallocated payment touches: their amount due is explained by it

    def _held_ref(pay: ErpPayment) -> str:
        held_on = erp_by_id.get(pay.erp_invoice_id)
        return held_on.billing_id if held_on else ""

    # billing payments the ERP already holds on their own invoice: a copy elsewhere is an extra, not theirs
    rightly_held = {p.reference: p.erp_id for p in live_payments
                    if p.reference and owner_of_payment.get(p.reference) == _held_ref(p)}
    for pay in live_payments:
        held_ref = _held_ref(pay)
        owner = owner_of_payment.get(pay.reference)
        if owner and held_ref and owner != held_ref:
            misplaced.update((owner, held_ref))
        if owner and held_ref and owner != held_ref and pay.reference in rightly_held:
            findings.append(finding(
                FindingKind.PAYMENT_MISALLOCATED, entity, pay.erp_id, currency=pay.amount.currency,
                billing_id=owner, erp_id=pay.erp_id, crm_id=billing[owner].crm_deal_id or "",
                erp_amount=f"{pay.amount.amount} {pay.amount.currency}",
                refs=[_bill.ref("invoice", owner), _bill.ref("payment", pay.reference), _erp.ref("payment", pay.erp_id),
                      _erp.ref("invoice", pay.erp_invoice_id), _bill.ref("invoice", held_ref)],
                detail=f"ERP payment {pay.erp_id} is a second copy of billing payment {pay.reference} (of invoice "
                       f"{owner}, already recorded there as {rightly_held[pay.reference]}), allocated to the ERP "
                       f"invoice of {held_ref}, which billing holds no such payment for",
                repair=f"in the ERP, delete payment {pay.erp_id} (the copy on the invoice of {held_ref}); keep "
                       f"{rightly_held[pay.reference]}"))
            continue  # counts for neither invoice: the owner's own copy is counted, the other never had it
        if owner and held_ref and owner != held_ref:
            findings.append(finding(
                FindingKind.PAYMENT_MISALLOCATED, entity, pay.erp_id, currency=pay.amount.currency,
                billing_id=owner, erp_id=pay.erp_id, crm_id=billing[owner].crm_deal_id or "",
                erp_amount=f"{pay.amount.amount} {pay.amount.currency}",
                refs=[_bill.ref("invoice", owner), _bill.ref("payment", pay.reference), _erp.ref("payment", pay.erp_id),
                      _erp.ref("invoice", pay.erp_invoice_id)],
                detail=f"ERP payment {pay.reference} belongs to billing invoice {owner} but is allocated to the "
                       f"ERP invoice of {held_ref}",
                repair=f"in the ERP, delete payment {pay.erp_id} and record it against the invoice of {owner}"))
            paid_by_ref[owner] += pay.amount.amount
        else:
            paid_by_ref[held_ref] += pay.amount.amount

    for ref in sorted(live_by_ref):
        docs = live_by_ref[ref]
        if ref in billing and len(docs) > 1:
            inv = billing[ref]
            ids = [_erp_id(d) for d in docs]
            findings.append(finding(
                FindingKind.DUPLICATE_IN_ERP, entity, ref, currency=inv.currency, billing_id=ref,
                erp_id=",".join(ids), crm_id=inv.crm_deal_id or "",
                billing_amount=f"{inv.total.amount} {inv.currency}",
                erp_amount=" + ".join(f"{d.total.amount} {d.currency}" for d in docs),
                refs=[_bill.ref("invoice", ref), *(_erp.ref("invoice", i) for i in ids)],
                detail=f"billing invoice {inv.number or ref} is posted {len(docs)} times in the ERP",
                repair="void the extra ERP document(s) (those without payments): " + ", ".join(
                    _erp_id(d) for d in sorted(docs, key=lambda d: (-d.amount_paid.amount, d.number or ""))[1:])))
        if ref not in billing:
            for orphan in docs:
                findings.append(finding(
                    FindingKind.ORPHAN_IN_ERP, entity, _erp_id(orphan), currency=orphan.currency, billing_id=ref,
                    erp_id=_erp_id(orphan), erp_amount=f"{orphan.total.amount} {orphan.currency}",
                    refs=[_erp.ref("invoice", _erp_id(orphan)), _bill.ref("invoice", ref) if ref else ""],
                    detail=f"ERP receivable {orphan.number or _erp_id(orphan)} "
                           + (f"references billing invoice {ref}, which billing does not have for {entity}"
                              if ref else "has no billing reference"),
                    repair="void it in the ERP, or issue the invoice in billing and set its Reference"))
                _add_erp(totals, entity, orphan)

    note_findings = _compare_credit_notes(entity, data, billing, live_by_ref, systems)
    noted = {f.billing_id for f in note_findings}  # credit notes (or, for write-offs, invoices) found wrong
    credit_explained = noted | {n.invoice_billing_id for n in data.billing_credit_notes if n.billing_id in noted}
    for inv in billing.values():
        customer = customers.get(inv.billing_id, inv.customer_id)
        if not inv.crm_deal_id:
            findings.append(finding(
                FindingKind.INVOICE_WITHOUT_CRM_REFERENCE, entity, inv.billing_id, currency=inv.currency,
                billing_id=inv.billing_id, refs=[_bill.ref("invoice", inv.billing_id)],
                detail=f"billing invoice {inv.number or inv.billing_id} has no CRM deal ID",
                repair=f"set metadata revops_deal_id on {_bill.display} invoice {inv.billing_id}"))
        docs = live_by_ref.get(inv.billing_id, [])
        doc = max(docs, key=lambda d: (d.amount_paid.amount, -len(d.number or ""))) if docs else None
        tol = tolerance_for(inv.currency, tolerance)
        if inv.status is InvoiceStatus.VOID:
            # voided after a part payment: the ledger keeps the cash applied and credits the remainder (Xero
            # cannot void a part-paid invoice), so a live ERP invoice that owes nothing and holds what billing
            # received is the void as the ERP books it
            closed = doc is not None and not differs(doc.amount_due.amount, Decimal(0), tol) and not differs(
                doc.amount_paid.amount, inv.amount_paid.amount, tol) and inv.amount_paid.amount > 0
            if doc is not None and not closed:
                findings.append(finding(
                    FindingKind.STATUS_MISMATCH, entity, inv.billing_id, currency=inv.currency,
                    billing_id=inv.billing_id, erp_id=_erp_id(doc), crm_id=inv.crm_deal_id or "",
                    billing_amount="void", erp_amount=f"{doc.metadata.get('erp_status', doc.status)} "
                                                      f"{doc.amount_due.amount} {doc.currency} due",
                    refs=[_bill.ref("invoice", inv.billing_id), _erp.ref("invoice", _erp_id(doc))],
                    detail=f"billing voided invoice {inv.number or inv.billing_id}; the ERP still holds it live",
                    repair=f"void ERP invoice {_erp_id(doc)}"))
                _add_erp(totals, entity, doc)
            continue
        sums = totals.setdefault(inv.currency, EntityTotals(legal_entity=entity, currency=inv.currency))
        outstanding = Decimal(0) if inv.status is InvoiceStatus.UNCOLLECTIBLE else inv.amount_due.amount
        _add(sums, "billing_invoiced", inv.total.amount)
        _add(sums, "billing_paid", inv.amount_paid.amount)
        _add(sums, "billing_outstanding", outstanding)
        base = {"currency": inv.currency, "billing_id": inv.billing_id, "crm_id": inv.crm_deal_id or ""}
        if doc is None and inv.billing_id in voided_refs:
            # voided in the ERP only: a repost would post a second copy; one side or the other must change
            voided = voided_refs[inv.billing_id]
            findings.append(finding(
                FindingKind.STATUS_MISMATCH, entity, inv.billing_id, **base, erp_id=",".join(voided),
                billing_amount=f"{inv.status.value} {inv.amount_due.amount} {inv.currency} due",
                erp_amount="VOIDED", refs=[_bill.ref("invoice", inv.billing_id),
                                           *(_erp.ref("invoice", v) for v in voided), _bill.ref("customer", customer)],
                detail=f"the ERP voided invoice {', '.join(voided)} (billing {inv.number or inv.billing_id}), which "
                       f"billing still holds {inv.status.value}",
                repair=f"if the invoice is cancelled, void {_bill.display} invoice {inv.billing_id} (the ledger then "
                       f"has nothing to post); if it stands, the ERP void was a mistake: re-issue it in the ERP with "
                       f"Reference {inv.billing_id} (a voided ERP invoice cannot be reopened)"))
            continue
        if doc is None:
            findings.append(finding(
                FindingKind.MISSING_IN_ERP, entity, inv.billing_id, **base,
                billing_amount=f"{inv.total.amount} {inv.currency}",
                refs=[_bill.ref("invoice", inv.billing_id), _bill.ref("customer", customer)],
                detail=f"billing invoice {inv.number or inv.billing_id} is not in the ERP",
                repair=repost_command(systems, customer, inv.billing_id)))
            continue
        for other in docs:
            _add_erp(totals, entity, other)
        erp_id = _erp_id(doc)
        refs = [_bill.ref("invoice", inv.billing_id), _erp.ref("invoice", erp_id)]
        base["erp_id"] = erp_id
        if doc.currency != inv.currency:
            findings.append(finding(
                FindingKind.CURRENCY_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"{inv.total.amount} {inv.currency}", erp_amount=f"{doc.total.amount} {doc.currency}",
                detail=f"billing invoices in {inv.currency}, the ERP holds {doc.currency}",
                repair=f"void ERP invoice {erp_id} and re-post: {repost_command(systems, customer, inv.billing_id)}"))
            continue
        if differs(doc.total.amount, inv.total.amount, tol):
            findings.append(finding(
                FindingKind.AMOUNT_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"{inv.total.amount} {inv.currency}", erp_amount=f"{doc.total.amount} {doc.currency}",
                detail="invoice totals differ between billing and the ERP",
                repair=f"void ERP invoice {erp_id} and re-post: {repost_command(systems, customer, inv.billing_id)}"))
            continue
        # net of tax from the totals: billing's subtotal is before invoice-level discounts, the ERP's after them
        billing_net, erp_net = inv.total.amount - inv.tax.amount, doc.total.amount - doc.tax.amount
        split = [f"{name} billing {a}, ERP {b}" for name, a, b in (
            ("subtotal (net of tax)", billing_net, erp_net), ("tax", inv.tax.amount, doc.tax.amount))
            if differs(a, b, tol)]
        if split:
            findings.append(finding(
                FindingKind.AMOUNT_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"{billing_net} + {inv.tax.amount} tax {inv.currency}",
                erp_amount=f"{erp_net} + {doc.tax.amount} tax {doc.currency}",
                detail="totals agree but the split between revenue and tax differs: " + "; ".join(split),
                repair=f"void ERP invoice {erp_id} and re-post: {repost_command(systems, customer, inv.billing_id)}"))
            continue
        booking = booking_differences(books, inv, doc) if books is not None else []
        if booking:
            findings.append(finding(
                FindingKind.AMOUNT_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"{billing_net} + {inv.tax.amount} tax {inv.currency}",
                erp_amount=f"{erp_net} + {doc.tax.amount} tax {doc.currency}",
                detail="amounts agree but the accounts or tax codes (account/tax code) differ: " + "; ".join(booking),
                repair=f"fix BOOKS_MAPPING if it is wrong; else void ERP invoice {erp_id} and re-post: "
                       f"{repost_command(systems, customer, inv.billing_id)}"))
            continue
        if inv.status is InvoiceStatus.UNCOLLECTIBLE and differs(doc.amount_due.amount, Decimal(0), tol):
            findings.append(finding(
                FindingKind.STATUS_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount="uncollectible", erp_amount=f"{doc.amount_due.amount} {doc.currency} due",
                detail="billing wrote the invoice off; the ERP still has an amount due",
                repair=f"write off ERP invoice {erp_id} (credit note or bad-debt entry)"))
        if inv.due_on and doc.due_on and inv.due_on != doc.due_on:
            findings.append(finding(
                FindingKind.DUE_DATE_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"due {inv.due_on}", erp_amount=f"due {doc.due_on}",
                detail="due dates differ between billing and the ERP",
                repair=f"set the due date of ERP invoice {erp_id} to {inv.due_on}"))
        erp_paid = paid_by_ref.get(inv.billing_id, Decimal(0))
        if differs(inv.amount_paid.amount, erp_paid, tol):
            missing_erp = inv.amount_paid.amount > erp_paid
            findings.append(finding(
                FindingKind.PAYMENT_MISSING_IN_ERP if missing_erp else FindingKind.PAYMENT_MISSING_IN_BILLING,
                entity, inv.billing_id, **base,
                refs=refs + [_bill.ref("payment", p) for p in inv.payment_ids],
                billing_amount=f"{inv.amount_paid.amount} {inv.currency} paid",
                erp_amount=f"{erp_paid} {doc.currency} paid",
                detail=(f"billing received {inv.amount_paid.amount - erp_paid} {inv.currency} the ERP has not recorded"
                        if missing_erp else
                        f"the ERP records {erp_paid - inv.amount_paid.amount} {inv.currency} billing never received"),
                repair=(repost_command(systems, customer, inv.billing_id) if missing_erp
                        else f"check the ERP payments on {erp_id} against the bank; delete the ones billing lacks")))
        elif inv.status is not InvoiceStatus.UNCOLLECTIBLE and inv.billing_id not in credit_explained | misplaced and (
                differs(inv.amount_due.amount, doc.amount_due.amount, tol) or (
                inv.status is InvoiceStatus.PAID) != (doc.status is InvoiceStatus.PAID)):
            # payments agree, so what is still owed (or settled) differs by something neither side explains
            erp_state = doc.metadata.get("erp_status", doc.status.value)
            findings.append(finding(
                FindingKind.STATUS_MISMATCH, entity, inv.billing_id, **base, refs=refs,
                billing_amount=f"{inv.status.value} {inv.amount_due.amount} {inv.currency} due",
                erp_amount=f"{erp_state} {doc.amount_due.amount} {doc.currency} due",
                detail=f"payments agree, but billing holds {inv.amount_due.amount} {inv.currency} due "
                       f"({inv.status.value}) and the ERP {doc.amount_due.amount} ({erp_state})",
                repair=f"find the credit or adjustment on ERP invoice {erp_id} that billing lacks (or the one billing "
                       f"made that the ERP lacks) and issue it on the other side"))
    findings += note_findings
    return findings, sorted(totals.values(), key=lambda t: t.currency)


def _compare_credit_notes(entity: str, data: Receivables, billing: dict[str, Invoice],
                          live_by_ref: dict[str, list[Invoice]], systems: Systems) -> list[Finding]:
    """Credit notes both ways, matched by the ERP's Reference: amount and allocation compared. The ledger's own
    write-offs (:func:`~canonical.keys.write_off_credit_note_id`) have no billing credit note: they are expected
    on an invoice billing holds as uncollectible (or voided after it), and wrong on any other."""
    _bill, _erp = systems.billing, systems.erp_of(entity)
    found: list[Finding] = []
    live_notes = [n for n in data.erp_credit_notes if n.status not in ("DELETED", "VOIDED")]
    erp_by_ref: dict[str, list[ErpCreditNote]] = defaultdict(list)
    for erp_note in live_notes:
        if erp_note.reference:
            erp_by_ref[erp_note.reference].append(erp_note)
    billing_ids = {n.billing_id for n in data.billing_credit_notes}
    for note in data.billing_credit_notes:
        inv = billing.get(note.invoice_billing_id)
        if inv is None:
            continue
        customer = data.customer_of_invoice.get(inv.billing_id, inv.customer_id)
        held = erp_by_ref.get(note.billing_id, [])
        note_refs = [_bill.ref("credit_note", note.billing_id), _bill.ref("invoice", inv.billing_id)]
        if not held:
            found.append(finding(
                FindingKind.CREDIT_NOTE_MISSING_IN_ERP, entity, note.billing_id, currency=note.amount.currency,
                billing_id=note.billing_id, crm_id=inv.crm_deal_id or "",
                billing_amount=f"{note.amount.amount} {note.amount.currency}", refs=note_refs,
                detail=f"billing credit note {note.billing_id} on invoice {inv.number or inv.billing_id} is not in "
                       "the ERP",
                repair=repost_command(systems, customer, inv.billing_id)))
            continue
        erp_note = held[0]
        tol = tolerance_for(note.amount.currency, Decimal(0))
        invoice_ids = {_erp_id(d) for d in live_by_ref.get(inv.billing_id, [])}
        problems: list[str] = []
        if erp_note.amount.currency != note.amount.currency or differs(erp_note.amount.amount, note.amount.amount,
                                                                        tol):
            problems.append(f"billing credits {note.amount.amount} {note.amount.currency}, the ERP "
                            f"{erp_note.amount.amount} {erp_note.amount.currency}")
        wrong = [i for i in erp_note.erp_invoice_ids if i not in invoice_ids]
        if wrong:
            problems.append(f"the ERP credit note is allocated to {', '.join(wrong)}, not to the ERP invoice of "
                            f"{inv.billing_id}")
        if problems:
            found.append(finding(
                FindingKind.CREDIT_NOTE_MISMATCH, entity, note.billing_id, currency=note.amount.currency,
                billing_id=note.billing_id, erp_id=erp_note.erp_id, crm_id=inv.crm_deal_id or "",
                billing_amount=f"{note.amount.amount} {note.amount.currency}",
                erp_amount=f"{erp_note.amount.amount} {erp_note.amount.currency}",
                refs=[*note_refs, _erp.ref("credit_note", erp_note.erp_id),
                      *(_erp.ref("invoice", i) for i in erp_note.erp_invoice_ids)],
                detail=f"credit note {note.billing_id}: " + "; ".join(problems),
                repair=f"void ERP credit note {erp_note.erp_id} and re-post: "
                       f"{repost_command(systems, customer, inv.billing_id)}"))
    for erp_note in live_notes:
        if erp_note.reference in billing_ids:
            continue
        refs = [_erp.ref("credit_note", erp_note.erp_id), *(_erp.ref("invoice", i) for i in erp_note.erp_invoice_ids)]
        written_off = written_off_invoice(erp_note.reference)
        if written_off is not None:
            inv = billing.get(written_off)
            if inv is not None and inv.status in (InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID):
                continue  # our own write-off of an invoice billing wrote off: expected
            if inv is None:
                found.append(finding(
                    FindingKind.CREDIT_NOTE_MISSING_IN_BILLING, entity, erp_note.erp_id,
                    currency=erp_note.amount.currency, erp_id=erp_note.erp_id, billing_id=written_off,
                    erp_amount=f"{erp_note.amount.amount} {erp_note.amount.currency}",
                    refs=[*refs, _bill.ref("invoice", written_off)],
                    detail=f"ERP credit note {erp_note.erp_id} writes off invoice {written_off}, which billing does "
                           f"not hold for {entity}",
                    repair=f"void ERP credit note {erp_note.erp_id}, and write the invoice off in the entity that "
                           "holds it"))
                continue
            found.append(finding(
                FindingKind.CREDIT_NOTE_MISMATCH, entity, erp_note.erp_id, currency=erp_note.amount.currency,
                erp_id=erp_note.erp_id, billing_id=written_off, crm_id=inv.crm_deal_id or "",
                billing_amount=f"{inv.status.value} {inv.amount_paid.amount} {inv.currency} paid",
                erp_amount=f"{erp_note.amount.amount} {erp_note.amount.currency} written off",
                refs=[_bill.ref("invoice", written_off), *refs],
                detail=f"the integration wrote invoice {inv.number or written_off} off in the ERP (credit note "
                       f"{erp_note.erp_id}), but billing holds it {inv.status.value}: the write-off no longer stands",
                repair=f"void ERP credit note {erp_note.erp_id} (reverse the write-off), then " + repost_command(
                    systems, data.customer_of_invoice.get(written_off, inv.customer_id), written_off)))
            continue
        found.append(finding(
            FindingKind.CREDIT_NOTE_MISSING_IN_BILLING, entity, erp_note.erp_id, currency=erp_note.amount.currency,
            erp_id=erp_note.erp_id, billing_id=erp_note.reference,
            erp_amount=f"{erp_note.amount.amount} {erp_note.amount.currency}", refs=refs,
            detail=f"ERP credit note {erp_note.erp_id} has no credit note in billing"
                   + (f" (reference {erp_note.reference})" if erp_note.reference else ""),
            repair="issue the credit note in billing, or void it in the ERP"))
    return found


def compare_unroutable(invoices: Iterable[Invoice], *, known_entities: set[str], entity_of: Callable[[Invoice], str],
                       systems: Systems) -> list[Finding]:
    """Billing invoices that no configured legal entity holds (none named, or an unknown one): the ledger cannot
    post them anywhere, so no entity's receivables would ever show them. Drafts and voids owe nothing."""
    _bill = systems.billing
    found: list[Finding] = []
    for inv in invoices:
        code = entity_of(inv)
        if code in known_entities or inv.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
            continue
        found.append(finding(
            FindingKind.UNROUTABLE_INVOICE, "", inv.billing_id, currency=inv.currency, billing_id=inv.billing_id,
            crm_id=inv.crm_deal_id or "", billing_amount=f"{inv.total.amount} {inv.currency}",
            refs=[_bill.ref("invoice", inv.billing_id), _bill.ref("customer", inv.customer_id)],
            detail=f"billing invoice {inv.number or inv.billing_id} "
                   + (f"names legal entity {code!r}, which is not configured" if code else "names no legal entity")
                   + ": it is in no entity's receivables",
            repair=f"set metadata legal_entity on {_bill.display} customer {inv.customer_id} (or the invoice), then "
                   + repost_command(systems, inv.customer_id, inv.billing_id)))
    return found


def _add(totals: EntityTotals, field: str, amount: Decimal) -> None:
    setattr(totals, field, str(Decimal(getattr(totals, field)) + amount))


def _add_erp(totals: dict[str, EntityTotals], entity: str, doc: Invoice) -> None:
    sums = totals.setdefault(doc.currency, EntityTotals(legal_entity=entity, currency=doc.currency))
    _add(sums, "erp_invoiced", doc.total.amount)
    _add(sums, "erp_paid", doc.amount_paid.amount)
    _add(sums, "erp_outstanding", doc.amount_due.amount)


# -- contract -> delivery -> billing -------------------------------------------------------------------
class EntityProject(BaseModel):
    """A project as found in one entity's ERP tenant."""

    entity: str
    project: Project


class ProjectBilling(BaseModel):
    """What billing holds for one project code: its live objects and, for one-off invoices, their value."""

    billing_ids: list[str] = Field(default_factory=list)
    invoiced: Money | None = Field(default=None, description="sum of live one-off invoices before tax")
    recurring: bool = Field(default=False, description="subscriptions or rate cards: no fixed total")
    records: list[BillingRecord] = Field(default_factory=list,
                                         description="subscription items and rate-card prices made for it")


class Delivery(BaseModel):
    """Everything the delivery control compares (projects of every entity, so a scoped run sees them all)."""

    contracts: list[Contract] = Field(default_factory=list)
    projects: list[EntityProject] = Field(default_factory=list)
    billing: dict[str, ProjectBilling] = Field(default_factory=dict, description="project code -> billing")


def project_prefix(deal_id: str) -> str:
    """Quote-to-cash names projects ``P-<dealId>-<ENTITY>``."""
    return f"P-{deal_id}-"


def project_deal_and_entity(code: str) -> tuple[str, str] | None:
    """``P-<dealId>-<ENTITY>`` back to (deal ID, entity code); ``None`` for any other code."""
    if not code.startswith("P-") or code.count("-") < 2:
        return None
    deal, _, entity = code[2:].rpartition("-")
    return (deal, entity) if deal and entity else None


_FIXED_MODELS = (BillingModel.FIXED_FEE, BillingModel.MILESTONE)


def periods_in_term(start: date, end: date | None, interval: BillingInterval) -> int:
    """How many billing periods start within the term (start and end included); one without an end."""
    return 1 if end is None else billing_periods(start, end, interval)


def schedule_mismatch(terms: ContractTerms, billed: list[ProjectBilling], *, tolerance: Decimal
                      ) -> tuple[str, str, str] | None:
    """How the billing schedule differs from the executed terms (as amended), or ``None`` when it does not:
    (what billing holds, what the contract says, the detail). Per billing model:

    - fixed fee and milestones: the live one-off invoices total the contract value (with no recurring billing);
      milestones beside recurring charges total the milestones' amounts;
    - subscription and retainer: each recurring charge's amount per period (unit price x quantity) x the periods
      of the term equals what the subscription items bill (their price x quantity) over the same periods, per
      product code;
    - time and materials: a rate card has no fixed total, so the rates are checked instead: each role's active
      price equals its hourly rate, and no rate is billed for a role the contract does not have.
    """
    currency = terms.total_value.currency
    parts: list[str] = []
    held: list[str] = []
    wanted: list[str] = []
    records = [r for b in billed for r in b.records]
    one_off = sum((b.invoiced.amount for b in billed if b.invoiced), Decimal(0))
    fixed_model = terms.billing_model in _FIXED_MODELS
    if fixed_model and not any(b.recurring or b.records for b in billed):
        if differs(one_off, terms.total_value.amount, tolerance):
            return (f"{one_off} scheduled", f"{terms.total_value.amount} {currency} contract",
                    f"one-off invoices total {one_off}, the contract {terms.total_value.amount}")
        return None
    if terms.milestones and not fixed_model:
        expected = sum((m.amount.amount for m in terms.milestones), Decimal(0))
        if differs(one_off, expected, tolerance):
            parts.append(f"milestone invoices total {one_off}, the contract's milestones {expected}")
            held.append(f"{one_off} milestones")
            wanted.append(f"{expected} milestones")
    if terms.recurring:
        items = [r for r in records if r.kind is BillingRecordKind.SUBSCRIPTION_ITEM]
        contract_total, billing_total = Decimal(0), Decimal(0)
        differing: list[str] = []
        for code in sorted({c.product_code for c in terms.recurring} | {r.product_code for r in items}):
            expected = sum((c.per_period().amount * periods_in_term(terms.start_date, terms.end_date, c.interval)
                            for c in terms.recurring if c.product_code == code), Decimal(0))
            scheduled = sum(((r.unit_amount.amount if r.unit_amount else Decimal(0)) * (r.quantity or 0)
                             * periods_in_term(terms.start_date, terms.end_date, r.interval or BillingInterval.MONTH)
                             for r in items if r.product_code == code), Decimal(0))
            contract_total += expected
            billing_total += scheduled
            if differs(scheduled, expected, tolerance):
                differing.append(f"{code} {scheduled} vs {expected}")
        if differing:
            term = "over the term" if terms.end_date else "per period (open-ended term)"
            parts.append(f"recurring charges {term} total {billing_total}, the contract {contract_total} "
                         f"({'; '.join(differing)})")
            held.append(f"{billing_total} recurring")
            wanted.append(f"{contract_total} recurring")
    if terms.rate_card:
        rates = {r.product_code: r for r in records if r.kind is BillingRecordKind.RATE}
        wrong: list[str] = []
        for entry in terms.rate_card:
            price = rates.pop(entry.role, None)
            if price is None or price.unit_amount is None:
                wrong.append(f"{entry.role} has no rate (contract {entry.hourly_rate.amount})")
            elif differs(price.unit_amount.amount, entry.hourly_rate.amount, tolerance):
                wrong.append(f"{entry.role} {price.unit_amount.amount} vs {entry.hourly_rate.amount}")
        wrong += [f"{code} billed at {r.unit_amount.amount if r.unit_amount else '?'} but not in the contract"
                  for code, r in sorted(rates.items())]
        if wrong:
            parts.append("time and materials has no fixed total, so its rates were checked: " + "; ".join(wrong))
            held.append("rates")
            wanted.append("rate card")
    if not parts:
        return None
    return ", ".join(held) + " scheduled", ", ".join(wanted) + f" ({currency}) contract", "; ".join(parts)


def compare_delivery(entities: Iterable[str], data: Delivery, *, tolerance: Decimal, systems: Systems,
                     unattributed: bool = True) -> list[Finding]:
    """Contracts, projects and billing schedules of the entities in ``entities`` (reported there only).
    A contract that names no entity is reported only when ``unattributed`` (a run over every entity)."""
    _crm, _clm, _bill = systems.crm, systems.clm, systems.billing

    scope = set(entities)
    findings: list[Finding] = []
    by_deal: dict[str, list[EntityProject]] = defaultdict(list)
    for held in data.projects:
        parsed = project_deal_and_entity(held.project.code)
        if parsed:
            by_deal[parsed[0]].append(held)
    contract_deals = {c.deal_crm_id for c in data.contracts if c.deal_crm_id}
    for contract in data.contracts:
        entity = contract.legal_entity or ""
        if (entity and entity not in scope) or (not entity and not unattributed):
            continue
        record = contract.clm_record_id or ""
        deal = contract.deal_crm_id or ""
        projects = by_deal.get(deal, []) if deal else []
        value = contract.terms.total_value if contract.terms else None
        refs = [_clm.ref("record", record), _crm.ref("deal", deal)]
        if not projects:
            findings.append(finding(
                FindingKind.CONTRACT_WITHOUT_PROJECT, entity, record, clm_id=record, crm_id=deal,
                currency=value.currency if value else "", billing_amount=str(value.amount) if value else "",
                refs=refs, detail=f"executed contract '{contract.title}' has no ERP project"
                                  + ("" if deal else " (and no CRM deal ID to find one by)"),
                repair=recheck_command(systems, deal) if deal else "set the deal ID on the contract record"))
            continue
        if value is None or not contract.terms:
            continue
        tol = tolerance_for(value.currency, tolerance)
        budget = sum((p.project.budget.amount for p in projects), Decimal(0))
        codes = sorted(p.project.code for p in projects)
        if contract.terms.billing_model in _FIXED_MODELS and differs(budget, value.amount, tol):
            findings.append(finding(
                FindingKind.PROJECT_BUDGET_MISMATCH, entity, record, clm_id=record, crm_id=deal,
                currency=value.currency, erp_id=",".join(p.project.erp_id or "" for p in projects),
                billing_amount=f"{value.amount} {value.currency} contract", erp_amount=f"{budget} budget",
                refs=refs + [systems.erp_or_unknown(p.entity).ref("project", p.project.erp_id or "") for p in projects],
                detail=f"project budget of {', '.join(codes)} differs from the contract value"
                       + (f" (as amended {len(contract.amendments)} time(s))" if contract.amendments else ""),
                repair=f"starter.py amend {record}"))
        billed = [data.billing[c] for c in codes if c in data.billing]
        if not billed:
            continue
        mismatch = schedule_mismatch(contract.terms, billed, tolerance=tol)
        if mismatch is not None:
            scheduled, expected, detail = mismatch
            ids = list(dict.fromkeys(i for b in billed for i in b.billing_ids))
            findings.append(finding(
                FindingKind.BILLING_SCHEDULE_MISMATCH, entity, record, clm_id=record, crm_id=deal,
                currency=value.currency, billing_id=",".join(ids), billing_amount=scheduled, erp_amount=expected,
                refs=refs + [_bill.ref_of_id(i) for i in ids],
                detail=f"billing schedule of {', '.join(codes)}: {detail}"
                       + (f" (contract as amended {len(contract.amendments)} time(s))" if contract.amendments else ""),
                repair=f"starter.py amend {record}"))
    for held in data.projects:
        if held.entity not in scope:
            continue
        project = held.project
        parsed = project_deal_and_entity(project.code)
        refs = [systems.erp_or_unknown(held.entity).ref("project", project.erp_id or "")]
        if parsed and parsed[1] != held.entity:
            findings.append(finding(
                FindingKind.PROJECT_IN_WRONG_ENTITY, held.entity, project.erp_id or project.code,
                erp_id=project.erp_id or "", crm_id=parsed[0], refs=refs + [_crm.ref("deal", parsed[0])],
                detail=f"project {project.code} is for {parsed[1]} but lives in the ERP of {held.entity}",
                repair=f"close it in {held.entity} and create it in {parsed[1]}"))
        if parsed is None or parsed[0] not in contract_deals:
            findings.append(finding(
                FindingKind.PROJECT_WITHOUT_CONTRACT, held.entity, project.erp_id or project.code,
                erp_id=project.erp_id or "", crm_id=parsed[0] if parsed else "", currency=project.budget.currency,
                erp_amount=f"{project.budget.amount} {project.budget.currency}", refs=refs,
                detail=f"project {project.code} has no executed contract"
                       + ("" if parsed else " (its name carries no deal code)"),
                repair="close the project, or execute its contract in the CLM"))
            continue
        if not data.billing.get(project.code):
            findings.append(finding(
                FindingKind.PROJECT_WITHOUT_BILLING, held.entity, project.erp_id or project.code,
                erp_id=project.erp_id or "", crm_id=parsed[0], currency=project.budget.currency,
                erp_amount=f"{project.budget.amount} {project.budget.currency}", refs=refs,
                detail=f"project {project.code} has no billing schedule",
                repair=recheck_command(systems, parsed[0])))
    return findings


# -- CRM figures -----------------------------------------------------------------------------------------
FIGURES = ("billed", "paid", "outstanding", "overdue", "credited")


class Figures(BaseModel):
    """The figures of one CRM object in one currency (decimal strings; absent means not written)."""

    currency: str
    billed: str | None = None
    paid: str | None = None
    outstanding: str | None = None
    overdue: str | None = None
    credited: str | None = None


def expected_figures(invoices: Iterable[Invoice], credit_notes: Iterable[CreditNote], *, today: date
                     ) -> dict[str, Figures]:
    """Per currency, the figures the ledger should have written for these billing invoices: billed (all but
    drafts and voids), paid (a void's part payment too: the cash stays received), outstanding (open only),
    overdue (open and past due), credited."""
    credited: dict[str, Decimal] = defaultdict(Decimal)
    for note in credit_notes:
        credited[note.invoice_billing_id] += note.amount.amount
    sums: dict[str, dict[str, Decimal]] = {}
    for inv in invoices:
        if inv.status is InvoiceStatus.DRAFT:
            continue
        s = sums.setdefault(inv.currency, dict.fromkeys(FIGURES, Decimal(0)))
        if inv.status is InvoiceStatus.VOID:  # billed no more; cash received before the void stays received
            s["paid"] += inv.amount_paid.amount
            continue
        s["billed"] += inv.total.amount
        s["paid"] += inv.amount_paid.amount
        s["credited"] += credited.get(inv.billing_id, Decimal(0))
        if inv.status is InvoiceStatus.OPEN:
            s["outstanding"] += inv.amount_due.amount
            if inv.due_on and inv.due_on < today:
                s["overdue"] += inv.amount_due.amount
    return {c: Figures(currency=c, **{k: str(v) for k, v in s.items()}) for c, s in sums.items()}


def compare_crm_figures(entity: str, subject: str, expected: dict[str, Figures], actual: dict[str, Figures], *,
                        tolerance: Decimal, refs: list[str], repair: str | None = None) -> list[Finding]:
    """One CRM object (``subject`` = ``hubspot:company:1``): each currency's figures against billing's.

    A figure never written counts as zero, so a company whose billing the CRM never heard of is reported."""
    differences: list[str] = []
    currencies = sorted(set(expected) | {c for c, f in actual.items() if any(getattr(f, k) for k in FIGURES)})
    for currency in currencies:
        blank = Figures(currency=currency)
        want, have = expected.get(currency, blank), actual.get(currency, blank)
        tol = tolerance_for(currency, tolerance)
        for field in FIGURES:
            a, b = Decimal(getattr(want, field) or 0), Decimal(getattr(have, field) or 0)
            if differs(a, b, tol):
                differences.append(f"{field} {currency}: billing {a}, CRM {getattr(have, field) or 'unset'}")
    if not differences:
        return []
    return [finding(FindingKind.CRM_FIGURES_MISMATCH, entity, subject, crm_id=subject.rsplit(":", 1)[-1],
                    currency=",".join(currencies), refs=[subject, *refs], detail="; ".join(differences),
                    billing_amount="; ".join(f"{c}: billed {expected[c].billed}" for c in sorted(expected)),
                    repair=repair or "have a ledger of the customer write its figures again (starter.py repost "
                                     "<ledger> --figures) or correct the CRM properties")]


__all__ = ["FIGURES", "SEVERITY", "BillingChange", "Delivery", "EntityProject", "EntityTotals", "ErpCreditNote",
           "ErpPayment", "Figures", "Finding", "FindingKind", "ProjectBilling", "Receivables", "Severity", "SourceRead",
           "compare_crm_figures",
           "compare_delivery", "compare_receivables", "compare_unroutable", "differs", "expected_figures",
           "figures_command", "finding",
           "project_deal_and_entity", "project_prefix", "repost_command", "tolerance_for"]
