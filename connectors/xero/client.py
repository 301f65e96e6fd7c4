"""``XeroErp``: the ERP port over Xero's accounting and Projects APIs (a custom connection).

Every call carries ``xero-tenant-id`` (the legal entity's organisation) and a client-credentials
bearer token. Creates are made safe twice over: a look-up by our external reference first
(``ContactNumber``, invoice/credit-note/payment ``Reference``, the ``[code]`` prefix of a project
name, task names), then the write with Xero's ``Idempotency-Key`` (the port's key, suffixed per
sub-step when one port call makes several writes). Only canonical models and the connector error
tree leave this module.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import httpx

from canonical import Account, Contact, CreditNote, Invoice, Payment, Project, TimeEntry
from canonical.backfill import ErpBatchResult, ErpCustomerDraft
from canonical.books import BooksMapping, EntityBooks, LedgerCodes, MissingMapping
from canonical.keys import is_write_off
from canonical.matching import CustomerCandidate, account_domains, normalise_name
from canonical.reconciliation import ErpCreditNote, ErpPayment
from canonical.refs import ownership_marker
from connectors.errors import AuthFailed, ConnectorError, Rejected, Unmapped
from connectors.http import ClientCredentialsAuth, build_client, send
from connectors.identifiers import SAFE_ID, segment
from connectors.xero import mapping
from connectors.xero.spec import XeroSettings
from settings import Settings

VENDOR = "xero"


def _id(value: str | None) -> str:
    """A Xero record ID (a GUID, or an invoice number), quoted for a path; ``InvalidIdentifier`` otherwise."""
    return segment(value, "Xero ID", SAFE_ID, vendor=VENDOR)
ACCOUNTING_PATH = "/api.xro/2.0"
PROJECTS_PATH = "/projects.xro/2.0"
PAGE_SIZE = 100  # Xero's accounting page size
PROJECTS_PAGE_SIZE = 500  # the Projects API's maximum
MAX_PAGES = 1000  # a bound on every paging loop

P = ParamSpec("P")
R = TypeVar("R")


def _shape_safe(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """A response that is not the shape we expect becomes a ``ConnectorError``, never a KeyError."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ConnectorError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ConnectorError(f"unexpected Xero response in {fn.__name__}: {exc!r}", vendor=VENDOR) from exc

    return wrapper


def _error_message(response: httpx.Response) -> str:
    try:
        body = mapping.loads(response.content)
    except ValueError:
        body = None
    message = mapping.error_message(body, response.text[:500] or response.reason_phrase)
    problem = response.headers.get("X-Rate-Limit-Problem")
    return f"{message} ({problem} limit)" if response.status_code == 429 and problem else message


class XeroTokenAuth(ClientCredentialsAuth):
    """Client credentials at Xero's identity server; a refused client is ``AuthFailed``, not ``Rejected``
    (the identity server answers bad credentials with 400 ``invalid_client``)."""

    async def _fetch(self) -> str:
        try:
            return await super()._fetch()
        except Rejected as exc:
            if "invalid_client" in exc.message or "unauthorized_client" in exc.message:
                raise AuthFailed(f"token request refused: {exc.message}", vendor=self.vendor,
                                 status=exc.status) from exc
            raise


