"""The polls behind the schedules of ``runtime/schedules.py``: the CRM deal poll (``crm-deal-poll``), the
billing event poll (``billing-event-poll``) and the amendment poll (``clm-amendment-poll``)."""

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
