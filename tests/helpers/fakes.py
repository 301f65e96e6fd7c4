"""In-memory fakes of our own ports (CRM, CLM, billing, ERP) for branch tests on the time-skipping server.

They keep what was written so a test asserts the records a flow produced (and what compensation undid),
and take a refusal to inject: ``refuse["create_schedule"] = Rejected("...")`` makes that call fail as the
vendor's refusal would. Each implements its whole port, and ``tests/connectors/test_port_conformance.py``
runs the same cases against it and against the emulator-backed adapter, so a fake cannot drift: an unknown
ID is ``NotFound``, a repeated idempotency key returns the first record.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from canonical import (
    Account,
    Amendment,
    BillingSchedule,
    Contact,
    Contract,
    ContractStatus,
    ContractTerms,
    CreditNote,
    Deal,
    DealLine,
    DomainEvent,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Money,
    Payment,
    Project,
    TimeEntry,
)
from canonical.amendments import BillingRecord, SubscriptionItemChange
from canonical.backfill import CompanyPage, ErpBatchResult, ErpCustomerDraft
from canonical.billing import BillingScheduleKind, OneOffInvoice
from canonical.deal import BillingModel
from canonical.keys import milestone_of_task
from canonical.ledger import BillingCustomer
from canonical.matching import CustomerCandidate
from canonical.reconciliation import ErpCreditNote, ErpPayment
from canonical.refs import ownership_marker
from canonical.requests import AccountFigures, ContractRequest, DealPage, DealWriteBack, UpsertResult
from connectors.errors import NotFound, Rejected
from connectors.pacing import Pacer

_ids = itertools.count(1)
T = TypeVar("T")


def _next(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


class _Refusals:
    refuse: dict[str, Exception]

    def _maybe_refuse(self, call: str) -> None:
        error = self.refuse.get(call)
        if error is not None:
            raise error


def fake_deal(*, discount: str = "0", region: str | None = "NA", start: date | None = date(2027, 1, 1),
              model: BillingModel = BillingModel.FIXED_FEE) -> Deal:
    """A complete deal as the CRM would return it (fixed fee unless told otherwise)."""
    crm_id = str(next(_ids))
    account = Account(crm_id=str(next(_ids)), name="Fake Co", country="US")
    return Deal(crm_id=crm_id, name=f"Deal {crm_id}", currency="USD", region=region, billing_model=model,
                start_date=start, end_date=date(2027, 12, 31), payment_terms_days=30, account=account,
                contacts=[Contact(first_name="Bea", last_name="Biller", email="billing@fake.example", role="billing")],
                lines=[DealLine(product_code="IMPL", name="Implementation", quantity=Decimal(1),
                                unit_price=Decimal("12000"), discount_percent=Decimal(discount),
                                billing_model=model)])


def fake_invoice(billing_id: str, *, amount: str = "100.00", entity: str = "US01") -> Invoice:
    """An open USD billing invoice of one line, as billing would hand it to the ERP."""
    money = Money.of(amount, "USD")
    line = InvoiceLine(description="Implementation", quantity=Decimal(1), unit_amount=money, amount=money)
    return Invoice(billing_id=billing_id, number=f"BILL-{billing_id}", customer_id="cus_fake", currency="USD",
                   status=InvoiceStatus.OPEN, issued_on=date(2027, 1, 1), due_on=date(2027, 1, 31), lines=[line],
                   subtotal=money, tax=Money.of("0", "USD"), total=money, amount_paid=Money.of("0", "USD"),
                   amount_due=money, legal_entity=entity)


def _offset_page(items: list[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """One page of ``items`` from an offset cursor (as opaque to callers as any adapter's)."""
    start = int(cursor or 0)
    following = start + size
    return items[start:following], (str(following) if following < len(items) else None)


@dataclass
class FakeCrm(_Refusals):
    """The CRM in memory: deals, companies keyed by our unique reference, the figures written."""

    vendor: str = "fake-crm"
    approval_stage: str = "approval"
    closed_won_stage: str = "won"
    deals: dict[str, Deal] = field(default_factory=dict)
    written: dict[str, dict[str, str]] = field(default_factory=dict)
    companies: dict[str, Account] = field(default_factory=dict)  # company ID -> account
    figures: dict[str, list[AccountFigures]] = field(default_factory=dict)  # company or deal ID -> figures
    refuse: dict[str, Exception] = field(default_factory=dict)

    def _deal(self, deal_id: str) -> Deal:
        found = self.deals.get(deal_id)
        if found is None:
            raise NotFound(f"no deal {deal_id}", vendor=self.vendor)
        return found

    async def get_deal(self, deal_id: str) -> Deal:
        self._maybe_refuse("get_deal")
        return self._deal(deal_id)

    async def write_back(self, deal_id: str, update: DealWriteBack) -> None:
        self._maybe_refuse("write_back")
        self._deal(deal_id)
        self.written.setdefault(deal_id, {}).update(update.properties())

    async def search_deals_modified_since(self, since: datetime, *, after: str | None = None,
                                          limit: int = 100) -> DealPage:
        deals, following = _offset_page(list(self.deals.values()), after, limit)
        return DealPage(deals=deals, next_after=following)

    async def deals_modified_since(self, since: datetime, *, page_size: int = 100,
                                   pacer: Pacer | None = None) -> AsyncIterator[DealPage]:
        after: str | None = None
        while True:
            page = await self.search_deals_modified_since(since, after=after, limit=page_size)
            yield page
            if page.next_after is None:
                return
            after = page.next_after

    @staticmethod
    def _company_key(account: Account) -> str:
        """Our unique key for a company, as the CRM adapter keys its upserts: domain, else ERP contact, else
        billing customer."""
        if account.domain:
            return "domain:" + account.domain.strip().lower().removeprefix("https://").removeprefix(
                "http://").removeprefix("www.").split("/")[0]
        if account.erp_contact_id:
            return f"erp-contact:{account.erp_contact_id}"
        if account.billing_customer_id:
            return f"billing-customer:{account.billing_customer_id}"
        raise Rejected(f"account {account.name!r} has no domain, ERP contact or billing customer to key it by")

    async def upsert_companies(self, accounts: list[Account]) -> UpsertResult:
        result = UpsertResult()
        for account in accounts:
            if account.crm_id:
                if account.crm_id not in self.companies:
                    raise NotFound(f"no company {account.crm_id}", vendor=self.vendor)
                company_id = account.crm_id
                result.updated += 1
            else:
                key = self._company_key(account)
                company_id = next((i for i, held in self.companies.items() if self._company_key(held) == key), "")
                if company_id:
                    result.updated += 1
                else:
                    company_id, result.created = _next("company-"), result.created + 1
            self.companies[company_id] = account.model_copy(update={"crm_id": company_id})
            result.ids.append(company_id)
        return result

    async def list_companies(self, *, after: str | None = None, limit: int = 100) -> CompanyPage:
        accounts, following = _offset_page(list(self.companies.values()), after, limit)
        return CompanyPage(accounts=accounts, next_after=following)

    async def write_account_figures(self, company_id: str, figures: list[AccountFigures]) -> None:
        if company_id not in self.companies:
            raise NotFound(f"no company {company_id}", vendor=self.vendor)
        self.figures[company_id] = list(figures)

    async def write_deal_figures(self, deal_id: str, figures: list[AccountFigures]) -> None:
        self._deal(deal_id)
        self.figures[deal_id] = list(figures)


@dataclass
class FakeClm(_Refusals):
    contracts: dict[str, Contract] = field(default_factory=dict)
    requests: dict[str, ContractRequest] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    refuse: dict[str, Exception] = field(default_factory=dict)
    changed_at: dict[str, datetime] = field(default_factory=dict)  # record ID -> when it last changed
    page_size: int = 100

    def _touch(self, record_id: str | None) -> None:
        if record_id:
            self.changed_at[record_id] = datetime.now(UTC)

    async def launch_contract(self, request: ContractRequest, *, idempotency_key: str) -> Contract:
        self._maybe_refuse("launch_contract")
        if idempotency_key in self.by_key:
            return self.contracts[self.by_key[idempotency_key]]
        contract = Contract(clm_workflow_id=_next("wf-"), title=request.title,
                            counterparty=request.counterparty.name, status=ContractStatus.SIGNING,
                            deal_crm_id=request.deal_crm_id)
        assert contract.clm_workflow_id
        self.contracts[contract.clm_workflow_id] = contract
        self.requests[contract.clm_workflow_id] = request
        self.by_key[idempotency_key] = contract.clm_workflow_id
        return contract

    def sign(self, clm_workflow_id: str) -> None:
        """The counterparty signs: the record carries the proposed terms."""
        contract = self.contracts[clm_workflow_id]
        self.contracts[clm_workflow_id] = contract.model_copy(update={
            "status": ContractStatus.EXECUTED, "clm_record_id": _next("rec-"),
            "terms": self.requests[clm_workflow_id].terms, "executed_on": date(2026, 12, 1)})
        self._touch(self.contracts[clm_workflow_id].clm_record_id)

    def cancel(self, clm_workflow_id: str) -> None:
        """Legal cancels the contract in the CLM."""
        contract = self.contracts[clm_workflow_id]
        self.contracts[clm_workflow_id] = contract.model_copy(update={"status": ContractStatus.CANCELLED})

    async def get_contract(self, clm_workflow_id: str) -> Contract:
        self._maybe_refuse("get_contract")
        found = self.contracts.get(clm_workflow_id)
        if found is None:
            raise NotFound(f"no contract workflow {clm_workflow_id}", vendor="fake-clm")
        return found

    def _record(self, record_id: str) -> Contract:
        found = next((c for c in self.contracts.values() if c.clm_record_id == record_id), None)
        if found is None:
            raise NotFound(f"no contract record {record_id}", vendor="fake-clm")
        return found

    def executed(self, deal: Deal, terms: ContractTerms) -> str:
        """A contract record already executed with ``terms`` (as quote-to-cash left it); its record ID."""
        assert deal.account is not None
        contract = Contract(clm_workflow_id=_next("wf-"), clm_record_id=_next("rec-"),
                            title=f"{deal.name} - Order Form", counterparty=deal.account.name,
                            status=ContractStatus.EXECUTED, terms=terms,
                            executed_on=date(2026, 12, 1), deal_crm_id=deal.crm_id)
        assert contract.clm_workflow_id and contract.clm_record_id
        self.contracts[contract.clm_workflow_id] = contract
        self._touch(contract.clm_record_id)
        return contract.clm_record_id

    def amend(self, record_id: str, terms: ContractTerms) -> Amendment:
        """Legal executes the record's next amendment: the record's terms become ``terms``."""
        contract = next(c for c in self.contracts.values() if c.clm_record_id == record_id)
        amendment = Amendment(contract_record_id=record_id, sequence=len(contract.amendments) + 1, terms=terms,
                              executed_on=date(2027, 2, 1), clm_amendment_id=_next("amd-"))
        contract.amendments.append(amendment)
        self._touch(record_id)
        return amendment

    async def get_record(self, record_id: str) -> Contract:
        record = self._record(record_id)
        return record.model_copy(update={"terms": record.amendments[-1].terms}) if record.amendments else record

    async def get_signed_terms(self, record_id: str) -> ContractTerms:
        record = self._record(record_id)
        assert record.terms is not None
        return record.terms

    async def cancel_contract(self, clm_workflow_id: str, *, reason: str) -> None:
        await self.get_contract(clm_workflow_id)
        self.cancelled.append(clm_workflow_id)

    async def list_executed_records(self, *, deal_ids: list[str] | None = None) -> list[Contract]:
        return [await self.get_record(c.clm_record_id) for c in self.contracts.values()
                if c.status is ContractStatus.EXECUTED and c.clm_record_id
                and (deal_ids is None or c.deal_crm_id in deal_ids)]

    async def records_changed_since(self, since: datetime, *, cursor: str | None = None
                                    ) -> tuple[list[Contract], str | None]:
        self._maybe_refuse("records_changed_since")
        changed = sorted((at, rid) for rid, at in self.changed_at.items() if at >= since)
        start = int(cursor or 0)
        page = changed[start:start + self.page_size]
        following = str(start + self.page_size) if start + self.page_size < len(changed) else None
        return [await self.get_record(rid) for _at, rid in page], following


@dataclass
class FakeErp(_Refusals):
    """The ERP in memory, every capability (customers, projects, receivables, change feed) as the adapters
    behave (``tests/connectors/test_port_conformance.py`` holds it to them): contacts per tenant by reference,
    projects by code, receivable documents per tenant; an unknown ID is ``NotFound``."""

    contacts: dict[str, dict[str, Account]] = field(default_factory=dict)  # tenant -> reference -> account
    projects: dict[str, Project] = field(default_factory=dict)
    archived: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    batches: list[tuple[str, list[str]]] = field(default_factory=list)  # (tenant, references) per batch create
    invoices: dict[str, dict[str, Invoice]] = field(default_factory=dict)  # tenant -> ERP invoice ID -> invoice
    payments: dict[str, dict[str, ErpPayment]] = field(default_factory=dict)  # tenant -> ERP payment ID -> payment
    credit_notes: dict[str, dict[str, ErpCreditNote]] = field(default_factory=dict)
    time_entries: dict[str, TimeEntry] = field(default_factory=dict)  # idempotency key -> entry
    page_size: int = 100
    refuse: dict[str, Exception] = field(default_factory=dict)
    #: tenant -> contacts finance keyed by hand (no reference of ours yet): the candidates of a match
    keyed: dict[str, list[CustomerCandidate]] = field(default_factory=dict)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (tenant, contact ID, reference) linked
    accepted: dict[str, list[str]] = field(default_factory=dict)  # project ID -> milestone codes a person accepted
    milestone_reads: int = 0  # calls of accepted_milestones (a flow polling the project system)

    # -- customers ---------------------------------------------------------------------------------------
    def _contact(self, tenant_id: str, contact_id: str) -> tuple[str, Account]:
        for reference, held in self.contacts.get(tenant_id, {}).items():
            if held.erp_contact_id == contact_id:
                return reference, held
        raise NotFound(f"no contact {contact_id} in tenant {tenant_id}", vendor="fake-erp")

    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        return self.contacts.get(tenant_id, {}).get(reference)

    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        """Create with the ownership mark as the ERP adapter does; on a known contact write the fields that are
        set (the activity layer's ownership guard left out what it may not write) and make it active again."""
        self._maybe_refuse("upsert_customer")
        held = self.contacts.setdefault(tenant_id, {})
        found = held.get(reference)
        if found is None:
            found = account.model_copy(update={"erp_contact_id": _next("contact-"),
                                               "created_by": ownership_marker(idempotency_key)})
        else:
            given = {f: getattr(account, f) for f in ("name", "domain", "country", "address", "tax_number",
                                                       "payment_terms_days") if getattr(account, f) not in (None, "")}
            found = found.model_copy(update=given)
            if found.erp_contact_id in self.archived:
                self.archived.remove(found.erp_contact_id)
        held[reference] = found
        return found

    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        self._contact(tenant_id, contact_id)
        if contact_id not in self.archived:
            self.archived.append(contact_id)

    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        held = self.contacts.get(tenant_id, {})
        return {r: held[r].erp_contact_id or "" for r in references if r in held}

    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        """Every contact of the tenant (a wide net, as the adapters cast one): the hand-keyed and ours."""
        ours = [CustomerCandidate(record_id=a.erp_contact_id or "", name=a.name, country=a.country,
                                  tax_number=a.tax_number, reference=r)
                for r, a in self.contacts.get(tenant_id, {}).items() if a.erp_contact_id not in self.archived]
        return [*self.keyed.get(tenant_id, []), *ours]

    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        self._maybe_refuse("link_customer")
        keyed = self.keyed.get(tenant_id, [])
        record = next((c for c in keyed if c.record_id == contact_id), None)
        if record is None:
            _old, held = self._contact(tenant_id, contact_id)
            return held
        keyed.remove(record)
        linked = Account(name=record.name, country=record.country, tax_number=record.tax_number,
                         erp_contact_id=record.record_id)
        self.contacts.setdefault(tenant_id, {})[reference] = linked
        self.links.append((tenant_id, contact_id, reference))
        return linked

    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        """All or none, each with its draft's ownership mark as the ERP adapter does; a known reference is kept."""
        self._maybe_refuse("create_customers")
        if not drafts:
            return ErpBatchResult()
        held = self.contacts.setdefault(tenant_id, {})
        for draft in drafts:
            if draft.reference not in held:
                held[draft.reference] = draft.account.model_copy(update={
                    "erp_contact_id": _next("contact-"),
                    "created_by": draft.marker})
        self.batches.append((tenant_id, [d.reference for d in drafts]))
        return ErpBatchResult(contact_ids=[held[d.reference].erp_contact_id or "" for d in drafts],
                              created=len(drafts))

    # -- projects ----------------------------------------------------------------------------------------
    def _project(self, project_id: str) -> Project:
        for held in self.projects.values():
            if held.erp_id == project_id:
                return held
        raise NotFound(f"no project {project_id}", vendor="fake-erp")

    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        self._maybe_refuse("create_project")
        held = self.projects.get(project.code)
        if held is None:
            held = project.model_copy(update={"erp_id": _next("project-"), "erp_tenant_id": tenant_id, "tasks": []})
        tasks = {t.name: t for t in held.tasks}
        for task in project.tasks:
            tasks.setdefault(task.name, task.model_copy(update={"erp_id": _next("task-")}))
        self.projects[project.code] = held.model_copy(update={"tasks": list(tasks.values())})
        return self.projects[project.code].model_copy(update={
            "tasks": [tasks[t.name] for t in project.tasks]})

    async def close_project(self, tenant_id: str, project_id: str) -> None:
        self._project(project_id)
        if project_id not in self.closed:
            self.closed.append(project_id)

    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        return self._project(project_id)

    def accept_milestone(self, project_id: str, code: str) -> None:
        """A person accepts the project's milestone ``code`` in the project system (its fixed-price task)."""
        project = self._project(project_id)
        if not any(milestone_of_task(t.name) == code for t in project.tasks):
            raise NotFound(f"project {project_id} has no milestone {code}", vendor="fake-erp")
        if code not in self.accepted.setdefault(project_id, []):
            self.accepted[project_id].append(code)

    async def accepted_milestones(self, tenant_id: str, project_id: str) -> list[str]:
        self._maybe_refuse("accepted_milestones")
        self.milestone_reads += 1
        self._project(project_id)
        return list(self.accepted.get(project_id, []))

    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        """Budget and deadline; tasks by name (changed ones updated, missing ones added, others left)."""
        self._maybe_refuse("update_project")
        if not project.erp_id:
            raise Rejected(f"project {project.code} has no ERP project ID", vendor="fake-erp")
        held = self._project(project.erp_id)
        tasks = {t.name: t for t in held.tasks}
        for task in project.tasks:
            existing = tasks.get(task.name)
            tasks[task.name] = task.model_copy(update={"erp_id": existing.erp_id if existing else _next("task-")})
        self.projects[held.code] = held.model_copy(update={"budget": project.budget, "deadline": project.deadline,
                                                           "tasks": list(tasks.values())})
        return self.projects[held.code]

    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        self._project(project_id)
        if idempotency_key not in self.time_entries:
            self.time_entries[idempotency_key] = entry.model_copy(update={"erp_id": _next("time-")})
        return self.time_entries[idempotency_key]

    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        return [p for p in self.projects.values() if p.erp_tenant_id == tenant_id
                and (include_closed or p.erp_id not in self.closed)]

    # -- receivables -------------------------------------------------------------------------------------
    def _invoice(self, tenant_id: str, erp_invoice_id: str) -> Invoice:
        found = self.invoices.get(tenant_id, {}).get(erp_invoice_id)
        if found is None:
            raise NotFound(f"no invoice {erp_invoice_id} in tenant {tenant_id}", vendor="fake-erp")
        return found

    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        self._maybe_refuse("post_invoice")
        if not invoice.lines_complete:
            raise Rejected(f"invoice {invoice.billing_id} carries only its first lines", vendor="fake-erp")
        held = self.invoices.setdefault(tenant_id, {})
        for erp_id, posted in held.items():
            if posted.billing_id == invoice.billing_id and posted.metadata.get("erp_status") != "VOIDED":
                return erp_id
        erp_id = _next("inv-")
        held[erp_id] = invoice.model_copy(update={"metadata": {**invoice.metadata, "erp_invoice_id": erp_id,
                                                               "erp_status": "AUTHORISED"}})
        return erp_id

    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        self._maybe_refuse("record_payment")
        self._invoice(tenant_id, erp_invoice_id)
        held = self.payments.setdefault(tenant_id, {})
        for erp_id, recorded in held.items():
            if payment.billing_id and recorded.reference == payment.billing_id \
                    and recorded.erp_invoice_id == erp_invoice_id:
                return erp_id
        erp_id = _next("pay-")
        held[erp_id] = ErpPayment(erp_id=erp_id, reference=payment.billing_id, erp_invoice_id=erp_invoice_id,
                                  amount=payment.amount)
        return erp_id

    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        self._maybe_refuse("post_credit_note")
        held = self.credit_notes.setdefault(tenant_id, {})
        for erp_id, posted in held.items():
            if posted.reference == credit_note.billing_id:
                return erp_id
        credited = [i for i, inv in self.invoices.get(tenant_id, {}).items()
                    if inv.billing_id == credit_note.invoice_billing_id and inv.metadata.get("erp_status") != "VOIDED"]
        erp_id = _next("cn-")
        held[erp_id] = ErpCreditNote(erp_id=erp_id, reference=credit_note.billing_id, amount=credit_note.amount,
                                     erp_invoice_ids=credited[:1])
        return erp_id

    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        self._maybe_refuse("reverse_credit_note")
        held = self.credit_notes.get(tenant_id, {})
        for erp_id, posted in held.items():
            if posted.reference == credit_note.billing_id and posted.status != "VOIDED":
                held[erp_id] = posted.model_copy(update={"status": "VOIDED", "erp_invoice_ids": []})

    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        held = self._invoice(tenant_id, erp_invoice_id)
        self.invoices[tenant_id][erp_invoice_id] = held.model_copy(update={
            "metadata": {**held.metadata, "erp_status": "VOIDED"}})

    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        return list(self.invoices.get(tenant_id, {}).values())

    # -- change feed (the cursor is an offset, as opaque to callers as any adapter's) ---------------------------
    def _page(self, items: list[T], cursor: str | None) -> tuple[list[T], str | None]:
        return _offset_page(items, cursor, self.page_size)

    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        return self._page(list(self.invoices.get(tenant_id, {}).values()), cursor)

    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        return self._page(list(self.payments.get(tenant_id, {}).values()), cursor)

    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        return self._page(list(self.credit_notes.get(tenant_id, {}).values()), cursor)


@dataclass
class FakeBilling(_Refusals):
    """Billing in memory: customers by reference, schedules by idempotency key, invoices, credit notes and the
    records (subscription items) amendments change; an unknown ID is ``NotFound``."""

    customers: dict[str, str] = field(default_factory=dict)  # reference -> customer ID
    marks: dict[str, str] = field(default_factory=dict)  # customer ID -> ownership mark of its create
    schedules: dict[str, BillingSchedule] = field(default_factory=dict)  # idempotency key -> schedule
    deleted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    records: dict[str, list[BillingRecord]] = field(default_factory=dict)  # customer ID -> what billing holds
    accounts: dict[str, BillingCustomer] = field(default_factory=dict)  # customer ID -> customer
    invoices: dict[str, Invoice] = field(default_factory=dict)  # invoice ID -> invoice
    credit_notes: dict[str, CreditNote] = field(default_factory=dict)  # idempotency key -> credit note
    subscription_ends: dict[str, date | None] = field(default_factory=dict)
    prorated: list[tuple[str, bool]] = field(default_factory=list)  # (item ID, prorate) per change
    finalized: list[str] = field(default_factory=list)  # one-off invoices finalized, in order, once each
    refuse: dict[str, Exception] = field(default_factory=dict)
    keyed: list[CustomerCandidate] = field(default_factory=list)  # customers keyed by hand, no reference of ours
    links: list[tuple[str, str]] = field(default_factory=list)  # (customer ID, reference) linked
    events: list[DomainEvent] = field(default_factory=list)  # what billing recorded, oldest first
    page_size: int = 100

    async def changes_since(self, since: datetime, *, cursor: str | None = None
                            ) -> tuple[list[DomainEvent], str | None]:
        """Newest first, as billing lists its events."""
        self._maybe_refuse("changes_since")
        recent = [e for e in reversed(self.events) if e.occurred_at >= since]
        start = int(cursor or 0)
        following = str(start + self.page_size) if start + self.page_size < len(recent) else None
        return recent[start:start + self.page_size], following

    async def find_customer(self, reference: str) -> str | None:
        return self.customers.get(reference)

    async def customer_candidates(self, account: Account, *, email: str | None = None) -> list[CustomerCandidate]:
        ours = [CustomerCandidate(record_id=c, name=self.accounts[c].account.name if c in self.accounts else "",
                                  reference=r) for r, c in self.customers.items() if c not in self.deleted]
        return [*self.keyed, *ours]

    async def link_customer(self, customer_id: str, *, reference: str, legal_entity: str,
                            idempotency_key: str) -> str:
        self._maybe_refuse("link_customer")
        record = next((c for c in self.keyed if c.record_id == customer_id), None)
        if record is not None:
            self.keyed.remove(record)
            self.customers[reference] = customer_id
            self.accounts[customer_id] = BillingCustomer(customer_id=customer_id, legal_entity=legal_entity,
                                                         account=Account(name=record.name, country=record.country,
                                                                         billing_customer_id=customer_id))
            self.links.append((customer_id, reference))
        return customer_id

    async def billing_records(self, customer_id: str, *, known_ids: list[str], project_code: str
                              ) -> list[BillingRecord]:
        return list(self.records.get(customer_id, []))

    async def ensure_customer(self, account: Account, *, contact: Contact | None, reference: str,
                              legal_entity: str, idempotency_key: str) -> str:
        self._maybe_refuse("ensure_customer")
        if reference not in self.customers:
            self.customers[reference] = customer_id = _next("cust-")
            self.marks[customer_id] = ownership_marker(idempotency_key)
            self.accounts[customer_id] = BillingCustomer(
                customer_id=customer_id, legal_entity=legal_entity,
                account=account.model_copy(update={"billing_customer_id": customer_id,
                                                   "created_by": self.marks[customer_id]}))
        return self.customers[reference]

    async def get_customer(self, customer_id: str) -> BillingCustomer:
        if customer_id in self.accounts:
            return self.accounts[customer_id]
        if customer_id in self.customers.values():  # a customer a test put in ``customers`` directly
            return BillingCustomer(customer_id=customer_id,
                                   account=Account(name="Fake Co", created_by=self.marks.get(customer_id)))
        raise NotFound(f"no customer {customer_id}", vendor="fake-billing")

    async def delete_customer(self, customer_id: str) -> None:
        self.deleted.append(customer_id)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        found = self.invoices.get(invoice_id)
        if found is None:
            raise NotFound(f"no invoice {invoice_id}", vendor="fake-billing")
        return found

    async def list_invoices(self, *, customer_id: str | None = None,
                            created_after: datetime | None = None) -> AsyncIterator[Invoice]:
        for invoice in list(self.invoices.values()):
            if customer_id is None or invoice.customer_id == customer_id:
                yield invoice

    async def create_credit_note(self, credit_note: CreditNote, *, idempotency_key: str) -> CreditNote:
        await self.get_invoice(credit_note.invoice_billing_id)
        if idempotency_key not in self.credit_notes:
            self.credit_notes[idempotency_key] = credit_note.model_copy(update={"billing_id": _next("cn-")})
        return self.credit_notes[idempotency_key]

    async def billing_schedules_by_project(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for schedule in self.schedules.values():
            code = schedule.metadata.get("revops_project")
            if code and schedule.billing_id and schedule.billing_id not in self.cancelled:
                found.setdefault(code, []).append(schedule.billing_id)
        return found

    async def billing_records_by_project(self) -> dict[str, list[BillingRecord]]:
        return {}

    async def change_subscription_item(self, change: SubscriptionItemChange, *, prorate: bool,
                                       idempotency_key: str) -> BillingRecord:
        for held in self.records.values():
            for index, record in enumerate(held):
                if record.billing_id == change.item_id:
                    held[index] = record.model_copy(update={"quantity": change.quantity,
                                                            "unit_amount": change.unit_amount})
                    self.prorated.append((change.item_id, prorate))
                    return held[index]
        raise NotFound(f"no subscription item {change.item_id}", vendor="fake-billing")

    async def set_subscription_end(self, subscription_id: str, end_date: date | None, *,
                                   idempotency_key: str) -> None:
        if not any(s.billing_id == subscription_id for s in self.schedules.values()):
            raise NotFound(f"no subscription {subscription_id}", vendor="fake-billing")
        self.subscription_ends[subscription_id] = end_date

    async def create_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> BillingSchedule:
        self._maybe_refuse("create_schedule")
        if idempotency_key not in self.schedules:
            billing_id = _next("sched-")
            drafts = [OneOffInvoice(invoice_id=_next("draft-"), charge_code=c.product_code, bill_on=c.bill_on)
                      for c in schedule.charges if c.interval is None
                      and schedule.kind in (BillingScheduleKind.MILESTONE, BillingScheduleKind.FIXED_FEE)]
            self.schedules[idempotency_key] = schedule.model_copy(update={
                "billing_id": billing_id, "refs": [f"stripe:subscription:{billing_id}"], "drafts": drafts})
        return self.schedules[idempotency_key]

    async def finalize_invoice(self, invoice_id: str, *, idempotency_key: str | None = None) -> Invoice:
        self._maybe_refuse("finalize_invoice")
        drafts = {d.invoice_id for s in self.schedules.values() for d in s.drafts}
        if invoice_id not in drafts and invoice_id not in self.invoices:
            raise NotFound(f"no invoice {invoice_id}", vendor="fake-billing")
        if invoice_id not in self.finalized:
            self.finalized.append(invoice_id)
        return self.invoices.get(invoice_id) or fake_invoice(invoice_id)

    async def cancel_schedule(self, schedule: BillingSchedule, *, idempotency_key: str) -> None:
        self.cancelled.append(schedule.billing_id or "")


@dataclass
class FakePorts:
    """The four ports of quote-to-cash (and amendment propagation), in memory."""

    crm: FakeCrm = field(default_factory=FakeCrm)
    clm: FakeClm = field(default_factory=FakeClm)
    billing: FakeBilling = field(default_factory=FakeBilling)
    erp: FakeErp = field(default_factory=FakeErp)

    def add_deal(self, deal: Deal) -> str:
        self.crm.deals[deal.crm_id] = deal
        return deal.crm_id

    def as_kwargs(self) -> dict[str, Any]:
        return {"crm": self.crm, "clm": self.clm, "billing": self.billing, "erp": self.erp}
