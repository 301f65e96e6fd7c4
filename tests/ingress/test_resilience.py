"""Temporal down: 503 and nothing acknowledged; once it is back, the redelivery succeeds.
And 1,000 concurrent deliveries of 200 distinct events make exactly 200 workflows."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from intake import ClientProvider
from runtime.attributes import SEARCH_ATTRIBUTES
from runtime.connect import data_converter
from runtime.devserver import dev_server_path
from sandbox.serve import free_port
from settings import Settings
from tests.helpers.ids import quote_to_cash_id
from tests.helpers.webhooks import Signed, hubspot_delivery, hubspot_property_change, unique_deal_id
from tests.ingress.conftest import MakeIngress, RunningIngress, connector_to, eventually


async def own_dev_server(port: int, db: Path) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(), data_converter=data_converter(Settings()), port=port,
        dev_server_database_filename=str(db), dev_server_log_level="error", search_attributes=SEARCH_ATTRIBUTES)


async def test_temporal_down_answers_503_then_the_redelivery_starts_the_workflow(
        make_ingress: MakeIngress, tmp_path: Path) -> None:
    port = free_port()
    env = await own_dev_server(port, tmp_path / "temporal.sqlite")
    ingress = make_ingress(provider=ClientProvider(connector_to(f"127.0.0.1:{port}"), timeout=3))
    deal_id = unique_deal_id()
    url = ingress.url("hubspot")
    await env.shutdown()

    async with httpx.AsyncClient(timeout=30) as http:
        delivery = hubspot_delivery(ingress.settings, url, [hubspot_property_change(deal_id, "dealstage", "closedwon")])
        down = await http.post(url, content=delivery.body, headers=delivery.headers)
        assert down.status_code == 503, down.text
        assert down.headers["retry-after"] and down.json()["outcome"] == "failed"
        assert ingress.outcomes() == {"failed": 1}

        env = await own_dev_server(port, tmp_path / "temporal.sqlite")
        try:
            # the vendor redelivers the same event (freshly signed, as HubSpot does on a retry)
            again = hubspot_delivery(ingress.settings, url, [json_event(delivery)])
            up = await http.post(url, content=again.body, headers=again.headers)
            assert up.status_code == 200, up.text
            assert up.json()["outcome"] == "started"
            description = await env.client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
            assert description.status is WorkflowExecutionStatus.RUNNING
        finally:
            await env.shutdown()
    rows = ingress.deliveries()
    assert [r.outcome for r in reversed(rows)] == ["failed", "started"]
    assert rows[0].vendor_event_id == rows[1].vendor_event_id


def json_event(delivery: Signed) -> dict[str, object]:
    [event] = json.loads(delivery.body)
    return event  # type: ignore[no-any-return]


async def test_ingress_thousand_concurrent_deliveries_of_200_events_make_200_workflows(
        ingress: RunningIngress, client: Client, task_queue: str) -> None:
    url = ingress.url("hubspot")
    deal_ids = [unique_deal_id() for _ in range(200)]
    deliveries = [hubspot_delivery(ingress.settings, url, [hubspot_property_change(d, "dealstage", "closedwon")])
                  for d in deal_ids]
    batch = [d for d in deliveries for _ in range(5)]
    random.Random(7).shuffle(batch)
    gate = asyncio.Semaphore(50)

    async def deliver(http: httpx.AsyncClient, delivery: Signed) -> int:
        async with gate:
            response = await http.post(url, content=delivery.body, headers=delivery.headers)
            return response.status_code

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=50)) as http:
        statuses = await asyncio.gather(*(deliver(http, d) for d in batch))
    elapsed = time.monotonic() - started

    assert statuses.count(200) == 1000, {s: statuses.count(s) for s in set(statuses)}
    assert ingress.outcomes() == {"started": 200, "duplicate": 800}
    descriptions = await asyncio.gather(*(client.get_workflow_handle(quote_to_cash_id(d)).describe()
                                          for d in deal_ids))
    assert {d.task_queue for d in descriptions} == {task_queue}

    async def counted() -> bool:
        return (await client.count_workflows(f'TaskQueue = "{task_queue}"')).count == 200

    await eventually(counted, timeout=20, what="visibility to count 200 workflows")
    await asyncio.sleep(1)
    assert (await client.count_workflows(f'TaskQueue = "{task_queue}"')).count == 200
    print(f"1000 deliveries in {elapsed:.1f}s")
