"""The served composition (``starter.py serve``): health, the four vendors, and the poll schedule."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from ingress.app import build_from_settings
from runtime.schedules import POLL_SCHEDULE_ID
from sandbox.serve import start_in_thread
from settings import Settings


async def test_serve_composition_answers_health_and_ensures_the_poll_schedule(
        settings: Settings, task_queue: str, tmp_path: Path, client: Client, temporal_env: WorkflowEnvironment,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
    served = start_in_thread(build_from_settings(settings.model_copy(update={"task_queue": task_queue,
                                                                              "data_dir": tmp_path})))
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            health = (await http.get(f"{served.base_url}/healthz")).json()
        assert health == {"status": "ok", "vendors": ["hubspot", "ironclad", "stripe", "xero"]}
        for _ in range(100):
            try:
                description = await client.get_schedule_handle(POLL_SCHEDULE_ID).describe()
                break
            except RPCError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the poll schedule was not created")
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == task_queue
        assert (tmp_path / "ingress.sqlite").exists()
    finally:
        served.stop()
        await client.get_schedule_handle(POLL_SCHEDULE_ID).delete()
