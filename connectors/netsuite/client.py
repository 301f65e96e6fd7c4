"""``NetSuiteErp``: the ERP port over NetSuite's REST record API v1 and SuiteQL, signed with Token-Based
Authentication (:mod:`connectors.netsuite.tba`) or carrying an OAuth 2.0 machine-to-machine bearer token
(:mod:`connectors.netsuite.oauth2`, ``NETSUITE_AUTH=oauth2``); ``tenant_id`` is the legal entity's subsidiary.

Creates are upserts by external ID (``PUT /record/v1/<type>/eid:<our reference>``), found first by that external
ID, so a retried call writes nothing twice. Look-ups, lists and the reconciliation feeds are SuiteQL
(``Prefer: transient``, ``limit``/``offset``, ``hasMore``) on ``lastModifiedDate``, then each record read whole.
Requests are paced per account (:class:`connectors.pacing.Pacer`) and held under the account's concurrency
limit; NetSuite's ``o:errorDetails`` become the connector error tree. Only canonical models leave this module.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

import httpx

from canonical import Account, Contact, CreditNote, Invoice, Payment, Project, TimeEntry
from canonical.backfill import ErpBatchResult, ErpCustomerDraft
from canonical.matching import CustomerCandidate, account_domains, email_domain, normalise_name
from canonical.reconciliation import ErpCreditNote, ErpPayment
from canonical.refs import ownership_marker
from connectors.errors import Conflict, ConnectorError, NotFound, RateLimited, Rejected
from connectors.http import build_client, send
from connectors.identifiers import NUMERIC_ID, SAFE_ID, checked_id
from connectors.netsuite import mapping
from connectors.netsuite.oauth2 import ClientCredentialsGrant, OAuth2Auth
from connectors.netsuite.spec import NetSuiteSettings
from connectors.netsuite.tba import TbaAuth
from connectors.pacing import Pacer
from settings import Settings

VENDOR = "netsuite"
RECORDS = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
PAGE_SIZE = 100
MAX_PAGES = 1000
CONCURRENCY_RETRY_AFTER = 1.0  # NetSuite's 429 says no Retry-After
_NOT_FOUND = {"NONEXISTENT_ID", "RCRD_DSNT_EXIST", "INVALID_KEY_OR_REF"}
_CONFLICT = {"DUP_RCRD", "RCRD_HAS_BEEN_CHANGED", "DUP_ENTITY"}

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
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise ConnectorError(f"unexpected NetSuite response in {fn.__name__}: {exc!r}", vendor=VENDOR) from exc

    return wrapper


def _error_message(response: httpx.Response) -> str:
    try:
        body = mapping.loads(response.content)
    except ValueError:
        body = None
    code, detail = mapping.error_details(body)
    return f"{code}: {detail}" if code else (detail or response.text[:300])


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    return CONCURRENCY_RETRY_AFTER if response.status_code == 429 else None


def _internal_id(value: str | None) -> str | None:
    """A NetSuite internal ID (digits) or ``None``: no record can have any other ID."""
    return value if isinstance(value, str) and NUMERIC_ID.fullmatch(value) else None


class NetSuiteErp:
    """The :class:`connectors.ports.ErpPort` and :class:`connectors.ports.ErpChangeFeed` for NetSuite."""

    vendor = VENDOR

    def __init__(self, client: httpx.AsyncClient, *, config: NetSuiteSettings,
                 tenant_entities: dict[str, str] | None = None, tenant_currencies: dict[str, str] | None = None,
                 pacer: Pacer | None = None, page_size: int = PAGE_SIZE,
                 token_client: httpx.AsyncClient | None = None) -> None:
        self._client = client
        self._token_client = token_client  # the OAuth 2.0 grant's own client, closed with ours
        self.page_size = page_size
        self.config = config
        self._entities = dict(tenant_entities or {})
        #: subsidiary -> its functional currency (a new customer's currency)
        self._tenant_currencies = {config.subsidiary_id: config.base_currency, **(tenant_currencies or {})}
        self._pacer = pacer or Pacer(config.requests_per_second)
        self._slots = asyncio.Semaphore(config.concurrency)
        self._currency_ids = {code.upper(): str(cid) for code, cid in config.currency_ids.items()}
        self._currency_codes = {cid: code for code, cid in self._currency_ids.items()}
        self._terms_days = {str(tid): days for days, tid in config.terms_ids.items()}

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._token_client is not None:
            await self._token_client.aclose()

    # -- transport ---------------------------------------------------------------------------------------
    async def _call(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
                    headers: dict[str, str] | None = None) -> httpx.Response:
        sent = {"Accept": "application/json", **(headers or {})}
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = mapping.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        await self._pacer.take()
        async with self._slots:
            try:
                return await send(self._client, method, path, vendor=VENDOR, error_message=_error_message,
                                  retry_after=_retry_after, params=params, headers=sent, **kwargs)
            except ConnectorError as exc:
                translated = self._translated(exc)
                if translated is exc:  # never raise an error "from" itself: its cause chain would loop
                    raise
                raise translated from exc

    @staticmethod
    def _translated(exc: ConnectorError) -> ConnectorError:
        code = exc.message.split(":", 1)[0]
        if isinstance(exc, RateLimited):
            return exc
        if code in _NOT_FOUND and not isinstance(exc, NotFound):
            return NotFound(exc.message, vendor=VENDOR, status=exc.status)
        if code in _CONFLICT and not isinstance(exc, Conflict):
            return Conflict(exc.message, vendor=VENDOR, status=exc.status)
        return exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return mapping.loads(response.content)
        except ValueError as exc:
            raise ConnectorError(f"{method} {path} answered with a body that is not JSON", vendor=VENDOR,
                                 status=response.status_code) from exc

    async def _get(self, record_type: str, record_id: str) -> dict[str, Any]:
        doc = await self._json("GET", f"{RECORDS}/{record_type}/{quote(record_id, safe='')}")
        return dict(doc)

    async def _by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        eid = checked_id(external_id, "NetSuite external ID", mapping.EXTERNAL_ID, vendor=VENDOR)
        try:
            return dict(await self._json("GET", f"{RECORDS}/{record_type}/eid:{eid}"))
        except NotFound:
            return None

    async def _upsert(self, record_type: str, external_id: str, body: dict[str, Any]) -> str:
        """``PUT .../eid:{externalId}``: create or update; the internal ID from ``Location``."""
        eid = checked_id(external_id, "NetSuite external ID", mapping.EXTERNAL_ID, vendor=VENDOR)
        response = await self._call("PUT", f"{RECORDS}/{record_type}/eid:{eid}", body=body)
        return self._location_id(response)

    async def _patch(self, record_type: str, record_id: str, body: dict[str, Any]) -> None:
        await self._call("PATCH", f"{RECORDS}/{record_type}/{quote(record_id, safe='')}", body=body)

    @staticmethod
    def _location_id(response: httpx.Response) -> str:
        location = response.headers.get("Location", "")
        record_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not NUMERIC_ID.fullmatch(record_id):
            raise ConnectorError(f"NetSuite answered without the record's location ({location!r})", vendor=VENDOR)
        return record_id

    async def suiteql_page(self, query: str, *, offset: int = 0) -> tuple[list[dict[str, Any]], bool]:
        """One page of a SuiteQL query: its rows and whether more follow (``hasMore``)."""
        body = await self._json("POST", SUITEQL, body={"q": query},
                                params={"limit": self.page_size, "offset": offset},
                                headers={"Prefer": "transient"})
        return [dict(i) for i in body.get("items") or []], bool(body.get("hasMore"))

    async def suiteql(self, query: str) -> list[dict[str, Any]]:
        """Every row of a SuiteQL query, page after page."""
        rows: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            chunk, more = await self.suiteql_page(query, offset=page * self.page_size)
            rows += chunk
            if not more:
                break
        return rows

    def _currency_id(self, code: str) -> str:
        found = self._currency_ids.get(code.upper())
        if found is None:
            raise Rejected(f"no NetSuite currency is configured for {code} (NETSUITE_CURRENCY_IDS)", vendor=VENDOR)
        return found

    def _currency_of(self, doc: dict[str, Any]) -> str:
        cid = mapping.ref_id(doc, "currency")
        code = self._currency_codes.get(cid)
        if code is None:
            raise ConnectorError(f"NetSuite currency {cid!r} is not in NETSUITE_CURRENCY_IDS", vendor=VENDOR)
        return code

    @staticmethod
    def _subsidiary(tenant_id: str) -> str:
        return checked_id(tenant_id, "subsidiary", SAFE_ID, vendor=VENDOR)

    # -- look-ups ------------------------------------------------------------------------------------------
    @_shape_safe
    async def get_subsidiary(self, subsidiary_id: str) -> dict[str, Any]:
        """The subsidiary record (name, currency)."""
        return await self._get("subsidiary", self._subsidiary(subsidiary_id))

    @_shape_safe
    async def currencies(self) -> dict[str, str]:
        """The account's currencies: internal ID -> symbol (ISO code)."""
        return {str(r["id"]): str(r.get("symbol")) for r in await self.suiteql("SELECT id, symbol FROM currency")}

    # -- customers -----------------------------------------------------------------------------------------
    @_shape_safe
    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        doc = await self._by_external_id("customer", reference)
        if doc is None or mapping.ref_id(doc, "subsidiary") != self._subsidiary(tenant_id):
            return None
        return mapping.account_from_netsuite(doc, Account(name=doc.get("companyName") or reference), self._terms_days)

    @_shape_safe
    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        """Find by ``externalId == reference`` or create (``PUT eid:``); on an existing customer only the set
        fields that differ are written, and an inactive one is made active again."""
        subsidiary = self._subsidiary(tenant_id)
        email = contact.email if contact else None
        doc = await self._by_external_id("customer", reference)
        if doc is not None and mapping.ref_id(doc, "subsidiary") != subsidiary:
            raise Conflict(f"customer {reference} belongs to another subsidiary", vendor=VENDOR)
        if doc is None:
            body = mapping.customer_to_netsuite(
                mapping.account_fields(account), subsidiary=subsidiary, email=email, terms_ids=self.config.terms_ids,
                currency_id=self._currency_ids.get(self._entity_currency(tenant_id) or ""),
                marker=ownership_marker(idempotency_key))
            record_id = await self._upsert("customer", reference, body)
        else:
            record_id = str(doc["id"])
            current = mapping.erp_account_fields(doc, self._terms_days)
            changes = {k: v for k, v in mapping.account_fields(account).items() if v != current.get(k)}
            update = mapping.customer_to_netsuite(changes, terms_ids=self.config.terms_ids)
            if email and email != doc.get("email"):
                update["email"] = email
            if doc.get("isInactive"):
                update["isInactive"] = False
            if update:
                await self._patch("customer", record_id, update)
        saved = await self._get("customer", record_id)
        return mapping.account_from_netsuite(saved, account, self._terms_days)

    def _entity_currency(self, tenant_id: str) -> str | None:
        return self._tenant_currencies.get(tenant_id)

    @_shape_safe
    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        """One SuiteQL query: ``externalid IN (...)`` in the subsidiary."""
        if not references:
            return {}
        listed = ", ".join(mapping.suiteql_text(r) for r in references)
        rows = await self.suiteql(f"SELECT id, externalid FROM customer WHERE subsidiary = "
                                  f"{mapping.suiteql_text(self._subsidiary(tenant_id))} AND externalid IN ({listed})")
        wanted = set(references)
        return {str(r["externalid"]): str(r["id"]) for r in rows if r.get("externalid") in wanted}

    @_shape_safe
    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        """The subsidiary's customers whose company name holds the account's name core or whose email is at one of
        its domains (one SuiteQL query; the narrowing is ours)."""
        core = normalise_name(account.name)
        domains = account_domains(account, email)
        rows = await self.suiteql(f"SELECT id, companyname, email, externalid FROM customer WHERE subsidiary = "
                                  f"{mapping.suiteql_text(self._subsidiary(tenant_id))}")
        found = []
        for row in rows:
            name, mail = str(row.get("companyname") or ""), row.get("email") or None
            if (core and core in normalise_name(name)) or (email_domain(mail) in domains):
                found.append(CustomerCandidate(record_id=str(row["id"]), name=name, email=mail,
                                               reference=row.get("externalid") or None))
        return found

    @_shape_safe
    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        """Our reference as the customer's ``externalId``; nothing else of it changes."""
        await self._patch("customer", contact_id, {"externalId": reference})
        saved = await self._get("customer", contact_id)
        return mapping.account_from_netsuite(saved, Account(name=saved.get("companyName") or reference),
                                             self._terms_days)

    @_shape_safe
    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        """One upsert per draft (NetSuite's REST API has no batch create); the upserts by external ID make a
        repeated batch write nothing twice."""
        subsidiary = self._subsidiary(tenant_id)
        ids: list[str] = []
        created = 0
        for draft in drafts:
            found = await self._by_external_id("customer", draft.reference)
            if found is not None:
                ids.append(str(found["id"]))
                continue
            body = mapping.customer_to_netsuite(
                mapping.account_fields(draft.account), subsidiary=subsidiary, terms_ids=self.config.terms_ids,
                email=draft.contact.email if draft.contact else None, marker=draft.marker,
                currency_id=self._currency_ids.get(self._entity_currency(tenant_id) or ""))
            ids.append(await self._upsert("customer", draft.reference, body))
            created += 1
        return ErpBatchResult(contact_ids=ids, created=created)

    @_shape_safe
    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        """Make the customer inactive (NetSuite keeps customers with transactions). Twice is harmless."""
        record_id = _internal_id(contact_id)
        if record_id is None:
            raise NotFound(f"no customer {contact_id!r}", vendor=VENDOR)
        await self._patch("customer", record_id, {"isInactive": True})

    # -- projects --------------------------------------------------------------------------------------------
    async def _tasks(self, job_id: str) -> list[dict[str, Any]]:
        rows = await self.suiteql(f"SELECT id FROM projecttask WHERE company = {mapping.suiteql_text(job_id)} "
                                  "ORDER BY id")
        return [await self._get("projectTask", str(r["id"])) for r in rows]

    @_shape_safe
    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Upsert the project (``job``, external ID = our code) unless it exists, then its missing tasks (by
        name, external ID = code + name digest)."""
        subsidiary = self._subsidiary(tenant_id)
        job = await self._by_external_id("job", project.code)
        if job is None:
            body = mapping.project_to_netsuite(project, customer_id=project.erp_contact_id, subsidiary=subsidiary,
                                               currency_id=self._currency_id(project.budget.currency))
            job_id = await self._upsert("job", project.code, body)
        else:
            job_id = str(job["id"])
        held = {str(t["title"]): str(t["id"]) for t in await self._tasks(job_id)}
        done = []
        for task in project.tasks:
            task_id = held.get(task.name)
            if task_id is None:
                task_id = await self._upsert("projectTask", mapping.task_external_id(project.code, task.name),
                                             mapping.task_to_netsuite(task, job_id))
                held[task.name] = task_id
            done.append(task.model_copy(update={"erp_id": task_id}))
        return project.model_copy(update={"erp_id": job_id, "erp_tenant_id": tenant_id, "tasks": done})

    @_shape_safe
    async def close_project(self, tenant_id: str, project_id: str) -> None:
        record_id = _internal_id(project_id)
        if record_id is None:
            raise NotFound(f"no project {project_id!r}", vendor=VENDOR)
        await self._patch("job", record_id, {"entityStatus": {"id": mapping.CLOSED}})

    @_shape_safe
    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        record_id = _internal_id(project_id)
        if record_id is None:
            raise NotFound(f"no project {project_id!r}", vendor=VENDOR)
        doc = await self._get("job", record_id)
        return mapping.project_from_netsuite(doc, await self._tasks(record_id), tenant_id=tenant_id,
                                             currency=self._currency_of(doc))

    @_shape_safe
    async def accepted_milestones(self, tenant_id: str, project_id: str) -> list[str]:
        """Milestone codes of the job's fixed-price tasks a person marked Completed."""
        record_id = _internal_id(project_id)
        if record_id is None:
            raise NotFound(f"no project {project_id!r}", vendor=VENDOR)
        await self._get("job", record_id)
        return [code for code in (mapping.accepted_milestone(t) for t in await self._tasks(record_id)) if code]

    @_shape_safe
    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Name, budget and deadline; tasks updated by name and missing ones added."""
        if not project.erp_id:
            raise Rejected(f"project {project.code} has no NetSuite ID", vendor=VENDOR)
        current = await self.get_project(tenant_id, project.erp_id)
        body = {"companyName": project.name[:83] or project.code, "jobPrice": mapping.amount(project.budget),
                **({"projectedEndDate": project.deadline.isoformat()} if project.deadline else {})}
        await self._patch("job", project.erp_id, body)
        held = {t.name: t for t in current.tasks}
        for task in project.tasks:
            existing = held.get(task.name)
            if existing is None:
                await self._upsert("projectTask", mapping.task_external_id(project.code, task.name),
                                   mapping.task_to_netsuite(task, project.erp_id))
            elif existing.erp_id and mapping.task_differs(task, existing):
                update = mapping.task_to_netsuite(task, project.erp_id)
                update.pop("company", None)
                await self._patch("projectTask", existing.erp_id, update)
        return await self.get_project(tenant_id, project.erp_id)

    @_shape_safe
    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        """A ``timeBill`` on the project task; its external ID is the port's key (digested), so a retry
        records the hours once."""
        record_id = _internal_id(project_id)
        if record_id is None:
            raise NotFound(f"no project {project_id!r}", vendor=VENDOR)
        external_id = "time-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        found = await self._by_external_id("timeBill", external_id)
        made = str(found["id"]) if found is not None else await self._upsert(
            "timeBill", external_id, mapping.time_bill_to_netsuite(entry, record_id))
        return entry.model_copy(update={"erp_id": made})

    @_shape_safe
    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        subsidiary = mapping.suiteql_text(self._subsidiary(tenant_id))
        where = f"subsidiary = {subsidiary}" + ("" if include_closed else f" AND entitystatus <> '{mapping.CLOSED}'")
        rows = await self.suiteql(f"SELECT id FROM job WHERE {where} ORDER BY id")
        projects = []
        for row in rows:
            doc = await self._get("job", str(row["id"]))
            projects.append(mapping.project_from_netsuite(doc, [], tenant_id=tenant_id,
                                                          currency=self._currency_of(doc)))
        return projects

    # -- receivables -------------------------------------------------------------------------------------------
    def _invoice(self, doc: dict[str, Any], tenant_id: str) -> Invoice:
        return mapping.invoice_from_netsuite(doc, currency=self._currency_of(doc), tax_item_id=self.config.tax_item_id,
                                             legal_entity=self._entities.get(tenant_id))

    @_shape_safe
    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        """An open invoice with external ID = the billing invoice ID (found first when posted)."""
        if not invoice.lines_complete:
            raise Rejected(f"invoice {invoice.billing_id} carries only its first lines; read it whole first",
                           vendor=VENDOR)
        found = await self._by_external_id("invoice", invoice.billing_id)
        if found is not None:
            return str(found["id"])
        body = mapping.invoice_to_netsuite(invoice, customer_id=erp_contact_id, subsidiary=self._subsidiary(tenant_id),
                                           currency_id=self._currency_id(invoice.currency),
                                           item_id=self.config.item_id, tax_item_id=self.config.tax_item_id)
        return await self._upsert("invoice", invoice.billing_id, body)

    @_shape_safe
    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        """A customer payment applied to the invoice for the paid amount (partial when so); external ID = the
        billing payment ID."""
        external_id = payment.billing_id or "pay-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
        found = await self._by_external_id("customerPayment", external_id)
        if found is not None:
            return str(found["id"])
        record_id = _internal_id(erp_invoice_id)
        if record_id is None:
            raise NotFound(f"no invoice {erp_invoice_id!r}", vendor=VENDOR)
        invoice = await self._get("invoice", record_id)
        body = mapping.payment_to_netsuite(payment, customer_id=mapping.ref_id(invoice, "entity"),
                                           subsidiary=mapping.ref_id(invoice, "subsidiary"),
                                           currency_id=mapping.ref_id(invoice, "currency"), invoice_id=record_id,
                                           account_id=self.config.payment_account_id)
        return await self._upsert("customerPayment", external_id, body)

    @_shape_safe
    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        """A credit memo (external ID = billing credit note ID), applied to the invoice it credits while that
        invoice is open, unless billing issued it after payment."""
        doc = await self._by_external_id("creditMemo", credit_note.billing_id)
        if doc is None:
            body = mapping.credit_memo_to_netsuite(credit_note, customer_id=erp_contact_id,
                                                   subsidiary=self._subsidiary(tenant_id),
                                                   currency_id=self._currency_id(credit_note.amount.currency),
                                                   item_id=self.config.item_id)
            memo_id = await self._upsert("creditMemo", credit_note.billing_id, body)
            doc = await self._get("creditMemo", memo_id)
        memo_id = str(doc["id"])
        if credit_note.before_payment is False or doc.get("voided"):
            return memo_id
        invoice = await self._by_external_id("invoice", credit_note.invoice_billing_id)
        if invoice is None or invoice.get("voided") or mapping.erp_status(invoice) != "AUTHORISED":
            return memo_id
        applied = [i for i in (doc.get("apply") or {}).get("items") or [] if i.get("apply")]
        if any(mapping.ref_id(i, "doc") == str(invoice["id"]) for i in applied):
            return memo_id
        amount = min(Decimal(str(doc.get("amountRemaining") or 0)), Decimal(str(invoice.get("amountRemaining") or 0)))
        if amount > 0:
            items = [*applied, {"doc": {"id": str(invoice["id"])}, "apply": True, "amount": amount}]
            await self._patch("creditMemo", memo_id, {"apply": {"items": items}})
        return memo_id

    @_shape_safe
    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        """Unapply the credit memo, then void it; never posted or already voided is success."""
        doc = await self._by_external_id("creditMemo", credit_note.billing_id)
        if doc is None or doc.get("voided"):
            return
        memo_id = str(doc["id"])
        if any(i.get("apply") for i in (doc.get("apply") or {}).get("items") or []):
            await self._patch("creditMemo", memo_id, {"apply": {"items": []}})
        await self._patch("creditMemo", memo_id, {"voided": True})

    @_shape_safe
    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        """Void the invoice and give its external ID up (so a corrected invoice may take it). Already voided is
        success; one with a payment or credit memo applied is refused by NetSuite (``Rejected``)."""
        record_id = _internal_id(erp_invoice_id)
        if record_id is None:
            raise NotFound(f"no invoice {erp_invoice_id!r}", vendor=VENDOR)
        doc = await self._get("invoice", record_id)
        if doc.get("voided"):
            return
        external = mapping.billing_id_of(doc.get("externalId"))
        await self._patch("invoice", record_id, {"voided": True,
                                                 "externalId": f"{external}{mapping.VOID_MARK}{record_id}"})

    @_shape_safe
    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        invoices: list[Invoice] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page, cursor = await self.invoices_page(tenant_id, cursor, modified_since=modified_since)
            invoices += page
            if cursor is None:
                break
        return invoices

    # -- reconciliation feeds: one SuiteQL page at a time (the cursor is the offset) -----------------------------
    async def _transactions_page(self, tenant_id: str, kind: str, record_type: str, cursor: str | None,
                                 modified_since: datetime | None) -> tuple[list[dict[str, Any]], str | None]:
        offset = _offset_of(cursor)
        where = f"type = '{kind}' AND subsidiary = {mapping.suiteql_text(self._subsidiary(tenant_id))}"
        if modified_since is not None:
            moment = (modified_since if modified_since.tzinfo else modified_since.replace(tzinfo=UTC)).astimezone(UTC)
            where += (f" AND lastmodifieddate >= TO_DATE('{moment.strftime('%Y-%m-%d %H:%M:%S')}', "
                      "'YYYY-MM-DD HH24:MI:SS')")
        rows, more = await self.suiteql_page(f"SELECT id FROM transaction WHERE {where} ORDER BY id", offset=offset)
        docs = [await self._get(record_type, str(r["id"])) for r in rows]
        return docs, (str(offset + self.page_size) if more else None)

    @_shape_safe
    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        docs, following = await self._transactions_page(tenant_id, "CustInvc", "invoice", cursor, modified_since)
        return [self._invoice(d, tenant_id) for d in docs], following

    @_shape_safe
    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        docs, following = await self._transactions_page(tenant_id, "CustPymt", "customerPayment", cursor,
                                                        modified_since)
        return [mapping.payment_from_netsuite(d, self._currency_of(d)) for d in docs], following

    @_shape_safe
    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        docs, following = await self._transactions_page(tenant_id, "CustCred", "creditMemo", cursor, modified_since)
        return [mapping.credit_note_from_netsuite(d, self._currency_of(d)) for d in docs], following


def _offset_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise Rejected(f"not a cursor of this feed: {cursor!r}", vendor=VENDOR)
    return int(cursor)


def from_settings(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                  config: NetSuiteSettings | None = None, timeout: float | None = None,
                  page_size: int = PAGE_SIZE) -> NetSuiteErp:
    """The adapter for ``settings``: one account, TBA-signed or with an OAuth 2.0 M2M token (``config.auth``),
    its subsidiaries the entities' tenant IDs."""
    config = config or NetSuiteSettings.of(settings)
    timeout = timeout if timeout is not None else settings.http_timeout_seconds
    auth: httpx.Auth
    token_client: httpx.AsyncClient | None = None
    if config.auth == "oauth2":
        token_client = build_client(base_url=config.base_url.rstrip("/"), transport=transport, timeout=timeout,
                                    max_connections=1)
        auth = OAuth2Auth(ClientCredentialsGrant(config, token_client))
    else:
        auth = TbaAuth(account_id=config.account_id, consumer_key=config.consumer_key,
                       consumer_secret=config.consumer_secret, token_id=config.token_id,
                       token_secret=config.token_secret)
    client = build_client(base_url=config.base_url.rstrip("/"), auth=auth, transport=transport, timeout=timeout,
                          max_connections=config.concurrency)
    return NetSuiteErp(client, config=config, page_size=page_size, token_client=token_client,
                       tenant_entities={e.erp_tenant_id: e.code for e in settings.legal_entities},
                       tenant_currencies={e.erp_tenant_id: e.currency for e in settings.legal_entities})


__all__ = ["NetSuiteErp", "from_settings"]
