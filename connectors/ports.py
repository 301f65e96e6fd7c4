"""The four roles a vendor can play, as ``typing.Protocol`` ports with canonical types in and out.

Adapters (``connectors/hubspot``, ``ironclad``, ``stripe``, ``xero``) implement them; activities
depend only on these. Every create takes an ``idempotency_key`` derived from the workflow and step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Protocol, runtime_checkable

from canonical import (
    Account,
    BillingSchedule,
    Contact,
    Contract,
    ContractTerms,
    CreditNote,
    Deal,
    DomainEvent,
    Invoice,
    Payment,
    Project,
    TimeEntry,
)
from canonical.amendments import BillingRecord, SubscriptionItemChange
from canonical.backfill import CompanyPage, ErpBatchResult, ErpCustomerDraft
from canonical.books import LedgerCodes
from canonical.catalogue import BillingPrice, CatalogueEntry, CatalogueItem
from canonical.ledger import BillingCustomer
from canonical.matching import CustomerCandidate
from canonical.reconciliation import BillingChange, ErpCreditNote, ErpPayment, Figures
from canonical.requests import AccountFigures, ContractRequest, DealPage, DealWriteBack, UpsertResult
from canonical.time_billing import BilledTime, TimeBill, TimeInvoice
from connectors.pacing import Pacer


@runtime_checkable
class CrmPort(Protocol):
    """Accounts, contacts, deals and pipeline (HubSpot, later Salesforce)."""

    vendor: str  # the adapter's name: the source system of the events it yields
    approval_stage: str  # the deal stage that asks for approval (quote-to-cash starts there)
    closed_won_stage: str  # the stage of a won deal (quote-to-cash starts there too)

    async def get_deal(self, deal_id: str) -> Deal:
        """The deal with its company, contacts and line items."""
        ...

    async def write_back(self, deal_id: str, update: DealWriteBack) -> None:
        """Set the integration's fields on the deal (never a CRM-owned field)."""
        ...

    def deals_modified_since(self, since: datetime, *, page_size: int = 100,
                             pacer: Pacer | None = None) -> AsyncIterator[DealPage]:
        """Every deal modified at or after ``since``, oldest change first, page by page; the adapter deals
        with its search API's limits (result windows, rate limits) and takes a ``pacer`` slot per request."""
        ...

    async def search_deals_modified_since(self, since: datetime, *, after: str | None = None,
                                          limit: int = 100) -> DealPage:
        ...

    async def upsert_companies(self, accounts: list[Account]) -> UpsertResult:
        """Batch upsert by our unique external-reference property."""
        ...

    async def list_companies(self, *, after: str | None = None, limit: int = 100) -> CompanyPage:
        """One page of companies in the CRM's order (the backfill pages through them all)."""
        ...

    async def write_account_figures(self, company_id: str, figures: list[AccountFigures]) -> None:
        ...

    async def write_deal_figures(self, deal_id: str, figures: list[AccountFigures]) -> None:
        """The billing roll-ups of one deal's invoices, per currency, on the deal."""
        ...


@runtime_checkable
class ClmPort(Protocol):
    """Executed legal terms, obligations and amendments (Ironclad, later DocuSign CLM)."""

    async def launch_contract(self, request: ContractRequest, *, idempotency_key: str) -> Contract:
        """Launch (or find the already launched) contract workflow for this key."""
        ...

    async def get_contract(self, clm_workflow_id: str) -> Contract:
        """Status of a launched contract; once executed, with its record ID and terms."""
        ...

    async def get_record(self, record_id: str) -> Contract:
        """An executed contract record with its terms and amendments."""
        ...

    async def cancel_contract(self, clm_workflow_id: str, *, reason: str) -> None:
        ...

    async def get_signed_terms(self, record_id: str) -> ContractTerms:
        """The executed record's terms as first signed, before any amendment."""
        ...

    async def list_executed_records(self, *, deal_ids: list[str] | None = None) -> list[Contract]:
        """Every executed contract (not amendments), optionally only those of some CRM deals."""
        ...

    async def records_changed_since(self, since: datetime, *, cursor: str | None = None
                                    ) -> tuple[list[Contract], str | None]:
        """One page of executed contracts changed at or after ``since`` (a contract one of whose amendments was
        executed then counts as changed), each with its amendments in sequence, and the cursor of the next page
        (``None``: no more). The amendment poll's read; the caller paces the pages."""
        ...


