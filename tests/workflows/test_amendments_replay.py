"""Replay of saved ``ContractAmendmentsWorkflow`` histories: today's workflow code must make the same
decisions as the code that recorded them.

Refresh them with ``SAVE_HISTORIES=1 pytest tests/workflows/test_amendments.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from orchestration.connect import data_converter
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.quote_to_cash import QuoteToCashWorkflow

HISTORIES = sorted((Path(__file__).resolve().parents[1] / "histories").glob("amendments_*.json"))


def test_amendments_histories_are_saved_for_the_main_paths() -> None:
    names = {p.stem for p in HISTORIES}
    assert {"amendments_scope_expansion", "amendments_out_of_order", "amendments_gap",
            "amendments_decrease_approved", "amendments_outage"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_amendments_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(f"contract-ironclad-{path.stem}", path.read_text())
    replayer = Replayer(workflows=[ContractAmendmentsWorkflow, QuoteToCashWorkflow], data_converter=data_converter())

    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)

    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"
