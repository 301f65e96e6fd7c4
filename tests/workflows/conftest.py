"""Workflow tests run the real worker (real activities, real connectors) against the real Temporal dev
server and the vendor emulators over HTTP, each test on its own task queue."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from settings import Settings
from tests.helpers.servers import SandboxHandle
from worker import build_worker, open_connectors


@pytest.fixture
def flow_settings(settings: Settings, task_queue: str) -> Settings:
    """Settings of one test: its own task queue, a fast contract poll, retries backing off to 2 s at most."""
    return settings.model_copy(update={"task_queue": task_queue, "contract_poll_interval_seconds": 1.0,
                                       "activity_retry_max_seconds": 2.0})


@pytest_asyncio.fixture
async def worker(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
                 ) -> AsyncIterator[Worker]:
    """The production worker composition on the test's task queue."""
    async with open_connectors(flow_settings) as connectors, build_worker(client, flow_settings, connectors) as w:
        yield w


HISTORIES = Path(__file__).resolve().parents[1] / "histories"


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """With ``REVOPS_RECORD_HISTORIES=1``, keep this run's history for the replay tests (tests/histories/)."""
    if os.environ.get("REVOPS_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