@runtime_checkable
class BillingPort(Protocol):
    """Subscriptions, invoices, payment status and dunning."""

    async def find_customer(self, reference: str) -> str | None:
        """The customer ID carrying our external ``reference``, if there is one."""
        ...

    async def ensure_customer(self, account: Account, *, contact: Contact | None, reference: str,
                              legal_entity: str, idempotency_key: str) -> str:
        """Find the customer by ``reference`` or create it; returns the customer ID."""
        ...

    async def customer_candidates(self, account: Account, *, email: str | None = None) -> list[CustomerCandidate]:
        """Live customers that may be ``account`` though they lack our reference (keyed by hand): by its name's
        core and its email domains; :func:`canonical.matching.match_customer` decides."""
        ...

    async def link_customer(self, customer_id: str, *, reference: str, legal_entity: str,
                            idempotency_key: str) -> str:
        """Write our ``reference`` (and the legal entity) on an existing customer; returns its ID."""
        ...

    async def delete_customer(self, customer_id: str) -> None:
        ...

    async def create_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> BillingSchedule:
        """Create what the schedule describes; returns it with the vendor's IDs filled in."""
        ...

    async def cancel_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> None:
        """Undo a created schedule (cancel the subscription, delete pending items)."""
        ...

    async def get_invoice(self, invoice_id: str) -> Invoice:
        ...

    async def finalize_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        """Finalize a draft one-off invoice (its billing date came or its milestone was accepted); one already
        finalized is returned as it is."""
        ...

    def list_invoices(self, *, customer_id: str | None = None,
                      created_after: datetime | None = None) -> AsyncIterator[Invoice]:
        """All matching invoices, following the vendor's cursor pagination."""
        ...

    async def create_credit_note(self, credit_note: CreditNote, *, idempotency_key: str) -> CreditNote:
        ...

    async def get_customer(self, customer_id: str) -> BillingCustomer:
        """The customer as an account (``crm_id`` = the CRM company) and the legal entity it bills from."""
        ...

    async def billing_schedules_by_project(self) -> dict[str, list[str]]:
        """Project code -> IDs of the live billing objects made for that project."""
        ...

    async def billing_records_by_project(self) -> dict[str, list[BillingRecord]]:
        """Project code -> its live subscription items and active rate-card prices."""
        ...

    async def billing_records(self, customer_id: str, *, known_ids: list[str], project_code: str
                              ) -> list[BillingRecord]:
        """What billing holds for one engagement: subscription items and milestone invoices of the
        customer, and the rate-card prices among ``known_ids`` made for ``project_code`` (amendments)."""
        ...

    async def change_subscription_item(self, change: SubscriptionItemChange, *, prorate: bool,
                                       idempotency_key: str) -> BillingRecord:
        """Set a subscription item's quantity and unit price (a new price when it changes); ``prorate``: charge
        or credit the rest of the current period at the new terms (how is the adapter's), else from the next."""
        ...

    async def set_subscription_end(self, subscription_id: str, end_date: date | None, *,
                                   idempotency_key: str) -> None:
        """Move (or clear) the date the subscription ends."""
        ...

    async def changes_since(self, since: datetime, *, cursor: str | None = None
                            ) -> tuple[list[DomainEvent], str | None]:
        """One page of what billing recorded at or after ``since`` (invoices finalized, paid, failed, voided;
        credit notes), as the very events its webhooks give (same source event IDs, so the event ledger dedupes
        a poll against a webhook), and the cursor of the next page (``None``: no more). The billing poll's
        read; the caller paces the pages."""
        ...


@runtime_checkable
class ErpCustomers(Protocol):
    """Customer financial master data: one contact per account and legal entity, found by our reference.

    ``tenant_id`` selects the legal entity's organisation (or subsidiary) in the ERP.
    """

    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        """The contact carrying our external ``reference`` in this tenant, with the ERP's values, if there is one."""
        ...

    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        """Find the contact by ``reference`` or create it (an archived one is made active again). On an existing
        contact the account's fields that are set are written and the unset ones (``None``) left as the ERP holds
        them; the caller drops what it may not write (the activity layer's ownership guard). The returned
        account carries the ERP's values."""
        ...

    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        ...

    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        """Contacts carrying any of ``references`` (one request): reference -> contact ID."""
        ...

    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        """Active contacts that may be ``account`` though they lack our reference (finance keyed them by hand):
        those with its tax number, those whose name contains its name's core, those at its email domains.
        A wide net; :func:`canonical.matching.match_customer` decides."""
        ...

    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        """Write our ``reference`` on an existing contact (a match a flow or a person chose), so the next
        look-up by reference finds it; nothing else of the contact changes."""
        ...

    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        """Create contacts in one request (all or none); IDs in draft order."""
        ...


@runtime_checkable
class ErpProjects(Protocol):
    """Projects with tasks, budget and time (``tenant_id`` as for :class:`ErpCustomers`)."""

    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Find the project by its code or create it with its tasks; returns it with ERP IDs."""
        ...

    async def close_project(self, tenant_id: str, project_id: str) -> None:
        ...

    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        """The project with its budget (estimate), deadline and tasks as the ERP holds them now."""
        ...

    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Set name, budget and deadline; update tasks by name (rate, estimate) and add missing ones.
        The caller guards ERP-owned fields (the budget) before calling."""
        ...

    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        ...

    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        """The tenant's projects (open ones unless ``include_closed``), with our project codes."""
        ...

    async def accepted_milestones(self, tenant_id: str, project_id: str) -> list[str]:
        """The milestone codes (:func:`canonical.keys.milestone_of_task`) of the project's fixed-price tasks a
        person accepted in the project system; an unknown project is ``NotFound``."""
        ...


