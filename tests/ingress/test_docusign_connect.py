"""The ingress with ``CLM_ADAPTER=docusign``: the DocuSign emulator's own Connect deliveries reach
``POST /webhooks/docusign``, are verified by HMAC and routed like any CLM's: a completed envelope signals the
deal's run, a completed amendment envelope signal-with-starts the contract's amendments run; a forged one is
refused and recorded."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bootstrap import receivers_from_settings
from canonical.keys import amendments_workflow_id
from connectors import docusign, hubspot
from ingress.app import create_app
from intake import ClientProvider
from runtime.launch import start_quote_to_cash
from sandbox.serve import start_in_thread
from settings import Settings
from stores.events import EventLedger
from tests.connectors.test_docusign_adapter import contract_request
from tests.helpers.ids import quote_to_cash_id
from tests.helpers.servers import SandboxHandle
from tests.helpers.webhooks import unique_deal_id
from tests.ingress.conftest import RunningIngress, connector_to, eventually, post, signal_names


@pytest.fixture
def ingress(ingress_settings: Settings, temporal_env: WorkflowEnvironment,
            docusign_sandbox: SandboxHandle) -> Iterator[RunningIngress]:
    settings = ingress_settings.model_copy(update={"clm_adapter": "docusign"})
    target = temporal_env.client.service_client.config.target_host
    provider = ClientProvider(connector_to(target, temporal_env.client.namespace),
                              timeout=settings.ingress_temporal_timeout_seconds)
    ledger = EventLedger.from_settings(settings)
    clm, crm = docusign.from_settings(settings), hubspot.from_settings(settings)
    app = create_app(settings=settings, client_provider=provider, receivers=receivers_from_settings(settings, clm=clm),
                     ledger=ledger, clm=clm, crm=crm, on_shutdown=[clm.aclose, crm.aclose])
    served = RunningIngress(running=start_in_thread(app), ledger=ledger, settings=settings)
    docusign_sandbox.post_control("webhooks", {"url": served.url("docusign")})
    yield served
    docusign_sandbox.control.webhooks.targets = [t for t in docusign_sandbox.control.webhooks.targets
                                                 if t.url != served.url("docusign")]
    served.running.stop()
    served.ledger.close()


async def test_docusign_completed_envelope_signals_the_deal_run(ingress: RunningIngress, client: Client,
                                                                docusign_sandbox: SandboxHandle) -> None:
    deal_id = unique_deal_id()
    handle = await start_quote_to_cash(client, ingress.settings, deal_id, trigger="test")
    clm = docusign.from_settings(ingress.settings)
    try:
        launched = await clm.launch_contract(contract_request(deal_id=deal_id), idempotency_key=uuid.uuid4().hex)
    finally:
        await clm.aclose()

    docusign_sandbox.post_control(f"envelopes/{launched.clm_workflow_id}/sign")

    await eventually(lambda: ingress.outcomes().get("signalled", 0) == 1, what="the signalled delivery")
    assert await signal_names(handle) == ["contract_executed"]
    [row] = ingress.deliveries(outcome="signalled")
    assert row.vendor == "docusign" and row.workflow_id == quote_to_cash_id(deal_id)
    assert row.event_kind == "contract.executed" and row.signature == "valid"
    await handle.terminate("test done")


async def test_docusign_completed_amendment_starts_the_contract_amendments(
        ingress: RunningIngress, client: Client, docusign_sandbox: SandboxHandle) -> None:
    clm = docusign.from_settings(ingress.settings)
    try:
        launched = await clm.launch_contract(contract_request(deal_id=unique_deal_id()),
                                             idempotency_key=uuid.uuid4().hex)
    finally:
        await clm.aclose()
    record_id = launched.clm_workflow_id or ""
    docusign_sandbox.post_control(f"envelopes/{record_id}/sign")
    await eventually(lambda: ingress.outcomes().get("ignored", 0) == 1, what="the completion no run waits for")

    docusign_sandbox.post_control(f"envelopes/{record_id}/amendments", {"sequence": 1, "tabs": {}})

    await eventually(lambda: ingress.outcomes().get("started", 0) == 1, what="the amendment start")
    handle = client.get_workflow_handle(amendments_workflow_id("docusign", record_id))
    assert (await handle.describe()).workflow_type == "ContractAmendmentsWorkflow"
    assert await signal_names(handle) == ["amendment_executed"]
    await handle.terminate("test done")


async def test_docusign_forged_delivery_is_refused(ingress: RunningIngress) -> None:
    body = json.dumps({"event": "envelope-completed", "generatedDateTime": "2026-01-01T00:00:00Z",
                       "data": {"envelopeId": str(uuid.uuid4()), "envelopeSummary": {}}}).encode()
    answer = await post(ingress.url("docusign"), body, {"Content-Type": "application/json",
                                                        "X-DocuSign-Signature-1": "Zm9yZ2Vk"})

    assert 400 <= answer.status_code < 500
    await eventually(lambda: ingress.deliveries(vendor="docusign"), what="the refused delivery recorded")
    [row] = ingress.deliveries(vendor="docusign")
    assert row.signature != "valid"
