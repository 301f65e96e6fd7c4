"""With ``CRM_ADAPTER=salesforce`` the deal poll (SOQL on ``SystemModstamp``) finds an opportunity whose outbound
message was lost, through the same dedupe path, and starts its run under the 18-character ID."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.client import Client
from temporalio.service import RPCError

from connectors import salesforce
from runtime.launch import quote_to_cash_id
from settings import Settings
from stores.events import EventLedger, list_deliveries, save_checkpoint
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.ingress.test_polling import run_poll


async def test_poll_finds_an_opportunity_whose_outbound_message_was_lost(
        client: Client, settings: Settings, task_queue: str, tmp_path: Path,
        salesforce_sandbox: SandboxHandle) -> None:
    s = settings.model_copy(update={"task_queue": task_queue, "data_dir": tmp_path, "crm_adapter": "salesforce",
                                    "poll_search_requests_per_second": 20.0})
    config = vendor_settings(s, "salesforce")
    crm = salesforce.from_settings(s)
    lost = f"http://127.0.0.1:9/lost-{uuid.uuid4().hex}"
    salesforce_sandbox.post_control("webhooks", {"url": lost, "drop": True})
    ledger = EventLedger.from_settings(s)
    try:
        ledger.run_sync(save_checkpoint, name="crm-deals", checkpoint=datetime.now(UTC) - timedelta(seconds=2))
        opportunity_id = salesforce_sandbox.post_control("seed/deal", {"opportunity": {
            "Name": f"Lost message {uuid.uuid4().hex[:6]}", "StageName": "Prospecting",
            "CloseDate": "2026-01-01"}}).json()["opportunityId"]
        salesforce_sandbox.post_control(f"opportunities/{opportunity_id}/stage", {"stage": config.closed_won_stage})
        dropped = [d for d in salesforce_sandbox.control.webhooks.deliveries if d["dropped"]]
        assert any(opportunity_id in d["body"] for d in dropped)

        first = await run_poll(client, s, crm, ledger)  # type: ignore[arg-type]
        second = await run_poll(client, s, crm, ledger)  # type: ignore[arg-type]

        workflow_id = quote_to_cash_id(s, opportunity_id[:15])
        assert workflow_id == f"q2c-salesforce-{opportunity_id}"
        description = await client.get_workflow_handle(workflow_id).describe()
        assert description.task_queue == s.task_queue
        assert first.outcomes.get("started", 0) >= 1 and first.checkpoint is not None
        assert second.outcomes.get("started", 0) == 0 and second.outcomes.get("duplicate", 0) >= 1
        found = ledger.run_sync(list_deliveries, event_id=f"poll:{opportunity_id}:{config.closed_won_stage}")
        assert [r.outcome for r in reversed(found)] == ["started", "duplicate"]
    finally:
        async with httpx.AsyncClient(timeout=10) as http:
            (await http.delete(f"{salesforce_sandbox.base_url}/_sandbox/webhooks")).raise_for_status()
        ledger.close()
        await crm.aclose()
    with contextlib.suppress(RPCError):  # the run waits for approval or signature: end it
        await client.get_workflow_handle(quote_to_cash_id(s, opportunity_id)).terminate("test over")
