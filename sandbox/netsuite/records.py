"""The REST record API v1 and SuiteQL over the emulator's store: customers, projects (``job``) and their tasks,
invoices, customer payments and credit memos, per subsidiary; subsidiary and currency look-ups.

Every record lives in the store under its type (tenant ``""``, the account) with its ``subsidiary``; external IDs
are unique per record type across the account, as NetSuite keeps them. ``PUT .../eid:{externalId}`` is an
upsert (204 and ``Location``); invoices carry ``amountPaid`` and ``amountRemaining`` from the payments and
credit memos applied to them (``apply.items[{doc, apply, amount}]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import FastAPI, Request, Response

from sandbox.kit import Store
from sandbox.netsuite import wire
from sandbox.netsuite.suiteql import SuiteQLError, parse

RECORD_TYPES = ("customer", "job", "projectTask", "timeBill", "invoice", "customerPayment", "creditMemo")
TRANSACTION_TYPES = {"invoice": "CustInvc", "customerPayment": "CustPymt", "creditMemo": "CustCred"}
INVOICE_STATUS = {"A": "Open", "B": "Paid In Full", "V": "Voided"}
CREDIT_STATUS = {"A": "Open", "B": "Fully Applied", "V": "Voided"}
PROJECT_STATUS = {"1": "Closed", "2": "In Progress"}
SUITEQL_MAX_LIMIT = 1000
_REFERENCES = ("subsidiary", "currency", "entity", "customer", "parent", "company", "terms", "item", "doc",
               "entityStatus", "account", "employee", "caseTaskEvent")


#: "An external ID can be any string containing letters, numbers, underscore (_), and hyphen (-)."
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _decimal(value: Any, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"Invalid value for field {field}: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"Invalid value for field {field}: {value!r}")
    return number


def _date(value: Any, field: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError as exc:
        raise ValueError(f"Invalid value for field {field}: {value!r} (yyyy-mm-dd)") from exc


class Records:
    """The record and query routes; ``subsidiaries`` and ``currencies`` are the account's reference data."""

    def __init__(self, store: Store, *, account_id: str, subsidiaries: dict[str, dict[str, str]],
                 currencies: dict[str, str], tax_item_id: str) -> None:
        self.store = store
        self.account_id = account_id
        self.subsidiaries = subsidiaries  # id -> {name, currency code}
        self.currencies = currencies  # id -> ISO code
        self.tax_item_id = tax_item_id

    # -- routes ------------------------------------------------------------------------------------
    def register(self, app: FastAPI, guard: Callable[..., Any]) -> None:
        """Add the routes; ``guard(request, handler)`` authenticates and paces each call."""
        base = "/services/rest/record/v1"
        for path, method, handler in (
            (f"{base}/{{record_type}}/eid:{{external_id}}", "GET", self.get_by_external_id),
            (f"{base}/{{record_type}}/eid:{{external_id}}", "PUT", self.upsert),
            (f"{base}/{{record_type}}/{{record_id}}", "GET", self.get),
            (f"{base}/{{record_type}}/{{record_id}}", "PATCH", self.patch),
            (f"{base}/{{record_type}}", "POST", self.create),
            ("/services/rest/query/v1/suiteql", "POST", self.suiteql),
        ):
            app.add_api_route(path, self._guarded(guard, handler), methods=[method], include_in_schema=False)

    @staticmethod
    def _guarded(guard: Callable[..., Any], handler: Callable[..., Any]) -> Callable[..., Any]:
        async def route(request: Request) -> Response:
            return await guard(request, lambda body: handler(request, body, **request.path_params))  # type: ignore[no-any-return]
        return route

    # -- reference data ------------------------------------------------------------------------------
    def reference(self, record_type: str, record_id: str) -> dict[str, Any] | None:
        if record_type == "subsidiary" and record_id in self.subsidiaries:
            info = self.subsidiaries[record_id]
            code = info["currency"]
            currency = next((cid for cid, c in self.currencies.items() if c == code), "")
            return {"id": record_id, "name": info["name"], "currency": {"id": currency, "refName": code},
                    "isInactive": False}
        if record_type == "currency" and record_id in self.currencies:
            return {"id": record_id, "name": self.currencies[record_id], "symbol": self.currencies[record_id],
                    "isBaseCurrency": record_id == "1", "isInactive": False}
        return None

    # -- record store --------------------------------------------------------------------------------
    def find(self, record_type: str, record_id: str) -> dict[str, Any] | None:
        return self.store.get(record_type, record_id)

    def by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        found = self.store.list(record_type, where=lambda d: d.get("externalId") == external_id, limit=1)
        return found[0] if found else None

    def save(self, record_type: str, doc: dict[str, Any]) -> dict[str, Any]:
        doc["lastModifiedDate"] = now_text()
        return self.store.put(record_type, doc["id"], doc)

    def _links(self, request: Request, record_type: str, record_id: str) -> list[dict[str, str]]:
        return [{"rel": "self", "href": f"{str(request.base_url).rstrip('/')}/services/rest/record/v1/"
                                        f"{record_type}/{record_id}"}]

    def _shown(self, request: Request, record_type: str, doc: dict[str, Any]) -> Response:
        if record_type == "invoice":
            doc = self._with_balance(doc)
        return wire.json_response({"links": self._links(request, record_type, doc["id"]), **doc})

    # -- handlers -------------------------------------------------------------------------------------
    async def get(self, request: Request, _body: Any, record_type: str, record_id: str) -> Response:
        if record_type in ("subsidiary", "currency"):
            ref = self.reference(record_type, record_id)
            return wire.json_response(ref) if ref else wire.not_found(record_type, record_id)
        if record_type not in RECORD_TYPES:
            return wire.invalid(f"Record type '{record_type}' does not exist.", "INVALID_RCRD_TYPE")
        doc = self.find(record_type, record_id)
        return self._shown(request, record_type, doc) if doc else wire.not_found(record_type, record_id)

    async def get_by_external_id(self, request: Request, _body: Any, record_type: str,
                                 external_id: str) -> Response:
        if record_type not in RECORD_TYPES:
            return wire.invalid(f"Record type '{record_type}' does not exist.", "INVALID_RCRD_TYPE")
        if not EXTERNAL_ID.fullmatch(external_id):
            return wire.invalid(f"Invalid external ID {external_id!r}.", "INVALID_PARAMETER")
        doc = self.by_external_id(record_type, external_id)
        return self._shown(request, record_type, doc) if doc else wire.not_found(record_type, f"eid:{external_id}")

    async def create(self, request: Request, body: Any, record_type: str) -> Response:
        if record_type not in RECORD_TYPES:
            return wire.invalid(f"Record type '{record_type}' does not exist.", "INVALID_RCRD_TYPE")
        if not isinstance(body, dict):
            return wire.invalid("The request body must be a JSON object.", "INVALID_CONTENT")
        external = body.get("externalId")
        if external and self.by_external_id(record_type, str(external)) is not None:
            return wire.invalid(f"A {record_type} record with this external ID already exists.", "DUP_RCRD")
        return self._write(request, record_type, None, body, created=True)

    async def upsert(self, request: Request, body: Any, record_type: str, external_id: str) -> Response:
        if record_type not in RECORD_TYPES:
            return wire.invalid(f"Record type '{record_type}' does not exist.", "INVALID_RCRD_TYPE")
        if not isinstance(body, dict):
            return wire.invalid("The request body must be a JSON object.", "INVALID_CONTENT")
        if not EXTERNAL_ID.fullmatch(external_id):
            return wire.invalid(f"Invalid external ID {external_id!r}.", "INVALID_PARAMETER")
        if "externalId" in body and body["externalId"] != external_id:
            return wire.invalid("The external ID in the body differs from the one in the path.", "INVALID_PARAMETER")
        current = self.by_external_id(record_type, external_id)
        return self._write(request, record_type, current, {**body, "externalId": external_id},
                           created=current is None)

    async def patch(self, request: Request, body: Any, record_type: str, record_id: str) -> Response:
        if record_type not in RECORD_TYPES:
            return wire.invalid(f"Record type '{record_type}' does not exist.", "INVALID_RCRD_TYPE")
        current = self.find(record_type, record_id)
        if current is None:
            return wire.not_found(record_type, record_id)
        if not isinstance(body, dict):
            return wire.invalid("The request body must be a JSON object.", "INVALID_CONTENT")
        external = body.get("externalId")
        if external and external != current.get("externalId"):
            other = self.by_external_id(record_type, str(external))
            if other is not None:
                return wire.invalid(f"A {record_type} record with this external ID already exists.", "DUP_RCRD")
        return self._write(request, record_type, current, body, created=False)

    def _write(self, request: Request, record_type: str, current: dict[str, Any] | None, body: dict[str, Any], *,
               created: bool) -> Response:
        try:
            doc = getattr(self, f"_merge_{record_type}")(current, body)
        except ValueError as exc:
            return wire.invalid(str(exc))
        except _Refused as exc:
            return exc.response
        saved = self.save(record_type, doc)
        location = f"{str(request.base_url).rstrip('/')}/services/rest/record/v1/{record_type}/{saved['id']}"
        return Response(status_code=204, headers={"Location": location})

    # -- merging a body into a record, type by type -------------------------------------------------------
    def _base(self, current: dict[str, Any] | None, body: dict[str, Any], allowed: tuple[str, ...]
              ) -> dict[str, Any]:
        unknown = sorted(set(body) - set(allowed) - {"externalId", "id", "links"})
        if unknown:
            raise ValueError(f"Invalid field(s): {', '.join(unknown)}")
        external = body.get("externalId")
        if external is not None and not (isinstance(external, str) and EXTERNAL_ID.fullmatch(external)):
            raise ValueError(f"Invalid value for field externalId: {external!r} (letters, digits, _ and - only)")
        doc: dict[str, Any] = dict(current) if current else {
            "id": str(self.store.next_number("netsuite:internal-id") + 100), "dateCreated": now_text()}
        for key in allowed + ("externalId",):
            if key in body:
                doc[key] = body[key]
        for key in _REFERENCES:
            if key in doc and isinstance(doc[key], dict | str | int) and key != "item":
                ref = doc[key]
                doc[key] = {"id": str(ref["id"] if isinstance(ref, dict) else ref)}
        return doc

    def _subsidiary(self, doc: dict[str, Any]) -> str:
        subsidiary = (doc.get("subsidiary") or {}).get("id")
        if subsidiary not in self.subsidiaries:
            raise ValueError(f"Invalid value for field subsidiary: {subsidiary!r}")
        return str(subsidiary)

    def _currency(self, doc: dict[str, Any]) -> None:
        currency = (doc.get("currency") or {}).get("id")
        if currency is not None and currency not in self.currencies:
            raise ValueError(f"Invalid value for field currency: {currency!r}")
        if currency is None:
            code = self.subsidiaries[self._subsidiary(doc)]["currency"]
            doc["currency"] = {"id": next((c for c, v in self.currencies.items() if v == code), "1")}
        doc["currency"]["refName"] = self.currencies[doc["currency"]["id"]]

    def _entity(self, doc: dict[str, Any], field: str) -> dict[str, Any]:
        entity_id = (doc.get(field) or {}).get("id")
        customer = self.find("customer", str(entity_id)) if entity_id is not None else None
        if customer is None:
            raise ValueError(f"Invalid value for field {field}: {entity_id!r}")
        if customer["subsidiary"]["id"] != self._subsidiary(doc):
            raise ValueError(f"The {field} does not belong to subsidiary {doc['subsidiary']['id']}")
        return customer

    def _merge_customer(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        doc = self._base(current, body, ("companyName", "email", "phone", "accountNumber", "vatRegNumber",
                                         "isInactive", "subsidiary", "currency", "terms", "addressBook",
                                         "comments"))
        if not doc.get("companyName"):
            raise ValueError("Please enter value(s) for: Company Name")
        if current is not None and body.get("subsidiary") and body["subsidiary"] != current["subsidiary"]:
            raise ValueError("The subsidiary of an existing customer cannot be changed")
        self._subsidiary(doc)
        self._currency(doc)
        doc.setdefault("isInactive", False)
        doc["entityId"] = doc["companyName"]
        return doc

    def _merge_job(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        doc = self._base(current, body, ("companyName", "entityId", "parent", "subsidiary", "currency",
                                         "jobPrice", "projectedEndDate", "entityStatus", "isInactive",
                                         "startDate"))
        if not doc.get("companyName"):
            raise ValueError("Please enter value(s) for: Project Name")
        self._subsidiary(doc)
        self._entity(doc, "parent")
        self._currency(doc)
        if "jobPrice" in doc:
            doc["jobPrice"] = str(_decimal(doc["jobPrice"], "jobPrice"))
        if doc.get("projectedEndDate"):
            doc["projectedEndDate"] = _date(doc["projectedEndDate"], "projectedEndDate")
        status = str((doc.get("entityStatus") or {}).get("id") or "2")
        if status not in PROJECT_STATUS:
            raise ValueError(f"Invalid value for field entityStatus: {status!r}")
        doc["entityStatus"] = {"id": status, "refName": PROJECT_STATUS[status]}
        doc.setdefault("isInactive", False)
        return doc

    def _merge_projectTask(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        doc = self._base(current, body, ("title", "company", "estimatedWork", "nonBillableTask",
                                         "custevent_revops_charge_type", "custevent_revops_rate", "status"))
        if not doc.get("title"):
            raise ValueError("Please enter value(s) for: Name")
        job = self.find("job", str((doc.get("company") or {}).get("id")))
        if job is None:
            raise ValueError(f"Invalid value for field company: {doc.get('company')!r}")
        doc["subsidiary"] = job["subsidiary"]
        for key in ("estimatedWork", "custevent_revops_rate"):
            if key in doc and doc[key] is not None:
                doc[key] = str(_decimal(doc[key], key))
        doc.setdefault("nonBillableTask", False)
        return doc

    def _merge_timeBill(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        doc = self._base(current, body, ("employee", "customer", "caseTaskEvent", "hours", "tranDate", "memo",
                                         "isBillable"))
        job = self.find("job", str((doc.get("customer") or {}).get("id")))
        if job is None:
            raise ValueError(f"Invalid value for field customer: {doc.get('customer')!r} (a project)")
        task = self.find("projectTask", str((doc.get("caseTaskEvent") or {}).get("id")))
        if task is None or task["company"]["id"] != job["id"]:
            raise ValueError(f"Invalid value for field caseTaskEvent: {doc.get('caseTaskEvent')!r}")
        if not (doc.get("employee") or {}).get("id"):
            raise ValueError("Please enter value(s) for: Employee")
        hours = _decimal(doc.get("hours"), "hours")
        if hours <= 0:
            raise ValueError("Invalid value for field hours: it must be positive")
        doc["hours"] = str(hours)
        doc["tranDate"] = _date(doc.get("tranDate"), "tranDate")
        doc["subsidiary"] = job["subsidiary"]
        doc.setdefault("isBillable", not task.get("nonBillableTask"))
        return doc

    def _lines(self, doc: dict[str, Any]) -> list[dict[str, Any]]:
        items = (doc.get("item") or {}).get("items")
        if not isinstance(items, list) or not items:
            raise ValueError("You must enter at least one line item for this transaction.")
        lines = []
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict) or not (item.get("item") or {}).get("id"):
                raise ValueError(f"Please enter value(s) for: Item (line {number})")
            quantity = _decimal(item.get("quantity", 1), "quantity")
            rate = _decimal(item.get("rate", item.get("amount", 0)), "rate")
            amount = _decimal(item["amount"], "amount") if "amount" in item else quantity * rate
            lines.append({"line": number, "item": {"id": str(item["item"]["id"])},
                          "description": str(item.get("description") or ""), "quantity": str(quantity),
                          "rate": str(rate), "amount": str(amount)})
        return lines

    def _transaction(self, current: dict[str, Any] | None, body: dict[str, Any], allowed: tuple[str, ...]
                     ) -> dict[str, Any]:
        if current is not None and current.get("voided"):
            raise _Refused(wire.invalid("A voided transaction cannot be changed.", "USER_ERROR"))
        doc = self._base(current, body, allowed)
        self._subsidiary(doc)
        self._currency(doc)
        for key in ("tranDate", "dueDate"):
            if doc.get(key):
                doc[key] = _date(doc[key], key)
        doc.setdefault("tranDate", datetime.now(UTC).date().isoformat())
        doc.setdefault("voided", False)
        return doc

    def _merge_invoice(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        if current is not None and body.get("voided") and not current.get("voided"):
            if self._applied_to(current["id"]):
                raise _Refused(wire.invalid("This invoice cannot be voided: a payment or credit note is applied "
                                            "to it.", "USER_ERROR"))
        doc = self._transaction(current, body, ("entity", "subsidiary", "currency", "tranDate", "dueDate",
                                                "tranId", "memo", "item", "voided", "otherRefNum", "job"))
        self._entity(doc, "entity")
        if "item" in body or current is None:
            lines = self._lines(doc)
            doc["item"] = {"items": lines}
            tax = sum((Decimal(li["amount"]) for li in lines if li["item"]["id"] == self.tax_item_id), Decimal(0))
            total = sum((Decimal(li["amount"]) for li in lines), Decimal(0))
            doc.update(subtotal=str(total - tax), taxTotal=str(tax), total=str(total))
        if not doc.get("tranId"):
            doc["tranId"] = f"INV{self.store.next_number('netsuite:invoice-number'):05d}"
        doc["type"] = TRANSACTION_TYPES["invoice"]
        return doc

    def _applied(self, doc: dict[str, Any], *, limit_to: Decimal | None) -> list[dict[str, Any]]:
        """The ``apply`` sublist: each applied line must name an open invoice of the same customer."""
        items = (doc.get("apply") or {}).get("items") or []
        applied: list[dict[str, Any]] = []
        for item in items:
            if not isinstance(item, dict) or not item.get("apply"):
                continue
            doc_id = str((item.get("doc") or {}).get("id"))
            invoice = self.find("invoice", doc_id)
            if invoice is None or invoice.get("voided"):
                raise ValueError(f"Invalid value for field apply.doc: {doc_id!r}")
            customer = (doc.get("customer") or doc.get("entity") or {}).get("id")
            if invoice["entity"]["id"] != customer:
                raise ValueError(f"Invoice {doc_id} belongs to another customer")
            amount = _decimal(item.get("amount"), "apply.amount")
            remaining = Decimal(self._with_balance(invoice, excluding=doc.get("id"))["amountRemaining"])
            if amount <= 0 or amount > remaining:
                raise ValueError(f"The amount applied to invoice {doc_id} ({amount}) exceeds its amount remaining "
                                 f"({remaining})")
            applied.append({"doc": {"id": doc_id}, "apply": True, "amount": str(amount)})
        total = sum((Decimal(a["amount"]) for a in applied), Decimal(0))
        if limit_to is not None and total > limit_to:
            raise ValueError(f"The total applied ({total}) exceeds the amount ({limit_to})")
        return applied

    def _merge_customerPayment(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        doc = self._transaction(current, body, ("customer", "subsidiary", "currency", "tranDate", "payment",
                                                "memo", "apply", "account", "undepFunds", "voided"))
        self._entity(doc, "customer")
        doc["payment"] = str(_decimal(doc.get("payment"), "payment"))
        if Decimal(doc["payment"]) <= 0:
            raise ValueError("Invalid value for field payment: it must be positive")
        if "apply" in body or current is None:
            doc["apply"] = {"items": self._applied(doc, limit_to=Decimal(doc["payment"]))}
        applied = sum((Decimal(a["amount"]) for a in doc["apply"]["items"]), Decimal(0))
        doc.update(applied=str(applied), unapplied=str(Decimal(doc["payment"]) - applied))
        doc["type"] = TRANSACTION_TYPES["customerPayment"]
        if doc.get("voided"):
            doc["apply"] = {"items": []}
        return doc

    def _merge_creditMemo(self, current: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        doc = self._transaction(current, body, ("entity", "subsidiary", "currency", "tranDate", "memo", "item",
                                                "apply", "voided", "tranId"))
        self._entity(doc, "entity")
        if "item" in body or current is None:
            lines = self._lines(doc)
            doc["item"] = {"items": lines}
            doc["total"] = str(sum((Decimal(li["amount"]) for li in lines), Decimal(0)))
        if body.get("voided"):
            doc["apply"] = {"items": []}
        elif "apply" in body or current is None:
            doc["apply"] = {"items": self._applied(doc, limit_to=Decimal(doc["total"]))}
        applied = sum((Decimal(a["amount"]) for a in (doc.get("apply") or {}).get("items") or []), Decimal(0))
        doc.update(applied=str(applied), amountRemaining=str(Decimal(doc["total"]) - applied))
        status = "V" if doc.get("voided") else ("B" if Decimal(doc["amountRemaining"]) == 0 else "A")
        doc["status"] = {"id": status, "refName": CREDIT_STATUS[status]}
        doc["type"] = TRANSACTION_TYPES["creditMemo"]
        if not doc.get("tranId"):
            doc["tranId"] = f"CM{self.store.next_number('netsuite:credit-number'):05d}"
        return doc

    def payment_by_hand(self, invoice_id: str, amount: Decimal, *, tran_date: str | None, memo: str) -> Response:
        """A customer payment a person records against one invoice in the UI (no external ID)."""
        invoice = self.find("invoice", invoice_id)
        if invoice is None:
            return wire.not_found("invoice", invoice_id)
        body = {"customer": invoice["entity"], "subsidiary": invoice["subsidiary"], "currency": invoice["currency"],
                "payment": amount, "memo": memo, **({"tranDate": tran_date} if tran_date else {}),
                "apply": {"items": [{"doc": {"id": invoice_id}, "apply": True, "amount": amount}]}}
        try:
            doc = self._merge_customerPayment(None, body)
        except ValueError as exc:
            return wire.invalid(str(exc))
        return wire.json_response(self.save("customerPayment", doc), 201)

    # -- balances -------------------------------------------------------------------------------------
    def _applied_to(self, invoice_id: str, *, excluding: str | None = None) -> list[tuple[str, Decimal]]:
        found = []
        for kind in ("customerPayment", "creditMemo"):
            for doc in self.store.list(kind):
                if doc.get("voided") or doc.get("id") == excluding:
                    continue
                for item in (doc.get("apply") or {}).get("items") or []:
                    if item.get("apply") and item["doc"]["id"] == invoice_id:
                        found.append((kind, Decimal(item["amount"])))
        return found

    def _with_balance(self, invoice: dict[str, Any], *, excluding: str | None = None) -> dict[str, Any]:
        """The invoice with ``amountPaid``, ``amountRemaining`` and ``status`` from what is applied to it."""
        applied = self._applied_to(invoice["id"], excluding=excluding)
        paid = sum((a for kind, a in applied if kind == "customerPayment"), Decimal(0))
        credited = sum((a for kind, a in applied if kind == "creditMemo"), Decimal(0))
        total = Decimal(invoice.get("total") or 0)
        remaining = Decimal(0) if invoice.get("voided") else total - paid - credited
        status = "V" if invoice.get("voided") else ("B" if remaining == 0 else "A")
        return {**invoice, "amountPaid": str(paid), "amountRemaining": str(remaining),
                "status": {"id": status, "refName": INVOICE_STATUS[status]}}

    # -- SuiteQL ---------------------------------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        if table == "subsidiary":
            return [wire.columns(self.reference("subsidiary", s) or {}) for s in self.subsidiaries]
        if table == "currency":
            return [wire.columns(self.reference("currency", c) or {}) for c in self.currencies]
        if table == "transaction":
            docs = [self._with_balance(d) for d in self.store.list("invoice")]
            docs += self.store.list("customerPayment") + self.store.list("creditMemo")
            rows = []
            for doc in docs:
                row = wire.columns(doc)
                row.setdefault("entity", row.get("customer"))
                row["foreigntotal"] = row.get("total") or row.get("payment")
                rows.append(row)
            return rows
        kind = {"customer": "customer", "job": "job", "projecttask": "projectTask", "timebill": "timeBill"}.get(table)
        if kind is None:
            raise SuiteQLError(f"Unknown identifier '{table}': the table does not exist or is not supported")
        return [wire.columns(d) for d in self.store.list(kind)]

    async def suiteql(self, request: Request, body: Any) -> Response:
        if (request.headers.get("prefer") or "").strip().lower() != "transient":
            return wire.invalid("SuiteQL requests must carry the header Prefer: transient.", "INVALID_PARAMETER")
        if not isinstance(body, dict) or not isinstance(body.get("q"), str):
            return wire.invalid("The request body must be {\"q\": \"<query>\"}.", "INVALID_PARAMETER")
        try:
            limit = int(request.query_params.get("limit", SUITEQL_MAX_LIMIT))
            offset = int(request.query_params.get("offset", 0))
        except ValueError:
            return wire.invalid("limit and offset must be integers.", "INVALID_PARAMETER")
        if not 1 <= limit <= SUITEQL_MAX_LIMIT or offset < 0 or offset % limit:
            return wire.invalid(f"limit must be 1..{SUITEQL_MAX_LIMIT} and offset a multiple of limit.",
                                "INVALID_PARAMETER")
        try:
            query = parse(body["q"])
            found = query.run(self.rows(query.table))
        except SuiteQLError as exc:
            return wire.invalid(f"Invalid search query. Detailed unprocessed description follows. {exc}",
                                "INVALID_PARAMETER")
        page = found[offset:offset + limit]
        url = f"{str(request.base_url).rstrip('/')}/services/rest/query/v1/suiteql"
        links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
        has_more = offset + limit < len(found)
        if has_more:
            links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
        if offset:
            links.insert(0, {"rel": "previous", "href": f"{url}?limit={limit}&offset={max(0, offset - limit)}"})
        return wire.json_response({"links": links, "count": len(page), "hasMore": has_more,
                                   "items": [{"links": [], **row} for row in page], "offset": offset,
                                   "totalResults": len(found)})


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


__all__ = ["RECORD_TYPES", "Records", "SUITEQL_MAX_LIMIT", "TRANSACTION_TYPES", "now_text"]
