"""Replay of every committed history: a change to workflow code that would make a running workflow take a
different path fails here. Re-record with ``REVOPS_RECORD_HISTORIES=1`` (see tests/helpers/histories.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.workflow import NondeterminismError

from tests.helpers.histories import replay, saved_histories
from workflows.models import QuoteToCashInput, QuoteToCashResult

ALL = saved_histories()

# The main paths of each workflow that must always have a saved history.
REQUIRED = {
    "quote_to_cash_subscription", "quote_to_cash_approved", "quote_to_cash_rejected",
    "quote_to_cash_missing_data", "quote_to_cash_compensated", "quote_to_cash_expired",
    "amendments_scope_expansion", "amendments_out_of_order", "amendments_gap",
    "amendments_decrease_approved", "amendments_outage",
    "ledger_finalized", "ledger_partial_payments", "ledger_credit_note", "ledger_out_of_order", "ledger_overdue",
    "company_figures_two_ledgers",
    "reconciliation_run",
    "backfill_first", "backfill_again", "backfill_empty",
    "invoicing_dated_and_accepted",
    "cutover_moved", "cutover_refused",
}


def test_replay_histories_are_committed_for_the_main_paths() -> None:
    assert REQUIRED <= {p.stem for p in ALL}


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
async def test_replay_saved_history(path: Path) -> None:
    result = await replay(path)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


@workflow.defn(name="QuoteToCashWorkflow", sandboxed=False)
class ChangedQuoteToCash:
    """Quote-to-cash as a careless edit would leave it: a timer where the history has an activity."""

    @workflow.run
    async def run(self, request: QuoteToCashInput) -> QuoteToCashResult:
        await workflow.sleep(1)
        raise AssertionError("replay must stop at the first command")


async def test_replay_catches_a_nondeterministic_change() -> None:
    [path] = [p for p in ALL if p.stem == "quote_to_cash_subscription"]
    result = await replay(path, workflows=[ChangedQuoteToCash])
    assert isinstance(result.replay_failure, NondeterminismError), repr(result.replay_failure)
