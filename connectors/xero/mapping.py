"""Xero <-> canonical, one function per object and direction.

Xero carries money as decimal numbers (not minor units); we read them as ``Decimal`` (JSON is
parsed with ``parse_float=Decimal``) and write them as exact JSON numbers (:func:`dumps`), so no
amount ever passes through a float.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from canonical import (
    Account,
    Address,
    Contact,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    Project,
    ProjectTask,
    TaskChargeType,
    TaxLine,
    TimeEntry,
)
from canonical.reconciliation import ErpCreditNote, ErpPayment

#: Xero's limit on ``Idempotency-Key`` (xero_accounting.yaml: "128 character max")
IDEMPOTENCY_KEY_MAX = 128
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


# -- JSON --------------------------------------------------------------------------------------
def dumps(value: Any) -> str:
    """JSON text in which ``Decimal`` is written as a number with exactly its digits."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} to Xero")
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError("floats are not sent to Xero: use Decimal")
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def sub_key(base: str, step: str) -> str:
    """The ``Idempotency-Key`` for one write of a port call that makes several, within Xero's limit."""
    key = f"{base}:{step}"
    if len(key) <= IDEMPOTENCY_KEY_MAX:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def where_string(value: str) -> str:
    """A string literal for a ``where`` filter."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- dates -------------------------------------------------------------------------------------
def parse_date(value: Any) -> date | None:
    """A Xero date: ``/Date(1518652800000+0000)/`` or ISO ``2018-02-15T00:00:00``."""
    if value in (None, ""):
        return None
    text = str(value)
    match = _MS_DATE.fullmatch(text.strip())
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC).date()
    return date.fromisoformat(text[:10])


def document_date(doc: dict[str, Any], key: str) -> date | None:
    """``Date``/``DueDate``: prefer Xero's ``DateString`` twin, which has no time zone games."""
    return parse_date(doc.get(f"{key}String") or doc.get(key))


_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def updated_at(doc: dict[str, Any]) -> datetime | None:
    """``UpdatedDateUTC`` (``/Date(1700000000000+0000)/`` or ISO text) as an aware UTC moment."""
    value = doc.get("UpdatedDateUTC")
    if not value:
        return None
    match = _MS_DATE.fullmatch(str(value))
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


# -- contacts ------------------------------------------------------------------------------------
def payment_terms_to_xero(days: int) -> dict[str, Any]:
    return {"Sales": {"Day": days, "Type": "DAYSAFTERBILLDATE"}}


def payment_terms_from_xero(terms: Any) -> int | None:
    """Days after the bill date; other Xero term types have no day count, so ``None``."""
    sales = (terms or {}).get("Sales") if isinstance(terms, dict) else None
    if isinstance(sales, dict) and sales.get("Type") == "DAYSAFTERBILLDATE" and sales.get("Day") is not None:
        return int(sales["Day"])
    return None


def address_to_xero(address: Address) -> dict[str, Any]:
    """Our billing address is Xero's ``POBOX`` (postal) address."""
    fields = {"AddressType": "POBOX", "AddressLine1": address.line1, "AddressLine2": address.line2,
              "City": address.city, "Region": address.region, "PostalCode": address.postal_code,
              "Country": address.country}
    return {k: v for k, v in fields.items() if v is not None}


def address_from_xero(addresses: Any) -> Address | None:
    for item in addresses or []:
        if isinstance(item, dict) and item.get("AddressType") == "POBOX":
            address = Address(line1=item.get("AddressLine1") or None, line2=item.get("AddressLine2") or None,
                              city=item.get("City") or None, region=item.get("Region") or None,
                              postal_code=item.get("PostalCode") or None, country=item.get("Country") or None)
            return address if any(address.model_dump().values()) else None
    return None


def account_fields(account: Account) -> dict[str, Any]:
    """The canonical account fields we would write, by ownership name (unknown ones left out)."""
    fields: dict[str, Any] = {"name": account.name}
    if account.address is not None:
        fields["address"] = account.address
    if account.tax_number:
        fields["tax_number"] = account.tax_number
    if account.payment_terms_days is not None:
        fields["payment_terms_days"] = account.payment_terms_days
    return fields


def erp_account_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """What the Xero contact holds, by the same ownership names."""
    return {"name": doc.get("Name"), "address": address_from_xero(doc.get("Addresses")),
            "tax_number": doc.get("TaxNumber") or None,
            "payment_terms_days": payment_terms_from_xero(doc.get("PaymentTerms"))}


