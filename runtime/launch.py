"""Starting flows by business key: the one place that starts, or signals-with-start, a workflow for a business
event, used by ``starter.py``, the ingress, the deal poll and the benchmarks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from canonical import Deal, DomainEvent, EventEnvelope
from canonical.keys import amendments_workflow_id, ledger_workflow_id, quote_to_cash_workflow_id
from canonical.policy import RoutingError, deal_entity
from canonical.systems import Systems
from connectors.registry import crm_deal_id, systems_of
from runtime.attributes import BUSINESS_KEYS, EXCEPTION_KIND, STAGE
from settings import Settings
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.models import (
    AMENDMENT_SIGNAL,
    LEDGER_SIGNAL,
    LEDGER_WORKFLOW,
    AccountLedgerInput,
    AmendmentSignal,
    ContractAmendmentsInput,
    QuoteToCashInput,
    Stage,
)
from workflows.quote_to_cash import QuoteToCashWorkflow


def quote_to_cash_id(settings: Settings, deal_id: str) -> str:
    """Workflow IDs are business keys (DESIGN.md): one quote-to-cash run per deal of the configured CRM (the deal ID
    in the CRM's canonical form, so two spellings of one ID name one run)."""
    return quote_to_cash_workflow_id(systems_of(settings).crm.name, crm_deal_id(settings, deal_id))


def amendments_id(settings: Settings, record_id: str) -> str:
    """One amendments workflow per contract record of the configured CLM."""
    return amendments_workflow_id(systems_of(settings).clm.name, record_id)


def ledger_id(settings: Settings, customer_id: str) -> str:
    """One ledger per customer of the configured billing system."""
    return ledger_workflow_id(systems_of(settings).billing.name, customer_id)


def deal_summary(deal_id: str, deal: Deal | None, settings: Settings) -> tuple[str, str]:
    """``static_summary`` and ``static_details`` naming the deal, company, amount and entity."""
    crm = systems_of(settings).crm.display
    if deal is None:
        return f"{crm} deal {deal_id}", f"Quote-to-cash for {crm} deal `{deal_id}` (details load on start)."
    company = deal.account.name if deal.account else "no company"
    amount = str(deal.total()) if deal.currency and deal.lines else "amount unknown"
    try:
        entity = deal_entity(deal, settings.legal_entities, systems_of(settings).erp).code
    except RoutingError:
        entity = "entity undecided"
    summary = f"Deal {deal_id}: {company}, {amount}, {entity}"
    details = "\n".join([
        f"**Deal:** {deal.name} ({crm} `{deal_id}`)",
        f"**Company:** {company}" + (f" ({crm} `{deal.account.crm_id}`)" if deal.account else ""),
        f"**Amount:** {amount}",
        f"**Legal entity:** {entity}",
        "**Lines:** " + ", ".join(f"{line.quantity} x {line.name}" for line in deal.lines),
    ])
    return summary[:200], details


@dataclass(frozen=True)
class Launched:
    """What a launch did: ``started`` is True when this call created the run, False when it attached to (or
    signalled) the run already going. Read from public answers only: a refused start for a running run, or a
    signal that found its run (the SDK keeps the server's own ``started`` flag private, sdk-python has no
    accessor for it)."""

    handle: WorkflowHandle[Any, Any]
    started: bool


async def launch_quote_to_cash(client: Client, settings: Settings, deal_id: str, *, deal: Deal | None = None,
                               trigger: str = "manual", source_event_id: str | None = None,
                               reopen: bool = False) -> Launched:
    """Start quote-to-cash for a deal, or attach to the run already going for it.

    A deal's outcome is final: once its run has closed (provisioned, rejected, expired, failed) a later
    start is refused (``WorkflowAlreadyStartedError``), so a late or replayed event cannot re-open it.
    ``reopen=True`` is the operator's deliberate act (``starter.py start-deal <id> --reopen``): a new run
    under the same workflow ID.

    The start asks the server to refuse a running duplicate (conflict policy FAIL); the refusal names the
    running run, which this call then attaches to, so the caller learns whether it started anything."""
    deal_id = crm_deal_id(settings, deal_id)
    summary, details = deal_summary(deal_id, deal, settings)
    workflow_id = quote_to_cash_id(settings, deal_id)
    try:
        handle = await _start_quote_to_cash(client, settings, deal_id, trigger=trigger,
                                            source_event_id=source_event_id, reopen=reopen, summary=summary,
                                            details=details)
    except WorkflowAlreadyStartedError as refused:
        running = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id, run_id=refused.run_id)
        try:
            description = await running.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                raise refused from None
            raise
        if description.status is not WorkflowExecutionStatus.RUNNING:
            raise  # the deal's run has closed: its outcome stands
        return Launched(running, started=False)
    return Launched(handle, started=True)


async def start_quote_to_cash(client: Client, settings: Settings, deal_id: str, *, deal: Deal | None = None,
                              trigger: str = "manual", source_event_id: str | None = None,
                              reopen: bool = False) -> WorkflowHandle[Any, Any]:
    """:func:`launch_quote_to_cash` for callers that need only the run's handle."""
    launched = await launch_quote_to_cash(client, settings, deal_id, deal=deal, trigger=trigger,
                                          source_event_id=source_event_id, reopen=reopen)
    return launched.handle


