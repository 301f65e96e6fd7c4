"""The business steps of reconciliation: bring the mirror of billing and each ERP tenant up to date (a delta
since the last checkpoint, or a periodic full pass), paced under the vendors' rate limits; then compare one
control at a time (receivables per entity, delivery, CRM figures) with the pure rules of
``canonical.reconciliation`` and store each control's findings."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.retrying import business_step
from canonical import BillingScheduleKind, CreditNote, Invoice, InvoiceStatus, LegalEntity, Money
from canonical.amendments import BillingRecordKind
from canonical.books import BooksMapping
from canonical.keys import role_of_time_task
from canonical.ownership import SystemRole
from canonical.project import TaskChargeType
from canonical.reconciliation import (
    BillingChange,
    Delivery,
    EntityProject,
    EntityTotals,
    ErpCreditNote,
    ErpPayment,
    Figures,
    Finding,
    FindingKind,
    ProjectBilling,
    Receivables,
    SourceRead,
    compare_crm_figures,
    compare_delivery,
    compare_receivables,
    compare_unroutable,
    expected_figures,
    figures_command,
    finding,
    project_prefix,
)
from canonical.systems import Systems
from canonical.time_billing import BilledTime, BillingPeriod, approved_entries, time_findings
from connectors.errors import NotFound, RateLimited, Rejected
from connectors.pacing import Pacer
from connectors.ports import (
    BillingFeed,
    BillingPort,
    BillingTime,
    ClmPort,
    CrmFigures,
    ErpChangeFeed,
    ErpProjects,
    ErpTimesheets,
)
from connectors.registry import AdapterRegistry, default_registry
from settings import Settings
from stores import mirror as mirror_store
from stores.findings import RunOutcome, record_run

T = TypeVar("T")
MAX_RATE_LIMITED_RETRIES = 20
CLOCK_SKEW = timedelta(seconds=5)  # how far our clock and a vendor's may disagree
FINDINGS_RETURNED = 200  # per control, in the workflow result; the store holds them all


#: schedule kinds whose invoices are period invoices of a subscription (checked by their items)
RECURRING_KINDS = frozenset({BillingScheduleKind.SUBSCRIPTION.value, BillingScheduleKind.RETAINER.value})
#: the month's invoice of a project's logged time: no part of the contract's one-off total
TIME_KIND = BillingScheduleKind.TIME_AND_MATERIALS.value


class ReconciliationSettings(BaseModel):
    """The settings reconciliation's reads and controls need (from ``Settings`` in the composition root)."""

    legal_entities: list[LegalEntity]
    reconciliation_full_pass_hours: float = 168
    systems: Systems
    billing_requests_per_second: float = 20
    erp_requests_per_second: dict[str, float] = Field(default_factory=dict, description="legal entity -> pace")
    crm_requests_per_second: float = 8
    books: BooksMapping = Field(default_factory=BooksMapping, description="the accounts and tax codes the ERP's "
                                "invoice lines must carry (BOOKS_MAPPING)")

    @classmethod
    def from_settings(cls, settings: Settings, registry: AdapterRegistry | None = None) -> ReconciliationSettings:
        """Entities and full-pass age from ``settings``; each adapter's pace from its own settings."""
        registry = registry or default_registry(settings)
        return cls(legal_entities=settings.legal_entities,
                   reconciliation_full_pass_hours=settings.reconciliation_full_pass_hours,
                   systems=registry.systems(settings),
                   billing_requests_per_second=registry.rate_limits(settings, SystemRole.BILLING).reads_per_second,
                   erp_requests_per_second={e.code: registry.rate_limits(settings, SystemRole.ERP, e).reads_per_second
                                            for e in settings.legal_entities},
                   crm_requests_per_second=registry.rate_limits(settings, SystemRole.CRM).reads_per_second,
                   books=settings.books_mapping)

    @property
    def billing_source(self) -> str:
        """The mirror's name of the billing system's documents."""
        return self.systems.billing.name

    def erp_source(self, entity_code: str) -> str:
        """The mirror's name of one entity's ERP documents (``<erp>:<entity>``)."""
        return f"{self.systems.erp_of(entity_code).name}:{entity_code}"

    def erp_rate(self, entity_code: str) -> float:
        return self.erp_requests_per_second.get(entity_code, 1.0)


