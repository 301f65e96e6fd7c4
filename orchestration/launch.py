"""Starting flows by business key: the one place that knows workflow IDs and start options, used by
``starter.py``, the ingress and the schedules."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from canonical import Deal
from canonical.policy import RoutingError, deal_entity
from settings import Settings
from workflows.models import QuoteToCashInput
from workflows.quote_to_cash import QuoteToCashWorkflow


def quote_to_cash_id(deal_id: str) -> str:
    """Workflow IDs are business keys (DESIGN.md): one quote-to-cash run per HubSpot deal."""
    return f"q2c-hubspot-{deal_id}"


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
    )
