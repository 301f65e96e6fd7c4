"""Two adapters added the way a new vendor is: a descriptor, its own settings class, a settings line.

``MemoryCrm`` plays the CRM and ``MemoryErp`` the ERP, in memory. Nothing in the product names them: a test
lists their descriptors in ``EXTRA_ADAPTERS`` (``Settings.extra_adapters``), chooses them with
``CRM_ADAPTER=memorycrm`` and one legal entity's ``erp_adapter="memoryerp"``, and the registry, the worker,
the workflows, the references and the workflow IDs take them from there. Each adapter's state lives in a
process-wide book keyed by its ``book`` setting, so a test can seed deals and read what the flows wrote.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pydantic_settings import SettingsConfigDict

from canonical import Account, Contact, CreditNote, Deal, Invoice, InvoiceStatus, Payment, Project, TimeEntry
from canonical.backfill import CompanyPage, ErpBatchResult, ErpCustomerDraft
from canonical.matching import CustomerCandidate
from canonical.money import Money
from canonical.ownership import SystemRole
from canonical.reconciliation import ErpCreditNote, ErpPayment
from canonical.requests import AccountFigures, DealPage, DealWriteBack, UpsertResult
from connectors.errors import NotFound, Rejected
from connectors.spec import AdapterSpec, RateLimits, VendorSettings
from settings import Settings

_ids = itertools.count(1)


def _next(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


# -- the CRM ----------------------------------------------------------------------------------------------
@dataclass
class CrmBook:
    deals: dict[str, Deal] = field(default_factory=dict)
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    figures: dict[str, list[AccountFigures]] = field(default_factory=dict)  # "company:<id>" / "deal:<id>"


CRM_BOOKS: dict[str, CrmBook] = {}


class MemoryCrmSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="MEMORYCRM_", env_file=".env", extra="ignore")
    adapter = "memorycrm"

    base_url: str = "memory://crm"
    book: str = "default"

    def vendor_urls(self) -> list[str]:
        return []  # calls nothing
    approval_stage: str = "approval"
    closed_won_stage: str = "won"


class MemoryCrm:
    """The CRM port in memory (the calls quote-to-cash, the poll and the ledger make)."""

    vendor = "memorycrm"

    def __init__(self, config: MemoryCrmSettings) -> None:
        self.book = CRM_BOOKS.setdefault(config.book, CrmBook())
        self.approval_stage = config.approval_stage
        self.closed_won_stage = config.closed_won_stage

    async def get_deal(self, deal_id: str) -> Deal:
        deal = self.book.deals.get(deal_id)
        if deal is None:
            raise NotFound(f"no deal {deal_id}", vendor=self.vendor)
        return deal.model_copy(update={"write_backs": DealWriteBack.model_validate(
            {**deal.write_backs.model_dump(), **self._written(deal_id)})})

    def _written(self, deal_id: str) -> dict[str, Any]:
        fields = DealWriteBack.model_fields
        return {k: v for k, v in self.book.written.get(deal_id, {}).items() if k in fields and v is not None}

    async def write_back(self, deal_id: str, update: DealWriteBack) -> None:
        self.book.written.setdefault(deal_id, {}).update(update.model_dump(exclude_none=True, mode="json"))

    async def deals_modified_since(self, since: datetime, *, page_size: int = 100,
                                   pacer: Any = None) -> AsyncIterator[DealPage]:
        yield DealPage(deals=[])

    async def search_deals_modified_since(self, since: datetime, *, after: str | None = None,
                                          limit: int = 100) -> DealPage:
        return DealPage(deals=[])

    async def upsert_companies(self, accounts: list[Account]) -> UpsertResult:
        raise NotImplementedError

    async def list_companies(self, *, after: str | None = None, limit: int = 100) -> CompanyPage:
        return CompanyPage(accounts=[])

    async def write_account_figures(self, company_id: str, figures: list[AccountFigures]) -> None:
        self.book.figures[f"company:{company_id}"] = figures

    async def write_deal_figures(self, deal_id: str, figures: list[AccountFigures]) -> None:
        self.book.figures[f"deal:{deal_id}"] = figures


# -- the ERP ----------------------------------------------------------------------------------------------
@dataclass
class ErpBook:
    contacts: dict[str, dict[str, Account]] = field(default_factory=dict)  # tenant -> reference -> account
    projects: dict[str, Project] = field(default_factory=dict)  # code -> project
    invoices: dict[str, Invoice] = field(default_factory=dict)  # ERP ID -> invoice as posted
    by_key: dict[str, str] = field(default_factory=dict)  # idempotency key -> ERP ID
    payments: dict[str, list[Payment]] = field(default_factory=dict)  # ERP invoice ID -> payments
    credit_notes: dict[str, CreditNote] = field(default_factory=dict)
    tenants: set[str] = field(default_factory=set)
    keyed: dict[str, list[CustomerCandidate]] = field(default_factory=dict)  # tenant -> keyed by hand, unlinked
    tenant_of: dict[str, str] = field(default_factory=dict)  # ERP document ID -> tenant it was written in
    contact_of: dict[str, str] = field(default_factory=dict)  # ERP invoice ID -> ERP contact ID
    payment_ids: dict[str, list[str]] = field(default_factory=dict)  # ERP invoice ID -> ERP payment IDs
    refuse: str = ""  # non-empty: every receivables write is refused with this reason (an ERP-side problem)
    writes: int = 0  # receivables writes that changed the book (a replay under a known key changes nothing)


ERP_BOOKS: dict[str, ErpBook] = {}


class MemoryErpSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="MEMORYERP_", env_file=".env", extra="ignore")
    adapter = "memoryerp"

    base_url: str = "memory://erp"
    book: str = "default"

    def vendor_urls(self) -> list[str]:
        return []  # calls nothing


class MemoryErp:
    """The ERP port in memory: contacts by reference, projects by code, receivables by idempotency key."""

    vendor = "memoryerp"

    def __init__(self, config: MemoryErpSettings) -> None:
        self.book = ERP_BOOKS.setdefault(config.book, ErpBook())

    def _seen(self, tenant_id: str) -> None:
        self.book.tenants.add(tenant_id)

    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        self._seen(tenant_id)
        return self.book.contacts.get(tenant_id, {}).get(reference)

    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        self._seen(tenant_id)
        held = self.book.contacts.setdefault(tenant_id, {})
        if reference not in held:
            held[reference] = account.model_copy(update={"erp_contact_id": _next("mc-")})
        return held[reference]

    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        self._seen(tenant_id)

    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        self._seen(tenant_id)
        held = self.book.contacts.get(tenant_id, {})
        return {r: held[r].erp_contact_id or "" for r in references if r in held}

    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        self._seen(tenant_id)
        return list(self.book.keyed.get(tenant_id, []))

    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        self._seen(tenant_id)
        keyed = self.book.keyed.get(tenant_id, [])
        record = next(c for c in keyed if c.record_id == contact_id)
        keyed.remove(record)
        linked = Account(name=record.name, country=record.country, erp_contact_id=record.record_id)
        self.book.contacts.setdefault(tenant_id, {})[reference] = linked
        return linked

    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        self._seen(tenant_id)
        held = self.book.contacts.setdefault(tenant_id, {})
        for draft in drafts:
            held.setdefault(draft.reference, draft.account.model_copy(update={
                "erp_contact_id": _next("mc-"), "created_by": draft.marker}))
        return ErpBatchResult(contact_ids=[held[d.reference].erp_contact_id or "" for d in drafts],
                              created=len(drafts))

    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        self._seen(tenant_id)
        if project.code not in self.book.projects:
            self.book.projects[project.code] = project.model_copy(update={"erp_id": _next("mp-")})
        return self.book.projects[project.code]

    async def close_project(self, tenant_id: str, project_id: str) -> None:
        self._seen(tenant_id)

    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        return next(p for p in self.book.projects.values() if p.erp_id == project_id)

    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        self.book.projects[project.code] = project
        return project

    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        return entry

    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        return [p for p in self.book.projects.values() if p.erp_tenant_id == tenant_id]

    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        self._seen(tenant_id)
        self._refused()
        if idempotency_key not in self.book.by_key:
            erp_id = _next("mi-")
            self.book.by_key[idempotency_key] = erp_id
            self.book.invoices[erp_id] = invoice
            self.book.tenant_of[erp_id] = tenant_id
            self.book.contact_of[erp_id] = erp_contact_id
            self.book.writes += 1
        return self.book.by_key[idempotency_key]

    def _refused(self) -> None:
        if self.book.refuse:
            raise Rejected(self.book.refuse, vendor=self.vendor)

    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        self._refused()
        if self.book.tenant_of.get(erp_invoice_id) != tenant_id:
            raise NotFound(f"no invoice {erp_invoice_id} in tenant {tenant_id}", vendor=self.vendor)
        if idempotency_key not in self.book.by_key:
            erp_id = self.book.by_key[idempotency_key] = _next("mpay-")
            self.book.payments.setdefault(erp_invoice_id, []).append(payment)
            self.book.payment_ids.setdefault(erp_invoice_id, []).append(erp_id)
            self.book.writes += 1
        return self.book.by_key[idempotency_key]

    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        self._refused()
        if idempotency_key not in self.book.by_key:
            self.book.by_key[idempotency_key] = _next("mcn-")
            self.book.credit_notes[self.book.by_key[idempotency_key]] = credit_note
            self.book.tenant_of[self.book.by_key[idempotency_key]] = tenant_id
            self.book.writes += 1
        return self.book.by_key[idempotency_key]

    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        self.book.invoices.pop(erp_invoice_id, None)

    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        for erp_id, held in list(self.book.credit_notes.items()):
            if held.billing_id == credit_note.billing_id:
                del self.book.credit_notes[erp_id]

    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        return [self._as_held(erp_id) for erp_id, t in self.book.tenant_of.items()
                if t == tenant_id and erp_id in self.book.invoices]

    def _as_held(self, erp_id: str) -> Invoice:
        """An invoice as this ERP holds it: its total, the payments recorded on it, what is still due."""
        posted = self.book.invoices[erp_id]
        currency = posted.total.currency
        paid = sum((p.amount.amount for p in self.book.payments.get(erp_id, [])), Money.zero(currency).amount)
        due = posted.total.amount - paid
        return posted.model_copy(update={
            "customer_id": self.book.contact_of.get(erp_id, ""), "amount_paid": Money(amount=paid, currency=currency),
            "amount_due": Money(amount=due, currency=currency),
            "status": InvoiceStatus.OPEN if due > 0 else InvoiceStatus.PAID, "payment_ids": [],
            "metadata": {"erp_invoice_id": erp_id, "erp_status": "AUTHORISED" if due > 0 else "PAID"}})

    # -- the receivables feed (reconciliation, cut-over) -------------------------------------------------
    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        return await self.list_invoices(tenant_id), None

    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        return [ErpPayment(erp_id=pay_id, reference=payment.billing_id, erp_invoice_id=erp_id, amount=payment.amount)
                for erp_id, t in self.book.tenant_of.items() if t == tenant_id
                for pay_id, payment in zip(self.book.payment_ids.get(erp_id, []), self.book.payments.get(erp_id, []),
                                           strict=True)], None

    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        return [ErpCreditNote(erp_id=cn_id, reference=note.billing_id, amount=note.amount)
                for cn_id, note in self.book.credit_notes.items() if self.book.tenant_of.get(cn_id) == tenant_id], None


def _crm(settings: Settings, config: MemoryCrmSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    return MemoryCrm(config)


def _erp(settings: Settings, config: MemoryErpSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    return MemoryErp(config)


CRM = AdapterSpec(role=SystemRole.CRM, name="memorycrm", display_name="Memory CRM", settings_class=MemoryCrmSettings,
                  adapter=_crm, object_kinds=("deal", "company"), rate_limits=RateLimits(reads_per_second=100))
ERP = AdapterSpec(role=SystemRole.ERP, name="memoryerp", display_name="Memory ERP", settings_class=MemoryErpSettings,
                  adapter=_erp, object_kinds=("contact", "project", "invoice"),
                  rate_limits=RateLimits(reads_per_second=100))


# -- any object as a role's adapter, through a descriptor (the bootstrap's tests hand in recording fakes) --------
INSTANCES: dict[str, Any] = {}


def _instance_spec(role: SystemRole) -> AdapterSpec:
    """A descriptor named ``memory`` for ``role`` whose adapter is ``INSTANCES[<its settings' instance of role>]``."""
    fields = {"adapter": "memory", "base_url": "memory://", "instances": {},
              "__annotations__": {"base_url": "str", "instances": "dict[str, str]"},
              "vendor_urls": lambda self: []}
    settings_class = type(f"Memory{role.value.capitalize()}Settings", (VendorSettings,), fields)
    settings_class.model_config = SettingsConfigDict(env_prefix=f"MEMORY_{role.value.upper()}_", extra="ignore")

    def build(settings: Settings, config: Any, transport: httpx.AsyncBaseTransport | None) -> Any:
        return INSTANCES[config.instances[role.value]]

    return AdapterSpec(role=role, name="memory", display_name=f"Memory {role.label}", settings_class=settings_class,
                       adapter=build, object_kinds=(), rate_limits=RateLimits(reads_per_second=100))


ANY = {role: _instance_spec(role) for role in (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING, SystemRole.ERP)}
ANY_CRM, ANY_CLM, ANY_BILLING, ANY_ERP = (ANY[r] for r in (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING,
                                                            SystemRole.ERP))


def with_instances(settings: Settings, **adapters: Any) -> Settings:
    """``settings`` choosing, for each role given (``crm=...``), that object as its adapter: a descriptor in
    ``EXTRA_ADAPTERS``, the role's ``*_ADAPTER`` and the instance's key in the adapter's own settings."""
    update: dict[str, Any] = {"extra_adapters": [*settings.extra_adapters]}
    own = dict(settings.adapter_settings)
    for role, adapter in adapters.items():
        key = f"{role}-{next(_ids)}"
        INSTANCES[key] = adapter
        update["extra_adapters"].append(f"tests.helpers.memory_adapters:ANY_{role.upper()}")
        update[f"{role}_adapter"] = "memory"
        held = dict(own.get("memory", {}))
        held["instances"] = {**held.get("instances", {}), role: key}
        own["memory"] = held
    update["adapter_settings"] = own
    return settings.model_copy(update=update)
