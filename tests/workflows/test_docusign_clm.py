"""``CLM_ADAPTER=docusign``: the production worker runs quote-to-cash unchanged with DocuSign signing, against the
DocuSign emulator over HTTP (the real Temporal dev server, HubSpot, Stripe and Xero emulators as for Ironclad).
The signer signs in DocuSign; the workflow's contract poll sees the completed envelope and provisions from the
terms read back from the envelope's form data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from canonical import Money
from connectors.docusign.mapping import terms_to_tabs
from runtime.launch import signal_amendment, start_quote_to_cash
from settings import Settings
from tests.helpers.deals import DealSpec, deal_properties, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_amendments import status_of, subscription_item, with_seats
from tests.workflows.test_quote_to_cash import wait_for_stage
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, Stage


@pytest_asyncio.fixture
async def docusign_flow(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
                        docusign_sandbox: SandboxHandle) -> AsyncIterator[tuple[Settings, Worker]]:
    settings = flow_settings.model_copy(update={"clm_adapter": "docusign"})
    async with open_connectors(settings) as connectors, build_worker(client, settings, connectors) as worker:
        yield settings, worker


async def sign_through(client: Client, settings: Settings, sandboxes: dict[str, SandboxHandle],
                       docusign_sandbox: SandboxHandle, model: str) -> tuple[str, str, QuoteToCashResult]:
    """Quote-to-cash for a new deal of ``model``: the envelope is signed in DocuSign; the deal, envelope, result."""
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model=model))
    handle = await start_quote_to_cash(client, settings, deal_id)
    status = await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)
    assert status.contract and status.contract.clm_workflow_id
    envelope_id = status.contract.clm_workflow_id
    envelope = docusign_sandbox.store.get("envelope", envelope_id)
    assert envelope is not None and envelope["status"] == "sent"
    async with httpx.AsyncClient(base_url=docusign_sandbox.base_url, timeout=10) as http:
        (await http.post(f"/_sandbox/envelopes/{envelope_id}/sign")).raise_for_status()
    return deal_id, envelope_id, await handle.result()


async def test_quote_to_cash_signs_with_docusign(client: Client, docusign_flow: tuple[Settings, Worker],
                                                 sandboxes: dict[str, SandboxHandle],
                                                 docusign_sandbox: SandboxHandle) -> None:
    settings, _worker = docusign_flow
    deal_id, envelope_id, result = await sign_through(client, settings, sandboxes, docusign_sandbox, "fixed_fee")

    assert result.outcome is Stage.PROVISIONED, result.reason
    assert uuid.UUID(envelope_id) and result.contract and result.contract.clm_record_id == envelope_id
    assert result.contract.terms and result.contract.terms.fixed_fee == Money.of("9500.00", "USD")
    assert f"docusign:workflow:{envelope_id}" in result.business_keys
    assert f"docusign:record:{envelope_id}" in result.business_keys
    assert deal_properties(sandboxes["hubspot"], deal_id)["revops_clm_workflow_id"] == envelope_id
    sent = [e for e in docusign_sandbox.store.list("envelope")
            if any(f["name"] == "revopsDealId" and f["value"] == deal_id
                   for f in e["customFields"]["textCustomFields"])]
    assert len(sent) == 1  # one envelope for the deal, however often the launch activity ran


async def test_amendment_envelope_propagates_with_docusign(client: Client, docusign_flow: tuple[Settings, Worker],
                                                          sandboxes: dict[str, SandboxHandle],
                                                          docusign_sandbox: SandboxHandle) -> None:
    """An amendment signed in DocuSign (a new envelope linked to the contract's) is applied by the amendments
    workflow as for any CLM: the subscription gets the new seat count."""
    settings, _worker = docusign_flow
    _deal, record_id, result = await sign_through(client, settings, sandboxes, docusign_sandbox, "subscription")
    assert result.outcome is Stage.PROVISIONED, result.reason
    signed = result.contract.terms  # type: ignore[union-attr]
    assert signed is not None
    expanded = with_seats(signed, 30)
    old, new = terms_to_tabs(signed), terms_to_tabs(expanded)
    async with httpx.AsyncClient(base_url=docusign_sandbox.base_url, timeout=10) as http:
        answer = await http.post(f"/_sandbox/envelopes/{record_id}/amendments", json={
            "sequence": 1, "tabs": {k: v for k, v in new.items() if old.get(k) != v}})
        answer.raise_for_status()
    amendment_id = answer.json()["envelopeId"]

    handle = await signal_amendment(client, settings, record_id, sequence=1, clm_amendment_id=amendment_id)
    status = await eventually(lambda: status_of(handle), lambda s: [h.sequence for h in s.history] == [1],
                              timeout=60, what="amendment 1 applied")

    assert handle.id == f"contract-docusign-{record_id}"
    assert status.history[0].outcome == "applied" and status.terms == expanded
    assert subscription_item(sandboxes["stripe"], result.engagements[0].billing_customer_id or "")["quantity"] == 30
    await handle.terminate("test done")
