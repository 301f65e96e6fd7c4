"""Quote-to-cash against each CRM/CLM pair the stack presets name, chosen by configuration alone
(``CRM_ADAPTER``, ``CLM_ADAPTER``): the same production worker, the real ingress receiving the CRM's own
deliveries from its emulator, the sales rep's acts in the CRM's words and the signers' in the CLM's
(``connectors/<vendor>/acts.py``). Parametrised by pair (``pair`` in tests/workflows/conftest.py), not copied."""

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
from canonical import Money
from canonical.ownership import SystemRole
from canonical.requests import ProvisioningRecord
from connectors.acts import CrmActs, DealDraft
from connectors.registry import default_registry
from ingress.app import create_app
from intake import ClientProvider
from runtime.launch import quote_to_cash_id
from sandbox.serve import start_in_thread
from settings import Settings
from stores.events import EventLedger
from tests.helpers.pairs import Pair
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.ingress.conftest import connector_to
from tests.workflows.test_quote_to_cash import wait_for_stage
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@dataclass
class CrmRig:
    """One CRM/CLM pair chosen by settings: the CRM's emulator delivering to a served ingress, the acts, the
    worker."""

    name: str
    settings: Settings
    pair: Pair
    sandbox: SandboxHandle

    @property
    def acts(self) -> CrmActs:
        return self.pair.crm


@pytest.fixture
def crm_name(pair: Pair) -> str:
    return pair.crm_name


@pytest.fixture
def crm_settings(pair: Pair, tmp_path: Path) -> Settings:
    pair.settings = pair.settings.model_copy(update={"data_dir": tmp_path, "ingress_temporal_timeout_seconds": 5.0})
    return pair.settings


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
async def rig(client: Client, pair: Pair, crm_settings: Settings, crm_name: str, crm_ingress: SandboxHandle
              ) -> AsyncIterator[CrmRig]:
    async with open_connectors(crm_settings) as connectors, build_worker(client, crm_settings, connectors):
        yield CrmRig(name=crm_name, settings=crm_settings, pair=pair, sandbox=crm_ingress)


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


@pytest.mark.parametrize("model", ["subscription", "fixed_fee"])
async def test_quote_to_cash_crm_stage_change_starts_and_provisions(
        model: str, client: Client, rig: CrmRig, request: pytest.FixtureRequest) -> None:
    seeded = await rig.acts.seed_deal(DealDraft(model=model, stage="Prospecting"
                                                if rig.name == "salesforce" else "qualifiedtobuy"))

    await rig.acts.move_deal(seeded.deal_id)  # closed-won: the CRM tells the ingress
    handle = await started(client, rig, seeded.deal_id)
    contract_id = await rig.pair.sign_when_out(handle)  # every party signs in the CLM
    result: QuoteToCashResult = await handle.result()

    assert result.outcome is Stage.PROVISIONED, result.reason
    [engagement] = result.engagements
    assert engagement.billing_customer_id and engagement.project and engagement.project.erp_id
    assert f"{rig.name}:deal:{seeded.deal_id}" in result.business_keys
    assert f"{rig.name}:company:{seeded.company_id}" in result.business_keys
    clm = rig.pair.clm_name
    assert result.contract and result.contract.clm_workflow_id == contract_id
    assert f"{clm}:workflow:{contract_id}" in result.business_keys
    assert f"{clm}:record:{result.contract.clm_record_id}" in result.business_keys
    terms = result.contract.terms
    assert terms is not None and terms.billing_model.value == model
    if model == "fixed_fee":  # the executed terms as the CLM holds them, read back after signing
        assert terms.fixed_fee == Money.of("9500.00", "USD")
    else:
        assert [(c.quantity, c.unit_price) for c in terms.recurring] == [(20, Money.of("45.00", "USD"))]
    clm_box: SandboxHandle = request.getfixturevalue(f"{clm}_sandbox")
    launched = rig.pair.clm.contracts_seen(clm_box)
    assert launched[seeded.deal_id] == 1  # one contract for the deal, however often the launch activity ran
    assert await rig.acts.written_back(seeded.deal_id, "revops_status") == "provisioned"
    record = ProvisioningRecord.model_validate_json(await rig.acts.written_back(seeded.deal_id, "provisioned"))
    assert [e.billing_customer_id for e in record.entities] == [engagement.billing_customer_id]
    assert await rig.acts.written_back(seeded.deal_id, "clm_workflow_id") == result.contract.clm_workflow_id  # type: ignore[union-attr]


async def test_quote_to_cash_crm_missing_data_resumes_when_the_rep_fills_it_in(
        client: Client, rig: CrmRig) -> None:
    seeded = await rig.acts.seed_deal(DealDraft(model="fixed_fee", region=None))
    await rig.acts.move_deal(seeded.deal_id)
    handle = await started(client, rig, seeded.deal_id)
    status = await wait_for_stage(handle, Stage.DATA_EXCEPTION)
    assert "region" in {m.field for m in status.missing}

    await rig.acts.edit_deal(seeded.deal_id, {"region": "NA"})  # the CRM's delivery re-checks the waiting run
    await rig.pair.sign_when_out(handle)
    result: QuoteToCashResult = await handle.result()

    assert result.outcome is Stage.PROVISIONED, result.reason
    assert await rig.acts.written_back(seeded.deal_id, "revops_exception") == ""