class XeroErp:
    """The :class:`connectors.ports.ErpPort` for Xero (plus ``list_invoices`` for reconciliation)."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, accounting_url: str, projects_url: str,
                 identity_url: str | None = None, books: BooksMapping | None = None,
                 tenant_entities: dict[str, str] | None = None,
                 token_client: httpx.AsyncClient | None = None, item_codes: Mapping[str, str] | None = None
                 ) -> None:
        self._client = client
        #: SKU -> Xero ItemCode, from the product catalogue (``canonical.catalogue``)
        self.item_codes = dict(item_codes or {})
        self._accounting = accounting_url.rstrip("/")
        self._projects = projects_url.rstrip("/")
        self._identity = (identity_url or "").rstrip("/")
        #: each legal entity's accounts and tax codes (``BOOKS_MAPPING``); every line posted is booked by it
        self.books = books or BooksMapping()
        self._entities = dict(tenant_entities or {})
        self._token_client = token_client

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    def _books(self, tenant_id: str) -> EntityBooks:
        """The books of the entity whose tenant this is (``Unmapped`` when the mapping has none)."""
        entity = self._entities.get(tenant_id)
        if entity is None:
            raise Unmapped(f"no legal entity keeps its books in tenant {tenant_id}", vendor=VENDOR)
        try:
            return self.books.of(entity)
        except MissingMapping as exc:
            raise Unmapped(str(exc), vendor=VENDOR) from exc

    # -- transport -------------------------------------------------------------------------------
    async def _call(self, method: str, url: str, *, tenant_id: str | None, body: Any = None,
                    params: dict[str, Any] | None = None, idempotency_key: str | None = None,
                    headers: dict[str, str] | None = None) -> Any:
        sent = {"Accept": "application/json", **(headers or {})}
        if tenant_id is not None:
            sent["xero-tenant-id"] = tenant_id
        if idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = mapping.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        response = await send(self._client, method, url, vendor=VENDOR, error_message=_error_message,
                              params=params, headers=sent, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return mapping.loads(response.content)
        except ValueError as exc:
            raise ConnectorError(f"{method} {url} answered {response.status_code} with a body that is not JSON",
                                 vendor=VENDOR, status=response.status_code) from exc

    def _acc(self, path: str) -> str:
        return f"{self._accounting}{path}"

    def _proj(self, path: str) -> str:
        return f"{self._projects}{path}"

    async def _first(self, tenant_id: str, collection: str, where: str) -> dict[str, Any] | None:
        body = await self._call("GET", self._acc(f"/{collection}"), tenant_id=tenant_id,
                                params={"where": where, "page": 1})
        items = body.get(collection) or []
        return items[0] if items else None

    # -- identity --------------------------------------------------------------------------------
    @_shape_safe
    async def list_tenants(self) -> dict[str, str]:
        """The organisations this connection may use: tenant ID -> organisation name."""
        body = await self._call("GET", f"{self._identity}/connections", tenant_id=None)
        return {c["tenantId"]: c.get("tenantName") or "" for c in body}

    # -- chart of accounts and tax rates ------------------------------------------------------------------
    @_shape_safe
    async def ledger_codes(self, tenant_id: str) -> LedgerCodes:
        """``GET Accounts`` (active) and ``GET TaxRates`` (active, usable on revenue): what the books may name."""
        accounts = await self._call("GET", self._acc("/Accounts"), tenant_id=tenant_id)
        rates = await self._call("GET", self._acc("/TaxRates"), tenant_id=tenant_id)
        return LedgerCodes(
            accounts=[str(a["Code"]) for a in accounts.get("Accounts") or []
                      if a.get("Code") and a.get("Status", "ACTIVE") == "ACTIVE"],
            tax_codes=[str(r["TaxType"]) for r in rates.get("TaxRates") or []
                       if r.get("Status", "ACTIVE") == "ACTIVE" and r.get("CanApplyToRevenue", True)])

    # -- customers -------------------------------------------------------------------------------
    async def _contact_by_reference(self, tenant_id: str, reference: str) -> dict[str, Any] | None:
        body = await self._call("GET", self._acc("/Contacts"), tenant_id=tenant_id, params={
            "where": f"ContactNumber=={mapping.where_string(reference)}", "includeArchived": "true", "page": 1})
        items = body.get("Contacts") or []
        return items[0] if items else None

    @_shape_safe
    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        """The contact whose ``ContactNumber`` is ``reference``, as a canonical account."""
        doc = await self._contact_by_reference(tenant_id, reference)
        return None if doc is None else mapping.account_from_xero(doc, Account(name=doc["Name"]))

    @_shape_safe
    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        """Find by ``ContactNumber == reference`` or create. On an existing contact the account's fields that
        are set and differ are written (the caller's ownership guard leaves out what it may not write); Xero's
        values come back."""
        email = contact.email if contact else None
        doc = await self._contact_by_reference(tenant_id, reference)
        if doc is None:
            body = mapping.contact_to_xero(mapping.account_fields(account), email=email, person=contact,
                                           reference=reference, marker=ownership_marker(idempotency_key))
            created = await self._call("PUT", self._acc("/Contacts"), tenant_id=tenant_id,
                                       body={"Contacts": [body]}, idempotency_key=idempotency_key)
            return mapping.account_from_xero(created["Contacts"][0], account)
        current = mapping.erp_account_fields(doc)
        changes = {k: v for k, v in mapping.account_fields(account).items() if v != current.get(k)}
        update = mapping.contact_to_xero(changes)
        if email and email != doc.get("EmailAddress"):
            update["EmailAddress"] = email
        if doc.get("ContactStatus") == "ARCHIVED":
            update["ContactStatus"] = "ACTIVE"  # provisioning again after a compensation archived it
        if update:
            contact_id = doc["ContactID"]
            saved = await self._call("POST", self._acc(f"/Contacts/{_id(contact_id)}"), tenant_id=tenant_id,
                                     body={"Contacts": [{"ContactID": contact_id, **update}]},
                                     idempotency_key=mapping.sub_key(idempotency_key, "update"))
            doc = saved["Contacts"][0]
        return mapping.account_from_xero(doc, account)

    @_shape_safe
    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        """One ``GET Contacts`` with ``ContactNumber=="a" OR ContactNumber=="b" ...`` (archived included)."""
        if not references:
            return {}
        where = " OR ".join(f"ContactNumber=={mapping.where_string(r)}" for r in references)
        found = await self._call("GET", self._acc("/Contacts"), tenant_id=tenant_id,
                                 params={"where": where, "includeArchived": "true", "page": 1})
        wanted = set(references)
        return {str(doc["ContactNumber"]): str(doc["ContactID"]) for doc in found.get("Contacts") or []
                if doc.get("ContactNumber") in wanted}

    @_shape_safe
    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        """Active contacts that may be ``account``: ``where=TaxNumber==…`` when it has one, then Xero's
        ``searchTerm`` (a case-insensitive search of Name, ContactNumber and EmailAddress) for its name's core
        and for each of its domains; one list, each contact once."""
        queries: list[dict[str, str]] = []
        if account.tax_number:
            queries.append({"where": f"TaxNumber=={mapping.where_string(account.tax_number)}"})
        core = normalise_name(account.name)
        if core:
            queries.append({"searchTerm": core})
        queries += [{"searchTerm": f"@{domain}"} for domain in sorted(account_domains(account, email))]
        found: dict[str, CustomerCandidate] = {}
        for query in queries:
            body = await self._call("GET", self._acc("/Contacts"), tenant_id=tenant_id, params={**query, "page": 1})
            for doc in body.get("Contacts") or []:
                if doc.get("ContactStatus", "ACTIVE") == "ACTIVE":
                    found.setdefault(str(doc["ContactID"]), mapping.candidate_from_xero(doc))
        return list(found.values())

    @_shape_safe
    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        """``ContactNumber`` = our reference on the contact finance keyed; its other fields stay as they are."""
        saved = await self._call("POST", self._acc(f"/Contacts/{_id(contact_id)}"), tenant_id=tenant_id,
                                 body={"Contacts": [{"ContactID": contact_id, "ContactNumber": reference}]},
                                 idempotency_key=mapping.sub_key(idempotency_key, "link"))
        doc = saved["Contacts"][0]
        return mapping.account_from_xero(doc, Account(name=doc.get("Name") or ""))

    @_shape_safe
    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        """One ``PUT Contacts`` with many elements (Xero saves all or none by default). Each carries its
        draft's ownership mark (``AccountNumber``), as a single create does."""
        if not drafts:
            return ErpBatchResult()
        body = [mapping.contact_to_xero(mapping.account_fields(d.account), email=d.contact.email if d.contact else None,
                                        person=d.contact, reference=d.reference,
                                        marker=d.marker)
                for d in drafts]
        created = await self._call("PUT", self._acc("/Contacts"), tenant_id=tenant_id, body={"Contacts": body},
                                   idempotency_key=idempotency_key)
        by_ref = {str(doc.get("ContactNumber")): str(doc["ContactID"]) for doc in created["Contacts"]}
        lost = [d.reference for d in drafts if d.reference not in by_ref]
        if lost:
            raise ConnectorError(f"Xero did not return contacts {lost[:3]}", vendor=VENDOR)
        return ErpBatchResult(contact_ids=[by_ref[d.reference] for d in drafts], created=len(drafts))

    @_shape_safe
    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        """Archive the contact (Xero never deletes contacts). Archiving twice is harmless."""
        await self._call("POST", self._acc(f"/Contacts/{_id(contact_id)}"), tenant_id=tenant_id,
                         body={"Contacts": [{"ContactID": contact_id, "ContactStatus": "ARCHIVED"}]})

    # -- projects --------------------------------------------------------------------------------
    async def _paged_items(self, url: str, tenant_id: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self._call("GET", url, tenant_id=tenant_id,
                                    params={**params, "page": page, "pageSize": PROJECTS_PAGE_SIZE})
            chunk = body.get("items") or []
            items += chunk
            page_count = (body.get("pagination") or {}).get("pageCount")
            if len(chunk) < PROJECTS_PAGE_SIZE or (page_count is not None and page >= page_count):
                break
        return items

    @_shape_safe
    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Find the contact's project whose name starts with ``[code]`` or create it; then create the
        tasks not already on it (by name). A retried call creates nothing twice."""
        prefix = mapping.code_prefix(project.code)
        existing = [p for p in await self._paged_items(self._proj("/Projects"), tenant_id,
                                                        {"contactID": project.erp_contact_id})
                    if str(p.get("name", "")).startswith(prefix)]
        if existing:
            project_id = existing[0]["projectId"]
        else:
            created = await self._call("POST", self._proj("/Projects"), tenant_id=tenant_id,
                                       body=mapping.project_to_xero(project, project.erp_contact_id),
                                       idempotency_key=mapping.sub_key(idempotency_key, "project"))
            project_id = created["projectId"]
        tasks = {t["name"]: t["taskId"] for t in
                 await self._paged_items(self._proj(f"/Projects/{_id(project_id)}/Tasks"), tenant_id, {})}
        done = []
        for task in project.tasks:
            task_id = tasks.get(task.name)
            if task_id is None:
                step = "task:" + hashlib.sha256(task.name.encode()).hexdigest()[:16]
                created_task = await self._call("POST", self._proj(f"/Projects/{_id(project_id)}/Tasks"),
                                                tenant_id=tenant_id, body=mapping.task_to_xero(task),
                                                idempotency_key=mapping.sub_key(idempotency_key, step))
                task_id = created_task["taskId"]
                tasks[task.name] = task_id
            done.append(task.model_copy(update={"erp_id": task_id}))
        return project.model_copy(update={"erp_id": project_id, "erp_tenant_id": tenant_id, "tasks": done})

    @_shape_safe
    async def close_project(self, tenant_id: str, project_id: str) -> None:
        await self._call("PATCH", self._proj(f"/Projects/{_id(project_id)}"), tenant_id=tenant_id,
                         body={"status": "CLOSED"})

    @_shape_safe
    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        """The project with its estimate (our budget), deadline and tasks as Xero holds them now."""
        doc = await self._call("GET", self._proj(f"/Projects/{_id(project_id)}"), tenant_id=tenant_id)
        tasks = await self._paged_items(self._proj(f"/Projects/{_id(project_id)}/Tasks"), tenant_id, {})
        return mapping.project_from_xero(doc, tasks, tenant_id=tenant_id)

    @_shape_safe
    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """``PUT /Projects/{id}`` with the estimate and deadline (the name stays as Xero has it), then each
        task by name: ``PUT .../Tasks/{taskId}`` when its rate, charge type or estimate differs, ``POST``
        when missing. Tasks no longer wanted are left alone (time may be booked on them)."""
        if not project.erp_id:
            raise Rejected(f"project {project.code} has no Xero project ID", vendor=VENDOR)
        held_doc = await self._call("GET", self._proj(f"/Projects/{_id(project.erp_id)}"), tenant_id=tenant_id)
        current = mapping.project_from_xero(
            held_doc, await self._paged_items(self._proj(f"/Projects/{_id(project.erp_id)}/Tasks"), tenant_id, {}),
            tenant_id=tenant_id)
        body: dict[str, Any] = {"name": held_doc["name"], "estimateAmount": project.budget.amount}
        if project.deadline is not None:
            body["deadlineUtc"] = mapping.utc_midnight(project.deadline)
        if current.budget.amount != project.budget.amount or current.deadline != project.deadline:
            await self._call("PUT", self._proj(f"/Projects/{_id(project.erp_id)}"), tenant_id=tenant_id, body=body,
                             idempotency_key=mapping.sub_key(idempotency_key, "project"))
        held = {t.name: t for t in current.tasks}
        for task in project.tasks:
            step = hashlib.sha256(task.name.encode()).hexdigest()[:16]
            existing = held.get(task.name)
            if existing is None:
                await self._call("POST", self._proj(f"/Projects/{_id(project.erp_id)}/Tasks"), tenant_id=tenant_id,
                                 body=mapping.task_to_xero(task),
                                 idempotency_key=mapping.sub_key(idempotency_key, f"task:{step}"))
            elif mapping.task_differs(task, existing):
                await self._call("PUT", self._proj(f"/Projects/{_id(project.erp_id)}/Tasks/{_id(existing.erp_id)}"),
                                 tenant_id=tenant_id, body=mapping.task_to_xero(task),
                                 idempotency_key=mapping.sub_key(idempotency_key, f"task-update:{step}"))
        return await self.get_project(tenant_id, project.erp_id)

    @_shape_safe
    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        """Time entries carry no reference to look up, so the ``Idempotency-Key`` alone dedupes them."""
        created = await self._call("POST", self._proj(f"/Projects/{_id(project_id)}/Time"), tenant_id=tenant_id,
                                   body=mapping.time_entry_to_xero(entry), idempotency_key=idempotency_key)
        return entry.model_copy(update={"erp_id": created["timeEntryId"]})

    @_shape_safe
    async def accepted_milestones(self, tenant_id: str, project_id: str) -> list[str]:
        """Milestone codes of the project's fixed-price tasks a person locked (accepted) or invoiced in Xero."""
        docs = await self._paged_items(self._proj(f"/Projects/{_id(project_id)}/Tasks"), tenant_id,
                                       {"chargeType": "FIXED"})
        return [code for code in (mapping.accepted_milestone(d) for d in docs) if code]

    @_shape_safe
    async def time_entries(self, tenant_id: str, project_id: str) -> list[TimeEntry]:
        """Every time entry of the project (``GET /Projects/{id}/Time``, all pages), with Xero's status."""
        docs = await self._paged_items(self._proj(f"/Projects/{_id(project_id)}/Time"), tenant_id, {})
        return [mapping.time_entry_from_xero(d) for d in docs]

    # -- receivables -----------------------------------------------------------------------------
    async def _invoice_by_reference(self, tenant_id: str, billing_id: str) -> dict[str, Any] | None:
        # A voided document no longer stands for the billing invoice: a corrected one may be posted after it.
        return await self._first(tenant_id, "Invoices", f'Type=="ACCREC" AND Reference=='
                                 f'{mapping.where_string(billing_id)} AND Status!="DELETED" AND Status!="VOIDED"')

    @_shape_safe
    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        """An AUTHORISED ACCREC invoice with ``Reference`` = the billing invoice ID (found first if posted)."""
        if not invoice.lines_complete:
            raise Rejected(f"invoice {invoice.billing_id} carries only its first lines; read it whole first",
                           vendor=VENDOR)
        found = await self._invoice_by_reference(tenant_id, invoice.billing_id)
        if found is not None:
            return str(found["InvoiceID"])
        try:
            body = mapping.invoice_to_xero(invoice, contact_id=erp_contact_id, books=self._books(tenant_id))
        except MissingMapping as exc:
            raise Unmapped(f"invoice {invoice.billing_id}: {exc}", vendor=VENDOR) from exc
        mapping.add_item_codes(body, invoice, self.item_codes)
        created = await self._call("PUT", self._acc("/Invoices"), tenant_id=tenant_id,
                                   body={"Invoices": [body]}, idempotency_key=idempotency_key)
        return str(created["Invoices"][0]["InvoiceID"])

    @_shape_safe
    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        """A payment into the bank account against the invoice; ``Reference`` = the billing payment ID."""
        if payment.billing_id:
            found = await self._first(tenant_id, "Payments", f"Reference=={mapping.where_string(payment.billing_id)}"
                                      f' AND Invoice.InvoiceID==Guid("{erp_invoice_id}") AND Status!="DELETED"')
            if found is not None:
                return str(found["PaymentID"])
        try:
            bank = self._books(tenant_id).bank_account(payment.amount.currency)
        except MissingMapping as exc:
            raise Unmapped(f"payment {payment.billing_id}: {exc}", vendor=VENDOR) from exc
        body = mapping.payment_to_xero(payment, invoice_id=erp_invoice_id, bank_account_code=bank)
        created = await self._call("PUT", self._acc("/Payments"), tenant_id=tenant_id,
                                   body={"Payments": [body]}, idempotency_key=idempotency_key)
        return str(created["Payments"][0]["PaymentID"])

    @_shape_safe
    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        """An AUTHORISED ACCRECCREDIT (``Reference`` = billing credit note ID) reversing the credited invoice's
        lines as they were booked (net and tax, same tax types and accounts; a write-off's net to the bad-debt
        account), allocated to that invoice while it still has an amount due, unless billing issued it after
        payment (``before_payment is False``: it may arrive before the payment it followed). The credited
        invoice must be posted first (``Rejected`` until it is)."""
        doc = await self._first(tenant_id, "CreditNotes", 'Type=="ACCRECCREDIT" AND Reference=='
                                f'{mapping.where_string(credit_note.billing_id)} AND Status!="DELETED"')
        invoice = await self._invoice_by_reference(tenant_id, credit_note.invoice_billing_id)
        if doc is None:
            if invoice is None:
                raise Rejected(f"credit note {credit_note.billing_id}: the invoice it credits "
                               f"({credit_note.invoice_billing_id}) is not posted", vendor=VENDOR)
            write_off = is_write_off(credit_note.billing_id)
            bad_debt = self._books(tenant_id).bad_debt_account if write_off else None
            body = mapping.credit_note_to_xero(credit_note, contact_id=erp_contact_id,
                                               credited=mapping.postings_from_xero(invoice),
                                               bad_debt_account=bad_debt)
            created = await self._call("PUT", self._acc("/CreditNotes"), tenant_id=tenant_id,
                                       body={"CreditNotes": [body]},
                                       idempotency_key=mapping.sub_key(idempotency_key, "credit-note"))
            doc = created["CreditNotes"][0]
        credit_note_id = str(doc["CreditNoteID"])
        if credit_note.before_payment is False:
            return credit_note_id  # issued after payment: a credit balance or refund, never the invoice's due
        if invoice is None or invoice.get("Status") != "AUTHORISED":
            return credit_note_id
        already = any(str((a.get("Invoice") or {}).get("InvoiceID")) == str(invoice["InvoiceID"])
                      for a in doc.get("Allocations") or [])
        amount = min(Decimal(str(doc.get("RemainingCredit") or 0)), Decimal(str(invoice.get("AmountDue") or 0)))
        if not already and amount > 0 and doc.get("Status") == "AUTHORISED":
            on = (credit_note.issued_at.astimezone(UTC).date() if credit_note.issued_at
                  else mapping.document_date(doc, "Date") or datetime.now(UTC).date())
            await self._call("PUT", self._acc(f"/CreditNotes/{_id(credit_note_id)}/Allocations"), tenant_id=tenant_id,
                             body={"Allocations": [mapping.allocation_to_xero(str(invoice["InvoiceID"]), amount, on)]},
                             idempotency_key=mapping.sub_key(idempotency_key, "allocation"))
        return credit_note_id

    @_shape_safe
    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        """Delete the allocations of the ACCRECCREDIT posted for the billing credit note (``Reference``), then
        void it; the invoice it was allocated to owes that amount again. Never posted or already voided is
        success."""
        doc = await self._first(tenant_id, "CreditNotes", 'Type=="ACCRECCREDIT" AND Reference=='
                                f'{mapping.where_string(credit_note.billing_id)} AND Status!="DELETED"')
        if doc is None or doc.get("Status") == "VOIDED":
            return
        credit_note_id = str(doc["CreditNoteID"])
        for allocation in doc.get("Allocations") or []:
            allocation_id = allocation.get("AllocationID")
            if allocation_id:
                await self._call("DELETE", self._acc(f"/CreditNotes/{_id(credit_note_id)}/Allocations/"
                                                     f"{_id(str(allocation_id))}"), tenant_id=tenant_id,
                                 idempotency_key=mapping.sub_key(idempotency_key, f"unallocate-{allocation_id}"))
        await self._call("POST", self._acc(f"/CreditNotes/{_id(credit_note_id)}"), tenant_id=tenant_id,
                         body={"CreditNotes": [{"CreditNoteID": credit_note_id, "Status": "VOIDED"}]},
                         idempotency_key=mapping.sub_key(idempotency_key, "void"))

    @_shape_safe
    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        """Void an AUTHORISED invoice (the billing invoice was voided). Already voided is success; one
        with payments or credit allocated is refused by Xero (``Rejected``)."""
        body = await self._call("GET", self._acc(f"/Invoices/{_id(erp_invoice_id)}"), tenant_id=tenant_id)
        current = (body.get("Invoices") or [{}])[0]
        if current.get("Status") in ("VOIDED", "DELETED"):
            return
        status = "DELETED" if current.get("Status") in ("DRAFT", "SUBMITTED") else "VOIDED"
        await self._call("POST", self._acc(f"/Invoices/{_id(erp_invoice_id)}"), tenant_id=tenant_id,
                         body={"Invoices": [{"InvoiceID": erp_invoice_id, "Status": status}]},
                         idempotency_key=idempotency_key)

    @_shape_safe
    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        """The tenant's projects; ``code`` is the ``[code]`` prefix of the name ("" when it has none)."""
        params = {} if include_closed else {"states": "INPROGRESS"}
        return [mapping.project_from_xero(doc, [], tenant_id=tenant_id)
                for doc in await self._paged_items(self._proj("/Projects"), tenant_id, params)]

    @_shape_safe
    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        """Every ACCREC invoice of the tenant (modified since a moment, if given), page by page."""
        headers = {}
        if modified_since is not None:
            moment = modified_since if modified_since.tzinfo else modified_since.replace(tzinfo=UTC)
            headers["If-Modified-Since"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        entity = self._entities.get(tenant_id)
        invoices: list[Invoice] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self._call("GET", self._acc("/Invoices"), tenant_id=tenant_id, headers=headers,
                                    params={"where": 'Type=="ACCREC"', "page": page})
            chunk = body.get("Invoices") or []
            invoices += [mapping.invoice_from_xero(doc, legal_entity=entity) for doc in chunk]
            page_count = (body.get("pagination") or {}).get("pageCount")
            if len(chunk) < PAGE_SIZE or (page_count is not None and page >= page_count):
                break
        return invoices

    # -- reconciliation: one page at a time, so the caller paces and checkpoints ----------------------
    # The change feed's cursor is Xero's 1-based page number as text; the port sees only an opaque string.
    async def _accounting_page(self, tenant_id: str, collection: str, cursor: str | None, *, where: str | None,
                               modified_since: datetime | None) -> tuple[list[dict[str, Any]], str | None]:
        page = _page_of(cursor)
        headers = {}
        if modified_since is not None:
            moment = modified_since if modified_since.tzinfo else modified_since.replace(tzinfo=UTC)
            headers["If-Modified-Since"] = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params: dict[str, Any] = {"page": page}
        if where:
            params["where"] = where
        body = await self._call("GET", self._acc(f"/{collection}"), tenant_id=tenant_id, headers=headers,
                                params=params)
        chunk = body.get(collection) or []
        page_count = (body.get("pagination") or {}).get("pageCount")
        more = len(chunk) >= PAGE_SIZE and (page_count is None or page < page_count)
        return chunk, (str(page + 1) if more else None)

    @_shape_safe
    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        """One page of ACCREC invoices, changed since a moment if given (``If-Modified-Since``), and the
        cursor of the next page (``None`` at the end)."""
        chunk, following = await self._accounting_page(tenant_id, "Invoices", cursor, where='Type=="ACCREC"',
                                                       modified_since=modified_since)
        entity = self._entities.get(tenant_id)
        return [mapping.invoice_from_xero(doc, legal_entity=entity) for doc in chunk], following

    @_shape_safe
    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        """One page of receivable payments (``Reference`` = the billing payment they record)."""
        chunk, following = await self._accounting_page(tenant_id, "Payments", cursor,
                                                       where='PaymentType=="ACCRECPAYMENT"',
                                                       modified_since=modified_since)
        return [mapping.payment_from_xero(doc) for doc in chunk], following

    @_shape_safe
    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        """One page of receivable credit notes with the invoices they are allocated to."""
        chunk, following = await self._accounting_page(tenant_id, "CreditNotes", cursor,
                                                       where='Type=="ACCRECCREDIT"', modified_since=modified_since)
        return [mapping.credit_note_from_xero(doc) for doc in chunk], following


def _page_of(cursor: str | None) -> int:
    """Xero's page number behind a change-feed cursor (``None``: the first page)."""
    if cursor is None:
        return 1
    if not cursor.isdigit() or int(cursor) < 1:
        raise Rejected(f"not a cursor of this feed: {cursor!r}", vendor=VENDOR)
    return int(cursor)


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  accounting_url: str | None = None, projects_url: str | None = None,
                  timeout: float | None = None, config: XeroSettings | None = None) -> XeroErp:
    """The adapter for ``settings`` (``xero_base_url`` serves both APIs; ``accounting_url`` and
    ``projects_url`` override one, e.g. to route through a validating proxy)."""
    config = config or XeroSettings.of(settings)
    base = config.base_url.rstrip("/")
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    token_client = build_client(base_url=base, transport=transport)
    auth = XeroTokenAuth(token_url=config.token_endpoint, client_id=config.client_id,
                         client_secret=config.client_secret, vendor=VENDOR, token_client=token_client)
    client = build_client(base_url=base, auth=auth, transport=transport, timeout=timeout)
    return XeroErp(
        client,
        accounting_url=accounting_url or f"{base}{ACCOUNTING_PATH}",
        projects_url=projects_url or f"{base}{PROJECTS_PATH}",
        identity_url=base,
        books=settings.books_mapping,
        tenant_entities={e.erp_tenant_id: e.code for e in settings.legal_entities},
        token_client=token_client,
        item_codes={sku: item.erp_item_code for sku, item in settings.product_catalogue().items.items()
                    if item.erp_item_code},
    )


__all__ = ["XeroErp", "XeroTokenAuth", "from_settings"]
