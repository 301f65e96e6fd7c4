"""The CRM deal poll, run by the ``crm-deal-poll`` Temporal schedule (``runtime/schedules.py``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.polling import DealPollActivities, DealPollRequest, DealPollResult


@workflow.defn(name="CrmDealPollWorkflow")
class CrmDealPollWorkflow:
    """One poll: deals modified since the checkpoint, routed like their webhooks would have been."""

    @workflow.run
    async def run(self, request: DealPollRequest) -> DealPollResult:
        return await workflow.execute_activity_method(
            DealPollActivities.poll_crm_deals, request,
            start_to_close_timeout=timedelta(minutes=15), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1),
                                     maximum_attempts=5),
            summary="Poll the CRM for deals modified since the checkpoint")
