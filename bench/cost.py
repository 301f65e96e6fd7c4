"""Benchmark 5, cost per flow: history events and payload bytes of one quote-to-cash, one amendment and
one invoice (the ledger's events for one invoice finalized and paid). The amendment and ledger flows are
measured once the worker registers them (``worker.WORKFLOWS``) and the ingress routes their webhooks."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from bench.common import BenchStack, Table, bench_settings, running_stack
from canonical.keys import AMENDMENTS, LEDGER, QUOTE_TO_CASH, workflow_id_shape
from connectors.acts import DealDraft
from connectors.registry import systems_of
from runtime.launch import amendments_id, ledger_id, start_quote_to_cash
from worker import WORKFLOWS
from workflows.models import AMENDMENTS_WORKFLOW, LEDGER_WORKFLOW, QuoteToCashResult, Stage


def payload_bytes(message: Message) -> int:
    """Bytes of every Payload (data and metadata) inside a protobuf message."""
    if isinstance(message, Payload):
        return len(message.data) + sum(len(k) + len(v) for k, v in message.metadata.items())
    total = 0
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            total += payload_bytes(value)
        else:  # repeated field or map
            items = value.values() if hasattr(value, "values") else value
            total += sum(payload_bytes(v) for v in items if isinstance(v, Message))
    return total


def history_cost(history: WorkflowHistory) -> dict[str, Any]:
    kinds = Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_").lower() for e in history.events)
    return {"events": len(history.events), "payload_bytes": sum(payload_bytes(e) for e in history.events),
            "history_bytes": sum(e.ByteSize() for e in history.events), "by_type": dict(kinds.most_common())}


def registered(name: str) -> bool:
    return any(getattr(w, "__temporal_workflow_definition").name == name for w in WORKFLOWS)


async def wait_workflow(bench: BenchStack, workflow_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await bench.client.get_workflow_handle(workflow_id).describe()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{workflow_id} did not start within {timeout:.0f}s") from None
            await asyncio.sleep(0.5)


async def settle(bench: BenchStack, workflow_id: str, quiet: float = 3.0, timeout: float = 60) -> WorkflowHistory:
    """The history once it stops growing for ``quiet`` seconds (long-lived flows never complete)."""
    handle = bench.client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while True:
        history = await handle.fetch_history()
        if len(history.events) != last:
            last, since = len(history.events), time.monotonic()
        elif time.monotonic() - since >= quiet or time.monotonic() > deadline:
            return history
        await asyncio.sleep(0.5)


async def run(args: argparse.Namespace, data_dir: Path) -> Table:
    settings = bench_settings(data_dir, contract_poll_interval_seconds=args.poll, activity_retry_max_seconds=2.0)
    table = Table("cost", "5. Cost per flow (Temporal history of one flow)",
                  ["flow", "models", "history events", "payload bytes", "history bytes", "note"])
    data: dict[str, Any] = {}
    async with running_stack(settings, with_ingress=True) as bench:
        await bench.acts.clm.auto_sign(0)
        for model in ("subscription", "milestone", "time_and_materials"):
            deal_id = await bench.seed_deal(DealDraft(model=model))
            handle = await start_quote_to_cash(bench.client, settings, deal_id, trigger="bench")
            result: QuoteToCashResult = await handle.result()
            cost = history_cost(await handle.fetch_history())
            data[f"quote_to_cash_{model}"] = cost
            table.add("quote-to-cash", model, cost["events"], cost["payload_bytes"], cost["history_bytes"],
                      result.outcome.value)
            if model == "subscription":
                sub_result = result
                table.notes.append(f"quote-to-cash ({model}) events by type: {cost['by_type']}")
        # -- amendment --------------------------------------------------------------------------
        if not registered(AMENDMENTS_WORKFLOW):
            table.add("amendment", "", "-", "-", "-", "skipped: ContractAmendmentsWorkflow not in worker.WORKFLOWS")
        else:
            try:
                record_id = sub_result.contract.clm_record_id if sub_result.contract else None
                assert record_id and sub_result.outcome is Stage.PROVISIONED
                await bench.acts.clm.amend(record_id, sequence=1)
                workflow_id = amendments_id(settings, record_id)
                await wait_workflow(bench, workflow_id)
                cost = history_cost(await settle(bench, workflow_id))
                data["amendment"] = cost
                table.add("amendment", "subscription", cost["events"], cost["payload_bytes"], cost["history_bytes"],
                          "one amendment, long-lived run")
            except Exception as exc:
                table.add("amendment", "", "-", "-", "-", f"failed: {type(exc).__name__}: {exc}"[:120])
        # -- invoice ------------------------------------------------------------------------------
        if not registered(LEDGER_WORKFLOW):
            table.add("invoice", "", "-", "-", "-", "skipped: AccountLedgerWorkflow not in worker.WORKFLOWS")
        else:
            try:
                engagement = sub_result.engagements[0]
                [sub_id, *_] = bench.acts.billing.subscription_ids(engagement.billing_schedule_ids)
                invoice_id = (await bench.acts.billing.bill_next_period(sub_id)).invoice_id
                await bench.acts.billing.pay(invoice_id)
                workflow_id = ledger_id(settings, engagement.billing_customer_id or "")
                await wait_workflow(bench, workflow_id)
                cost = history_cost(await settle(bench, workflow_id))
                data["invoice"] = cost
                table.add("invoice", "subscription", cost["events"], cost["payload_bytes"], cost["history_bytes"],
                          "ledger after one invoice finalized + paid")
            except Exception as exc:
                table.add("invoice", "", "-", "-", "-", f"failed: {type(exc).__name__}: {exc}"[:120])
    systems = systems_of(settings)
    shapes = ((QUOTE_TO_CASH, systems.crm, "<deal>"), (AMENDMENTS, systems.clm, "<record>"),
              (LEDGER, systems.billing, "<customer>"))
    table.notes.append("workflow IDs: " + ", ".join(workflow_id_shape(kind, system.name, what)
                                                    for kind, system, what in shapes))
    table.data = data
    return table
