"""Replay of committed histories: a change to workflow code that would make a running workflow take a
different path fails here. Re-record with ``REVOPS_RECORD_HISTORIES=1 make test`` only for intended changes
that are guarded with ``workflow.patched()``."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from orchestration.connect import data_converter
from workflows.quote_to_cash import QuoteToCashWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
QUOTE_TO_CASH = sorted(HISTORIES.glob("quote_to_cash_*.json"))


def test_replay_histories_are_committed() -> None:
    names = {p.stem for p in QUOTE_TO_CASH}
    assert {"quote_to_cash_subscription", "quote_to_cash_approved", "quote_to_cash_rejected",
            "quote_to_cash_missing_data", "quote_to_cash_compensated", "quote_to_cash_expired"} <= names
    # Runs since the coalesce-search-attributes patch (one upsert per workflow task).
    assert {"quote_to_cash_coalesced_subscription", "quote_to_cash_coalesced_approved",
            "quote_to_cash_coalesced_missing_data", "quote_to_cash_coalesced_expired"} <= names


@pytest.mark.parametrize("path", QUOTE_TO_CASH, ids=lambda p: p.stem)
async def test_replay_quote_to_cash_history(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[QuoteToCashWorkflow], data_converter=data_converter())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