def contact_to_xero(fields: dict[str, Any], *, email: str | None = None, person: Contact | None = None,
                    reference: str | None = None, marker: str | None = None) -> dict[str, Any]:
    """A Xero contact body from canonical fields (only those present are sent). ``marker``: the creating
    run's ownership mark, written with the create in ``AccountNumber``."""
    doc: dict[str, Any] = {}
    if "name" in fields:
        doc["Name"] = fields["name"]
    if reference is not None:
        doc["ContactNumber"] = reference
    if marker is not None:
        doc["AccountNumber"] = marker
    if email:
        doc["EmailAddress"] = email
    if person is not None:
        if person.first_name:
            doc["FirstName"] = person.first_name
        if person.last_name:
            doc["LastName"] = person.last_name
    if fields.get("address") is not None:
        doc["Addresses"] = [address_to_xero(fields["address"])]
    if fields.get("tax_number"):
        doc["TaxNumber"] = fields["tax_number"]
    if fields.get("payment_terms_days") is not None:
        doc["PaymentTerms"] = payment_terms_to_xero(fields["payment_terms_days"])
    return doc


def account_from_xero(doc: dict[str, Any], base: Account) -> Account:
    """The canonical account as the ERP holds it: ERP-owned fields come from Xero, the CRM's
    identifiers (crm_id, domain, billing customer) from ``base``."""
    return base.model_copy(update={
        "created_by": doc.get("AccountNumber") or None,
        "name": doc.get("Name") or base.name,
        "address": address_from_xero(doc.get("Addresses")) or base.address,
        "tax_number": doc.get("TaxNumber") or None,
        "payment_terms_days": payment_terms_from_xero(doc.get("PaymentTerms")),
        "erp_contact_id": doc["ContactID"],
    })


# -- projects ------------------------------------------------------------------------------------
def project_name(project: Project) -> str:
    """Xero Projects has no external reference, so our code leads the name: ``[P-123-US01] Name``."""
    return f"{code_prefix(project.code)} {project.name}"[:100]


def code_prefix(code: str) -> str:
    return f"[{code}]"


def project_to_xero(project: Project, contact_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"contactId": contact_id, "name": project_name(project),
                            "estimateAmount": project.budget.amount}
    if project.deadline is not None:
        body["deadlineUtc"] = utc_midnight(project.deadline)
    return body


def task_to_xero(task: ProjectTask) -> dict[str, Any]:
    body: dict[str, Any] = {"name": task.name, "rate": {"currency": task.rate.currency, "value": task.rate.amount},
                            "chargeType": task.charge_type.value.upper()}
    if task.estimate_minutes is not None:
        body["estimateMinutes"] = task.estimate_minutes
    return body


def task_charge_type(value: str) -> TaskChargeType:
    return TaskChargeType(value.lower())


def task_from_xero(doc: dict[str, Any]) -> ProjectTask:
    rate = doc.get("rate") or {}
    return ProjectTask(erp_id=str(doc["taskId"]), name=str(doc["name"]),
                       charge_type=task_charge_type(str(doc["chargeType"])),
                       rate=Money(amount=Decimal(str(rate.get("value") or 0)), currency=str(rate["currency"])),
                       estimate_minutes=doc.get("estimateMinutes"))


def project_from_xero(doc: dict[str, Any], tasks: list[dict[str, Any]], *, tenant_id: str) -> Project:
    """A Projects API project (``[code] name``) with its tasks as a canonical project; its budget is
    the project's ``estimate`` (zero when none was set)."""
    name = str(doc["name"])
    code, _, rest = name.partition("] ")
    currency = str(doc.get("currencyCode") or (doc.get("estimate") or {}).get("currency"))
    estimate = (doc.get("estimate") or {}).get("value")
    deadline = doc.get("deadlineUtc")
    return Project(erp_id=str(doc["projectId"]), code=code[1:] if name.startswith("[") and rest else name,
                   name=rest if name.startswith("[") and rest else name, erp_contact_id=str(doc.get("contactId") or ""),
                   erp_tenant_id=tenant_id, budget=Money(amount=Decimal(str(estimate or 0)), currency=currency),
                   deadline=parse_date(deadline) if deadline else None,
                   tasks=[task_from_xero(t) for t in tasks])


