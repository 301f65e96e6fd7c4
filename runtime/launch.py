"""Starting flows by business key: the one place that starts, or signals-with-start, a workflow for a business
event, used by ``starter.py``, the ingress, the deal poll and the benchmarks."""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from canonical import Deal, DomainEvent, EventEnvelope, ref
from canonical.keys import quote_to_cash_workflow_id
from canonical.policy import RoutingError, deal_entity
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
    amendments_workflow_id,
    ledger_workflow_id,
)
from workflows.quote_to_cash import QuoteToCashWorkflow


def quote_to_cash_id(deal_id: str) -> str:
    """Workflow IDs are business keys (DESIGN.md): one quote-to-cash run per HubSpot deal."""
    return quote_to_cash_workflow_id(deal_id)


def deal_summary(deal_id: str, deal: Deal | None, settings: Settings) -> tuple[str, str]:
    """``static_summary`` and ``static_details`` naming the deal, company, amount and entity."""
    if deal is None:
        return f"HubSpot deal {deal_id}", f"Quote-to-cash for HubSpot deal `{deal_id}` (details load on start)."
    company = deal.account.name if deal.account else "no company"
    amount = str(deal.total()) if deal.currency and deal.lines else "amount unknown"
    try:
        entity = deal_entity(deal, settings.legal_entities).code
    except RoutingError:
        entity = "entity undecided"
    summary = f"Deal {deal_id}: {company}, {amount}, {entity}"
    details = "\n".join([
        f"**Deal:** {deal.name} (HubSpot `{deal_id}`)",
        f"**Company:** {company}" + (f" (HubSpot `{deal.account.crm_id}`)" if deal.account else ""),
        f"**Amount:** {amount}",
        f"**Legal entity:** {entity}",
        "**Lines:** " + ", ".join(f"{line.quantity} x {line.name}" for line in deal.lines),
    ])
    return summary[:200], details


async def start_quote_to_cash(client: Client, settings: Settings, deal_id: str, *, deal: Deal | None = None,
                              trigger: str = "manual", source_event_id: str | None = None,
                              reopen: bool = False) -> WorkflowHandle:
    """Start quote-to-cash for a deal, or attach to the run already going for it.

    A deal's outcome is final: once its run has closed (provisioned, rejected, expired, failed) a later
    start is refused (``WorkflowAlreadyStartedError``), so a late or replayed event cannot re-open it.
    ``reopen=True`` is the operator's deliberate act (``starter.py start-deal <id> --reopen``): a new run
    under the same workflow ID."""
    summary, details = deal_summary(deal_id, deal, settings)
    return await client.start_workflow(
        QuoteToCashWorkflow.run,
        QuoteToCashInput(deal_id=deal_id, trigger=trigger, source_event_id=source_event_id),
        id=quote_to_cash_id(deal_id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=(WorkflowIDReusePolicy.ALLOW_DUPLICATE if reopen
                         else WorkflowIDReusePolicy.REJECT_DUPLICATE),
        static_summary=summary,
        static_details=details,
        # Visible from the first moment (the loading steps are local activities that upsert nothing).
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(STAGE, Stage.LOADING.value), SearchAttributePair(EXCEPTION_KIND, ""),
            SearchAttributePair(BUSINESS_KEYS, [ref("hubspot", "deal", deal_id)])]),
    )


async def signal_amendment(client: Client, settings: Settings, record_id: str, *, sequence: int | None,
                           clm_amendment_id: str | None = None, source_event_id: str | None = None,
                           executed_at: datetime | None = None, deal_id: str | None = None) -> WorkflowHandle:
    """Signal-with-start the contract's amendments workflow (``contract-ironclad-<recordId>``): started
    on the first amendment, signalled on every later one; the workflow sorts out order and duplicates."""
    signal = AmendmentSignal(record_id=record_id, sequence=sequence, clm_amendment_id=clm_amendment_id,
                             source_event_id=source_event_id, executed_at=executed_at)
    workflow_id = amendments_workflow_id(record_id)
    return await client.start_workflow(
        ContractAmendmentsWorkflow.run, ContractAmendmentsInput(record_id=record_id, deal_id=deal_id),
        id=workflow_id, task_queue=settings.task_queue, start_signal=AMENDMENT_SIGNAL, start_signal_args=[signal],
        static_summary=f"Amendments of Ironclad contract {record_id}" + (f" (deal {deal_id})" if deal_id else ""),
        static_details=f"Propagates the amendments of Ironclad record `{record_id}` to Xero, Stripe and HubSpot, "
                       "in sequence. Current state: see the run's details.",
    )


async def signal_billing_event(client: Client, settings: Settings, customer_id: str,
                               event: DomainEvent) -> WorkflowHandle:
    """Signal-with-start the billing customer's ledger (``ledger-stripe-<customerId>``) with one event."""
    return await client.start_workflow(
        LEDGER_WORKFLOW, AccountLedgerInput(customer_id=customer_id),
        id=ledger_workflow_id(customer_id), task_queue=settings.task_queue,
        start_signal=LEDGER_SIGNAL, start_signal_args=[EventEnvelope(event=event)],
        static_summary=f"Invoice feedback for Stripe customer {customer_id}")
