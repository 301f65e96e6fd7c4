"""Workflow tests run the real worker (``worker`` fixture in tests/conftest.py: real activities, real
connectors) against the real Temporal dev server and the emulators over HTTP, each on its own task queue."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHandle

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


async def save_history(handle: WorkflowHandle, name: str) -> None:
    """With ``REVOPS_RECORD_HISTORIES=1``, keep this run's history for the replay tests (tests/histories/)."""
    if os.environ.get("REVOPS_RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json())
