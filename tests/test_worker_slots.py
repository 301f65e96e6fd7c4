"""How many workflow tasks one worker process runs at once: a setting, the SDK's default (100) unless set, that
reaches the worker the process runs. A cap of 8, 4 or 2 had a month-end burst's deliveries accepted at 50-80
events/s instead of 31-33, but with 8 the chaos run's deals under 20 % vendor faults closed at a tenth of their
pace (README, Benchmarks)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from settings import Settings
from worker import build_worker, open_connectors


async def test_the_worker_runs_as_many_workflow_tasks_at_once_as_the_setting_says(
        client: Client, flow_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.model_fields["worker_workflow_task_slots"].default is None  # the SDK's own default
    monkeypatch.setenv("WORKER_WORKFLOW_TASK_SLOTS", "3")
    from_env = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_env.worker_workflow_task_slots == 3  # the deployment's environment sets it
    for slots in (None, 3):
        chosen = flow_settings.model_copy(update={"worker_workflow_task_slots": slots})
        async with open_connectors(chosen) as connectors, build_worker(
                client, chosen, connectors, task_queue=f"{chosen.task_queue}-{slots}") as worker:
            assert worker.config()["max_concurrent_workflow_tasks"] == slots


def test_a_worker_cannot_be_set_to_fewer_workflow_tasks_than_the_sdk_needs_with_its_cache() -> None:
    with pytest.raises(ValueError, match="worker_workflow_task_slots"):
        Settings(_env_file=None, worker_workflow_task_slots=1)  # type: ignore[call-arg]
