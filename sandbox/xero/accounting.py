"""Accounting API routes under ``/api.xro/2.0``: contacts, ACCREC/ACCPAY invoices, payments,
credit notes and their allocations, with Xero's validation messages, paging and ``where`` filters.

Documents are stored as Xero returns them; amounts are kept as decimal strings and sent as JSON
numbers (see :func:`sandbox.xero.wire.render`). Internal bookkeeping keys start with ``_``.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request, Response

from sandbox.xero import wire
from sandbox.xero.core import TAX_RATES, Call, XeroState, page_of
from sandbox.xero.where import WhereError, compile_where

PREFIX = "/api.xro/2.0"
CENT = Decimal("0.01")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTACT_FIELDS = ("ContactNumber", "AccountNumber", "Name", "FirstName", "LastName", "CompanyNumber",
                   "EmailAddress", "TaxNumber", "TaxNumberType", "BankAccountDetails", "AccountsReceivableTaxType",
                   "DefaultCurrency", "SalesDefaultAccountCode", "ContactStatus", "PaymentTerms", "Website")
_PAYMENT_TERM_TYPES = ("DAYSAFTERBILLDATE", "DAYSAFTERBILLMONTH", "OFCURRENTMONTH", "OFFOLLOWINGMONTH")


def _now() -> datetime:
    return datetime.now(UTC)


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _decimal(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    if isinstance(value, bool):
        raise InvalidOperation(str(value))
    return Decimal(str(value))


def _elements(body: Any, collection: str) -> list[dict[str, Any]] | None:
    """The objects of a write: ``{"Contacts": [...]}`` or one bare object."""
    if isinstance(body, dict) and collection in body:
        items = body[collection]
        return items if isinstance(items, list) and all(isinstance(i, dict) for i in items) else None
    if isinstance(body, dict) and body:
        return [body]
    return None


def _with_errors(element: dict[str, Any], messages: list[str]) -> dict[str, Any]:
    return {**element, "ValidationErrors": [{"Message": m} for m in messages], "HasValidationErrors": True}


def _touch(doc: dict[str, Any]) -> None:
    now = _now()
    doc["UpdatedDateUTC"] = wire.ms_date(now)
    doc["_updated"] = now.timestamp()


def _set_date(doc: dict[str, Any], key: str, value: date | None) -> None:
    if value is None:
        doc.pop(key, None)
        doc.pop(f"{key}String", None)
        return
    doc[key] = wire.ms_date(value)
    doc[f"{key}String"] = f"{value.isoformat()}T00:00:00"


class Accounting:
    """Route handlers; state lives in :class:`XeroState`."""

    def __init__(self, state: XeroState) -> None:
        self.state = state
        self.store = state.store

    # -- listing helpers -------------------------------------------------------------------------
    def _listing(self, call: Call, kind: str, collection: str, *, extra: list[Any] | None = None,
                 strip_lines_unless_paged: bool = False, default_filter: Any = None) -> Response:
        request = call.request
        try:
            where = compile_where(request.query_params.get("where"))
        except WhereError as exc:
            return wire.accounting_error(16, "QueryParseException", str(exc))
        since = request.headers.get("if-modified-since")
        since_ts: float | None = None
        if since:
            try:
                since_ts = wire.parse_moment(since).timestamp()
            except (TypeError, ValueError):
                since_ts = None
        def keep(i: dict[str, Any]) -> bool:
            return (where(i) and (since_ts is None or i.get("_updated", 0) >= since_ts)
                    and (default_filter is None or default_filter(i)) and all(check(i) for check in (extra or [])))

        items = (self.store.list_equal(kind, where.equal[0], where.equal[1], tenant=call.tenant, where=keep)
                 if where.equal else self.store.list(kind, tenant=call.tenant, where=keep))
        page, pagination = page_of(request, items)
        if strip_lines_unless_paged and pagination is None:
            # Xero leaves line items out of unpaged invoice lists.
            page = [{k: v for k, v in i.items() if k != "LineItems"} for i in page]
        return wire.json_response(wire.envelope(collection, page, pagination=pagination))

    @staticmethod
    def _id_filter(request: Request, param: str, field: str) -> list[Any]:
        raw = request.query_params.get(param)
        if not raw:
            return []
        wanted = {v.strip().strip('"').lower() for v in raw.split(",") if v.strip()}
        return [lambda doc: str(doc.get(field, "")).lower() in wanted]

    # -- contacts -------------------------------------------------------------------------------
    async def list_contacts(self, call: Call) -> Response:
        request = call.request
        archived = request.query_params.get("includeArchived", "").lower() == "true"
        extra = self._id_filter(request, "IDs", "ContactID")
        term = (request.query_params.get("searchTerm") or "").lower()
        if term:
            extra.append(lambda d: any(term in str(d.get(f) or "").lower() for f in
                                       ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")))
        return self._listing(call, "contact", "Contacts", extra=extra,
                             default_filter=None if archived else (lambda d: d.get("ContactStatus") != "ARCHIVED"))

    def find_contact(self, tenant: str, ref: str) -> dict[str, Any] | None:
        """By ContactID, else by ContactNumber (``/Contacts/{ContactNumber}``)."""
        doc = self.store.get("contact", ref.lower(), tenant=tenant)
        if doc is not None:
            return doc
        matches = self.store.list("contact", tenant=tenant, where=lambda d: d.get("ContactNumber") == ref)
        return matches[0] if matches else None

    async def get_contact(self, call: Call, ref: str) -> Response:
        doc = self.find_contact(call.tenant, ref)
        if doc is None:
            return wire.not_found()
        return wire.json_response(wire.envelope("Contacts", [doc]))

    async def save_contacts(self, call: Call, contact_id: str | None = None) -> Response:
        elements = _elements(call.body, "Contacts")
        if elements is None:
            return wire.accounting_error(14, "PostDataInvalidException", "No Contacts were found in the request.")
        results, response = self.write_contacts(call.request, call.tenant, elements, contact_id=contact_id)
        return response if response is not None else wire.json_response(wire.envelope("Contacts", results))

    def write_contacts(self, request: Request, tenant: str, elements: list[dict[str, Any]], *,
                       contact_id: str | None = None) -> tuple[list[dict[str, Any]], Response | None]:
        """Validate every element first; save all or none (``summarizeErrors`` defaults to true)."""
        planned: list[tuple[dict[str, Any], bool]] = []
        failed = False
        reported: list[dict[str, Any]] = []
        batch_names: dict[str, str] = {}
        # Only the stored contacts that could clash (same name or number as an element or the contact it
        # updates) are read, once per request: a backfill writes batches into a tenant of many contacts.
        names: set[str] = set()
        numbers: set[str] = set()
        targets: list[tuple[dict[str, Any], Any, dict[str, Any] | None]] = []
        for element in elements:
            target_id = contact_id or element.get("ContactID")
            existing = self.store.get("contact", str(target_id).lower(), tenant=tenant) if target_id else None
            targets.append((element, target_id, existing))
            for source in (element, existing or {}):
                if source.get("Name"):
                    names.add(str(source["Name"]).strip().lower())
                if source.get("ContactNumber"):
                    numbers.add(str(source["ContactNumber"]))
        stored = self.store.list("contact", tenant=tenant, where=lambda d: (
            str(d.get("Name", "")).strip().lower() in names
            or (d.get("ContactNumber") is not None and str(d["ContactNumber"]) in numbers)))
        for element, target_id, existing in targets:
            if target_id and existing is None:
                reported.append(_with_errors(element, [f"The ContactID {target_id} could not be found."]))
                failed = True
                continue
            doc = self._merge_contact(existing, element)
            errors = self._contact_errors(tenant, doc, batch_names, stored=stored)
            if errors:
                failed = True
                reported.append(_with_errors(element, errors))
                continue
            batch_names[doc["Name"].strip().lower()] = doc["ContactID"]
            planned.append((doc, existing is None))
            reported.append(element)
        if failed:
            return [], wire.validation_exception(reported)
        saved = []
        for doc, created in planned:
            self.store.put("contact", doc["ContactID"], doc, tenant=tenant)
            self.state.emit(request, tenant, "CONTACT", "CREATE" if created else "UPDATE", doc["ContactID"])
            saved.append(doc)
        return saved, None

    @staticmethod
    def _merge_contact(existing: dict[str, Any] | None, element: dict[str, Any]) -> dict[str, Any]:
        if existing is None:
            doc: dict[str, Any] = {
                "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": "", "Addresses": [],
                "Phones": [], "ContactGroups": [], "ContactPersons": [], "IsSupplier": False, "IsCustomer": False,
                "HasAttachments": False, "HasValidationErrors": False,
            }
        else:
            doc = {**existing, "Addresses": list(existing.get("Addresses", [])),
                   "Phones": list(existing.get("Phones", []))}
        for field in _CONTACT_FIELDS:
            if field in element:
                if field == "PaymentTerms" and isinstance(element[field], dict):
                    doc[field] = {**doc.get(field, {}), **element[field]}
                else:
                    doc[field] = element[field]
        # Addresses and phones are replaced per type, as Xero does.
        for key, kind in (("Addresses", "AddressType"), ("Phones", "PhoneType")):
            for item in element.get(key) or []:
                if isinstance(item, dict):
                    doc[key] = [a for a in doc[key] if a.get(kind) != item.get(kind)] + [item]
        _touch(doc)
        return doc

    def _contact_errors(self, tenant: str, doc: dict[str, Any], batch_names: dict[str, str], *,
                        stored: list[dict[str, Any]] | None = None) -> list[str]:
        errors: list[str] = []
        contacts = stored if stored is not None else self.store.list("contact", tenant=tenant)
        name = str(doc.get("Name") or "").strip()
        if not name:
            errors.append("The contact name must be specified.")
        for field, limit in (("Name", 255), ("ContactNumber", 50), ("TaxNumber", 50), ("EmailAddress", 255),
                             ("FirstName", 255), ("LastName", 255), ("AccountNumber", 50)):
            if doc.get(field) is not None and len(str(doc[field])) > limit:
                errors.append(f"{field} must not be more than {limit} characters long.")
        email = doc.get("EmailAddress")
        if email and not _EMAIL.match(str(email)):
            errors.append("Email address must be valid.")
        if doc.get("ContactStatus") not in ("ACTIVE", "ARCHIVED", "GDPRREQUEST"):
            errors.append(f"ContactStatus '{doc.get('ContactStatus')}' is not valid.")
        sales = (doc.get("PaymentTerms") or {}).get("Sales")
        if sales is not None:
            if not isinstance(sales, dict) or sales.get("Type") not in _PAYMENT_TERM_TYPES:
                errors.append("Payment terms type must be valid.")
            elif not isinstance(sales.get("Day"), int) or not 0 <= sales["Day"] <= 365:
                errors.append("Payment terms day must be a whole number between 0 and 365.")
        if name and doc.get("ContactStatus") == "ACTIVE":
            clash = batch_names.get(name.lower())
            others = [d for d in contacts
                      if d["ContactID"] != doc["ContactID"] and d.get("ContactStatus") == "ACTIVE"
                      and str(d.get("Name", "")).strip().lower() == name.lower()]
            if others or (clash and clash != doc["ContactID"]):
                errors.append(f"The contact name {name} is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")
        number = doc.get("ContactNumber")
        if number:
            same = [d for d in contacts if d["ContactID"] != doc["ContactID"] and d.get("ContactNumber") == number]
            if same:
                errors.append("Another contact has this contact number. Please enter a unique contact number.")
        return errors

    # -- invoices and credit notes ------------------------------------------------------------------
    async def list_invoices(self, call: Call) -> Response:
        request = call.request
        extra = (self._id_filter(request, "IDs", "InvoiceID")
                 + self._id_filter(request, "InvoiceNumbers", "InvoiceNumber")
                 + self._id_filter(request, "Statuses", "Status"))
        contact_ids = request.query_params.get("ContactIDs")
        if contact_ids:
            wanted = {c.strip().lower() for c in contact_ids.split(",")}
            extra.append(lambda d: str(d.get("Contact", {}).get("ContactID", "")).lower() in wanted)
        return self._listing(call, "invoice", "Invoices", extra=extra, strip_lines_unless_paged=True)

    def find_invoice(self, tenant: str, ref: str) -> dict[str, Any] | None:
        doc = self.store.get("invoice", ref.lower(), tenant=tenant)
        if doc is not None:
            return doc
        matches = self.store.list("invoice", tenant=tenant, where=lambda d: d.get("InvoiceNumber") == ref)
        return matches[0] if matches else None

    async def get_invoice(self, call: Call, ref: str) -> Response:
        doc = self.find_invoice(call.tenant, ref)
        return wire.not_found() if doc is None else wire.json_response(wire.envelope("Invoices", [doc]))

    async def create_invoices(self, call: Call) -> Response:
        return self._create_documents(call, "Invoices", "invoice")

    async def update_invoice_status(self, call: Call, invoice_id: str) -> Response:
        """``POST /Invoices/{InvoiceID}`` changing ``Status``: an AUTHORISED invoice with nothing paid or
        credited may be VOIDED, a DRAFT or SUBMITTED one DELETED (Xero's rules; other edits not emulated)."""
        invoice = self.find_invoice(call.tenant, invoice_id)
        if invoice is None:
            return wire.not_found()
        elements = _elements(call.body, "Invoices")
        if not elements:
            return wire.accounting_error(14, "PostDataInvalidException", "No Invoices were found in the request.")
        element = elements[0]
        status = element.get("Status")
        errors: list[str] = []
        if status == "VOIDED":
            if invoice["Status"] == "VOIDED":
                return wire.json_response(wire.envelope("Invoices", [invoice]))
            if invoice["Status"] != "AUTHORISED":
                errors.append("Invoice not of valid status for modification")
            elif Decimal(invoice["AmountPaid"]) != 0 or Decimal(invoice.get("AmountCredited") or 0) != 0:
                errors.append("This document cannot be edited as it has a payment or credit note allocated to it.")
        elif status == "DELETED":
            if invoice["Status"] not in ("DRAFT", "SUBMITTED"):
                errors.append("Invoice not of valid status for modification")
        else:
            errors.append("Only a change of Status to VOIDED or DELETED is supported.")
        if errors:
            return wire.validation_exception([_with_errors(element, errors)])
        invoice["Status"] = status
        invoice["AmountDue"] = _money(Decimal(0))
        _touch(invoice)
        self.store.put("invoice", invoice["InvoiceID"], invoice, tenant=call.tenant)
        self.state.emit(call.request, call.tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
        return wire.json_response(wire.envelope("Invoices", [invoice]))

    async def list_credit_notes(self, call: Call) -> Response:
        return self._listing(call, "credit_note", "CreditNotes")

    async def get_credit_note(self, call: Call, ref: str) -> Response:
        doc = self.store.get("credit_note", ref.lower(), tenant=call.tenant)
        return wire.not_found() if doc is None else wire.json_response(wire.envelope("CreditNotes", [doc]))

    async def create_credit_notes(self, call: Call) -> Response:
        return self._create_documents(call, "CreditNotes", "credit_note")

    def _create_documents(self, call: Call, collection: str, kind: str) -> Response:
        elements = _elements(call.body, collection)
        if elements is None:
            return wire.accounting_error(14, "PostDataInvalidException", f"No {collection} were found in the request.")
        planned: list[dict[str, Any]] = []
        reported: list[dict[str, Any]] = []
        numbers: set[str] = set()
        for element in elements:
            doc, errors = self._build_document(call, kind, element, numbers)
            reported.append(_with_errors(element, errors) if errors else element)
            if not errors and doc is not None:
                planned.append(doc)
        if len(planned) != len(elements):
            return wire.validation_exception(reported)
        for doc in planned:
            number_key = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
            if not doc.get(number_key):
                prefix = "INV" if kind == "invoice" else "CN"
                doc[number_key] = f"{prefix}-{self.store.next_number(f'{kind}-number:{call.tenant}'):04d}"
            id_key = "InvoiceID" if kind == "invoice" else "CreditNoteID"
            self.store.put(kind, doc[id_key], doc, tenant=call.tenant)
            self._mark_customer(call.tenant, doc)
            if kind == "invoice":
                self.state.emit(call.request, call.tenant, "INVOICE", "CREATE", doc["InvoiceID"])
            else:
                self.state.emit(call.request, call.tenant, "CREDITNOTE", "CREATE", doc["CreditNoteID"],
                                data={"Type": doc["Type"], "Status": doc["Status"]})
        return wire.json_response(wire.envelope(collection, planned))

    def _mark_customer(self, tenant: str, doc: dict[str, Any]) -> None:
        contact = self.store.get("contact", doc["Contact"]["ContactID"], tenant=tenant)
        if contact is not None and doc["Type"] in ("ACCREC", "ACCRECCREDIT") and not contact.get("IsCustomer"):
            contact["IsCustomer"] = True
            self.store.put("contact", contact["ContactID"], contact, tenant=tenant)

    def _resolve_contact(self, call: Call, ref: Any, errors: list[str]) -> dict[str, Any] | None:
        if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
            errors.append("The Contact must contain at least 1 of the following elements to identify the contact: "
                          "Name, ContactID, ContactNumber")
            return None
        if ref.get("ContactID"):
            found = self.store.get("contact", str(ref["ContactID"]).lower(), tenant=call.tenant)
        elif ref.get("ContactNumber"):
            found = self.find_contact(call.tenant, str(ref["ContactNumber"]))
        else:
            name = str(ref["Name"]).strip().lower()
            matches = self.store.list("contact", tenant=call.tenant,
                                      where=lambda d: str(d.get("Name", "")).strip().lower() == name)
            found = matches[0] if matches else None
            if found is None:  # Xero creates a contact from a bare name
                saved, failure = self.write_contacts(call.request, call.tenant, [{"Name": ref["Name"]}])
                found = saved[0] if failure is None else None
        if found is None:
            errors.append("The contact could not be found.")
        return found

    def _build_document(self, call: Call, kind: str, element: dict[str, Any], numbers: set[str]
                        ) -> tuple[dict[str, Any] | None, list[str]]:
        errors: list[str] = []
        types = ("ACCREC", "ACCPAY") if kind == "invoice" else ("ACCRECCREDIT", "ACCPAYCREDIT")
        doc_type = element.get("Type")
        if doc_type not in types:
            errors.append(f"Type must be one of {', '.join(types)}.")
        status = element.get("Status") or "DRAFT"
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Status '{status}' is not valid for a new document.")
        contact = self._resolve_contact(call, element.get("Contact"), errors)
        currency = str(element.get("CurrencyCode") or call.entity.currency).upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(f"The currency code '{currency}' is not valid.")
        amount_types = element.get("LineAmountTypes") or "Exclusive"
        if amount_types not in ("Exclusive", "Inclusive", "NoTax"):
            errors.append(f"LineAmountTypes '{amount_types}' is not valid.")
        try:
            issued = wire.parse_date(element.get("Date")) or _now().date()
            due = wire.parse_date(element.get("DueDate"))
        except ValueError:
            errors.append("Dates must be valid dates (yyyy-mm-dd).")
            issued, due = _now().date(), None
        if kind == "invoice" and due is None and status == "AUTHORISED":
            sales = ((contact or {}).get("PaymentTerms") or {}).get("Sales") or {}
            if sales.get("Type") == "DAYSAFTERBILLDATE":
                due = issued + timedelta(days=int(sales.get("Day") or 0))
            else:
                errors.append("Due Date is required.")
        lines, sub_total, total_tax = self._lines(element.get("LineItems"), amount_types, status, errors)
        number_key = "InvoiceNumber" if kind == "invoice" else "CreditNoteNumber"
        number = element.get(number_key)
        if number and doc_type in ("ACCREC", "ACCRECCREDIT"):
            taken = number in numbers or self.store.list(
                kind, tenant=call.tenant, where=lambda d: d.get(number_key) == number)
            if taken:
                errors.append("Invoice # must be unique." if kind == "invoice" else "Credit Note # must be unique.")
            numbers.add(number)
        if errors or contact is None:
            return None, errors
        total = sub_total + total_tax
        doc: dict[str, Any] = {
            "Type": doc_type,
            "Contact": {k: contact[k] for k in ("ContactID", "ContactNumber", "Name", "ContactStatus")
                        if contact.get(k)},
            "Status": status,
            "LineAmountTypes": amount_types,
            "LineItems": lines,
            "SubTotal": _money(sub_total), "TotalTax": _money(total_tax), "Total": _money(total),
            "CurrencyCode": currency, "CurrencyRate": "1",
            "HasAttachments": False, "HasErrors": False,
        }
        if element.get("Reference") is not None:
            doc["Reference"] = str(element["Reference"])
        if number:
            doc[number_key] = number
        _set_date(doc, "Date", issued)
        _set_date(doc, "DueDate", due)
        if kind == "invoice":
            doc.update({"InvoiceID": str(uuid.uuid4()), "AmountDue": _money(total), "AmountPaid": "0.00",
                        "AmountCredited": "0.00", "IsDiscounted": False, "SentToContact": False,
                        "Payments": [], "CreditNotes": [], "Prepayments": [], "Overpayments": []})
        else:
            doc.update({"CreditNoteID": str(uuid.uuid4()), "RemainingCredit": _money(total), "AppliedAmount": "0.00",
                        "Allocations": [], "Payments": []})
        _touch(doc)
        return doc, []

    def _lines(self, raw_lines: Any, amount_types: str, status: str, errors: list[str]
               ) -> tuple[list[dict[str, Any]], Decimal, Decimal]:
        lines: list[dict[str, Any]] = []
        sub_total = total_tax = Decimal(0)
        if not isinstance(raw_lines, list) or not raw_lines:
            if status == "AUTHORISED":
                errors.append("A document must have at least one line item to be approved.")
            return lines, sub_total, total_tax
        for raw in raw_lines:
            if not isinstance(raw, dict):
                errors.append("Line items must be objects.")
                continue
            try:
                quantity = _decimal(raw.get("Quantity"), "1")
                unit = _decimal(raw.get("UnitAmount"))
                discount = _decimal(raw.get("DiscountRate"))
                explicit_tax = None if raw.get("TaxAmount") is None else _decimal(raw.get("TaxAmount"))
            except InvalidOperation:
                errors.append("Line item amounts must be numbers.")
                continue
            if quantity < 0:
                errors.append(f"The quantity value '{quantity:.4f}' is invalid. Quantity must not be less than zero.")
            code = raw.get("AccountCode")
            account = self.state.chart.get(str(code)) if code is not None else None
            if code is None and status == "AUTHORISED":
                errors.append("Account code must be specified.")
            elif code is not None and (account is None or account[1] == "BANK"):
                errors.append(f"Account code '{code}' is not a valid code for this document.")
            tax_type = raw.get("TaxType") or (account[2] if account else "NONE")
            if amount_types == "NoTax":
                tax_type = "NONE"
            rate = TAX_RATES.get(str(tax_type))
            if rate is None:
                errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used with this type of "
                              "transaction.")
                continue
            line_amount = (quantity * unit * (1 - discount / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
            if explicit_tax is not None and amount_types != "NoTax":
                tax = explicit_tax.quantize(CENT, rounding=ROUND_HALF_UP)
            elif amount_types == "Inclusive":
                tax = (line_amount - line_amount / (1 + Decimal(rate) / 100)).quantize(CENT, rounding=ROUND_HALF_UP)
            elif amount_types == "Exclusive":
                tax = (line_amount * Decimal(rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            else:
                tax = Decimal(0)
            sub_total += line_amount - tax if amount_types == "Inclusive" else line_amount
            total_tax += tax
            line: dict[str, Any] = {
                "LineItemID": str(uuid.uuid4()), "Description": raw.get("Description") or "",
                "Quantity": str(quantity), "UnitAmount": str(unit), "TaxType": tax_type,
                "TaxAmount": _money(tax), "LineAmount": _money(line_amount), "Tracking": [],
            }
            if code is not None:
                line["AccountCode"] = str(code)
            if raw.get("ItemCode"):
                line["ItemCode"] = raw["ItemCode"]
            if discount:
                line["DiscountRate"] = str(discount)
            lines.append(line)
        return lines, sub_total, total_tax

    # -- payments --------------------------------------------------------------------------------
    async def list_payments(self, call: Call) -> Response:
        return self._listing(call, "payment", "Payments")

    async def create_payments(self, call: Call) -> Response:
        body = call.body
        elements = _elements(body, "Payments")
        if elements is None:
            return wire.accounting_error(14, "PostDataInvalidException", "No Payments were found in the request.")
        planned: list[tuple[dict[str, Any], dict[str, Any], Decimal]] = []
        reported: list[dict[str, Any]] = []
        pending: dict[str, Decimal] = {}
        for element in elements:
            errors: list[str] = []
            invoice_ref = element.get("Invoice") or {}
            invoice = None
            if isinstance(invoice_ref, dict) and invoice_ref.get("InvoiceID"):
                invoice = self.store.get("invoice", str(invoice_ref["InvoiceID"]).lower(), tenant=call.tenant)
            elif isinstance(invoice_ref, dict) and invoice_ref.get("InvoiceNumber"):
                invoice = self.find_invoice(call.tenant, str(invoice_ref["InvoiceNumber"]))
            if invoice is None:
                errors.append("Invoice could not be found.")
            account_ref = element.get("Account") or {}
            code = account_ref.get("Code") if isinstance(account_ref, dict) else None
            account_id = account_ref.get("AccountID") if isinstance(account_ref, dict) else None
            account = next((a for a in self.state.accounts(call.tenant)
                            if (code and a["Code"] == str(code)) or (account_id and a["AccountID"] == account_id)),
                           None)
            if account is None:
                errors.append("Account could not be found.")
            elif account["Type"] != "BANK" and not account.get("EnablePaymentsToAccount"):
                errors.append("Account type is invalid for making a payment to/from.")
            try:
                amount = _decimal(element.get("Amount"))
            except InvalidOperation:
                amount = Decimal(0)
                errors.append("Amount must be a number.")
            if amount <= 0:
                errors.append("Payment amount must be greater than zero.")
            try:
                paid_on = wire.parse_date(element.get("Date")) or _now().date()
            except ValueError:
                paid_on = _now().date()
                errors.append("Date must be a valid date.")
            if invoice is not None:
                if invoice["Status"] != "AUTHORISED":
                    errors.append("Payments can only be made against Authorised documents.")
                already = pending.get(invoice["InvoiceID"], Decimal(0))
                if amount + already > Decimal(invoice["AmountDue"]):
                    errors.append("Payment amount exceeds the amount outstanding on this document")
            if errors or invoice is None or account is None:
                reported.append(_with_errors(element, errors))
                continue
            pending[invoice["InvoiceID"]] = pending.get(invoice["InvoiceID"], Decimal(0)) + amount
            payment: dict[str, Any] = {
                "PaymentID": str(uuid.uuid4()), "Amount": _money(amount), "BankAmount": _money(amount),
                "CurrencyRate": "1", "Reference": str(element.get("Reference") or ""), "IsReconciled": False,
                "Status": "AUTHORISED",
                "PaymentType": "ACCRECPAYMENT" if invoice["Type"] == "ACCREC" else "ACCPAYPAYMENT",
                "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
                "Invoice": {k: invoice[k] for k in ("InvoiceID", "InvoiceNumber", "Type", "CurrencyCode", "Contact")
                            if k in invoice},
                "HasAccount": True, "HasValidationErrors": False,
            }
            _set_date(payment, "Date", paid_on)
            _touch(payment)
            planned.append((payment, invoice, amount))
            reported.append(element)
        if len(planned) != len(elements):
            return wire.validation_exception(reported)
        for payment, invoice, amount in planned:
            invoice = self.store.get("invoice", invoice["InvoiceID"], tenant=call.tenant) or invoice
            invoice["AmountPaid"] = _money(Decimal(invoice["AmountPaid"]) + amount)
            summary = {k: payment[k] for k in ("PaymentID", "Date", "Amount", "Reference", "CurrencyRate")}
            invoice["Payments"] = [*invoice.get("Payments", []), summary]
            self._settle(call, invoice, amount, payment["DateString"][:10])
            self.store.put("payment", payment["PaymentID"], payment, tenant=call.tenant)
        return wire.json_response(wire.envelope("Payments", [p for p, _, _ in planned]))

    async def delete_payment(self, call: Call, payment_id: str) -> Response:
        """``POST /Payments/{id}`` with ``Status: DELETED`` (Xero's deletePayment): the invoice owes the amount
        again (AUTHORISED once more if it was PAID); a deleted payment cannot be deleted again."""
        payment = self.store.get("payment", payment_id.lower(), tenant=call.tenant) or self.store.get(
            "payment", payment_id, tenant=call.tenant)
        if payment is None:
            return wire.not_found()
        elements = _elements(call.body, "Payments")
        if not elements:
            return wire.accounting_error(14, "PostDataInvalidException", "No Payments were found in the request.")
        element = elements[0]
        if element.get("Status") != "DELETED":
            return wire.validation_exception([_with_errors(element, ["Only a change of Status to DELETED is "
                                                                     "supported."])])
        if payment["Status"] == "DELETED":
            return wire.validation_exception([_with_errors(element, ["This payment has already been deleted."])])
        amount = Decimal(payment["Amount"])
        invoice = self.store.get("invoice", payment["Invoice"]["InvoiceID"], tenant=call.tenant)
        if invoice is not None:
            invoice["AmountPaid"] = _money(Decimal(invoice["AmountPaid"]) - amount)
            invoice["AmountDue"] = _money(Decimal(invoice["AmountDue"]) + amount)
            invoice["Payments"] = [p for p in invoice.get("Payments", []) if p["PaymentID"] != payment["PaymentID"]]
            if invoice["Status"] == "PAID":
                invoice["Status"] = "AUTHORISED"
                invoice.pop("FullyPaidOnDate", None)
            _touch(invoice)
            self.store.put("invoice", invoice["InvoiceID"], invoice, tenant=call.tenant)
            self.state.emit(call.request, call.tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
        payment["Status"] = "DELETED"
        _touch(payment)
        self.store.put("payment", payment["PaymentID"], payment, tenant=call.tenant)
        return wire.json_response(wire.envelope("Payments", [payment]))

    def _settle(self, call: Call, invoice: dict[str, Any], amount: Decimal, on: str) -> None:
        """Reduce what is due; PAID at zero. Emits the invoice UPDATE webhook."""
        due = Decimal(invoice["AmountDue"]) - amount
        invoice["AmountDue"] = _money(due)
        if due == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = wire.ms_date(date.fromisoformat(on))
        _touch(invoice)
        self.store.put("invoice", invoice["InvoiceID"], invoice, tenant=call.tenant)
        self.state.emit(call.request, call.tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])

    # -- allocations --------------------------------------------------------------------------------
    async def allocate_credit_note(self, call: Call, credit_note_id: str) -> Response:
        credit = self.store.get("credit_note", credit_note_id.lower(), tenant=call.tenant)
        if credit is None:
            return wire.not_found()
        elements = _elements(call.body, "Allocations")
        if elements is None:
            return wire.accounting_error(14, "PostDataInvalidException", "No Allocations were found in the request.")
        remaining = Decimal(credit["RemainingCredit"])
        planned: list[tuple[dict[str, Any], Decimal, str]] = []
        reported: list[dict[str, Any]] = []
        for element in elements:
            errors: list[str] = []
            ref = element.get("Invoice") or {}
            invoice = (self.store.get("invoice", str(ref.get("InvoiceID", "")).lower(), tenant=call.tenant)
                       if isinstance(ref, dict) else None)
            try:
                amount = _decimal(element.get("Amount"))
                on = (wire.parse_date(element.get("Date")) or _now().date()).isoformat()
            except (InvalidOperation, ValueError):
                amount, on = Decimal(0), _now().date().isoformat()
                errors.append("Amount and Date must be valid.")
            if invoice is None:
                errors.append("Invoice could not be found.")
            else:
                if credit["Status"] != "AUTHORISED" or invoice["Status"] != "AUTHORISED":
                    errors.append("Allocations can only be made between Authorised documents.")
                if invoice["Contact"]["ContactID"] != credit["Contact"]["ContactID"]:
                    errors.append("The credit note and the invoice must belong to the same contact.")
                if invoice["CurrencyCode"] != credit["CurrencyCode"]:
                    errors.append("The credit note and the invoice must be in the same currency.")
                if amount > Decimal(invoice["AmountDue"]):
                    errors.append("The amount being allocated exceeds the amount outstanding on the invoice.")
            if amount <= 0:
                errors.append("Allocation amount must be greater than zero.")
            if amount > remaining:
                errors.append("The amount being allocated exceeds the remaining credit.")
            if errors or invoice is None:
                reported.append(_with_errors(element, errors))
                continue
            remaining -= amount
            planned.append((invoice, amount, on))
            reported.append(element)
        if len(planned) != len(elements):
            return wire.validation_exception(reported)
        results = []
        for invoice, amount, on in planned:
            allocation_id = str(uuid.uuid4())
            allocation = {
                "AllocationID": allocation_id, "Amount": _money(amount), "Date": wire.ms_date(date.fromisoformat(on)),
                "Invoice": {k: invoice[k] for k in ("InvoiceID", "InvoiceNumber", "Type") if k in invoice},
                "CreditNote": {k: credit[k] for k in ("CreditNoteID", "CreditNoteNumber", "Type") if k in credit},
            }
            invoice = self.store.get("invoice", invoice["InvoiceID"], tenant=call.tenant) or invoice
            invoice["AmountCredited"] = _money(Decimal(invoice["AmountCredited"]) + amount)
            applied = {"CreditNoteID": credit["CreditNoteID"], "CreditNoteNumber": credit["CreditNoteNumber"],
                       "AppliedAmount": _money(amount), "Total": credit["Total"]}
            invoice["CreditNotes"] = [*invoice.get("CreditNotes", []), applied]
            self._settle(call, invoice, amount, on)
            credit["RemainingCredit"] = _money(Decimal(credit["RemainingCredit"]) - amount)
            credit["AppliedAmount"] = _money(Decimal(credit.get("AppliedAmount", "0")) + amount)
            credit["Allocations"] = [*credit.get("Allocations", []),
                                     {k: allocation[k] for k in ("AllocationID", "Amount", "Date", "Invoice")}]
            if Decimal(credit["RemainingCredit"]) == 0:
                credit["Status"] = "PAID"
            results.append(allocation)
        _touch(credit)
        self.store.put("credit_note", credit["CreditNoteID"], credit, tenant=call.tenant)
        self.state.emit(call.request, call.tenant, "CREDITNOTE", "UPDATE", credit["CreditNoteID"],
                        data={"Type": credit["Type"], "Status": credit["Status"]})
        return wire.json_response({"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": wire.PROVIDER_NAME,
                                   "DateTimeUTC": wire.ms_date(_now()), "Allocations": wire.render(results)})


    async def delete_allocation(self, call: Call, credit_note_id: str, allocation_id: str) -> Response:
        """``DELETE /CreditNotes/{id}/Allocations/{id}``: the invoice owes the amount again, the credit is
        remaining again."""
        credit = self.store.get("credit_note", credit_note_id.lower(), tenant=call.tenant)
        if credit is None:
            return wire.not_found()
        allocation = next((a for a in credit.get("Allocations", []) if a["AllocationID"] == allocation_id), None)
        if allocation is None:
            return wire.not_found()
        amount = Decimal(allocation["Amount"])
        invoice = self.store.get("invoice", str(allocation["Invoice"]["InvoiceID"]).lower(), tenant=call.tenant)
        if invoice is not None:
            invoice["AmountCredited"] = _money(Decimal(invoice["AmountCredited"]) - amount)
            invoice["AmountDue"] = _money(Decimal(invoice["AmountDue"]) + amount)
            applied = next((c for c in invoice.get("CreditNotes", [])
                            if c["CreditNoteID"] == credit["CreditNoteID"] and Decimal(c["AppliedAmount"]) == amount),
                           None)
            invoice["CreditNotes"] = [c for c in invoice.get("CreditNotes", []) if c is not applied]
            if invoice["Status"] == "PAID" and Decimal(invoice["AmountDue"]) > 0:
                invoice["Status"] = "AUTHORISED"
                invoice.pop("FullyPaidOnDate", None)
            _touch(invoice)
            self.store.put("invoice", invoice["InvoiceID"], invoice, tenant=call.tenant)
            self.state.emit(call.request, call.tenant, "INVOICE", "UPDATE", invoice["InvoiceID"])
        credit["Allocations"] = [a for a in credit["Allocations"] if a is not allocation]
        credit["RemainingCredit"] = _money(Decimal(credit["RemainingCredit"]) + amount)
        credit["AppliedAmount"] = _money(Decimal(credit.get("AppliedAmount", "0")) - amount)
        if credit["Status"] == "PAID":
            credit["Status"] = "AUTHORISED"
        _touch(credit)
        self.store.put("credit_note", credit["CreditNoteID"], credit, tenant=call.tenant)
        self.state.emit(call.request, call.tenant, "CREDITNOTE", "UPDATE", credit["CreditNoteID"],
                        data={"Type": credit["Type"], "Status": credit["Status"]})
        return wire.json_response({**allocation, "IsDeleted": True})

    async def update_credit_note_status(self, call: Call, credit_note_id: str) -> Response:
        """``POST /CreditNotes/{id}`` changing ``Status`` to VOIDED: only with nothing allocated (Xero's rule)."""
        credit = self.store.get("credit_note", credit_note_id.lower(), tenant=call.tenant)
        if credit is None:
            return wire.not_found()
        elements = _elements(call.body, "CreditNotes")
        if not elements:
            return wire.accounting_error(14, "PostDataInvalidException", "No CreditNotes were found in the request.")
        element = elements[0]
        if element.get("Status") != "VOIDED":
            return wire.validation_exception([_with_errors(element, ["Only a change of Status to VOIDED is "
                                                                     "supported."])])
        if credit["Status"] != "VOIDED":
            if credit.get("Allocations") or Decimal(credit.get("AppliedAmount") or 0) != 0:
                return wire.validation_exception([_with_errors(element, [
                    "This document cannot be edited as it has a payment or credit note allocated to it."])])
            credit["Status"] = "VOIDED"
            credit["RemainingCredit"] = _money(Decimal(0))
            _touch(credit)
            self.store.put("credit_note", credit["CreditNoteID"], credit, tenant=call.tenant)
            self.state.emit(call.request, call.tenant, "CREDITNOTE", "UPDATE", credit["CreditNoteID"],
                            data={"Type": credit["Type"], "Status": credit["Status"]})
        return wire.json_response(wire.envelope("CreditNotes", [credit]))


def register(app: FastAPI, state: XeroState) -> Accounting:
    """Add the accounting routes to ``app``."""
    api = Accounting(state)
    _contact_and_invoice_routes(app, state, api)
    _payment_and_credit_routes(app, state, api)
    _books_routes(app, state)
    return api


def _contact_and_invoice_routes(app: FastAPI, state: XeroState, api: Accounting) -> None:
    @app.get(f"{PREFIX}/Contacts")
    async def get_contacts(request: Request) -> Response:
        return await state.run(request, api.list_contacts)

    @app.put(f"{PREFIX}/Contacts")
    @app.post(f"{PREFIX}/Contacts")
    async def put_contacts(request: Request) -> Response:
        return await state.run(request, api.save_contacts)

    @app.get(f"{PREFIX}/Contacts/{{ref}}")
    async def get_contact(request: Request, ref: str) -> Response:
        return await state.run(request, lambda call: api.get_contact(call, ref))

    @app.post(f"{PREFIX}/Contacts/{{contact_id}}")
    async def post_contact(request: Request, contact_id: str) -> Response:
        return await state.run(request, lambda call: api.save_contacts(call, contact_id))

    @app.get(f"{PREFIX}/Invoices")
    async def get_invoices(request: Request) -> Response:
        return await state.run(request, api.list_invoices)

    @app.put(f"{PREFIX}/Invoices")
    @app.post(f"{PREFIX}/Invoices")
    async def put_invoices(request: Request) -> Response:
        return await state.run(request, api.create_invoices)

    @app.get(f"{PREFIX}/Invoices/{{ref}}")
    async def get_invoice(request: Request, ref: str) -> Response:
        return await state.run(request, lambda call: api.get_invoice(call, ref))

    @app.post(f"{PREFIX}/Invoices/{{invoice_id}}")
    async def post_invoice(request: Request, invoice_id: str) -> Response:
        return await state.run(request, lambda call: api.update_invoice_status(call, invoice_id))


def _payment_and_credit_routes(app: FastAPI, state: XeroState, api: Accounting) -> None:
    @app.get(f"{PREFIX}/Payments")
    async def get_payments(request: Request) -> Response:
        return await state.run(request, api.list_payments)

    @app.put(f"{PREFIX}/Payments")
    @app.post(f"{PREFIX}/Payments")
    async def put_payments(request: Request) -> Response:
        return await state.run(request, api.create_payments)

    @app.post(f"{PREFIX}/Payments/{{payment_id}}")
    async def post_payment(request: Request, payment_id: str) -> Response:
        return await state.run(request, lambda call: api.delete_payment(call, payment_id))

    @app.get(f"{PREFIX}/CreditNotes")
    async def get_credit_notes(request: Request) -> Response:
        return await state.run(request, api.list_credit_notes)

    @app.put(f"{PREFIX}/CreditNotes")
    @app.post(f"{PREFIX}/CreditNotes")
    async def put_credit_notes(request: Request) -> Response:
        return await state.run(request, api.create_credit_notes)

    @app.get(f"{PREFIX}/CreditNotes/{{ref}}")
    async def get_credit_note(request: Request, ref: str) -> Response:
        return await state.run(request, lambda call: api.get_credit_note(call, ref))

    @app.post(f"{PREFIX}/CreditNotes/{{credit_note_id}}")
    async def post_credit_note(request: Request, credit_note_id: str) -> Response:
        return await state.run(request, lambda call: api.update_credit_note_status(call, credit_note_id))

    @app.delete(f"{PREFIX}/CreditNotes/{{credit_note_id}}/Allocations/{{allocation_id}}")
    async def delete_allocation(request: Request, credit_note_id: str, allocation_id: str) -> Response:
        return await state.run(request, lambda call: api.delete_allocation(call, credit_note_id, allocation_id))

    @app.put(f"{PREFIX}/CreditNotes/{{credit_note_id}}/Allocations")
    async def put_allocations(request: Request, credit_note_id: str) -> Response:
        return await state.run(request, lambda call: api.allocate_credit_note(call, credit_note_id))


def _books_routes(app: FastAPI, state: XeroState) -> None:
    @app.get(f"{PREFIX}/Accounts")
    async def get_accounts(request: Request) -> Response:
        async def handler(call: Call) -> Response:
            return wire.json_response(wire.envelope("Accounts", state.accounts(call.tenant)))
        return await state.run(request, handler)

    @app.get(f"{PREFIX}/TaxRates")
    async def get_tax_rates(request: Request) -> Response:
        async def rates(call: Call) -> Response:
            return wire.json_response(wire.envelope("TaxRates", state.tax_rates(call.tenant)))
        return await state.run(request, rates)