class SyncRequest(BaseModel):
    """Bring one source of the mirror up to date: billing or one entity's ERP tenant."""

    entity: LegalEntity | None = Field(default=None, description="None: billing")
    full: bool | None = Field(default=None, description="None: full when the last full pass is old enough")


SyncResult = SourceRead


class ControlRequest(BaseModel):
    """One control of one run: ``receivables`` (of ``entity``), ``delivery`` or ``crm``."""

    control: str
    scope: str
    run_id: str
    entity: LegalEntity | None = None
    entities: list[LegalEntity] = Field(default_factory=list)
    all_entities: bool = True
    customer_ids: list[str] = Field(default_factory=list)
    deal_ids: list[str] = Field(default_factory=list)
    rounding_tolerance: Decimal = Decimal("0.01")


class ControlResult(BaseModel):
    section: str
    outcome: RunOutcome
    findings: list[Finding] = Field(default_factory=list, description=f"at most {FINDINGS_RETURNED}")
    findings_total: int = 0
    totals: list[EntityTotals] = Field(default_factory=list)
    requests: int = 0


class PacedReads:
    """Reads spaced by the shared :class:`Pacer` (none at a rate of 0), counted; a 429 waits the vendor's
    Retry-After and asks again (a read is safe to repeat)."""

    def __init__(self, per_second: float) -> None:
        self._pacer = Pacer(per_second) if per_second > 0 else None
        self.requests = 0
        self.rate_limited = 0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        for _ in range(MAX_RATE_LIMITED_RETRIES):
            if self._pacer is not None:
                await self._pacer.take()
            self.requests += 1
            try:
                return await fn()
            except RateLimited as exc:
                self.rate_limited += 1
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None else 1.0)
        return await fn()


def _not_found(kind: str, values: list[str], known: list[str]) -> ApplicationError:
    return ApplicationError(f"unknown {kind} {', '.join(values)}" + (f"; known: {', '.join(known)}" if known else ""),
                            type=f"Unknown{kind.title().replace(' ', '')}", non_retryable=True)


class ReconciledErp(ErpProjects, ErpChangeFeed, Protocol):
    """What reconciliation reads of the ERP: the projects and the receivables change feed."""


