"""Xero <-> canonical, one function per object and direction.

Xero carries money as decimal numbers (not minor units); we read them as ``Decimal`` (JSON is
parsed with ``parse_float=Decimal``) and write them as exact JSON numbers (:func:`dumps`), so no
amount ever passes through a float.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
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
from canonical.books import EntityBooks, PostingLine, credit_postings, invoice_postings
from canonical.keys import milestone_of_task
from canonical.matching import CustomerCandidate
from canonical.money import minor_unit
from canonical.project import TimeEntryStatus
from canonical.reconciliation import ErpCreditNote, ErpPayment
from connectors.errors import Rejected
from connectors.wire import ABSENT, NOT_MAPPED, Wire, build, falsy, never, read

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


#: decimals Xero keeps of an amount (fewer for a currency whose minor unit has fewer: JPY keeps none)
MONEY_DECIMALS = 2


def xero_amount(money: Money) -> Decimal:
    """``money`` as Xero stores it, exactly: an amount Xero would round (3703.701 KWD) is refused as a
    business error, so the books never hold a figure billing did not send."""
    places = min(MONEY_DECIMALS, minor_unit(money.currency))
    if money.amount != money.amount.quantize(Decimal(1).scaleb(-places)):
        raise Rejected(f"{money} cannot be posted exactly: Xero keeps {places} decimals of {money.currency}",
                       vendor="xero")
    return money.amount


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


@dataclass(frozen=True)
class ContactSource:
    """What a Xero contact body is made of: canonical account fields (by ownership name), the billing
    contact and our references."""

    fields: dict[str, Any]
    email: str | None = None
    person: Contact | None = None
    reference: str | None = None
    marker: str | None = None


#: ``POST/PUT /Contacts``: only the fields present are sent
CONTACT_OUT: tuple[Wire[ContactSource], ...] = (
    Wire("Account.name", "Name", "text", lambda s: s.fields["name"] if "name" in s.fields else ABSENT, "account",
         omit=never),
    Wire("Account.crm_id", "ContactNumber", "our reference `hubspot-company-<id>-<entity>` (look-up key)",
         lambda s: s.reference, "account"),
    Wire("Account.created_by", "AccountNumber", "the creating run's ownership mark (on create)",
         lambda s: s.marker, "account"),
    Wire("Contact.email", "EmailAddress", "the billing contact's", lambda s: s.email, "contact", omit=falsy),
    Wire("Contact.first_name", "FirstName", "the billing contact's",
         lambda s: s.person.first_name if s.person else None, "contact", omit=falsy),
    Wire("Contact.last_name", "LastName", "the billing contact's",
         lambda s: s.person.last_name if s.person else None, "contact", omit=falsy),
    Wire("Account.address", "Addresses", "the POBOX address (AddressLine1/2, City, Region, PostalCode, Country)",
         lambda s: [address_to_xero(s.fields["address"])] if s.fields.get("address") is not None else None,
         "account"),
    Wire("Account.tax_number", "TaxNumber", "text", lambda s: s.fields.get("tax_number"), "account", omit=falsy),
    Wire("Account.payment_terms_days", "PaymentTerms", "days → Sales DAYSAFTERBILLDATE",
         lambda s: (payment_terms_to_xero(s.fields["payment_terms_days"])
                    if s.fields.get("payment_terms_days") is not None else None), "account"),
)


def candidate_from_xero(doc: dict[str, Any]) -> CustomerCandidate:
    """A contact as a match candidate: its ID, name, country (of its first address), tax number, email and
    ``ContactNumber`` (ours or finance's own)."""
    address = address_from_xero(doc.get("Addresses"))
    return CustomerCandidate(record_id=str(doc["ContactID"]), name=str(doc.get("Name") or ""),
                             country=address.country if address else None, tax_number=doc.get("TaxNumber") or None,
                             email=doc.get("EmailAddress") or None, reference=doc.get("ContactNumber") or None)


def contact_to_xero(fields: dict[str, Any], *, email: str | None = None, person: Contact | None = None,
                    reference: str | None = None, marker: str | None = None) -> dict[str, Any]:
    """A Xero contact body from canonical fields (only those present are sent). ``marker``: the creating
    run's ownership mark, written with the create in ``AccountNumber``."""
    return build(CONTACT_OUT, ContactSource(fields, email, person, reference, marker))


@dataclass(frozen=True)
class ContactDoc:
    """A Xero contact read over the account the CRM holds (its identifiers are kept)."""

    doc: dict[str, Any]
    base: Account


#: a Xero contact as the canonical account the ERP holds: ERP-owned fields from Xero, the rest from the base
CONTACT_IN: tuple[Wire[ContactDoc], ...] = (
    Wire("Account.created_by", "AccountNumber", "the creating run's ownership mark",
         lambda d: d.doc.get("AccountNumber") or None, "account"),
    Wire("Account.name", "Name", "text (the CRM's when empty)", lambda d: d.doc.get("Name") or d.base.name,
         "account"),
    Wire("Account.address", "Addresses", "the POBOX address (the CRM's when none)",
         lambda d: address_from_xero(d.doc.get("Addresses")) or d.base.address, "account"),
    Wire("Account.tax_number", "TaxNumber", "text", lambda d: d.doc.get("TaxNumber") or None, "account"),
    Wire("Account.payment_terms_days", "PaymentTerms", "Sales DAYSAFTERBILLDATE → days (else none)",
         lambda d: payment_terms_from_xero(d.doc.get("PaymentTerms")), "account"),
    Wire("Account.erp_contact_id", "ContactID", "as is", lambda d: d.doc["ContactID"], "account"),
)


def account_from_xero(doc: dict[str, Any], base: Account) -> Account:
    """The canonical account as the ERP holds it: ERP-owned fields come from Xero, the CRM's
    identifiers (crm_id, domain, billing customer) from ``base``."""
    return base.model_copy(update=read(CONTACT_IN, ContactDoc(doc, base)))


# -- projects ------------------------------------------------------------------------------------
def project_name(project: Project) -> str:
    """Xero Projects has no external reference, so our code leads the name: ``[P-123-US01] Name``."""
    return f"{code_prefix(project.code)} {project.name}"[:100]


def code_prefix(code: str) -> str:
    return f"[{code}]"


@dataclass(frozen=True)
class ProjectSource:
    project: Project
    contact_id: str


#: ``POST /projects.xro/2.0/Projects``
PROJECT_OUT: tuple[Wire[ProjectSource], ...] = (
    Wire("Project.erp_contact_id", "contactId", "as is", lambda s: s.contact_id, "project", omit=never),
    Wire("Project.code", "name", "`[<code>] <name>`, 100 characters at most (Xero has no external reference)",
         lambda s: project_name(s.project), "project", omit=never),
    Wire("Project.budget", "estimateAmount", "amount in the tenant's currency", lambda s: xero_amount(s.project.budget),
         "project", omit=never),
    Wire("Project.deadline", "deadlineUtc", "date → midnight UTC",
         lambda s: utc_midnight(s.project.deadline) if s.project.deadline is not None else None, "project"),
)

#: ``POST/PUT .../Projects/{id}/Tasks``
TASK_OUT: tuple[Wire[ProjectTask], ...] = (
    Wire("ProjectTask.name", "name", "text", lambda t: t.name, "project", omit=never),
    Wire("ProjectTask.rate", "rate.currency", "ISO code", lambda t: t.rate.currency, "project", omit=never),
    Wire("ProjectTask.rate", "rate.value", "Decimal", lambda t: xero_amount(t.rate), "project", omit=never),
    Wire("ProjectTask.charge_type", "chargeType", "enum → TIME/FIXED/NON_CHARGEABLE",
         lambda t: t.charge_type.value.upper(), "project", omit=never),
    Wire("ProjectTask.estimate_minutes", "estimateMinutes", "integer", lambda t: t.estimate_minutes, "project"),
)


def project_to_xero(project: Project, contact_id: str) -> dict[str, Any]:
    return build(PROJECT_OUT, ProjectSource(project, contact_id))


def task_to_xero(task: ProjectTask) -> dict[str, Any]:
    return build(TASK_OUT, task)


def task_charge_type(value: str) -> TaskChargeType:
    return TaskChargeType(value.lower())


#: a Projects API task as canonical
TASK_IN: tuple[Wire[dict[str, Any]], ...] = (
    Wire("ProjectTask.erp_id", "taskId", "as is", lambda d: str(d["taskId"]), "project"),
    Wire("ProjectTask.name", "name", "text", lambda d: str(d["name"]), "project"),
    Wire("ProjectTask.charge_type", "chargeType", "TIME/FIXED/NON_CHARGEABLE → enum",
         lambda d: task_charge_type(str(d["chargeType"])), "project"),
    Wire("ProjectTask.rate", "rate", "{currency, value} → Money",
         lambda d: Money(amount=Decimal(str((d.get("rate") or {}).get("value") or 0)),
                         currency=str((d.get("rate") or {})["currency"])), "project"),
    Wire("ProjectTask.estimate_minutes", "estimateMinutes", "integer", lambda d: d.get("estimateMinutes"),
         "project"),
)


def task_from_xero(doc: dict[str, Any]) -> ProjectTask:
    return ProjectTask(**read(TASK_IN, doc))


#: Xero Projects has no acceptance state of its own: a project manager records that the customer accepted a
#: fixed-price milestone by locking its task (no more changes; it waits to be invoiced). ``INVOICED`` (invoiced
#: from Xero) is past acceptance too.
ACCEPTED_TASK_STATUSES = ("LOCKED", "INVOICED")


def accepted_milestone(doc: dict[str, Any]) -> str | None:
    """The milestone code of a fixed-price task a person accepted, else ``None``."""
    if doc.get("chargeType") != "FIXED" or doc.get("status") not in ACCEPTED_TASK_STATUSES:
        return None
    return milestone_of_task(str(doc["name"]))


@dataclass(frozen=True)
class ProjectDoc:
    """A Projects API project with its tasks, read in one tenant."""

    doc: dict[str, Any]
    tasks: list[dict[str, Any]]
    tenant_id: str

    def split(self) -> tuple[str | None, str]:
        """``[code] name`` into (code, name); (None, the name) for a name without our prefix."""
        name = str(self.doc["name"])
        code, _, rest = name.partition("] ")
        return (code[1:], rest) if name.startswith("[") and rest else (None, name)

    @property
    def currency(self) -> str:
        return str(self.doc.get("currencyCode") or (self.doc.get("estimate") or {}).get("currency"))


#: a Projects API project as canonical; its budget is the ``estimate`` (zero when none was set)
PROJECT_IN: tuple[Wire[ProjectDoc], ...] = (
    Wire("Project.erp_id", "projectId", "as is", lambda d: str(d.doc["projectId"]), "project"),
    Wire("Project.code", "name", "the `[<code>]` prefix of the name (the whole name without one)",
         lambda d: d.split()[1] if d.split()[0] is None else d.split()[0], "project"),
    Wire("Project.name", "name", "the name after the `[<code>] ` prefix", lambda d: d.split()[1], "project"),
    Wire("Project.erp_contact_id", "contactId", "as is", lambda d: str(d.doc.get("contactId") or ""), "project"),
    Wire("Project.erp_tenant_id", NOT_MAPPED, "the tenant it was read in", lambda d: d.tenant_id, "project"),
    Wire("Project.budget", "estimate", "{currency, value} → Money (zero when none)",
         lambda d: Money(amount=Decimal(str((d.doc.get("estimate") or {}).get("value") or 0)), currency=d.currency),
         "project"),
    Wire("Project.deadline", "deadlineUtc", "date", lambda d: parse_date(d.doc.get("deadlineUtc"))
         if d.doc.get("deadlineUtc") else None, "project"),
    Wire("Project.tasks", "tasks", "each by the task table", lambda d: [task_from_xero(t) for t in d.tasks],
         "project"),
)


def project_from_xero(doc: dict[str, Any], tasks: list[dict[str, Any]], *, tenant_id: str) -> Project:
    """A Projects API project (``[code] name``) with its tasks as a canonical project; its budget is
    the project's ``estimate`` (zero when none was set)."""
    return Project(**read(PROJECT_IN, ProjectDoc(doc, tasks, tenant_id)))


def task_differs(wanted: ProjectTask, held: ProjectTask) -> bool:
    """A task update is needed when the rate, charge type or estimate differs (name is the key)."""
    return (wanted.rate.amount, wanted.charge_type, wanted.estimate_minutes) != (
        held.rate.amount, held.charge_type,
        held.estimate_minutes if wanted.estimate_minutes is not None else None)


#: ``POST .../Projects/{id}/Time``
TIME_ENTRY_OUT: tuple[Wire[TimeEntry], ...] = (
    Wire("TimeEntry.user_id", "userId", "as is", lambda e: e.user_id, "project", omit=never),
    Wire("TimeEntry.task_erp_id", "taskId", "as is", lambda e: e.task_erp_id, "project", omit=never),
    Wire("TimeEntry.date", "dateUtc", "date → midnight UTC", lambda e: utc_midnight(e.date), "project", omit=never),
    Wire("TimeEntry.minutes", "duration", "minutes", lambda e: e.minutes, "project", omit=never),
    Wire("TimeEntry.description", "description", "text", lambda e: e.description, "project"),
)


def time_entry_to_xero(entry: TimeEntry) -> dict[str, Any]:
    return build(TIME_ENTRY_OUT, entry)


_TIME_STATUS = {"ACTIVE": TimeEntryStatus.ACTIVE, "LOCKED": TimeEntryStatus.LOCKED,
                "INVOICED": TimeEntryStatus.INVOICED}


def time_entry_from_xero(doc: dict[str, Any]) -> TimeEntry:
    """A Projects API time entry; an unknown status reads as ``locked`` (never billed by us while unclear)."""
    logged = datetime.fromisoformat(str(doc["dateUtc"]).replace("Z", "+00:00"))
    return TimeEntry(erp_id=str(doc["timeEntryId"]), task_erp_id=str(doc["taskId"]), user_id=str(doc["userId"]),
                     minutes=int(doc["duration"]), date=logged.astimezone(UTC).date(),
                     description=doc.get("description"),
                     status=_TIME_STATUS.get(str(doc.get("status") or "ACTIVE"), TimeEntryStatus.LOCKED))


# -- invoices ------------------------------------------------------------------------------------
_STATUS_FROM_XERO = {
    "DRAFT": InvoiceStatus.DRAFT, "SUBMITTED": InvoiceStatus.DRAFT, "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID, "VOIDED": InvoiceStatus.VOID, "DELETED": InvoiceStatus.VOID,
}


def priced(line: PostingLine) -> tuple[Decimal, Decimal]:
    """(quantity, unit): one unit of the net when quantity x unit is not the net (a discount was applied)."""
    amount = xero_amount(line.net)
    if line.unit_amount is None or line.quantity * line.unit_amount.amount != amount:
        return Decimal(1), amount
    return line.quantity, xero_amount(line.unit_amount)


#: one ACCREC or ACCRECCREDIT line item: a posting line of the books mapping (canonical/books.py)
LINE_OUT: tuple[Wire[PostingLine], ...] = (
    Wire("InvoiceLine.description", "Description", "text", lambda p: p.description, "invoice", omit=never),
    Wire("InvoiceLine.quantity", "Quantity", "Decimal (1 when the amount is not quantity x unit price)",
         lambda p: priced(p)[0], "invoice", omit=never),
    Wire("InvoiceLine.unit_amount", "UnitAmount", "Decimal (the line's net when discounted)",
         lambda p: priced(p)[1], "invoice", omit=never),
    Wire("InvoiceLine.product_code", "AccountCode", "the entity's revenue account for the product (BOOKS_MAPPING; "
         "the bad-debt account on a write-off)", lambda p: p.account, "invoice", omit=never),
    Wire("Invoice.customer_tax_status", "TaxType", "the entity's tax code for the customer's tax status and "
         "country (BOOKS_MAPPING); a credit keeps the credited line's", lambda p: p.tax_code, "invoice", omit=never),
    Wire("InvoiceLine.taxes", "TaxAmount", "sum of the line's tax amounts (a credit: its share of the line's tax)",
         lambda p: xero_amount(p.tax), "invoice", omit=never),
)


def line_to_xero(line: PostingLine) -> dict[str, Any]:
    """One line item, exclusive of tax, with its account, tax type and tax amount. When the line's amount is
    not quantity x unit price (a discount was applied), it is sent as one unit of the net so the ERP total
    matches the invoice."""
    return build(LINE_OUT, line)


@dataclass(frozen=True)
class InvoiceSource:
    """A billing invoice with the ERP contact it is posted to and its lines as the books map them."""

    invoice: Invoice
    contact_id: str
    lines: list[PostingLine]


#: ``PUT /Invoices``: an AUTHORISED ACCREC invoice whose ``Reference`` is the billing invoice ID
INVOICE_OUT: tuple[Wire[InvoiceSource], ...] = (
    Wire(NOT_MAPPED, "Type", "`ACCREC`", lambda _s: "ACCREC", omit=never),
    Wire("Invoice.customer_id", "Contact.ContactID", "the ERP contact of the billing customer",
         lambda s: s.contact_id, "invoice", omit=never),
    Wire("Invoice.lines", "LineItems", "each line by the line table",
         lambda s: [line_to_xero(line) for line in s.lines], "invoice", omit=never),
    Wire(NOT_MAPPED, "LineAmountTypes", "`Exclusive`", lambda _s: "Exclusive", omit=never),
    Wire("Invoice.currency", "CurrencyCode", "ISO 4217", lambda s: s.invoice.currency, "invoice", omit=never),
    Wire("Invoice.billing_id", "Reference", "the billing invoice ID (look-up key)", lambda s: s.invoice.billing_id,
         "invoice", omit=never),
    Wire("Invoice.status", "Status", "`AUTHORISED` (posted receivable)", lambda _s: "AUTHORISED", "invoice",
         omit=never),
    Wire("Invoice.issued_on", "Date", "ISO date",
         lambda s: s.invoice.issued_on.isoformat() if s.invoice.issued_on is not None else None, "invoice"),
    Wire("Invoice.due_on", "DueDate", "ISO date",
         lambda s: s.invoice.due_on.isoformat() if s.invoice.due_on is not None else None, "invoice"),
    Wire("Invoice.number", "InvoiceNumber", "as is", lambda s: s.invoice.number, "invoice", omit=falsy),
)


def invoice_to_xero(invoice: Invoice, *, contact_id: str, books: EntityBooks) -> dict[str, Any]:
    """An AUTHORISED ACCREC invoice whose ``Reference`` is the billing invoice ID, each line booked as ``books``
    maps it (:class:`canonical.books.MissingMapping` when it does not)."""
    return build(INVOICE_OUT, InvoiceSource(invoice, contact_id, invoice_postings(books, invoice)))


def postings_from_xero(doc: dict[str, Any]) -> list[PostingLine]:
    """The lines of a posted invoice as booked: net, tax, account and tax type of each."""
    currency = str(doc.get("CurrencyCode") or "")
    return [PostingLine(description=str(item.get("Description") or ""), net=_money(item, "LineAmount", currency),
                        tax=_money(item, "TaxAmount", currency), account=str(item.get("AccountCode") or ""),
                        tax_code=str(item.get("TaxType") or "NONE"), product_code=item.get("ItemCode"))
            for item in doc.get("LineItems") or []]


def add_item_codes(body: dict[str, Any], invoice: Invoice, item_codes: Mapping[str, str]) -> None:
    """Each ACCREC line whose billing line's SKU the catalogue maps gets that ``ItemCode`` (the item must exist in
    the tenant: Xero refuses an unknown code); a line of another SKU is sent without one, as before."""
    for line, item in zip(invoice.lines, body.get("LineItems") or [], strict=False):
        if line.product_code and (code := item_codes.get(line.product_code)):
            item["ItemCode"] = code


def _money(doc: dict[str, Any], key: str, currency: str) -> Money:
    return Money(amount=Decimal(str(doc.get(key) or 0)), currency=currency)


def _line_from_xero(item: dict[str, Any], currency: str) -> InvoiceLine:
    tax = _money(item, "TaxAmount", currency)
    return InvoiceLine(
        description=item.get("Description") or "",
        quantity=Decimal(str(item.get("Quantity") or 1)),
        unit_amount=_money(item, "UnitAmount", currency),
        amount=_money(item, "LineAmount", currency),
        product_code=item.get("ItemCode"),
        ledger_account=item.get("AccountCode"), tax_code=item.get("TaxType"),
        taxes=[] if tax.is_zero() else [TaxLine(name=str(item.get("TaxType") or "TAX"), rate_percent=Decimal(0),
                                                amount=tax)],
    )


@dataclass(frozen=True)
class InvoiceDoc:
    """A Xero ACCREC invoice read in one legal entity's tenant."""

    doc: dict[str, Any]
    legal_entity: str | None

    @property
    def currency(self) -> str:
        return str(self.doc.get("CurrencyCode") or "")

    def money(self, key: str) -> Money:
        return _money(self.doc, key, self.currency)


def _erp_metadata(doc: dict[str, Any]) -> dict[str, str]:
    return {"erp_invoice_id": str(doc.get("InvoiceID")), "erp_status": str(doc.get("Status")),
            "erp_amount_credited": str(doc.get("AmountCredited") or 0),
            **({"erp_updated_at": moment.isoformat()} if (moment := updated_at(doc)) else {})}


#: a Xero invoice in canonical form; ``billing_id`` is its ``Reference`` (our billing invoice ID)
INVOICE_IN: tuple[Wire[InvoiceDoc], ...] = (
    Wire("Invoice.billing_id", "Reference", "the billing invoice ID", lambda d: str(d.doc.get("Reference") or ""),
         "invoice"),
    Wire("Invoice.number", "InvoiceNumber", "as is", lambda d: d.doc.get("InvoiceNumber"), "invoice"),
    Wire("Invoice.customer_id", "Contact.ContactID", "the ERP contact",
         lambda d: str((d.doc.get("Contact") or {}).get("ContactID") or ""), "invoice"),
    Wire("Invoice.currency", "CurrencyCode", "ISO 4217", lambda d: d.currency, "invoice"),
    Wire("Invoice.status", "Status", "DRAFT/SUBMITTED → draft, AUTHORISED → open, PAID → paid, "
         "VOIDED/DELETED → void", lambda d: _STATUS_FROM_XERO.get(str(d.doc.get("Status")), InvoiceStatus.DRAFT),
         "invoice"),
    Wire("Invoice.issued_on", "DateString or Date", "date", lambda d: document_date(d.doc, "Date"), "invoice"),
    Wire("Invoice.due_on", "DueDateString or DueDate", "date", lambda d: document_date(d.doc, "DueDate"),
         "invoice"),
    Wire("Invoice.lines", "LineItems", "Description, Quantity, UnitAmount, LineAmount, ItemCode, AccountCode "
         "(ledger_account), TaxType (tax_code), TaxAmount",
         lambda d: [_line_from_xero(item, d.currency) for item in d.doc.get("LineItems") or []], "invoice"),
    Wire("Invoice.subtotal", "SubTotal", "Decimal", lambda d: d.money("SubTotal"), "invoice"),
    Wire("Invoice.tax", "TotalTax", "Decimal", lambda d: d.money("TotalTax"), "invoice"),
    Wire("Invoice.total", "Total", "Decimal", lambda d: d.money("Total"), "invoice"),
    Wire("Invoice.amount_paid", "AmountPaid", "Decimal", lambda d: d.money("AmountPaid"), "invoice"),
    Wire("Invoice.amount_due", "AmountDue", "Decimal", lambda d: d.money("AmountDue"), "invoice"),
    Wire("Invoice.legal_entity", NOT_MAPPED, "the entity whose tenant it was read in", lambda d: d.legal_entity,
         "invoice"),
    Wire("Invoice.metadata", "InvoiceID, Status, AmountCredited, UpdatedDateUTC",
         "as `erp_invoice_id`, `erp_status`, `erp_amount_credited`, `erp_updated_at`",
         lambda d: _erp_metadata(d.doc), "invoice"),
)


def invoice_from_xero(doc: dict[str, Any], *, legal_entity: str | None = None) -> Invoice:
    """A Xero invoice in canonical form; ``billing_id`` is its ``Reference`` (our billing invoice ID)."""
    return Invoice(**read(INVOICE_IN, InvoiceDoc(doc, legal_entity)))


def _payment_currency(doc: dict[str, Any]) -> str:
    return str((doc.get("Invoice") or {}).get("CurrencyCode") or doc.get("CurrencyCode") or "USD")


#: a Xero payment read back (reconciliation): the invoice it is allocated to, ``Reference`` our billing payment ID
PAYMENT_IN: tuple[Wire[dict[str, Any]], ...] = (
    Wire("ErpPayment.erp_id", "PaymentID", "as is", lambda d: str(d["PaymentID"]), "payment"),
    Wire("ErpPayment.reference", "Reference", "our billing payment ID", lambda d: str(d.get("Reference") or ""),
         "payment"),
    Wire("ErpPayment.erp_invoice_id", "Invoice.InvoiceID", "the invoice it is allocated to",
         lambda d: str((d.get("Invoice") or {}).get("InvoiceID") or ""), "payment"),
    Wire("ErpPayment.amount", "Amount", "decimal, in the invoice's currency",
         lambda d: _money(d, "Amount", _payment_currency(d)), "payment"),
    Wire("ErpPayment.status", "Status", "as is (AUTHORISED when absent)",
         lambda d: str(d.get("Status") or "AUTHORISED"), "payment"),
    Wire("ErpPayment.updated_at", "UpdatedDateUTC", "Xero's /Date(ms)/ → UTC moment", updated_at, "payment"),
)

#: a Xero ACCRECCREDIT read back (reconciliation): ``Reference`` our billing credit note ID, total, allocations
CREDIT_NOTE_IN: tuple[Wire[dict[str, Any]], ...] = (
    Wire("ErpCreditNote.erp_id", "CreditNoteID", "as is", lambda d: str(d["CreditNoteID"]), "credit_note"),
    Wire("ErpCreditNote.reference", "Reference", "our billing credit note ID",
         lambda d: str(d.get("Reference") or ""), "credit_note"),
    Wire("ErpCreditNote.amount", "Total", "decimal, in its currency",
         lambda d: _money(d, "Total", str(d.get("CurrencyCode") or "USD")), "credit_note"),
    Wire("ErpCreditNote.status", "Status", "as is", lambda d: str(d.get("Status") or ""), "credit_note"),
    Wire("ErpCreditNote.updated_at", "UpdatedDateUTC", "Xero's /Date(ms)/ → UTC moment", updated_at,
         "credit_note"),
    Wire("ErpCreditNote.erp_invoice_ids", "Allocations[].Invoice.InvoiceID", "the invoices it is allocated to",
         lambda d: [str((a.get("Invoice") or {}).get("InvoiceID")) for a in d.get("Allocations") or []
                    if (a.get("Invoice") or {})], "credit_note"),
)


def payment_from_xero(doc: dict[str, Any]) -> ErpPayment:
    """A Xero payment: the invoice it is allocated to and ``Reference`` (our billing payment ID)."""
    return ErpPayment(**read(PAYMENT_IN, doc))


def credit_note_from_xero(doc: dict[str, Any]) -> ErpCreditNote:
    """A Xero ACCRECCREDIT: ``Reference`` (our billing credit note ID), total and allocations."""
    return ErpCreditNote(**read(CREDIT_NOTE_IN, doc))


@dataclass(frozen=True)
class PaymentSource:
    payment: Payment
    invoice_id: str
    bank_account_code: str


#: ``PUT /Payments``: a billing payment against the ERP invoice
PAYMENT_OUT: tuple[Wire[PaymentSource], ...] = (
    Wire("Payment.invoice_billing_id", "Invoice.InvoiceID", "the ERP invoice posted for it",
         lambda s: s.invoice_id, "payment", omit=never),
    Wire("Payment.amount", "Account.Code", "the entity's bank account of the payment's currency (BOOKS_MAPPING)",
         lambda s: s.bank_account_code, "payment", omit=never),
    Wire("Payment.amount", "Amount", "Decimal", lambda s: xero_amount(s.payment.amount), "payment", omit=never),
    Wire("Payment.paid_at", "Date", "the UTC date", lambda s: s.payment.paid_at.astimezone(UTC).date().isoformat(),
         "payment", omit=never),
    Wire("Payment.billing_id", "Reference", "the billing payment ID (look-up key)", lambda s: s.payment.billing_id,
         "payment", omit=never),
)


def payment_to_xero(payment: Payment, *, invoice_id: str, bank_account_code: str) -> dict[str, Any]:
    """A payment against the invoice into ``bank_account_code`` (the entity's bank account of its currency)."""
    return build(PAYMENT_OUT, PaymentSource(payment, invoice_id, bank_account_code))


@dataclass(frozen=True)
class CreditNoteSource:
    note: CreditNote
    contact_id: str
    lines: list[PostingLine]


#: ``PUT /CreditNotes``: an AUTHORISED ACCRECCREDIT reversing the credited invoice's lines (net and tax)
CREDIT_NOTE_OUT: tuple[Wire[CreditNoteSource], ...] = (
    Wire(NOT_MAPPED, "Type", "`ACCRECCREDIT`", lambda _s: "ACCRECCREDIT", omit=never),
    Wire(NOT_MAPPED, "Contact.ContactID", "the ERP contact of the invoice's customer", lambda s: s.contact_id,
         omit=never),
    Wire("CreditNote.amount", "LineItems", "the amount (tax-inclusive, as billing reports it) shared over the "
         "credited invoice's lines by their gross, each split into net and tax with the line's account and tax "
         "type (a write-off: the bad-debt account); the reason (else `Credit for invoice <id>`) as description",
         lambda s: [line_to_xero(line) for line in s.lines], "credit_note", omit=never),
    Wire(NOT_MAPPED, "LineAmountTypes", "`Exclusive`", lambda _s: "Exclusive", omit=never),
    Wire("CreditNote.amount", "CurrencyCode", "the amount's currency", lambda s: s.note.amount.currency,
         "credit_note", omit=never),
    Wire("CreditNote.billing_id", "Reference", "the billing credit note ID (look-up key)",
         lambda s: s.note.billing_id, "credit_note", omit=never),
    Wire(NOT_MAPPED, "Status", "`AUTHORISED`", lambda _s: "AUTHORISED", omit=never),
    Wire("CreditNote.issued_at", "Date", "the UTC date",
         lambda s: s.note.issued_at.astimezone(UTC).date().isoformat() if s.note.issued_at is not None else None,
         "credit_note"),
)


def credit_note_to_xero(credit_note: CreditNote, *, contact_id: str, credited: list[PostingLine],
                        bad_debt_account: str | None = None) -> dict[str, Any]:
    """An AUTHORISED ACCRECCREDIT reversing ``credited`` (the posted invoice's lines) for the credited amount:
    same tax types and accounts, net and tax split; ``bad_debt_account`` takes the net of a write-off."""
    description = credit_note.reason or f"Credit for invoice {credit_note.invoice_billing_id}"
    try:
        lines = credit_postings(credited, credit_note.amount, description=description, account=bad_debt_account)
    except ValueError as exc:
        raise Rejected(f"credit note {credit_note.billing_id}: {exc}", vendor="xero") from exc
    return build(CREDIT_NOTE_OUT, CreditNoteSource(credit_note, contact_id, lines))


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