def task_differs(wanted: ProjectTask, held: ProjectTask) -> bool:
    """A task update is needed when the rate, charge type or estimate differs (name is the key)."""
    return (wanted.rate.amount, wanted.charge_type, wanted.estimate_minutes) != (
        held.rate.amount, held.charge_type,
        held.estimate_minutes if wanted.estimate_minutes is not None else None)


def time_entry_to_xero(entry: TimeEntry) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": entry.user_id, "taskId": entry.task_erp_id,
                            "dateUtc": utc_midnight(entry.date), "duration": entry.minutes}
    if entry.description is not None:
        body["description"] = entry.description
    return body


# -- invoices ------------------------------------------------------------------------------------
_STATUS_FROM_XERO = {
    "DRAFT": InvoiceStatus.DRAFT, "SUBMITTED": InvoiceStatus.DRAFT, "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID, "VOIDED": InvoiceStatus.VOID, "DELETED": InvoiceStatus.VOID,
}


def line_to_xero(line: InvoiceLine, *, account_code: str, tax_types: dict[str, str], default_tax_type: str
                 ) -> dict[str, Any]:
    """One ACCREC line. When the billing line's amount is not quantity x unit price (a discount was
    applied), it is sent as one unit of the line amount so the ERP total matches the invoice."""
    quantity, unit = line.quantity, line.unit_amount.amount
    if quantity * unit != line.amount.amount:
        quantity, unit = Decimal(1), line.amount.amount
    body: dict[str, Any] = {"Description": line.description, "Quantity": quantity, "UnitAmount": unit,
                            "AccountCode": account_code}
    tax = sum((t.amount.amount for t in line.taxes), Decimal(0))
    if line.taxes and tax != 0:
        body["TaxType"] = tax_types.get(line.taxes[0].name, default_tax_type)
        body["TaxAmount"] = tax
    else:
        body["TaxType"] = "NONE"
    return body


def invoice_to_xero(invoice: Invoice, *, contact_id: str, account_code: str, tax_types: dict[str, str],
                    default_tax_type: str) -> dict[str, Any]:
    """An AUTHORISED ACCREC invoice whose ``Reference`` is the billing invoice ID."""
    body: dict[str, Any] = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "LineItems": [line_to_xero(line, account_code=account_code, tax_types=tax_types,
                                   default_tax_type=default_tax_type) for line in invoice.lines],
        "LineAmountTypes": "Exclusive",
        "CurrencyCode": invoice.currency,
        "Reference": invoice.billing_id,
        "Status": "AUTHORISED",
    }
    if invoice.issued_on is not None:
        body["Date"] = invoice.issued_on.isoformat()
    if invoice.due_on is not None:
        body["DueDate"] = invoice.due_on.isoformat()
    if invoice.number:
        body["InvoiceNumber"] = invoice.number
    return body


def _money(doc: dict[str, Any], key: str, currency: str) -> Money:
    return Money(amount=Decimal(str(doc.get(key) or 0)), currency=currency)


def invoice_from_xero(doc: dict[str, Any], *, legal_entity: str | None = None) -> Invoice:
    """A Xero invoice in canonical form; ``billing_id`` is its ``Reference`` (our billing invoice ID)."""
    currency = str(doc.get("CurrencyCode") or "")
    lines = []
    for item in doc.get("LineItems") or []:
        tax = _money(item, "TaxAmount", currency)
        lines.append(InvoiceLine(
            description=item.get("Description") or "",
            quantity=Decimal(str(item.get("Quantity") or 1)),
            unit_amount=_money(item, "UnitAmount", currency),
            amount=_money(item, "LineAmount", currency),
            product_code=item.get("ItemCode"),
            taxes=[] if tax.is_zero() else [TaxLine(name=str(item.get("TaxType") or "TAX"), rate_percent=Decimal(0),
                                                    amount=tax)],
        ))
    return Invoice(
        billing_id=str(doc.get("Reference") or ""),
        number=doc.get("InvoiceNumber"),
        customer_id=str((doc.get("Contact") or {}).get("ContactID") or ""),
        currency=currency,
        status=_STATUS_FROM_XERO.get(str(doc.get("Status")), InvoiceStatus.DRAFT),
        issued_on=document_date(doc, "Date"),
        due_on=document_date(doc, "DueDate"),
        lines=lines,
        subtotal=_money(doc, "SubTotal", currency),
        tax=_money(doc, "TotalTax", currency),
        total=_money(doc, "Total", currency),
        amount_paid=_money(doc, "AmountPaid", currency),
        amount_due=_money(doc, "AmountDue", currency),
        legal_entity=legal_entity,
        metadata={"erp_invoice_id": str(doc.get("InvoiceID")), "erp_status": str(doc.get("Status")),
                  "erp_amount_credited": str(doc.get("AmountCredited") or 0),
                  **({"erp_updated_at": moment.isoformat()} if (moment := updated_at(doc)) else {})},
    )


