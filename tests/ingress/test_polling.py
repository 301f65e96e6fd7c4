"""The HubSpot poll finds what a lost webhook did not deliver, through the same dedupe path."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.client import (
    Client,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    WorkflowExecutionStatus,
)
from temporalio.worker import Worker

from activities.polling import DealPollActivities, DealPollRequest, DealPollResult, DealPollSettings
from connectors import hubspot
from connectors.hubspot import HubSpotCrm
from intake import ClientProvider, EventIntake, EventRouter
from runtime.launch import start_quote_to_cash
from runtime.schedules import ensure_poll_schedule
from settings import Settings
from stores.events import EventLedger, list_deliveries, save_checkpoint
from tests.helpers.ids import quote_to_cash_id
from tests.helpers.servers import SandboxHandle
from workflows.polling import CrmDealPollWorkflow


@pytest.fixture
def poll_settings(settings: Settings, task_queue: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"task_queue": task_queue, "data_dir": tmp_path,
                                       "poll_search_requests_per_second": 20.0})


@pytest_asyncio.fixture
async def crm(poll_settings: Settings, hubspot_sandbox: SandboxHandle) -> AsyncIterator[HubSpotCrm]:
    adapter = hubspot.from_settings(poll_settings)
    yield adapter
    await adapter.aclose()


async def run_poll(client: Client, settings: Settings, crm: HubSpotCrm, ledger: EventLedger) -> DealPollResult:
    poll_queue = f"poll-{uuid.uuid4()}"
    intake = EventIntake(router=EventRouter(settings=settings, clients=ClientProvider.fixed(client), crm=crm),
                         ledger=ledger)
    activities = DealPollActivities(settings=DealPollSettings.from_settings(settings), crm=crm, ledger=ledger,
                                    intake=intake)
    async with Worker(client, task_queue=poll_queue, workflows=[CrmDealPollWorkflow],
                      activities=[activities.poll_crm_deals]):
        return await client.execute_workflow(CrmDealPollWorkflow.run, DealPollRequest(overlap_seconds=0),
                                             id=f"poll-{uuid.uuid4()}", task_queue=poll_queue)


async def test_poll_finds_a_closed_won_deal_whose_webhook_was_dropped(
        client: Client, poll_settings: Settings, crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    lost = f"http://127.0.0.1:9/lost-{uuid.uuid4().hex}"
    hubspot_sandbox.post_control("webhooks", {"url": lost, "drop": True})
    ledger = EventLedger.from_settings(poll_settings)
    try:
        ledger.run_sync(save_checkpoint, name="crm-deals", checkpoint=datetime.now(UTC) - timedelta(seconds=2))
        deal_id = hubspot_sandbox.post_control("seed/deal", {"deal": {
            "dealname": f"Lost webhook {uuid.uuid4().hex[:6]}", "dealstage": "qualifiedtobuy"}}).json()["dealId"]
        hubspot_sandbox.post_control(f"deals/{deal_id}/stage", {"stage": "closedwon"})
        dropped = [d for d in hubspot_sandbox.control.webhooks.deliveries if d["url"] == lost and d["dropped"]]
        assert any(f'"objectId":{deal_id}' in d["body"] and "closedwon" in d["body"] for d in dropped)

        first = await run_poll(client, poll_settings, crm, ledger)
        second = await run_poll(client, poll_settings, crm, ledger)

        description = await client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
        assert description.task_queue == poll_settings.task_queue
        assert first.outcomes.get("started", 0) >= 1 and first.checkpoint is not None
        assert second.outcomes.get("started", 0) == 0 and second.outcomes.get("duplicate", 0) >= 1
        found = ledger.run_sync(list_deliveries, event_id=f"poll:{deal_id}:closedwon")
        assert [r.outcome for r in reversed(found)] == ["started", "duplicate"]
        assert {r.signature for r in found} == {"poll"}
    finally:
        hubspot_sandbox.control.webhooks.targets = [t for t in hubspot_sandbox.control.webhooks.targets
                                                    if t.url != lost]
        ledger.close()


async def test_poll_leaves_a_deal_whose_run_already_closed_alone(
        client: Client, poll_settings: Settings, crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    ledger = EventLedger.from_settings(poll_settings)
    try:
        ledger.run_sync(save_checkpoint, name="crm-deals", checkpoint=datetime.now(UTC) - timedelta(seconds=2))
        deal_id = hubspot_sandbox.post_control("seed/deal", {"deal": {
            "dealname": f"Closed run {uuid.uuid4().hex[:6]}", "dealstage": "qualifiedtobuy"}}).json()["dealId"]
        handle = await start_quote_to_cash(client, poll_settings, deal_id, trigger="test")
        await handle.terminate(reason="finished before the poll")
        hubspot_sandbox.post_control(f"deals/{deal_id}/stage", {"stage": "closedwon"})

        result = await run_poll(client, poll_settings, crm, ledger)

        [row] = ledger.run_sync(list_deliveries, event_id=f"poll:{deal_id}:closedwon")
        assert (row.outcome, row.reason) == ("duplicate", "the deal already has a run (terminated)")
        assert result.outcomes.get("started", 0) == 0
        description = await client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
        assert description.status is WorkflowExecutionStatus.TERMINATED and description.run_id == handle.result_run_id
    finally:
        ledger.close()


async def test_poll_schedule_is_created_then_updated_idempotently(client: Client, poll_settings: Settings) -> None:
    schedule_id = f"crm-deal-poll-{uuid.uuid4().hex[:8]}"
    try:
        assert await ensure_poll_schedule(client, poll_settings, schedule_id=schedule_id) == "created"
        faster = poll_settings.model_copy(update={"poll_interval_seconds": 120})
        assert await ensure_poll_schedule(client, faster, schedule_id=schedule_id) == "updated"

        description = await client.get_schedule_handle(schedule_id).describe()
        [interval] = description.schedule.spec.intervals
        assert interval == ScheduleIntervalSpec(every=timedelta(seconds=120))
        assert description.schedule.policy.overlap is ScheduleOverlapPolicy.SKIP
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "CrmDealPollWorkflow"
    finally:
        await client.get_schedule_handle(schedule_id).delete()


