"""Gather the KPIs' facts from the running system and compute them (``canonical/kpis.py`` holds the formulas).

Where each fact comes from (chosen so every figure has one source of truth):

- deals: Temporal visibility lists the ``QuoteToCashWorkflow`` runs of the task queue in settings (``--since``:
  started since), and each
  run's ``status`` query gives its milestones (started, data exception, contract signed, project created,
  billing live, customers created or reused), its entities and the contract's currency;
- amendments: the ``status`` query of each ``ContractAmendmentsWorkflow`` (applied amendments with their
  executed -> propagated cycle time, the entities they were provisioned in);
- invoices: the ``open_items`` query (settled ones included) of each running ``AccountLedgerWorkflow``;
  whether one needed a person (:func:`canonical.kpis.needed_person`) from its ledger entry (ERP writes refused
  or unroutable, payment failures), the ledger's problems and every reconciliation finding naming it (open,
  acknowledged or closed);
- the contract's billing schedule (for "invoices aligned to contract terms"): the executed terms in the
  deal's ``status``, split by entity as provisioning did it (each engagement's project has a task per product
  code of its entity, named after the code), and the terms as amended from the contract's amendment
  propagation ``status``.
- webhook-to-workflow latency: the event ledger, for each delivery Temporal accepted (started or signalled):
  the canonical event's ``occurred_at`` -> the row written once Temporal accepted it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import TypeVar

from sqlmodel import Session
from temporalio.client import Client, WorkflowExecution, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from canonical import EventEnvelope
from canonical.kpis import (
    AmendmentFacts,
    DealFacts,
    DeliveryFacts,
    InvoiceFacts,
    KpiReport,
    compute_kpis,
    contract_billing_items,
    needed_person,
    with_amended_terms,
)
from settings import Settings
from stores.events import EventLedger
from stores.findings import findings_engine, list_findings
from workflows.models import (
    AMENDMENTS_WORKFLOW,
    LEDGER_WORKFLOW,
    ContractAmendmentsStatus,
    LedgerStatus,
    LedgerStatusRequest,
    QuoteToCashStatus,
)

Q2C_WORKFLOW = "QuoteToCashWorkflow"
T = TypeVar("T")


def deal_facts(status: QuoteToCashStatus) -> DealFacts:
    """A quote-to-cash run's milestones as KPI facts."""
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    for m in status.milestones:
        first.setdefault(m.name, m.at)
        last[m.name] = m.at
    entities = [e.legal_entity for e in status.engagements] or ([status.legal_entity] if status.legal_entity else [])
    terms = status.contract.terms if status.contract else None
    entity_of = {task.name.split(" ", 1)[0]: e.legal_entity for e in status.engagements if e.project
                 for task in e.project.tasks}
    default = status.legal_entity or (entities[0] if entities else "")
    schedule = contract_billing_items(terms, entity_of, default) if terms and entities else []
    entities = sorted(set(entities), key=lambda e: (e != default, e))  # the deal's main entity first
    return DealFacts(
        deal_id=status.deal_id, legal_entities=entities, started_at=first.get("started"),
        contract_signed_at=first.get("contract_signed"), project_created_at=first.get("project_created"),
        billing_live_at=last.get("billing_live"), contract_currency=terms.total_value.currency if terms else None,
        schedule=schedule,
        entered_data_exception="data_exception" in first,
        customers_reused=sum(1 for m in status.milestones if m.name == "customer_reused"),
        customers_created=sum(1 for m in status.milestones if m.name == "customer_created"),
        customers_matched=sum(1 for m in status.milestones if m.name == "customer_matched"),
        customer_matches_asked=sum(1 for m in status.milestones if m.name == "customer_match_asked"),
        entity_of_code=entity_of)


def amendment_facts(status: ContractAmendmentsStatus) -> list[AmendmentFacts]:
    entities = sorted({p.legal_entity for p in status.provisioned})
    return [AmendmentFacts(record_id=status.record_id, sequence=h.sequence, legal_entities=entities,
                           executed_at=h.executed_at, cycle_time_seconds=h.cycle_time_seconds)
            for h in status.history if h.outcome == "applied"]


def invoice_facts(status: LedgerStatus, flagged_billing_ids: set[str]) -> list[InvoiceFacts]:
    return [InvoiceFacts(invoice=inv, needs_person=needed_person(inv, problem=status.problems.get(inv.invoice_id),
                                                                 finding=inv.invoice_id in flagged_billing_ids))
            for inv in [*status.open_items, *status.settled_items]]


def _visibility_query(workflow_type: str, task_queue: str, *, since: datetime | None,
                      running_only: bool = False) -> str:
    query = f'WorkflowType = "{workflow_type}" AND TaskQueue = "{task_queue}"'
    if since is not None:
        query += f' AND StartTime >= "{since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}"'
    if running_only:
        query += ' AND ExecutionStatus = "Running"'
    return query


async def _each(client: Client, query: str, ask: Callable[[WorkflowExecution], Awaitable[T | None]], *,
                concurrency: int = 8) -> list[T]:
    """``ask`` every listed workflow (a few at a time); runs that cannot answer are left out."""
    executions = [e async for e in client.list_workflows(query)]
    gate = asyncio.Semaphore(concurrency)

    async def one(execution: WorkflowExecution) -> T | None:
        async with gate:
            try:
                return await ask(execution)
            except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
                return None  # e.g. a run whose history can no longer be queried

    answers = await asyncio.gather(*(one(e) for e in executions))
    return [a for a in answers if a is not None]


