"""The launch module tells a start from an attach (or a signal) from public answers only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from canonical.events import InvoiceFinalized
from runtime.launch import launch_amendment, launch_billing_event, launch_quote_to_cash
from settings import Settings
from tests.canonical.test_events import invoice

ROOT = Path(__file__).resolve().parents[2]
# No worker listens on these task queues: the runs stay open, which is what the attach cases need.


def _deal() -> str:
    return str(7 * 10**11 + uuid.uuid4().int % 10**11)


async def test_launch_quote_to_cash_starts_then_attaches_then_refuses_a_closed_run(client: Client,
                                                                                   flow_settings: Settings) -> None:
    deal_id = _deal()
    first = await launch_quote_to_cash(client, flow_settings, deal_id)
    second = await launch_quote_to_cash(client, flow_settings, deal_id, trigger="webhook")
    assert (first.started, second.started) == (True, False)
    assert second.handle.id == first.handle.id and second.handle.result_run_id == first.handle.result_run_id

    await first.handle.terminate("test: close the run")
    with pytest.raises(WorkflowAlreadyStartedError):
        await launch_quote_to_cash(client, flow_settings, deal_id)
    reopened = await launch_quote_to_cash(client, flow_settings, deal_id, reopen=True)
    assert reopened.started and reopened.handle.result_run_id != first.handle.result_run_id
    await reopened.handle.terminate("test: done")


async def test_launch_signal_or_start_says_started_once_then_signalled(client: Client,
                                                                       flow_settings: Settings) -> None:
    record_id = f"rec-{uuid.uuid4().hex[:12]}"
    first = await launch_amendment(client, flow_settings, record_id, sequence=1)
    second = await launch_amendment(client, flow_settings, record_id, sequence=2)
    assert (first.started, second.started) == (True, False)
    assert first.handle.id == second.handle.id

    customer = f"cus_{uuid.uuid4().hex[:14]}"
    event = InvoiceFinalized(source_system="stripe", source_event_id=f"evt_{uuid.uuid4().hex[:14]}",
                             occurred_at=datetime.now(UTC), correlation_id=f"ledger-stripe-{customer}",
                             invoice=invoice().model_copy(update={"customer_id": customer}))
    opened = await launch_billing_event(client, flow_settings, customer, event)
    again = await launch_billing_event(client, flow_settings, customer, event)
    assert (opened.started, again.started) == (True, False)
    history = await again.handle.fetch_history()
    signals = [e for e in history.events if e.HasField("workflow_execution_signaled_event_attributes")]
    assert len(signals) == 2  # the start's signal and the plain one: each event delivered once

    await opened.handle.terminate("test: closed")  # a closed ledger starts afresh on the next event
    reopened = await launch_billing_event(client, flow_settings, customer, event)
    assert reopened.started
    for handle in (first.handle, reopened.handle):
        await handle.terminate("test: done")


def test_launch_reads_no_private_field_of_the_sdk() -> None:
    """`handle._start_workflow_response` and its kind are the SDK's own: none of our code reads them."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part in {".venv", "tests", "node_modules", ".git"} for part in path.relative_to(ROOT).parts):
            continue
        text = path.read_text(encoding="utf-8")
        if "_start_workflow_response" in text or "__temporal_eagerly_started" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
