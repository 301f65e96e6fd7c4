"""The billing and amendment polls, run by the ``billing-event-poll`` and ``clm-amendment-poll`` Temporal
schedules (``runtime/schedules.py``): the nets for lost billing and amendment webhooks."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.change_polls import (
        AmendmentPollActivities,
        AmendmentPollRequest,
        BillingPollActivities,
        BillingPollRequest,
        ChangePollResult,
    )


_POLL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1),
                          maximum_attempts=5)


@workflow.defn(name="BillingEventPollWorkflow")
class BillingEventPollWorkflow:
    """One billing poll: billing events since the checkpoint, routed like their webhooks would have been."""

    @workflow.run
    async def run(self, request: BillingPollRequest) -> ChangePollResult:
        return await workflow.execute_activity_method(
            BillingPollActivities.poll_billing_changes, request,
            start_to_close_timeout=timedelta(minutes=15), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=_POLL_RETRY, summary="Poll billing for events since the checkpoint")


@workflow.defn(name="AmendmentPollWorkflow")
class AmendmentPollWorkflow:
    """One amendment poll: executed amendments of contracts changed since the checkpoint, routed like their
    webhooks would have been."""

    @workflow.run
    async def run(self, request: AmendmentPollRequest) -> ChangePollResult:
        return await workflow.execute_activity_method(
            AmendmentPollActivities.poll_clm_amendments, request,
            start_to_close_timeout=timedelta(minutes=15), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=_POLL_RETRY, summary="Poll the CLM for amendments executed since the checkpoint")
