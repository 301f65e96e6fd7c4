"""Quote-to-cash against each CRM the registry offers, chosen by configuration alone (``CRM_ADAPTER``): the same
production worker, the real ingress receiving the CRM's own deliveries from its emulator, and the sales rep's
acts in the CRM's words (``connectors/<crm>/acts.py``). Parametrised by CRM, not copied per CRM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from bootstrap import receivers_from_settings
from canonical.ownership import SystemRole
from canonical.requests import ProvisioningRecord
from connectors.acts import CrmActs, DealDraft, acts_for
from connectors.registry import default_registry
from ingress.app import create_app
from intake import ClientProvider
from runtime.launch import quote_to_cash_id
from sandbox.serve import start_in_thread
from settings import Settings
from stores.events import EventLedger
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.ingress.conftest import connector_to
from tests.workflows.test_quote_to_cash import sign_when_out, wait_for_stage
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

CRMS = [spec.name for spec in default_registry().all() if spec.role is SystemRole.CRM]


@dataclass
class CrmRig:
    """One CRM chosen by settings: its emulator delivering to a served ingress, its acts, the worker."""

    name: str
    settings: Settings
    acts: CrmActs
    sandbox: SandboxHandle


@pytest.fixture(params=CRMS)
def crm_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def crm_settings(flow_settings: Settings, crm_name: str, tmp_path: Path) -> Settings:
    return flow_settings.model_copy(update={"crm_adapter": crm_name, "data_dir": tmp_path,
                                            "ingress_temporal_timeout_seconds": 5.0})


@pytest.fixture
def crm_ingress(crm_settings: Settings, crm_name: str, request: pytest.FixtureRequest,
                temporal_env: WorkflowEnvironment) -> Iterator[SandboxHandle]:
    """The CRM's emulator delivering its webhooks to an ingress served for this test."""
    sandbox: SandboxHandle = request.getfixturevalue(f"{crm_name}_sandbox")
    target = temporal_env.client.service_client.config.target_host
    provider = ClientProvider(connector_to(target, temporal_env.client.namespace), timeout=5.0)
    ledger = EventLedger.from_settings(crm_settings)
    spec = default_registry(crm_settings).chosen(crm_settings, SystemRole.CRM)
    crm = spec.build(crm_settings)
    app = create_app(settings=crm_settings, client_provider=provider, ledger=ledger, clm=None, crm=crm,
                     receivers=receivers_from_settings(crm_settings, clm=None, crm=crm),
                     on_shutdown=[crm.aclose])
    running = start_in_thread(app)
    sandbox.post_control("webhooks", {"url": f"{running.base_url}{spec.webhook_path}"})
    yield sandbox
    httpx.delete(f"{sandbox.base_url}/_sandbox/webhooks", timeout=10).raise_for_status()
    running.stop()
    ledger.close()


@pytest_asyncio.fixture
async def rig(client: Client, crm_settings: Settings, crm_name: str, crm_ingress: SandboxHandle,
              sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[CrmRig]:
    spec = default_registry(crm_settings).chosen(crm_settings, SystemRole.CRM)
    async with (open_connectors(crm_settings) as connectors, build_worker(client, crm_settings, connectors),
                httpx.AsyncClient(timeout=10) as http):
        acts = acts_for(spec, crm_settings, http)
        assert isinstance(acts, CrmActs)
        yield CrmRig(name=crm_name, settings=crm_settings, acts=acts, sandbox=crm_ingress)


async def started(client: Client, rig: CrmRig, deal_id: str) -> WorkflowHandle[Any, Any]:
    """The run the CRM's delivery started (through the ingress), once it exists."""
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, quote_to_cash_id(rig.settings, deal_id))

    async def exists() -> bool:
        try:
            await handle.describe()
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    await eventually(exists, what=f"the {rig.name} delivery starting quote-to-cash")
    return handle


async def test_quote_to_cash_crm_stage_change_starts_and_provisions(
        client: Client, rig: CrmRig, sandboxes: dict[str, SandboxHandle]) -> None:
    seeded = await rig.acts.seed_deal(DealDraft(model="subscription", stage="Prospecting"
                                                if rig.name == "salesforce" else "qualifiedtobuy"))

    await rig.acts.move_deal(seeded.deal_id)  # closed-won: the CRM tells the ingress
    handle = await started(client, rig, seeded.deal_id)
    await sign_when_out(handle, sandboxes["ironclad"])
    result: QuoteToCashResult = await handle.result()

    assert result.outcome is Stage.PROVISIONED, result.reason
    [engagement] = result.engagements
    assert engagement.billing_customer_id and engagement.project and engagement.project.erp_id
    assert f"{rig.name}:deal:{seeded.deal_id}" in result.business_keys
    assert f"{rig.name}:company:{seeded.company_id}" in result.business_keys
    assert await rig.acts.written_back(seeded.deal_id, "revops_status") == "provisioned"
    record = ProvisioningRecord.model_validate_json(await rig.acts.written_back(seeded.deal_id, "provisioned"))
    assert [e.billing_customer_id for e in record.entities] == [engagement.billing_customer_id]
    assert await rig.acts.written_back(seeded.deal_id, "clm_workflow_id") == result.contract.clm_workflow_id  # type: ignore[union-attr]


async def test_quote_to_cash_crm_missing_data_resumes_when_the_rep_fills_it_in(
        client: Client, rig: CrmRig, sandboxes: dict[str, SandboxHandle]) -> None:
    seeded = await rig.acts.seed_deal(DealDraft(model="fixed_fee", region=None))
    await rig.acts.move_deal(seeded.deal_id)
    handle = await started(client, rig, seeded.deal_id)
    status = await wait_for_stage(handle, Stage.DATA_EXCEPTION)
    assert "region" in {m.field for m in status.missing}

    await rig.acts.edit_deal(seeded.deal_id, {"region": "NA"})  # the CRM's delivery re-checks the waiting run
    await sign_when_out(handle, sandboxes["ironclad"])
    result: QuoteToCashResult = await handle.result()

    assert result.outcome is Stage.PROVISIONED, result.reason
    assert await rig.acts.written_back(seeded.deal_id, "revops_exception") == ""