class ReconciliationActivities:
    """Activities of the reconciliation flow (built in worker.py with their connectors)."""

    def __init__(self, *, settings: ReconciliationSettings, clm: ClmPort, billing: BillingPort, erp: ReconciledErp,
                 findings: Engine, mirror: Engine, crm: CrmFigures | None = None) -> None:
        self.settings = settings
        self.clm = clm
        self.billing = billing
        self.erp = erp
        self.crm = crm
        self.findings = findings
        self.mirror = mirror

    # -- reading: the mirror brought up to date -----------------------------------------------------
    def _mode(self, source: str, full: bool | None) -> tuple[str, datetime | None]:
        with Session(self.mirror) as session:
            mark = mirror_store.checkpoint(session, source)
        if full or mark is None:
            return "full", None
        age = datetime.now(UTC) - mark.full_at.replace(tzinfo=UTC)
        if full is None and age >= timedelta(hours=self.settings.reconciliation_full_pass_hours):
            return "full", None
        return "delta", mark.read_at.replace(tzinfo=UTC)

    @activity.defn(name="sync_reconciliation_source")
    @business_step
    async def sync_source(self, request: SyncRequest) -> SyncResult:
        """Read what changed in billing or one ERP tenant since the checkpoint (or everything) into the mirror."""
        entity = request.entity
        source = self.settings.billing_source if entity is None else self.settings.erp_source(entity.code)
        mode, since = self._mode(source, request.full)
        rate = (self.settings.billing_requests_per_second if entity is None
                else self.settings.erp_rate(entity.code))
        pacer = PacedReads(rate)
        if entity is None:
            docs, read_at = await self._read_billing(pacer, since)
        else:
            docs, read_at = await self._read_erp(pacer, entity, since)

        def write() -> int:
            with Session(self.mirror) as session:
                if mode == "full":
                    kinds = ("customer", "invoice", "credit_note") if entity is None else (
                        "invoice", "payment", "credit_note")
                    return mirror_store.replace_source(session, source, kinds,
                                                 [(k, i, b) for k, i, b in docs if b is not None], read_at=read_at)
                return mirror_store.apply_changes(session, source, docs, read_at=read_at)

        count = await asyncio.to_thread(write)
        return SyncResult(source=source, mode=mode, documents=count, requests=pacer.requests,
                          rate_limited=pacer.rate_limited, read_at=read_at)

    async def _read_billing(self, pacer: PacedReads, since: datetime | None
                            ) -> tuple[list[tuple[str, str, str | None]], datetime]:
        """The changed (or all) billing objects, and the checkpoint to read from next time: the newest change
        billing reported, on billing's clock (``created[gte]`` then re-reads at most that second)."""
        feed: BillingFeed = self.billing  # type: ignore[assignment]
        through = since
        if since is None:
            through = await pacer.call(feed.latest_change_at) or datetime.now(UTC)
        changes: dict[tuple[str, str], BillingChange] = {}
        charges: dict[str, set[str]] = defaultdict(set)
        stamps: list[datetime] = []

        async def drain(fetch: Callable[[str | None], Awaitable[tuple[list[BillingChange], str | None]]],
                        label: str) -> None:
            cursor: str | None = None
            pages = 0
            while True:
                page, cursor = await pacer.call(lambda c=cursor: fetch(c))  # type: ignore[misc]
                pages += 1
                for change in page:  # newest first: the first seen of an object is how it stands now
                    changes.setdefault((change.object, change.id), change)
                    if change.changed_at:
                        stamps.append(change.changed_at)
                    if change.invoice is not None:
                        charges[change.id].update(change.invoice.payment_ids)
                activity.heartbeat(f"{label}: {pages} page(s)")
                if cursor is None:
                    return

        if since is None:
            await drain(feed.customers_page, "customers")
            await drain(feed.invoices_page, "invoices")
            await drain(feed.credit_notes_page, "credit notes")
        else:
            await drain(lambda c: feed.changes_page(since, c), "events")
            # the newest event about an object carries the object as it stands; an event about something else
            # (an item added to a draft after invoice.created) only names its invoice: read those
            done = 0
            for ident, change in list(changes.items()):
                if not change.stands:
                    changes[ident] = await pacer.call(lambda c=change: feed.current(c))  # type: ignore[misc]
                    done += 1
                    if done % 100 == 0:
                        activity.heartbeat(f"changed objects: {done} read")
                    if changes[ident].invoice is not None:
                        charges[ident[1]].update(changes[ident].invoice.payment_ids)  # type: ignore[union-attr]
        through = max([*stamps, *([through] if through else [])], default=None)
        # a payment seen once stays known (Stripe's invoice shows only its latest charge)
        known = await asyncio.to_thread(self._known_charges, [i for k, i in changes if k == "invoice"])
        out: list[tuple[str, str, str | None]] = []
        for (kind, object_id), change in changes.items():
            if change.deleted:
                out.append((kind, object_id, None))
                continue
            if change.invoice is not None:
                ids = sorted(charges[object_id] | known.get(object_id, set()))
                change = change.model_copy(update={"invoice": change.invoice.model_copy(update={"payment_ids": ids})})
            if change.invoice is None and change.credit_note is None and kind != "customer":
                continue  # nothing read of it (an item event of an invoice gone since)
            out.append((kind, object_id, change.model_dump_json()))
        return out, through or datetime.now(UTC)

    def _known_charges(self, invoice_ids: list[str]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with Session(self.mirror) as session:
            for invoice_id in invoice_ids:
                held = mirror_store.document(session, self.settings.billing_source, "invoice", invoice_id)
                if held is not None:
                    change = BillingChange.model_validate_json(held.body)
                    if change.invoice is not None and change.invoice.payment_ids:
                        found[invoice_id] = set(change.invoice.payment_ids)
        return found

    async def _read_erp(self, pacer: PacedReads, entity: LegalEntity, since: datetime | None
                        ) -> tuple[list[tuple[str, str, str | None]], datetime]:
        """The tenant's changed (or all) receivables, and the checkpoint for next time: the latest
        ``UpdatedDateUTC`` seen, on Xero's clock (``If-Modified-Since`` has whole seconds, so nothing is lost),
        but never after the read began (less a margin for clock skew): a document changed while later pages
        were read may carry an earlier stamp than the newest seen, and must be read again next time."""
        started = datetime.now(UTC) - CLOCK_SKEW
        through = since
        feed: ErpChangeFeed = self.erp
        tenant = entity.erp_tenant_id
        out: list[tuple[str, str, str | None]] = []
        readers: list[tuple[str, Callable[[str | None], Awaitable[tuple[list[Invoice], str | None]]]
                                  | Callable[[str | None], Awaitable[tuple[list[ErpPayment], str | None]]]
                                  | Callable[[str | None], Awaitable[tuple[list[ErpCreditNote], str | None]]]]] = [
            ("invoice", lambda c: feed.invoices_page(tenant, c, modified_since=since)),
            ("payment", lambda c: feed.payments_page(tenant, c, modified_since=since)),
            ("credit_note", lambda c: feed.credit_notes_page(tenant, c, modified_since=since)),
        ]
        for kind, fetch in readers:
            cursor: str | None = None
            pages = 0
            while True:
                items, cursor = await pacer.call(lambda: fetch(cursor))  # noqa: B023 - awaited at once
                pages += 1
                for item in items:  # type: ignore[attr-defined]
                    doc_id = (item.metadata.get("erp_invoice_id", "") if isinstance(item, Invoice)
                              else item.erp_id)
                    stamp = (datetime.fromisoformat(item.metadata["erp_updated_at"])
                             if isinstance(item, Invoice) and item.metadata.get("erp_updated_at")
                             else getattr(item, "updated_at", None))
                    if stamp is not None and (through is None or stamp > through):
                        through = stamp
                    out.append((kind, doc_id, item.model_dump_json()))
                activity.heartbeat(f"{entity.code} {kind}s: {pages} page(s)")
                if cursor is None:
                    break
        if through is None or through > started:
            through = max(started, since) if since else started
        return out, through

    # -- comparing ------------------------------------------------------------------------------
    def _billing(self) -> tuple[list[Invoice], list[CreditNote], dict[str, BillingChange]]:
        with Session(self.mirror) as session:
            invoices = [BillingChange.model_validate_json(d.body).invoice for d in mirror_store.documents(
                session, self.settings.billing_source, "invoice")]
            notes = [BillingChange.model_validate_json(d.body).credit_note for d in mirror_store.documents(
                session, self.settings.billing_source, "credit_note")]
            customers = {d.doc_id: BillingChange.model_validate_json(d.body)
                         for d in mirror_store.documents(session, self.settings.billing_source, "customer")}
        return [i for i in invoices if i], [n for n in notes if n], customers

    @staticmethod
    def _entity_of(invoice: Invoice, customers: dict[str, BillingChange]) -> str:
        held = customers.get(invoice.customer_id)
        return invoice.legal_entity or (held.legal_entity if held else "")

    def _check_customers(self, wanted: list[str], customers: dict[str, BillingChange]) -> None:
        unknown = [c for c in wanted if c not in customers or customers[c].deleted]
        if unknown:
            raise _not_found("billing customer", unknown, [])

    def _record(self, request: ControlRequest, section: str, findings: list[Finding]) -> RunOutcome:
        with Session(self.findings) as session:
            return record_run(session=session, scope=request.scope, run_id=request.run_id, findings=findings,
                              now=datetime.now(UTC), section=section)

    def _result(self, request: ControlRequest, section: str, findings: list[Finding], **extra: object
                ) -> ControlResult:
        outcome = self._record(request, section, findings)
        return ControlResult(section=section, outcome=outcome, findings=findings[:FINDINGS_RETURNED],
                             findings_total=len(findings), **extra)  # type: ignore[arg-type]

    @activity.defn(name="reconcile_receivables")
    @business_step
    async def reconcile_receivables(self, request: ControlRequest) -> ControlResult:
        """One entity: billing invoices, payments and credit notes against its ERP tenant, both ways."""
        entity = request.entity
        assert entity is not None, "receivables are compared per entity"

        def compare() -> ControlResult:
            invoices, notes, customers = self._billing()
            self._check_customers(request.customer_ids, customers)
            wanted = set(request.customer_ids)
            billing = [i for i in invoices if self._entity_of(i, customers) == entity.code
                       and (not wanted or i.customer_id in wanted)]
            refs = {i.billing_id for i in billing}
            with Session(self.mirror) as session:
                source = self.settings.erp_source(entity.code)
                erp = [Invoice.model_validate_json(d.body) for d in mirror_store.documents(session, source, "invoice")]
                payments = [ErpPayment.model_validate_json(d.body) for d in mirror_store.documents(session, source,
                                                                                              "payment")]
                erp_notes = [ErpCreditNote.model_validate_json(d.body)
                             for d in mirror_store.documents(session, source, "credit_note")]
            billing_notes = [n for n in notes if n.invoice_billing_id in refs]
            if wanted:  # a scoped run looks only at the ERP documents of its billing invoices
                erp = [d for d in erp if d.billing_id in refs]
                erp_ids = {d.metadata.get("erp_invoice_id") for d in erp}
                charge_ids = {p for i in billing for p in i.payment_ids}
                payments = [p for p in payments if p.erp_invoice_id in erp_ids or p.reference in charge_ids]
                note_ids = {n.billing_id for n in billing_notes}
                erp_notes = [n for n in erp_notes if n.reference in note_ids or set(n.erp_invoice_ids) & erp_ids]
            data = Receivables(billing_invoices=billing, billing_credit_notes=billing_notes, erp_invoices=erp,
                               erp_payments=payments, erp_credit_notes=erp_notes)
            books = next((b for b in self.settings.books.entities if b.entity == entity.code), None)
            findings, totals = compare_receivables(entity.code, data, tolerance=request.rounding_tolerance,
                                                   systems=self.settings.systems, books=books)
            if request.all_entities and request.entities and request.entities[0].code == entity.code:
                # invoices no entity holds belong to no entity's receivables: the first one's control reports them
                findings += compare_unroutable(
                    [i for i in invoices if not wanted or i.customer_id in wanted],
                    known_entities={e.code for e in self.settings.legal_entities},
                    entity_of=lambda i: self._entity_of(i, customers), systems=self.settings.systems)
            return self._result(request, f"receivables:{entity.code}", findings, totals=totals)

        return await asyncio.to_thread(compare)

    @activity.defn(name="reconcile_delivery")
    @business_step
    async def reconcile_delivery(self, request: ControlRequest) -> ControlResult:
        """Executed contracts -> projects in the right entity -> billing schedules equal to the contract (as
        amended) for every billing model (one-off invoices, subscription and retainer items over the term,
        time-and-materials rates); projects without a contract or billing. Projects of every entity are read,
        findings kept to the scope."""
        pacer = PacedReads(min([self.settings.erp_rate(e.code) for e in self.settings.legal_entities] or [1.0]))
        deal_ids = request.deal_ids or None
        contracts = await self.clm.list_executed_records(deal_ids=deal_ids)
        projects: list[EntityProject] = []
        for entity in self.settings.legal_entities:
            found = await pacer.call(lambda e=entity: self.erp.list_projects(e.erp_tenant_id))  # type: ignore[misc]
            projects += [EntityProject(entity=entity.code, project=p) for p in found]
        if deal_ids:
            prefixes = tuple(project_prefix(d) for d in deal_ids)
            projects = [p for p in projects if p.project.code.startswith(prefixes)]
        recurring = await self.billing.billing_records_by_project()
        invoices, _notes, _customers = await asyncio.to_thread(self._billing)
        billing: dict[str, ProjectBilling] = {}
        for code, records in recurring.items():
            ids = [r.subscription_id or r.billing_id for r in records]
            billing[code] = ProjectBilling(billing_ids=list(dict.fromkeys(ids)), recurring=True, records=records)
        for inv in invoices:
            project_code = inv.metadata.get("revops_project")
            if not project_code or inv.status is InvoiceStatus.VOID:
                continue
            if inv.metadata.get("revops_schedule_kind") in RECURRING_KINDS | {TIME_KIND}:
                continue  # a period invoice (subscription, retainer, logged time): its items are checked instead
            held = billing.setdefault(project_code, ProjectBilling())
            held.billing_ids.append(inv.billing_id)
            held.invoiced = (held.invoiced or Money.zero(inv.currency)) + inv.subtotal
        data = Delivery(contracts=contracts, projects=projects, billing=billing)
        findings = compare_delivery([e.code for e in request.entities], data, tolerance=request.rounding_tolerance,
                                    systems=self.settings.systems, unattributed=request.all_entities)
        return await asyncio.to_thread(self._result, request, "delivery", findings, requests=pacer.requests)

    @activity.defn(name="reconcile_time")
    @business_step
    async def reconcile_time(self, request: ControlRequest) -> ControlResult:
        """One entity's time-and-materials projects (those billing holds rate-card prices for): every approved
        time entry worked in a closed period (before this month) billed once (``time_not_billed``,
        ``time_billed_twice``, ``canonical.time_billing.time_findings``)."""
        entity = request.entity
        assert entity is not None, "logged time is compared per entity"
        pacer = PacedReads(self.settings.erp_rate(entity.code))
        tenant = entity.erp_tenant_id
        findings: list[Finding] = []
        if not isinstance(self.erp, ErpTimesheets) or not isinstance(self.billing, BillingTime):
            return await asyncio.to_thread(self._result, request, f"time:{entity.code}", findings)
        rated = {code for code, records in (await self.billing.billing_records_by_project()).items()
                 if any(r.kind is BillingRecordKind.RATE for r in records)}
        projects = [p for p in await pacer.call(lambda: self.erp.list_projects(tenant, include_closed=True))
                    if p.code in rated and p.erp_id]
        if request.deal_ids:
            prefixes = tuple(project_prefix(d) for d in request.deal_ids)
            projects = [p for p in projects if p.code.startswith(prefixes)]
        invoices, _notes, _customers = await asyncio.to_thread(self._billing)
        customer_of = {i.metadata.get("revops_project"): i.customer_id for i in invoices}
        closed_before = BillingPeriod.month_of(datetime.now(UTC).date()).start  # this month is not billed yet
        for listed in projects:
            project_id = listed.erp_id or ""
            try:
                project = await pacer.call(lambda i=project_id: self.erp.get_project(tenant, i))  # type: ignore[misc]
                entries = await pacer.call(lambda i=project_id: self.erp.time_entries(tenant, i))  # type: ignore
            except TypeError:  # this entity's ERP keeps no timesheets (the router says so per tenant)
                break
            rates = {role: t.rate for t in project.tasks if t.charge_type is TaskChargeType.TIME
                     and (role := role_of_time_task(t.name)) is not None}
            approved = approved_entries(entries, project.tasks, rates, before=closed_before)
            customer = customer_of.get(project.code)
            billed: list[BilledTime] = (await self.billing.billed_time(customer, project.code)
                                        if customer else [])
            findings += time_findings(entity.code, project.code, [e.erp_id or "" for e, _ in approved], billed,
                                      billed_through=closed_before,
                                      approved_dates={e.erp_id or "": e.date for e, _ in approved})
        return await asyncio.to_thread(self._result, request, f"time:{entity.code}", findings,
                                       requests=pacer.requests)

    @activity.defn(name="reconcile_crm_figures")
    @business_step
    async def reconcile_crm_figures(self, request: ControlRequest) -> ControlResult:
        """Billed / paid / outstanding / overdue / credited on each CRM company and deal against billing."""
        invoices, notes, customers = await asyncio.to_thread(self._billing)
        self._check_customers(request.customer_ids, customers)
        codes = {e.code for e in request.entities}
        wanted, deals_wanted = set(request.customer_ids), set(request.deal_ids)
        today = datetime.now(UTC).date()
        by_company: dict[str, list[Invoice]] = defaultdict(list)
        by_deal: dict[str, list[Invoice]] = defaultdict(list)
        # a CRM object billed from several entities (a split customer or deal) belongs to each of them: an entity's
        # run compares it; its findings carry one entity whatever the scope (the first code), so the key is one
        entities_of: dict[str, set[str]] = defaultdict(set)
        for inv in invoices:
            customer = customers.get(inv.customer_id)
            entity = self._entity_of(inv, customers)
            if customer is None or (wanted and inv.customer_id not in wanted):
                continue
            if customer.company_id:
                by_company[customer.company_id].append(inv)
                entities_of[f"company:{customer.company_id}"].add(entity)
            if inv.crm_deal_id:
                by_deal[inv.crm_deal_id].append(inv)
                entities_of[f"deal:{inv.crm_deal_id}"].add(entity)
        if deals_wanted:
            by_deal = defaultdict(list, {d: v for d, v in by_deal.items() if d in deals_wanted})
            by_company = defaultdict(list)
        def entity_of(subject: str) -> str:
            return min(entities_of[subject] & known, default="") or min(entities_of[subject], default="")

        known = {e.code for e in self.settings.legal_entities}
        findings: list[Finding] = []
        pacer = PacedReads(self.settings.crm_requests_per_second)
        crm, billing_system = self.settings.systems.crm, self.settings.systems.billing
        for object_type, groups in (("companies", by_company), ("deals", by_deal)):
            label = "company" if object_type == "companies" else "deal"
            groups = {k: v for k, v in groups.items() if entities_of.get(f"{label}:{k}", set()) & codes}
            expected = {k: expected_figures(v, notes, today=today) for k, v in groups.items()}
            ids = sorted(k for k, v in expected.items() if v)
            currencies = sorted({c for v in expected.values() for c in v})
            actual: dict[str, dict[str, Figures]] = {}
            refused: dict[str, str] = {}
            for start in range(0, len(ids), 100):
                chunk = ids[start:start + 100]
                try:
                    actual.update(await pacer.call(
                        lambda c=chunk, t=object_type, m=currencies: self._crm().read_figures(t, c, m)))  # type: ignore[misc]
                except (Rejected, NotFound):
                    # one reference the CRM refuses (typed by hand in billing) must not stop the control:
                    # read that chunk one by one and report the refused ones
                    for object_id in chunk:
                        try:
                            actual.update(await pacer.call(
                                lambda c=[object_id], t=object_type, m=currencies:  # type: ignore[misc]
                                self._crm().read_figures(t, c, m)))
                        except (Rejected, NotFound) as exc:
                            refused[object_id] = str(exc)
            for object_id, reason in refused.items():
                refs = [billing_system.ref("invoice", i.billing_id) for i in groups[object_id]][:20]
                findings.append(finding(
                    FindingKind.CRM_FIGURES_MISMATCH, entity_of(f"{label}:{object_id}"), crm.ref(label, object_id),
                    crm_id=object_id, refs=refs, detail=f"the CRM refused the {label} reference: {reason}",
                    repair=f"correct the {label} reference on the billing invoices (metadata revops_deal_id)"))
            for object_id in ids:
                if object_id in refused:
                    continue
                refs = [billing_system.ref("invoice", i.billing_id) for i in groups[object_id]][:20]
                ledger_of = min(i.customer_id for i in groups[object_id])
                findings += compare_crm_figures(entity_of(f"{label}:{object_id}"), crm.ref(label, object_id),
                                                expected[object_id], actual.get(object_id, {}),
                                                tolerance=request.rounding_tolerance, refs=refs,
                                                repair=figures_command(self.settings.systems, ledger_of))
        return await asyncio.to_thread(self._result, request, "crm", findings, requests=pacer.requests)

    def _crm(self) -> CrmFigures:
        if self.crm is None:
            raise ApplicationError("reconciliation has no CRM connector", type="Misconfigured", non_retryable=True)
        return self.crm

    def all(self) -> list[Callable[..., Any]]:
        return [self.sync_source, self.reconcile_receivables,
                self.reconcile_delivery, self.reconcile_time, self.reconcile_crm_figures]


__all__ = ["ControlRequest", "ControlResult", "Pacer", "ReconciliationActivities", "ReconciliationSettings",
           "SyncRequest", "SyncResult"]
