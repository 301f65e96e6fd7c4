"""Company backfill (CompanyBackfillWorkflow) on the real dev server, against HubSpot and Xero emulators of its
own (the shared ones hold other tests' companies): every CRM company ends as exactly one ERP contact,
contacts that existed are found, not duplicated, across pages, continue-as-new, rate limits and 503s;
a second backfill creates nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.crm import CrmActivities
from activities.erp import ErpActivities
from canonical import Account
from canonical.backfill import ErpCustomerDraft
from canonical.keys import erp_contact_reference
from connectors.registry import default_registry
from sandbox.serve import free_port, start_in_thread
from settings import Settings
from tests.helpers.histories import save_history
from tests.helpers.servers import SandboxHandle, build_app, emulator_adapter_settings, vendor_settings
from worker import Connectors, open_connectors
from workflows.backfill import BackfillInput, BackfillResult, CompanyBackfillWorkflow

COMPANIES = 23


@dataclass
class BackfillRig:
    client: Client
    settings: Settings
    connectors: Connectors
    hubspot: SandboxHandle
    xero: SandboxHandle


@pytest.fixture
def own_sandboxes(settings: Settings) -> Iterator[tuple[Settings, SandboxHandle, SandboxHandle]]:
    ports = {"hubspot": free_port(), "xero": free_port()}
    own = settings.model_copy(update={"adapter_settings": {**settings.adapter_settings,
                                                           **emulator_adapter_settings(ports)}})
    handles = [SandboxHandle(vendor=v, running=start_in_thread(build_app(v, own), port=ports[v]))
               for v in ("hubspot", "xero")]
    yield own, handles[0], handles[1]
    for handle in handles:
        handle.running.stop()


@pytest_asyncio.fixture
async def rig(client: Client, flow_settings: Settings, own_sandboxes: tuple[Settings, SandboxHandle, SandboxHandle]
              ) -> AsyncIterator[BackfillRig]:
    own, hubspot, xero = own_sandboxes
    settings = own.model_copy(update={"task_queue": flow_settings.task_queue, "activity_retry_max_seconds": 2.0})
    async with open_connectors(settings) as connectors:
        async with Worker(client, task_queue=settings.task_queue, workflows=[CompanyBackfillWorkflow],
                          activities=[*CrmActivities(crm=connectors.crm).all(),
                                      *ErpActivities(erp=connectors.erp).all()]):
            yield BackfillRig(client, settings, connectors, hubspot, xero)


def contact_numbers(xero: SandboxHandle, tenant: str) -> Counter[str]:
    return Counter(str(c.get("ContactNumber")) for c in xero.store.list("contact", tenant=tenant))


async def run_backfill(rig: BackfillRig, name: str, **overrides: object) -> BackfillResult:
    entity = rig.settings.entity("UK01")
    systems = default_registry(rig.settings).systems(rig.settings)
    request = BackfillInput(entity_code=entity.code, tenant_id=entity.erp_tenant_id, page_size=5, batch_size=3,
                            crm=systems.crm, erp=systems.erp_of(entity.code), pages_per_run=2,
                            **overrides)  # type: ignore[arg-type]
    handle = await rig.client.start_workflow(CompanyBackfillWorkflow.run, request,
                                             id=f"backfill-{name}-{uuid.uuid4().hex[:6]}",
                                             task_queue=rig.settings.task_queue)
    result = await handle.result()
    first_run = rig.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    await save_history(first_run, f"backfill_{name}")
    return result


async def test_backfill_creates_each_missing_contact_once_across_pages_and_runs(rig: BackfillRig) -> None:
    entity = rig.settings.entity("UK01")
    seeded = await rig.connectors.crm.upsert_companies(
        [Account(name=f"Backfill {i:02d} Ltd", domain=f"backfill-{i}.example.com", country="GB")
         for i in range(COMPANIES)])
    company_ids = [i for i in seeded.ids if i]
    assert len(company_ids) == COMPANIES
    # Three companies are in the ERP already (say, from quote-to-cash): they must be found, not duplicated.
    pre = [ErpCustomerDraft(account=Account(name=f"Backfill {i:02d} Ltd", crm_id=company_ids[i], country="GB"),
                            reference=erp_contact_reference("hubspot", company_ids[i], entity.code))
           for i in (0, 7, 22)]
    created_before = await rig.connectors.erp.create_customers(entity.erp_tenant_id, pre,
                                                               idempotency_key=f"pre-{uuid.uuid4().hex}")
    before = contact_numbers(rig.xero, entity.erp_tenant_id)

    # Xero at 4 requests/s with 20 % 503s: the pacing keeps under the limit, the retries reuse their keys.
    with rig.xero.faults(rate_limit_per_second=4, error_rate=0.2, status=503, seed=7):
        result = await run_backfill(rig, "first", erp_requests_per_second=3.0)

    totals = result.totals
    expected = {f"hubspot-company-{cid}-{entity.code}" for cid in company_ids}
    after = contact_numbers(rig.xero, entity.erp_tenant_id)
    assert totals.companies == COMPANIES
    assert (totals.created, totals.existing) == (COMPANIES - 3, 3)
    assert totals.pages == 5 and totals.runs == 3  # 23 companies / 5 per page; continue-as-new every 2 pages
    assert set(after) == expected
    assert all(n == 1 for n in after.values()), {k: n for k, n in after.items() if n > 1}
    assert sum(before.values()) == 3 and len(created_before.contact_ids) == 3
    # The three that existed kept their IDs.
    ids_by_number = {c["ContactNumber"]: c["ContactID"]
                     for c in rig.xero.store.list("contact", tenant=entity.erp_tenant_id)}
    assert [ids_by_number[d.reference] for d in pre] == created_before.contact_ids

    again = await run_backfill(rig, "again")
    assert (again.totals.companies, again.totals.created, again.totals.existing) == (COMPANIES, 0, COMPANIES)
    assert contact_numbers(rig.xero, entity.erp_tenant_id) == after


async def test_backfill_of_an_empty_crm_ends_at_once(rig: BackfillRig) -> None:
    result = await run_backfill(rig, "empty")
    assert (result.totals.companies, result.totals.pages, result.totals.runs) == (0, 1, 1)
    assert rig.xero.store.list("contact", tenant=rig.settings.entity("UK01").erp_tenant_id) == []


async def test_starter_backfill_command(rig: BackfillRig, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import starter

    monkeypatch.setenv("TEMPORAL_ADDRESS", rig.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", rig.client.namespace)
    monkeypatch.setenv("TASK_QUEUE", rig.settings.task_queue)
    for vendor in ("hubspot", "xero"):  # each adapter reads its own prefix
        monkeypatch.setenv(f"{vendor.upper()}_BASE_URL", vendor_settings(rig.settings, vendor).base_url)
    await rig.connectors.crm.upsert_companies([Account(name=f"Cli {i} Ltd", domain=f"cli-{i}.example.com")
                                               for i in range(4)])

    assert await starter.run(["backfill", "UK01", "--rate", "50", "--crm-rate", "50", "--wait"]) == 0
    out = capsys.readouterr().out
    assert "backfill-xero-UK01" in out and "4 companies: 4 created, 0 existing" in out
    assert await starter.run(["backfill", "UK01", "--rate", "50", "--crm-rate", "50", "--wait"]) == 0
    assert "4 companies: 0 created, 4 existing" in capsys.readouterr().out
    assert len(rig.xero.store.list("contact", tenant=rig.settings.entity("UK01").erp_tenant_id)) == 4

    assert await starter.run(["backfill", "XX99"]) == 2
    assert "unknown legal entity" in capsys.readouterr().err
