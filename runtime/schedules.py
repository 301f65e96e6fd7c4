"""Every Temporal schedule of the project, defined here and kept in step with settings (created when missing,
updated when present):

- ``reconciliation``: nightly reconciliation over everything (ensured by the worker at start-up);
- ``crm-deal-poll``: the CRM deal poll, the net for lost webhooks (ensured by the ingress);
- ``billing-event-poll`` and ``clm-amendment-poll``: the nets for lost billing and amendment webhooks
  (ensured by the ingress);
- ``event-ledger-upkeep``: sweep stranded/failed events, prune past the retention (ensured by the ingress).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.change_polls import AmendmentPollRequest, BillingPollRequest
from activities.event_ledger import LedgerSweepRequest
from activities.polling import DealPollRequest
from settings import Settings
from workflows.models import RECONCILIATION_WORKFLOW, ReconciliationInput

RECONCILIATION_SCHEDULE_ID = "reconciliation"
POLL_SCHEDULE_ID = "crm-deal-poll"
POLL_WORKFLOW = "CrmDealPollWorkflow"
BILLING_POLL_SCHEDULE_ID = "billing-event-poll"
BILLING_POLL_WORKFLOW = "BillingEventPollWorkflow"
AMENDMENT_POLL_SCHEDULE_ID = "clm-amendment-poll"
AMENDMENT_POLL_WORKFLOW = "AmendmentPollWorkflow"
UPKEEP_SCHEDULE_ID = "event-ledger-upkeep"
UPKEEP_WORKFLOW = "EventLedgerUpkeepWorkflow"


async def upsert_schedule(client: Client, schedule_id: str, schedule: Schedule) -> str:
    """Create the schedule, or bring an existing one up to ``schedule``. Returns ``created`` or ``updated``."""
    try:
        await client.create_schedule(schedule_id, schedule)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def update(_input: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(schedule_id).update(update)
    return "updated"


def reconciliation_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Nightly (``settings.reconciliation_cron``, UTC) over everything; a run still going makes the next skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(RECONCILIATION_WORKFLOW, ReconciliationInput(trigger="schedule"),
                                           id=RECONCILIATION_SCHEDULE_ID, task_queue=task_queue or settings.task_queue,
                                           static_summary="Nightly reconciliation (scope all)"),
        spec=ScheduleSpec(cron_expressions=[settings.reconciliation_cron]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def poll_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``poll_interval_seconds``, one poll; a poll still running makes the next one skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(POLL_WORKFLOW, DealPollRequest(), id=POLL_SCHEDULE_ID,
                                           task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30),
                                           static_summary="CRM poll: deals modified since the checkpoint"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.poll_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def billing_poll_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``billing_poll_interval_seconds``, one billing poll; a poll still running makes the next skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(BILLING_POLL_WORKFLOW, BillingPollRequest(), id=BILLING_POLL_SCHEDULE_ID,
                                           task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30),
                                           static_summary="Billing poll: events since the checkpoint"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=timedelta(seconds=settings.billing_poll_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def amendment_poll_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``amendment_poll_interval_seconds``, one amendment poll; a poll still running makes the next skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(AMENDMENT_POLL_WORKFLOW, AmendmentPollRequest(),
                                           id=AMENDMENT_POLL_SCHEDULE_ID, task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30),
                                           static_summary="Amendment poll: contracts changed since the checkpoint"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=timedelta(seconds=settings.amendment_poll_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def upkeep_schedule(settings: Settings, *, task_queue: str | None = None) -> Schedule:
    """Every ``ledger_upkeep_interval_seconds``, one sweep and prune of the event ledger."""
    return Schedule(
        action=ScheduleActionStartWorkflow(UPKEEP_WORKFLOW, LedgerSweepRequest(), id=UPKEEP_SCHEDULE_ID,
                                           task_queue=task_queue or settings.task_queue,
                                           execution_timeout=timedelta(minutes=30)),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(
            every=timedelta(seconds=settings.ledger_upkeep_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_reconciliation_schedule(client: Client, settings: Settings, *,
                                         schedule_id: str = RECONCILIATION_SCHEDULE_ID,
                                         task_queue: str | None = None) -> str:
    """Create the schedule, or bring an existing one up to the settings. Returns ``created`` or ``updated``."""
    return await upsert_schedule(client, schedule_id, reconciliation_schedule(settings, task_queue=task_queue))


async def ensure_upkeep_schedule(client: Client, settings: Settings, *, schedule_id: str = UPKEEP_SCHEDULE_ID,
                                 task_queue: str | None = None) -> str:
    """Create the ledger upkeep schedule, or bring it up to the settings."""
    return await upsert_schedule(client, schedule_id, upkeep_schedule(settings, task_queue=task_queue))


async def ensure_poll_schedule(client: Client, settings: Settings, *, schedule_id: str = POLL_SCHEDULE_ID,
                               task_queue: str | None = None) -> str:
    """Create the schedule, or bring an existing one up to the settings. Returns ``created`` or ``updated``."""
    return await upsert_schedule(client, schedule_id, poll_schedule(settings, task_queue=task_queue))


async def ensure_change_poll_schedules(client: Client, settings: Settings, *, prefix: str = "",
                                       task_queue: str | None = None) -> dict[str, str]:
    """The billing and amendment poll schedules, created or brought up to the settings (IDs after ``prefix``):
    schedule ID -> ``created`` or ``updated``."""
    done = {}
    for schedule_id, schedule in ((BILLING_POLL_SCHEDULE_ID, billing_poll_schedule(settings, task_queue=task_queue)),
                                  (AMENDMENT_POLL_SCHEDULE_ID,
                                   amendment_poll_schedule(settings, task_queue=task_queue))):
        done[prefix + schedule_id] = await upsert_schedule(client, prefix + schedule_id, schedule)
    return done


__all__ = ["AMENDMENT_POLL_SCHEDULE_ID", "AMENDMENT_POLL_WORKFLOW", "BILLING_POLL_SCHEDULE_ID",
           "BILLING_POLL_WORKFLOW", "POLL_SCHEDULE_ID", "POLL_WORKFLOW", "RECONCILIATION_SCHEDULE_ID",
           "UPKEEP_SCHEDULE_ID", "UPKEEP_WORKFLOW", "amendment_poll_schedule", "billing_poll_schedule",
           "ensure_change_poll_schedules", "ensure_poll_schedule", "ensure_reconciliation_schedule",
           "ensure_upkeep_schedule", "poll_schedule", "reconciliation_schedule", "upkeep_schedule",
           "upsert_schedule"]
