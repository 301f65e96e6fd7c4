"""The one replay harness: saved workflow histories in ``tests/histories/`` and how to replay them.

A normal run never writes a history. ``REVOPS_RECORD_HISTORIES=1`` on the workflow tests re-records them
(before the first release, a workflow change re-records instead of adding ``workflow.patched()`` gates).
Every saved history replays against every workflow the production worker registers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, WorkflowReplayResult

from runtime.connect import data_converter
from settings import Settings

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
RECORD_SWITCH = "REVOPS_RECORD_HISTORIES"


def recording() -> bool:
    """Whether this run re-records the saved histories."""
    return os.environ.get(RECORD_SWITCH) == "1"


async def save_history(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Keep this run's history as ``tests/histories/<name>.json``, only when recording."""
    if not recording():
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())


def saved_histories(prefix: str = "") -> list[Path]:
    return sorted(HISTORIES.glob(f"{prefix}*.json"))


async def replay(path: Path, workflows: list[type] | None = None) -> WorkflowReplayResult:
    """Replay one saved history (against the production worker's workflows unless others are given)."""
    if workflows is None:
        from worker import WORKFLOWS

        workflows = WORKFLOWS
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=workflows, data_converter=data_converter(Settings()))
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)