@runtime_checkable
class ErpReceivables(Protocol):
    """Receivables: sales invoices, their payments and credit notes (``tenant_id`` as for :class:`ErpCustomers`)."""

    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        """Post a receivable (sales) invoice referencing the billing invoice ID, or find the one already posted;
        returns the ERP invoice ID."""
        ...

    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        ...

    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        ...

    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        """Void a posted invoice (already voided is success)."""
        ...

    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        """Take back a credit note posted for ``credit_note`` (found by its billing ID): unallocate it from the
        invoice, then void it. Already reversed, or never posted, is success."""
        ...

    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        """Every receivable invoice of the tenant; ``billing_id`` is the billing invoice it references."""
        ...


@runtime_checkable
class ErpChart(Protocol):
    """An ERP whose chart of accounts and tax rates can be read (the books mapping is checked against them)."""

    async def ledger_codes(self, tenant_id: str) -> LedgerCodes:
        """The tenant's active account codes and the tax codes it may apply to revenue."""
        ...


@runtime_checkable
class ErpTimesheets(Protocol):
    """An ERP whose projects' logged time can be read (time-and-materials billing)."""

    async def time_entries(self, tenant_id: str, project_id: str) -> list[TimeEntry]:
        """Every time entry of the project, with its status in the ERP."""
        ...


@runtime_checkable
class BillingTime(Protocol):
    """A billing system that bills logged time as invoice lines, each carrying its time entry's ID."""

    async def billed_time(self, customer_id: str, project_code: str) -> list[BilledTime]:
        """Every invoice line of the customer that billed a time entry of ``project_code``."""
        ...

    async def bill_time(self, bill: TimeBill, *, idempotency_key: str) -> TimeInvoice:
        """Bill the period's charges not billed yet (by entry ID) on one invoice and finalize it."""
        ...


@runtime_checkable
class ErpPort(ErpCustomers, ErpProjects, ErpReceivables, Protocol):
    """An ERP that keeps legal entities' customers, projects and receivables (every capability the flows write)."""


@runtime_checkable
class BillingFeed(Protocol):
    """Billing read page by page for reconciliation: lists for a full pass, the event feed for a delta.
    ``cursor`` is opaque: ``None`` first, then what the previous page returned (``None`` back: no more)."""

    async def invoices_page(self, cursor: str | None = None) -> tuple[list[BillingChange], str | None]:
        ...

    async def credit_notes_page(self, cursor: str | None = None) -> tuple[list[BillingChange], str | None]:
        ...

    async def customers_page(self, cursor: str | None = None) -> tuple[list[BillingChange], str | None]:
        ...

    async def changes_page(self, since: datetime, cursor: str | None = None
                           ) -> tuple[list[BillingChange], str | None]:
        """Objects changed since ``since`` as each event saw them; the cursor of the next page or ``None``."""
        ...

    async def current(self, change: BillingChange) -> BillingChange:
        """The changed object as it stands now (deleted when gone)."""
        ...

    async def latest_change_at(self) -> datetime | None:
        """When billing recorded its newest change (its clock)."""
        ...


@runtime_checkable
class BillingCatalogue(Protocol):
    """A billing system's side of the product catalogue (``canonical.catalogue``): the prices it holds under
    catalogue keys (and those deals made for SKUs the catalogue lacks), and the find-or-create of one."""

    async def catalogue_prices(self) -> list[BillingPrice]:
        """Every price under a catalogue lookup key, and every active price a deal made without the catalogue."""
        ...

    async def ensure_catalogue_price(self, item: CatalogueItem, entry: CatalogueEntry) -> str:
        """The price ID of ``entry`` (its product made first if need be); created once, idempotently."""
        ...


@runtime_checkable
class ErpChangeFeed(Protocol):
    """Receivables read page by page for reconciliation, all or changed since a moment.

    ``cursor`` is opaque: ``None`` for the first page, then the cursor the previous page returned; a page
    returns its items and the next page's cursor, or ``None`` when none follows.
    """

    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        ...

    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        ...

    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        ...


@runtime_checkable
class CrmFigures(Protocol):
    """The billing roll-ups the CRM holds on companies and deals."""

    async def read_figures(self, object_type: str, ids: list[str], currencies: list[str]
                           ) -> dict[str, dict[str, Figures]]:
        ...

@runtime_checkable
class WebhookReceiver(Protocol):
    """Verifies and parses one vendor's webhook deliveries into canonical events."""

    vendor: str

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureInvalid`` with the reason, or return."""
        ...

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """Raise ``PayloadInvalid`` naming the field at fault, or return the events (maybe none)."""
        ...