async def _start_quote_to_cash(client: Client, settings: Settings, deal_id: str, *, trigger: str,
                               source_event_id: str | None, reopen: bool, summary: str,
                               details: str) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        QuoteToCashWorkflow.run,
        QuoteToCashInput(deal_id=deal_id, trigger=trigger, source_event_id=source_event_id),
        id=quote_to_cash_id(settings, deal_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if reopen
                         else WorkflowIDReusePolicy.REJECT_DUPLICATE),
        static_summary=summary,
        static_details=details,
        # Visible from the first moment (the loading steps are local activities that upsert nothing).
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(STAGE, Stage.LOADING.value), SearchAttributePair(EXCEPTION_KIND, ""),
            SearchAttributePair(BUSINESS_KEYS, [systems_of(settings).crm.ref("deal", deal_id)])]),
    )


async def _signal_or_start(client: Client, workflow_id: str, signal: str, arg: Any,
                           start: Callable[[], Awaitable[WorkflowHandle[Any, Any]]]) -> Launched:
    """Signal the running run of ``workflow_id``; when there is none, signal-with-start it.

    Two calls instead of one for the first event of a key, so the answer says which happened. Should
    another process start the run between the two, the signal-with-start still delivers the signal (once):
    only ``started`` is then claimed for a run the other process made."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        await handle.signal(signal, arg)
    except RPCError as exc:
        if exc.status is not RPCStatusCode.NOT_FOUND:  # none running (never started, or closed)
            raise
        return Launched(await start(), started=True)
    return Launched(handle, started=False)


async def launch_amendment(client: Client, settings: Settings, record_id: str, *, sequence: int | None,
                           clm_amendment_id: str | None = None, source_event_id: str | None = None,
                           executed_at: datetime | None = None, deal_id: str | None = None) -> Launched:
    """Signal the contract's amendments workflow (``contract-<clm>-<recordId>``), starting it on the
    first amendment; the workflow sorts out order and duplicates."""
    signal = AmendmentSignal(record_id=record_id, sequence=sequence, clm_amendment_id=clm_amendment_id,
                             source_event_id=source_event_id, executed_at=executed_at)
    workflow_id = amendments_id(settings, record_id)
    systems = systems_of(settings)

    async def start() -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(
            ContractAmendmentsWorkflow.run, ContractAmendmentsInput(record_id=record_id, deal_id=deal_id),
            id=workflow_id, task_queue=settings.task_queue, start_signal=AMENDMENT_SIGNAL,
            start_signal_args=[signal],
            static_summary=f"Amendments of {systems.clm.label} contract {record_id}"
                           + (f" (deal {deal_id})" if deal_id else ""),
            static_details=_amendments_details(systems, record_id),
        )

    launched = await _signal_or_start(client, workflow_id, AMENDMENT_SIGNAL, signal, start)
    typed = client.get_workflow_handle_for(ContractAmendmentsWorkflow.run, workflow_id,
                                           run_id=launched.handle.run_id)
    return Launched(typed, launched.started)


def _amendments_details(systems: Systems, record_id: str) -> str:
    erps = ", ".join(sorted({s.display for s in systems.erp.values()})) or "the ERP"
    return (f"Propagates the amendments of {systems.clm.display} record `{record_id}` to {erps}, "
            f"{systems.billing.display} and {systems.crm.display}, in sequence. Current state: see the run's details.")


async def signal_amendment(client: Client, settings: Settings, record_id: str, *, sequence: int | None,
                           clm_amendment_id: str | None = None, source_event_id: str | None = None,
                           executed_at: datetime | None = None, deal_id: str | None = None
                           ) -> WorkflowHandle[Any, Any]:
    """:func:`launch_amendment` for callers that need only the run's handle."""
    launched = await launch_amendment(client, settings, record_id, sequence=sequence,
                                      clm_amendment_id=clm_amendment_id, source_event_id=source_event_id,
                                      executed_at=executed_at, deal_id=deal_id)
    return launched.handle


async def launch_billing_event(client: Client, settings: Settings, customer_id: str, event: DomainEvent) -> Launched:
    """Signal the billing customer's ledger (``ledger-<billing>-<customerId>``) with one event, starting it
    when none is running."""
    workflow_id = ledger_id(settings, customer_id)
    billing = systems_of(settings).billing
    envelope = EventEnvelope(event=event)

    async def start() -> WorkflowHandle[Any, Any]:
        return await client.start_workflow(
            LEDGER_WORKFLOW, AccountLedgerInput(customer_id=customer_id),
            id=workflow_id, task_queue=settings.task_queue,
            start_signal=LEDGER_SIGNAL, start_signal_args=[envelope],
            static_summary=f"Invoice feedback for {billing.label} customer {customer_id}")

    return await _signal_or_start(client, workflow_id, LEDGER_SIGNAL, envelope, start)