def payment_from_xero(doc: dict[str, Any]) -> ErpPayment:
    """A Xero payment: the invoice it is allocated to and ``Reference`` (our billing payment ID)."""
    invoice = doc.get("Invoice") or {}
    currency = str(invoice.get("CurrencyCode") or doc.get("CurrencyCode") or "USD")
    return ErpPayment(erp_id=str(doc["PaymentID"]), reference=str(doc.get("Reference") or ""),
                      erp_invoice_id=str(invoice.get("InvoiceID") or ""), amount=_money(doc, "Amount", currency),
                      status=str(doc.get("Status") or "AUTHORISED"), updated_at=updated_at(doc))


def credit_note_from_xero(doc: dict[str, Any]) -> ErpCreditNote:
    """A Xero ACCRECCREDIT: ``Reference`` (our billing credit note ID), total and allocations."""
    currency = str(doc.get("CurrencyCode") or "USD")
    return ErpCreditNote(erp_id=str(doc["CreditNoteID"]), reference=str(doc.get("Reference") or ""),
                         amount=_money(doc, "Total", currency), status=str(doc.get("Status") or ""),
                         updated_at=updated_at(doc),
                         erp_invoice_ids=[str((a.get("Invoice") or {}).get("InvoiceID"))
                                          for a in doc.get("Allocations") or [] if (a.get("Invoice") or {})])


def payment_to_xero(payment: Payment, *, invoice_id: str, bank_account_code: str) -> dict[str, Any]:
    return {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": bank_account_code},
            "Amount": payment.amount.amount, "Date": payment.paid_at.astimezone(UTC).date().isoformat(),
            "Reference": payment.billing_id}


def credit_note_to_xero(credit_note: CreditNote, *, contact_id: str, account_code: str) -> dict[str, Any]:
    """An AUTHORISED ACCRECCREDIT for the credited amount (tax-inclusive, as billing reports it)."""
    body: dict[str, Any] = {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact_id},
        "LineItems": [{"Description": credit_note.reason or f"Credit for invoice {credit_note.invoice_billing_id}",
                       "Quantity": Decimal(1), "UnitAmount": credit_note.amount.amount,
                       "AccountCode": account_code, "TaxType": "NONE"}],
        "LineAmountTypes": "NoTax",
        "CurrencyCode": credit_note.amount.currency,
        "Reference": credit_note.billing_id,
        "Status": "AUTHORISED",
    }
    if credit_note.issued_at is not None:
        body["Date"] = credit_note.issued_at.astimezone(UTC).date().isoformat()
    return body


def allocation_to_xero(invoice_id: str, amount: Decimal, on: date) -> dict[str, Any]:
    return {"Invoice": {"InvoiceID": invoice_id}, "Amount": amount, "Date": on.isoformat()}


# -- errors --------------------------------------------------------------------------------------
def error_message(body: Any, fallback: str) -> str:
    """The vendor's explanation from any of Xero's error shapes."""
    if not isinstance(body, dict):
        return fallback
    messages: list[str] = []
    for element in body.get("Elements") or []:
        if isinstance(element, dict):
            messages += [str(e.get("Message")) for e in element.get("ValidationErrors") or []
                         if isinstance(e, dict) and e.get("Message")]
    if body.get("Type") == "ValidationException" or body.get("ErrorNumber") is not None:
        head = str(body.get("Message") or body.get("Type") or "error")
        return f"{head}: {'; '.join(messages)}" if messages else head
    if "modelState" in body or "message" in body:  # Projects API
        state = body.get("modelState") or {}
        details = [f"{field}: {m}" for field, items in state.items() for m in (items or [])] \
            if isinstance(state, dict) else []
        head = str(body.get("message") or "error")
        return f"{head} ({'; '.join(details)})" if details else head
    if body.get("Detail") or body.get("Title"):  # gateway problem details
        return " - ".join(str(p) for p in (body.get("Title"), body.get("Detail")) if p)
    if body.get("error"):  # identity
        return str(body["error"])
    return fallback
