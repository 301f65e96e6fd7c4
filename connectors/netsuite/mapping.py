"""Canonical <-> NetSuite REST records, one wire table per direction and record (``make docs`` renders them).

Our references ride on ``externalId`` (unique per record type in the account): the customer's is our
reference, the project's our project code, a task's ``<code>-task-<task name digest>``, an invoice's, payment's
and credit memo's the billing document's ID. A voided invoice gives its external ID up
(``<billing id>/void/<internal id>``) so that a corrected one can take it. Statuses are read into the ERP
vocabulary the reconciliation speaks (``AUTHORISED``, ``PAID``, ``VOIDED``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from canonical import (
    Account,
    Address,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    Project,
    ProjectTask,
    TaskChargeType,
    TimeEntry,
)
from canonical.keys import milestone_of_task
from canonical.reconciliation import ErpCreditNote, ErpPayment
from connectors.wire import ABSENT, NOT_MAPPED, Wire, build, falsy, never, read

MONEY_DECIMALS = 2
#: what NetSuite allows in an external ID: letters, digits, underscore and hyphen ("Using External IDs")
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
VOID_MARK = "-void-"
CLOSED, IN_PROGRESS = "1", "2"


def dumps(value: Any) -> str:
    """JSON where ``Decimal`` keeps its exact digits."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def amount(money: Money) -> Decimal:
    """An amount at NetSuite's two decimals (half up)."""
    return money.amount.quantize(Decimal("0.01"),
                                 rounding=ROUND_HALF_UP)


def ref(record_id: str | None) -> dict[str, str] | None:
    return None if record_id is None else {"id": str(record_id)}


