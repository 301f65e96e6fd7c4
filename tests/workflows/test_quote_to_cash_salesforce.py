"""Quote-to-cash with ``CRM_ADAPTER=salesforce``: the same production worker and workflows, the Salesforce adapter
against its emulator over HTTP, Ironclad, Stripe and Xero as usual. Configuration is the only change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from canonical.requests import ProvisioningRecord
from connectors.acts import DealDraft, acts_for
from connectors.registry import default_registry
from connectors.salesforce.acts import SalesforceActs
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.servers import SandboxHandle
from tests.workflows.test_quote_to_cash import sign_when_out
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, Stage


@pytest_asyncio.fixture
async def sf_settings(flow_settings: Settings) -> Settings:
    return flow_settings.model_copy(update={"crm_adapter": "salesforce"})


@pytest_asyncio.fixture
async def sf_worker(client: Client, sf_settings: Settings, sandboxes: dict[str, SandboxHandle],
                    salesforce_sandbox: SandboxHandle) -> AsyncIterator[Worker]:
    async with open_connectors(sf_settings) as connectors, build_worker(client, sf_settings, connectors) as w:
        yield w


async def test_quote_to_cash_with_salesforce_provisions_and_writes_back(
        client: Client, sf_worker: Worker, sf_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    spec = next(s for s in default_registry(sf_settings).all() if s.name == "salesforce")
    async with httpx.AsyncClient(timeout=10) as http:
        acts = acts_for(spec, sf_settings, http)
        assert isinstance(acts, SalesforceActs)
        seeded = await acts.seed_deal(DealDraft(model="subscription"))

        handle = await start_quote_to_cash(client, sf_settings, seeded.deal_id[:15])
        await sign_when_out(handle, sandboxes["ironclad"])
        result: QuoteToCashResult = await handle.result()

        assert handle.id == f"q2c-salesforce-{seeded.deal_id}"  # a 15-character ID names the 18-character run
        assert result.outcome is Stage.PROVISIONED, result.reason
        [engagement] = result.engagements
        assert engagement.billing_customer_id and engagement.project and engagement.project.erp_id
        assert f"salesforce:deal:{seeded.deal_id}" in result.business_keys
        assert f"salesforce:company:{seeded.company_id}" in result.business_keys
        assert await acts.written_back(seeded.deal_id, "revops_status") == "provisioned"
        record = ProvisioningRecord.model_validate_json(await acts.written_back(seeded.deal_id, "provisioned"))
        assert [e.billing_customer_id for e in record.entities] == [engagement.billing_customer_id]
        assert await acts.written_back(seeded.deal_id, "clm_workflow_id") == result.contract.clm_workflow_id  # type: ignore[union-attr]
