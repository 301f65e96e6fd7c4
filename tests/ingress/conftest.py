"""The ingress served over real HTTP on loopback, with its own ledger, task queue and Temporal client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bootstrap import receivers_from_settings
from connectors import hubspot, ironclad
from ingress.app import create_app
from intake import ClientProvider
from runtime.connect import data_converter
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from stores.events import Delivery, EventLedger, count_outcomes, list_deliveries
from tests.helpers.waiting import eventually  # noqa: F401 (re-exported for the ingress tests)


@dataclass
class RunningIngress:
    """One served ingress app and its ledger."""

    running: RunningApp
    ledger: EventLedger
    settings: Settings

    @property
    def app(self) -> FastAPI:
        return self.running.app

    def url(self, vendor: str) -> str:
        return f"{self.running.base_url}/webhooks/{vendor}"

    def outcomes(self, **filters: Any) -> dict[str, int]:
        return self.ledger.run_sync(count_outcomes, **filters)

    def deliveries(self, **filters: Any) -> list[Delivery]:
        return self.ledger.run_sync(list_deliveries, limit=2000, **filters)


def connector_to(target: str, namespace: str = "default") -> Callable[[], Awaitable[Client]]:
    """A connect function for the ingress's own event loop (clients are not shared across loops)."""

    async def connect() -> Client:
        return await Client.connect(target, namespace=namespace, data_converter=data_converter(Settings()))

    return connect


@pytest.fixture
def ingress_settings(settings: Settings, task_queue: str, tmp_path: Path) -> Settings:
    """Session settings with this test's task queue, ledger file and a short Temporal timeout."""
    return settings.model_copy(update={"task_queue": task_queue, "data_dir": tmp_path,
                                       "ingress_temporal_timeout_seconds": 3.0,
                                       "ingress_max_body_bytes": 64 * 1024})


MakeIngress = Callable[..., RunningIngress]


@pytest.fixture
def make_ingress(ingress_settings: Settings, temporal_env: WorkflowEnvironment) -> Iterator[MakeIngress]:
    """Serve an ingress; ``provider`` defaults to the session's Temporal server."""
    started: list[RunningIngress] = []

    def make(*, settings: Settings | None = None, provider: ClientProvider | None = None) -> RunningIngress:
        s = settings or ingress_settings
        target = temporal_env.client.service_client.config.target_host
        provider = provider or ClientProvider(connector_to(target, temporal_env.client.namespace),
                                              timeout=s.ingress_temporal_timeout_seconds)
        ledger = EventLedger.from_settings(s)
        clm = ironclad.from_settings(s)
        crm = hubspot.from_settings(s)
        app = create_app(settings=s, client_provider=provider, receivers=receivers_from_settings(s, clm=clm),
                         ledger=ledger, clm=clm, crm=crm, on_shutdown=[clm.aclose, crm.aclose])
        served = RunningIngress(running=start_in_thread(app), ledger=ledger, settings=s)
        started.append(served)
        return served

    yield make
    for served in started:
        served.running.stop()
        served.ledger.close()


@pytest.fixture
def ingress(make_ingress: MakeIngress) -> RunningIngress:
    return make_ingress()


async def signal_names(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The signals in a workflow's history, in order."""
    names = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            names.append(event.workflow_execution_signaled_event_attributes.signal_name)
    return names


async def post(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """One delivery to the ingress, as a vendor sends it."""
    async with httpx.AsyncClient(timeout=20) as http:
        return await http.post(url, content=body, headers=headers)


async def workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