def ref_id(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return str(value.get("id") or "") if isinstance(value, dict) else str(value or "")


def task_external_id(code: str, name: str) -> str:
    return f"{code}-task-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def billing_id_of(external_id: Any) -> str:
    """The billing document an external ID names (a voided one's too)."""
    return str(external_id or "").split(VOID_MARK, 1)[0]


def suiteql_text(value: str) -> str:
    """A SuiteQL string literal (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def updated_at(doc: dict[str, Any]) -> datetime | None:
    text = doc.get("lastModifiedDate")
    if not text:
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _date(doc: dict[str, Any], key: str) -> date | None:
    text = doc.get(key)
    return date.fromisoformat(str(text)[:10]) if text else None


def _money(value: Any, currency: str) -> Money:
    return Money(amount=Decimal(str(value or 0)), currency=currency)


# -- customers ---------------------------------------------------------------------------------------------
def account_fields(account: Account) -> dict[str, Any]:
    """The account fields we would write, by ownership name."""
    fields: dict[str, Any] = {"name": account.name}
    if account.address is not None:
        fields["address"] = account.address
    if account.tax_number:
        fields["tax_number"] = account.tax_number
    if account.payment_terms_days is not None:
        fields["payment_terms_days"] = account.payment_terms_days
    return fields


def address_to_netsuite(address: Address) -> dict[str, Any]:
    return {"items": [{"defaultBilling": True, "addressBookAddress": {
        k: v for k, v in {"addr1": address.line1, "addr2": address.line2, "city": address.city,
                          "state": address.region, "zip": address.postal_code,
                          "country": {"id": address.country} if address.country else None}.items() if v}}]}


def address_from_netsuite(book: Any) -> Address | None:
    for item in (book or {}).get("items") or []:
        if isinstance(item, dict) and item.get("defaultBilling"):
            a = item.get("addressBookAddress") or {}
            found = Address(line1=a.get("addr1"), line2=a.get("addr2"), city=a.get("city"), region=a.get("state"),
                            postal_code=a.get("zip"), country=ref_id(a, "country") or None)
            return found if any(found.model_dump().values()) else None
    return None


@dataclass(frozen=True)
class CustomerSource:
    fields: dict[str, Any]
    subsidiary: str | None = None
    currency_id: str | None = None
    terms_ids: dict[int, str] | None = None
    email: str | None = None
    marker: str | None = None


def _terms(s: CustomerSource) -> Any:
    days = s.fields.get("payment_terms_days")
    terms = (s.terms_ids or {}).get(days) if days is not None else None
    return ref(terms) if terms else None


#: ``PUT /record/v1/customer/eid:{reference}``: only the fields present are sent
CUSTOMER_OUT: tuple[Wire[CustomerSource], ...] = (
    Wire("Account.name", "companyName", "text", lambda s: s.fields["name"] if "name" in s.fields else ABSENT,
         "account", omit=never),
    Wire(NOT_MAPPED, "subsidiary", "the legal entity's subsidiary (on create)", lambda s: ref(s.subsidiary),
         "account"),
    Wire(NOT_MAPPED, "currency", "the entity's currency internal ID (on create)", lambda s: ref(s.currency_id),
         "account"),
    Wire("Account.created_by", "accountNumber", "the creating run's ownership mark (on create)",
         lambda s: s.marker, "account"),
    Wire("Contact.email", "email", "the billing contact's", lambda s: s.email, "contact", omit=falsy),
    Wire("Account.address", "addressBook", "the default billing address (addr1/2, city, state, zip, country)",
         lambda s: address_to_netsuite(s.fields["address"]) if s.fields.get("address") is not None else None,
         "account"),
    Wire("Account.tax_number", "vatRegNumber", "text", lambda s: s.fields.get("tax_number"), "account", omit=falsy),
    Wire("Account.payment_terms_days", "terms", "days → the terms internal ID (settings); unknown days not sent",
         _terms, "account"),
)


def customer_to_netsuite(fields: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return build(CUSTOMER_OUT, CustomerSource(fields, **kwargs))


def erp_account_fields(doc: dict[str, Any], terms_days: dict[str, int]) -> dict[str, Any]:
    return {"name": doc.get("companyName"), "address": address_from_netsuite(doc.get("addressBook")),
            "tax_number": doc.get("vatRegNumber") or None,
            "payment_terms_days": terms_days.get(ref_id(doc, "terms"))}


@dataclass(frozen=True)
class CustomerDoc:
    doc: dict[str, Any]
    base: Account
    terms_days: dict[str, int]


CUSTOMER_IN: tuple[Wire[CustomerDoc], ...] = (
    Wire("Account.created_by", "accountNumber", "the creating run's ownership mark",
         lambda d: d.doc.get("accountNumber") or None, "account"),
    Wire("Account.name", "companyName", "text (the CRM's when empty)",
         lambda d: d.doc.get("companyName") or d.base.name, "account"),
    Wire("Account.address", "addressBook", "the default billing address (the CRM's when none)",
         lambda d: address_from_netsuite(d.doc.get("addressBook")) or d.base.address, "account"),
    Wire("Account.tax_number", "vatRegNumber", "text", lambda d: d.doc.get("vatRegNumber") or None, "account"),
    Wire("Account.payment_terms_days", "terms", "terms internal ID → days (settings)",
         lambda d: d.terms_days.get(ref_id(d.doc, "terms")), "account"),
    Wire("Account.erp_contact_id", "id", "the internal ID", lambda d: str(d.doc["id"]), "account"),
)


def account_from_netsuite(doc: dict[str, Any], base: Account, terms_days: dict[str, int]) -> Account:
    return base.model_copy(update=read(CUSTOMER_IN, CustomerDoc(doc, base, terms_days)))


# -- projects ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjectSource:
    project: Project
    customer_id: str
    subsidiary: str
    currency_id: str | None


#: ``PUT /record/v1/job/eid:{code}``
PROJECT_OUT: tuple[Wire[ProjectSource], ...] = (
    Wire("Project.code", "entityId", "our project code", lambda s: s.project.code, "project", omit=never),
    Wire("Project.name", "companyName", "text", lambda s: s.project.name[:83] or s.project.code, "project",
         omit=never),
    Wire("Project.erp_contact_id", "parent", "the customer", lambda s: ref(s.customer_id), "project", omit=never),
    Wire(NOT_MAPPED, "subsidiary", "the legal entity's subsidiary", lambda s: ref(s.subsidiary), "project",
         omit=never),
    Wire(NOT_MAPPED, "currency", "the budget's currency internal ID", lambda s: ref(s.currency_id), "project"),
    Wire("Project.budget", "jobPrice", "amount (two decimals)", lambda s: amount(s.project.budget), "project",
         omit=never),
    Wire("Project.deadline", "projectedEndDate", "ISO date",
         lambda s: s.project.deadline.isoformat() if s.project.deadline else None, "project"),
)

#: ``PUT /record/v1/projectTask/eid:{code}/{digest}``
TASK_OUT: tuple[Wire[tuple[ProjectTask, str]], ...] = (
    Wire("ProjectTask.name", "title", "text", lambda s: s[0].name, "project", omit=never),
    Wire(NOT_MAPPED, "company", "the project", lambda s: ref(s[1]), "project", omit=never),
    Wire("ProjectTask.estimate_minutes", "estimatedWork", "minutes → hours",
         lambda s: (Decimal(s[0].estimate_minutes) / 60).quantize(Decimal("0.01"))
         if s[0].estimate_minutes is not None else None, "project"),
    Wire("ProjectTask.charge_type", "nonBillableTask", "non-chargeable → true",
         lambda s: s[0].charge_type is TaskChargeType.NON_CHARGEABLE, "project", omit=never),
    Wire("ProjectTask.charge_type", "custevent_revops_charge_type", "custom field: time/fixed/non_chargeable",
         lambda s: s[0].charge_type.value, "project", omit=never),
    Wire("ProjectTask.rate", "custevent_revops_rate", "custom field: amount in the project's currency",
         lambda s: amount(s[0].rate), "project", omit=never),
)


def project_to_netsuite(project: Project, *, customer_id: str, subsidiary: str, currency_id: str | None
                        ) -> dict[str, Any]:
    return build(PROJECT_OUT, ProjectSource(project, customer_id, subsidiary, currency_id))


def task_to_netsuite(task: ProjectTask, job_id: str) -> dict[str, Any]:
    return build(TASK_OUT, (task, job_id))


def task_from_netsuite(doc: dict[str, Any], currency: str) -> ProjectTask:
    hours = doc.get("estimatedWork")
    return ProjectTask(erp_id=str(doc["id"]), name=str(doc["title"]),
                       charge_type=TaskChargeType(str(doc.get("custevent_revops_charge_type") or (
                           "non_chargeable" if doc.get("nonBillableTask") else "time"))),
                       rate=_money(doc.get("custevent_revops_rate"), currency),
                       estimate_minutes=int(Decimal(str(hours)) * 60) if hours is not None else None)


#: a project task's ``status`` once a person marked it done: for a milestone, the customer accepted it
TASK_COMPLETE = "COMPLETE"


def accepted_milestone(doc: dict[str, Any]) -> str | None:
    """The milestone code of a fixed-price project task a person marked Completed, else ``None``."""
    status = doc.get("status")
    state = status.get("id") if isinstance(status, dict) else status
    if state != TASK_COMPLETE or doc.get("custevent_revops_charge_type") != "fixed":
        return None
    return milestone_of_task(str(doc["title"]))


def project_from_netsuite(doc: dict[str, Any], tasks: list[dict[str, Any]], *, tenant_id: str, currency: str
                          ) -> Project:
    return Project(erp_id=str(doc["id"]), code=str(doc.get("externalId") or doc.get("entityId") or ""),
                   name=str(doc.get("companyName") or ""), erp_contact_id=ref_id(doc, "parent"),
                   erp_tenant_id=tenant_id, budget=_money(doc.get("jobPrice"), currency),
                   deadline=_date(doc, "projectedEndDate"), tasks=[task_from_netsuite(t, currency) for t in tasks])


def task_differs(wanted: ProjectTask, held: ProjectTask) -> bool:
    return (wanted.rate.amount, wanted.charge_type, wanted.estimate_minutes) != (
        held.rate.amount, held.charge_type, held.estimate_minutes if wanted.estimate_minutes is not None else None)


@dataclass(frozen=True)
class TimeSource:
    entry: TimeEntry
    job_id: str


#: ``PUT /record/v1/timeBill/eid:time-<key digest>``: hours on a project task
TIME_BILL_OUT: tuple[Wire[TimeSource], ...] = (
    Wire("TimeEntry.user_id", "employee", "the employee's internal ID", lambda s: ref(s.entry.user_id), "project",
         omit=never),
    Wire(NOT_MAPPED, "customer", "the project (job)", lambda s: ref(s.job_id), "project", omit=never),
    Wire("TimeEntry.task_erp_id", "caseTaskEvent", "the project task", lambda s: ref(s.entry.task_erp_id), "project",
         omit=never),
    Wire("TimeEntry.minutes", "hours", "minutes → hours (two decimals)",
         lambda s: (Decimal(s.entry.minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "project",
         omit=never),
    Wire("TimeEntry.date", "tranDate", "ISO date", lambda s: s.entry.date.isoformat(), "project", omit=never),
    Wire("TimeEntry.description", "memo", "text", lambda s: s.entry.description, "project", omit=falsy),
)


def time_bill_to_netsuite(entry: TimeEntry, job_id: str) -> dict[str, Any]:
    return build(TIME_BILL_OUT, TimeSource(entry, job_id))


# -- receivables -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvoiceSource:
    invoice: Invoice
    customer_id: str
    subsidiary: str
    currency_id: str
    item_id: str
    tax_item_id: str


def _invoice_lines(s: InvoiceSource) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    for line in s.invoice.lines:
        total = amount(line.amount)
        quantity, unit = line.quantity, line.unit_amount.amount
        if quantity * unit != line.amount.amount:  # a discounted line: one unit of its amount
            quantity, unit = Decimal(1), total
        lines.append({"item": {"id": s.item_id}, "description": line.description[:999], "quantity": quantity,
                      "rate": unit, "amount": total})
    tax = amount(s.invoice.tax)
    if tax:
        lines.append({"item": {"id": s.tax_item_id}, "description": "Tax", "quantity": Decimal(1), "rate": tax,
                      "amount": tax})
    return {"items": lines}


#: ``PUT /record/v1/invoice/eid:{billing invoice ID}``
INVOICE_OUT: tuple[Wire[InvoiceSource], ...] = (
    Wire("Invoice.customer_id", "entity", "the ERP customer of the billing customer", lambda s: ref(s.customer_id),
         "invoice", omit=never),
    Wire(NOT_MAPPED, "subsidiary", "the legal entity's subsidiary", lambda s: ref(s.subsidiary), omit=never),
    Wire("Invoice.currency", "currency", "ISO 4217 → currency internal ID (settings)", lambda s: ref(s.currency_id),
         "invoice", omit=never),
    Wire("Invoice.number", "tranId", "as is", lambda s: s.invoice.number, "invoice", omit=falsy),
    Wire("Invoice.issued_on", "tranDate", "ISO date",
         lambda s: s.invoice.issued_on.isoformat() if s.invoice.issued_on else None, "invoice"),
    Wire("Invoice.due_on", "dueDate", "ISO date", lambda s: s.invoice.due_on.isoformat() if s.invoice.due_on else None,
         "invoice"),
    Wire("Invoice.lines", "item", "each line on the service item (settings); the tax as one line on the tax item",
         _invoice_lines, "invoice", omit=never),
    Wire("Invoice.billing_id", "memo", "`Billing invoice <id>`", lambda s: f"Billing invoice {s.invoice.billing_id}",
         "invoice", omit=never),
)


def invoice_to_netsuite(invoice: Invoice, **kwargs: Any) -> dict[str, Any]:
    return build(INVOICE_OUT, InvoiceSource(invoice, **kwargs))


def erp_status(doc: dict[str, Any]) -> str:
    """The ERP vocabulary of the reconciliation: ``VOIDED``, ``PAID`` (fully applied) or ``AUTHORISED``."""
    if doc.get("voided"):
        return "VOIDED"
    return "PAID" if ref_id(doc, "status") == "B" else "AUTHORISED"


_STATUS = {"VOIDED": InvoiceStatus.VOID, "PAID": InvoiceStatus.PAID, "AUTHORISED": InvoiceStatus.OPEN}


@dataclass(frozen=True)
class InvoiceDoc:
    doc: dict[str, Any]
    currency: str
    tax_item_id: str
    legal_entity: str | None

    def money(self, key: str) -> Money:
        return _money(self.doc.get(key), self.currency)

    def lines(self) -> list[InvoiceLine]:
        return [InvoiceLine(description=str(li.get("description") or ""),
                            quantity=Decimal(str(li.get("quantity") or 1)),
                            unit_amount=_money(li.get("rate"), self.currency),
                            amount=_money(li.get("amount"), self.currency))
                for li in (self.doc.get("item") or {}).get("items") or [] if ref_id(li, "item") != self.tax_item_id]

    def metadata(self) -> dict[str, str]:
        total, paid = Decimal(str(self.doc.get("total") or 0)), Decimal(str(self.doc.get("amountPaid") or 0))
        credited = total - paid - Decimal(str(self.doc.get("amountRemaining") or 0))
        moment = updated_at(self.doc)
        return {"erp_invoice_id": str(self.doc["id"]), "erp_status": erp_status(self.doc),
                "erp_amount_credited": str(credited if not self.doc.get("voided") else 0),
                **({"erp_updated_at": moment.isoformat()} if moment else {})}


INVOICE_IN: tuple[Wire[InvoiceDoc], ...] = (
    Wire("Invoice.billing_id", "externalId", "the billing invoice ID (a voided one's `-void-` suffix dropped)",
         lambda d: billing_id_of(d.doc.get("externalId")), "invoice"),
    Wire("Invoice.number", "tranId", "as is", lambda d: d.doc.get("tranId"), "invoice"),
    Wire("Invoice.customer_id", "entity", "the ERP customer", lambda d: ref_id(d.doc, "entity"), "invoice"),
    Wire("Invoice.currency", "currency", "internal ID → ISO 4217 (settings)", lambda d: d.currency, "invoice"),
    Wire("Invoice.status", "status, voided", "voided → void, B (Paid In Full) → paid, else open",
         lambda d: _STATUS[erp_status(d.doc)], "invoice"),
    Wire("Invoice.issued_on", "tranDate", "date", lambda d: _date(d.doc, "tranDate"), "invoice"),
    Wire("Invoice.due_on", "dueDate", "date", lambda d: _date(d.doc, "dueDate"), "invoice"),
    Wire("Invoice.lines", "item.items", "lines but the tax item's", lambda d: d.lines(), "invoice"),
    Wire("Invoice.subtotal", "subtotal", "Decimal", lambda d: d.money("subtotal"), "invoice"),
    Wire("Invoice.tax", "taxTotal", "Decimal", lambda d: d.money("taxTotal"), "invoice"),
    Wire("Invoice.total", "total", "Decimal", lambda d: d.money("total"), "invoice"),
    Wire("Invoice.amount_paid", "amountPaid", "Decimal", lambda d: d.money("amountPaid"), "invoice"),
    Wire("Invoice.amount_due", "amountRemaining", "Decimal", lambda d: d.money("amountRemaining"), "invoice"),
    Wire("Invoice.legal_entity", NOT_MAPPED, "the entity of the subsidiary it was read in", lambda d: d.legal_entity,
         "invoice"),
    Wire("Invoice.metadata", "id, status, lastModifiedDate", "`erp_invoice_id`, `erp_status`, "
         "`erp_amount_credited`, `erp_updated_at`", lambda d: d.metadata(), "invoice"),
)


def invoice_from_netsuite(doc: dict[str, Any], *, currency: str, tax_item_id: str,
                          legal_entity: str | None = None) -> Invoice:
    return Invoice(**read(INVOICE_IN, InvoiceDoc(doc, currency, tax_item_id, legal_entity)))


@dataclass(frozen=True)
class PaymentSource:
    payment: Payment
    customer_id: str
    subsidiary: str
    currency_id: str
    invoice_id: str
    account_id: str | None


#: ``PUT /record/v1/customerPayment/eid:{billing payment ID}``: applied to one invoice (partially if so)
PAYMENT_OUT: tuple[Wire[PaymentSource], ...] = (
    Wire(NOT_MAPPED, "customer", "the invoice's customer", lambda s: ref(s.customer_id), omit=never),
    Wire(NOT_MAPPED, "subsidiary", "the invoice's subsidiary", lambda s: ref(s.subsidiary), omit=never),
    Wire("Payment.amount", "currency", "currency internal ID", lambda s: ref(s.currency_id), "payment", omit=never),
    Wire("Payment.amount", "payment", "Decimal", lambda s: amount(s.payment.amount), "payment", omit=never),
    Wire("Payment.paid_at", "tranDate", "the UTC date", lambda s: s.payment.paid_at.astimezone(UTC).date().isoformat(),
         "payment", omit=never),
    Wire(NOT_MAPPED, "undepFunds", "true unless a bank account is set", lambda s: s.account_id is None, omit=never),
    Wire(NOT_MAPPED, "account", "the bank account (settings)", lambda s: ref(s.account_id)),
    Wire("Payment.invoice_billing_id", "apply", "`items[{doc: the ERP invoice, apply: true, amount}]`",
         lambda s: {"items": [{"doc": {"id": s.invoice_id}, "apply": True, "amount": amount(s.payment.amount)}]},
         "payment", omit=never),
)


def payment_to_netsuite(payment: Payment, **kwargs: Any) -> dict[str, Any]:
    return build(PAYMENT_OUT, PaymentSource(payment, **kwargs))


def _applied_to(doc: dict[str, Any]) -> list[str]:
    return [ref_id(i, "doc") for i in (doc.get("apply") or {}).get("items") or [] if i.get("apply")]


PAYMENT_IN: tuple[Wire[tuple[dict[str, Any], str]], ...] = (
    Wire("ErpPayment.erp_id", "id", "internal ID", lambda d: str(d[0]["id"]), "payment"),
    Wire("ErpPayment.reference", "externalId", "our billing payment ID", lambda d: str(d[0].get("externalId") or ""),
         "payment"),
    Wire("ErpPayment.erp_invoice_id", "apply.items[].doc", "the (first) invoice it is applied to",
         lambda d: next(iter(_applied_to(d[0])), ""), "payment"),
    Wire("ErpPayment.amount", "payment", "Decimal", lambda d: _money(d[0].get("payment"), d[1]), "payment"),
    Wire("ErpPayment.status", "voided", "VOIDED when voided, else AUTHORISED",
         lambda d: "VOIDED" if d[0].get("voided") else "AUTHORISED", "payment"),
    Wire("ErpPayment.updated_at", "lastModifiedDate", "UTC moment", lambda d: updated_at(d[0]), "payment"),
)


def payment_from_netsuite(doc: dict[str, Any], currency: str) -> ErpPayment:
    return ErpPayment(**read(PAYMENT_IN, (doc, currency)))


@dataclass(frozen=True)
class CreditSource:
    note: CreditNote
    customer_id: str
    subsidiary: str
    currency_id: str
    item_id: str


#: ``PUT /record/v1/creditMemo/eid:{billing credit note ID}``: one line for the credited amount
CREDIT_MEMO_OUT: tuple[Wire[CreditSource], ...] = (
    Wire(NOT_MAPPED, "entity", "the invoice's customer", lambda s: ref(s.customer_id), omit=never),
    Wire(NOT_MAPPED, "subsidiary", "the entity's subsidiary", lambda s: ref(s.subsidiary), omit=never),
    Wire("CreditNote.amount", "currency", "currency internal ID", lambda s: ref(s.currency_id), "credit_note",
         omit=never),
    Wire("CreditNote.issued_at", "tranDate", "the UTC date",
         lambda s: s.note.issued_at.astimezone(UTC).date().isoformat() if s.note.issued_at else None, "credit_note"),
    Wire("CreditNote.amount", "item", "one line on the service item: the reason, 1 x the amount",
         lambda s: {"items": [{"item": {"id": s.item_id}, "quantity": Decimal(1), "rate": amount(s.note.amount),
                               "amount": amount(s.note.amount),
                               "description": s.note.reason or f"Credit for invoice {s.note.invoice_billing_id}"}]},
         "credit_note", omit=never),
)


def credit_memo_to_netsuite(note: CreditNote, **kwargs: Any) -> dict[str, Any]:
    return build(CREDIT_MEMO_OUT, CreditSource(note, **kwargs))


CREDIT_MEMO_IN: tuple[Wire[tuple[dict[str, Any], str]], ...] = (
    Wire("ErpCreditNote.erp_id", "id", "internal ID", lambda d: str(d[0]["id"]), "credit_note"),
    Wire("ErpCreditNote.reference", "externalId", "our billing credit note ID",
         lambda d: str(d[0].get("externalId") or ""), "credit_note"),
    Wire("ErpCreditNote.amount", "total", "Decimal", lambda d: _money(d[0].get("total"), d[1]), "credit_note"),
    Wire("ErpCreditNote.status", "status, voided", "VOIDED when voided, else AUTHORISED",
         lambda d: "VOIDED" if d[0].get("voided") else "AUTHORISED", "credit_note"),
    Wire("ErpCreditNote.updated_at", "lastModifiedDate", "UTC moment", lambda d: updated_at(d[0]), "credit_note"),
    Wire("ErpCreditNote.erp_invoice_ids", "apply.items[].doc", "the invoices it is applied to",
         lambda d: _applied_to(d[0]), "credit_note"),
)


def credit_note_from_netsuite(doc: dict[str, Any], currency: str) -> ErpCreditNote:
    return ErpCreditNote(**read(CREDIT_MEMO_IN, (doc, currency)))


# -- errors -------------------------------------------------------------------------------------------------
def error_details(body: Any) -> tuple[str, str]:
    """``(o:errorCode, detail)`` of NetSuite's error body (``("", "")`` when it is not one)."""
    if not isinstance(body, dict):
        return "", ""
    for item in body.get("o:errorDetails") or []:
        if isinstance(item, dict):
            return str(item.get("o:errorCode") or ""), str(item.get("detail") or "")
    return "", str(body.get("title") or "")