async def gather_deals(client: Client, task_queue: str, *, since: datetime | None = None) -> list[DealFacts]:
    async def ask(e: WorkflowExecution) -> DealFacts:
        handle = client.get_workflow_handle(e.id, run_id=e.run_id)
        return deal_facts(await handle.query("status", result_type=QuoteToCashStatus))

    facts = await _each(client, _visibility_query(Q2C_WORKFLOW, task_queue, since=since), ask)
    # a deal has one run unless an operator started it again: keep the latest (visibility lists newest first)
    latest: dict[str, DealFacts] = {}
    for f in facts:
        latest.setdefault(f.deal_id, f)
    return list(latest.values())


async def gather_amendment_statuses(client: Client, task_queue: str) -> list[ContractAmendmentsStatus]:
    """The ``status`` of each contract's running amendment propagation (one run per contract is running;
    earlier runs of its chain handed their history over at continue-as-new)."""
    async def ask(e: WorkflowExecution) -> ContractAmendmentsStatus:
        handle = client.get_workflow_handle(e.id, run_id=e.run_id)
        return await handle.query("status", result_type=ContractAmendmentsStatus)

    return await _each(client, _visibility_query(AMENDMENTS_WORKFLOW, task_queue, since=None, running_only=True), ask)


async def gather_amendments(client: Client, task_queue: str, *, since: datetime | None = None,
                            statuses: list[ContractAmendmentsStatus] | None = None) -> list[AmendmentFacts]:
    found = statuses if statuses is not None else await gather_amendment_statuses(client, task_queue)
    facts = {(a.record_id, a.sequence): a for status in found for a in amendment_facts(status)}
    if since is not None:
        return [a for a in facts.values() if a.executed_at is None or a.executed_at >= since]
    return list(facts.values())


async def gather_ledgers(client: Client, task_queue: str) -> list[LedgerStatus]:
    async def ask(e: WorkflowExecution) -> LedgerStatus:
        handle = client.get_workflow_handle(e.id, run_id=e.run_id)
        return await handle.query("open_items", LedgerStatusRequest(include_settled=True), result_type=LedgerStatus)

    return await _each(client, _visibility_query(LEDGER_WORKFLOW, task_queue, since=None, running_only=True), ask)


def flagged_billing_ids(settings: Settings) -> set[str]:
    """Billing invoices named by a reconciliation finding, whatever its status (one that was raised needed a
    person: to repair, acknowledge or see it close); a finding may name several, comma-separated."""
    engine = findings_engine(settings.findings_database_url)
    try:
        with Session(engine) as session:
            return {i.strip() for f in list_findings(session=session, status=None, limit=1_000_000)
                    for i in (f.billing_id or "").split(",") if i.strip()}
    finally:
        engine.dispose()


def delivery_facts(settings: Settings, *, since: datetime | None = None, limit: int = 50_000) -> list[DeliveryFacts]:
    """Deliveries Temporal accepted, from the event ledger (most recent ``limit``), read through its store: the
    canonical events are kept encrypted with the codec keys."""
    ledger = EventLedger.from_settings(settings)
    try:
        return [DeliveryFacts(vendor=row.vendor, occurred_at=EventEnvelope.model_validate_json(event).event.occurred_at,
                              routed_at=row.received_at)
                for row, event in ledger.handed_over_events(since=since, limit=limit)]
    finally:
        ledger.close()


async def gather_kpis(client: Client, settings: Settings, *, entity: str | None = None,
                      since: datetime | None = None, today: date | None = None) -> KpiReport:
    """Every KPI from the running system (see the module docstring for the sources)."""
    deals, statuses, ledgers = await asyncio.gather(
        gather_deals(client, settings.task_queue, since=since),
        gather_amendment_statuses(client, settings.task_queue), gather_ledgers(client, settings.task_queue))
    amendments = await gather_amendments(client, settings.task_queue, since=since, statuses=statuses)
    flagged = await asyncio.to_thread(flagged_billing_ids, settings)
    deliveries = await asyncio.to_thread(delivery_facts, settings, since=since)
    return kpi_report(settings, deals=deals, amendment_statuses=statuses, amendments=amendments, ledgers=ledgers,
                      flagged=flagged, deliveries=deliveries, entity=entity, since=since,
                      today=today or datetime.now(UTC).date())


def kpi_report(settings: Settings, *, deals: list[DealFacts], amendment_statuses: list[ContractAmendmentsStatus],
               amendments: list[AmendmentFacts], ledgers: list[LedgerStatus], flagged: set[str],
               deliveries: list[DeliveryFacts], today: date, entity: str | None = None,
               since: datetime | None = None) -> KpiReport:
    """The KPIs over the gathered facts (:func:`gather_kpis` gathers them)."""
    # a contract's schedule as amended (the amendment workflow holds the terms in force) joins the signed one
    amended = {s.deal_id: s.terms for s in amendment_statuses if s.deal_id and s.terms is not None and s.history}
    deals = [with_amended_terms(d, amended[d.deal_id]) if d.deal_id in amended else d for d in deals]
    invoices = [f for status in ledgers for f in invoice_facts(status, flagged)]
    return compute_kpis(deals=deals, amendments=amendments, invoices=invoices, deliveries=deliveries,
                        today=today, dso_window_days=settings.ledger_dso_window_days,
                        entity=entity, since=since, tolerance=settings.reconciliation_rounding_tolerance)


__all__ = ["amendment_facts", "deal_facts", "delivery_facts", "flagged_billing_ids", "gather_amendment_statuses",
           "gather_amendments",
           "gather_deals", "gather_kpis", "gather_ledgers", "invoice_facts", "kpi_report"]
