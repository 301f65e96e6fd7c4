"""Contract: every request the HubSpot adapter sends and every response the emulator gives pass
HubSpot's published specs (Prism proxies for objects v3, associations v4 and properties v3)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from canonical import Account
from canonical.requests import AccountFigures, DealWriteBack
from connectors.hubspot import HubSpotCrm, from_settings
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.prism import prism_proxy, spec_path, violations
from tests.helpers.servers import build_app, hubspot_auth, with_vendor

SPECS = {"/crm/v3/objects/": "hubspot/crm-objects-v3.json",
         "/crm/v4/": "hubspot/crm-associations-v4.json",
         "/crm/v3/properties/": "hubspot/crm-properties-v3.json"}


@dataclass
class SpecRouter(httpx.AsyncBaseTransport):
    """Sends each request to the Prism proxy of the spec that owns its path, and records the
    exchange with Prism's verdict on the response."""

    routes: dict[str, str]
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)
    exchanges: list[dict[str, Any]] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        prefix = next((p for p in self.routes if request.url.path.startswith(p)), None)
        if prefix is None:
            raise AssertionError(f"no spec covers {request.method} {request.url.path}")
        target = httpx.URL(self.routes[prefix])
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        request.headers["Host"] = f"{target.host}:{target.port}"
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append({"spec": SPECS[prefix], "method": request.method, "path": request.url.path,
                               "status": response.status_code, "violations": violations(response),
                               "body": response.text[:500] if response.status_code >= 400 else ""})
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Contract:
    emulator: RunningApp
    proxies: dict[str, str]
    settings: Settings


@pytest.fixture(scope="module")
def contract(settings: Settings, prism_log_dir: Path) -> Iterator[Contract]:
    """A fresh emulator (standard properties only, so property creation is exercised) behind one
    Prism proxy per spec; Prism starts once per module because it is slow."""
    emulator = start_in_thread(build_app("hubspot", settings))
    with ExitStack() as stack:
        proxies = {prefix: stack.enter_context(prism_proxy(spec_path(spec), emulator.base_url,
                                                           log_dir=prism_log_dir)).base_url
                   for prefix, spec in SPECS.items()}
        yield Contract(emulator=emulator, proxies=proxies,
                       settings=with_vendor(settings, "hubspot", base_url=emulator.base_url))
    emulator.stop()


@pytest_asyncio.fixture
async def routed(contract: Contract) -> AsyncIterator[tuple[HubSpotCrm, SpecRouter]]:
    router = SpecRouter(routes=contract.proxies)
    adapter = from_settings(contract.settings, transport=router)
    yield adapter, router
    await adapter.aclose()


def seed(contract: Contract, lines: int = 2) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    response = httpx.post(f"{contract.emulator.base_url}/_sandbox/seed/deal", json={
        "deal": {"dealname": f"Contract {tag}", "amount": "1000", "dealstage": "contractsent",
                 "deal_currency_code": "USD", "revops_region": "NA", "revops_start_date": "2025-01-01"},
        "company": {"name": f"Co {tag}", "domain": f"co-{tag}.com", "country": "US"},
        "contacts": [{"email": f"b@{tag}.com", "revops_contact_role": "billing"}],
        "line_items": [{"name": f"L{i}", "hs_sku": f"S{i}", "quantity": "1", "price": "500"} for i in range(lines)],
    }, timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def assert_clean(router: SpecRouter) -> None:
    bad = [e for e in router.exchanges if e["status"] >= 400 or e["violations"]]
    assert not bad, bad


async def test_hubspot_contract_every_adapter_operation_conforms(
        contract: Contract, routed: tuple[HubSpotCrm, SpecRouter]) -> None:
    crm, router = routed
    seeded = seed(contract)
    since = datetime.now(UTC) - timedelta(seconds=5)
    tag = uuid.uuid4().hex[:8]

    await crm.ensure_properties()
    deal = await crm.get_deal(seeded["dealId"])
    await crm.write_back(seeded["dealId"], DealWriteBack(revops_status="approved", contract_value="1000",
                                                         clm_workflow_id="wf-contract"))
    page = await crm.search_deals_modified_since(since, limit=1)
    await crm.search_deals_modified_since(since, after=page.next_after, limit=1)
    upserted = await crm.upsert_companies([Account(name=f"New {tag}", domain=f"new-{tag}.com"),
                                           Account(crm_id=seeded["companyId"], name=f"Known {tag}",
                                                   domain=f"known-{tag}.com")])
    await crm.write_account_figures(upserted.ids[0], [AccountFigures(
        currency="USD", billed="10.00", paid="5.00", outstanding="5.00", overdue="0.00", credited="0.00",
        last_payment_date=date(2025, 5, 1), dso_days="3")])

    assert deal.crm_id == seeded["dealId"] and len(deal.lines) == 2 and page.deals
    assert_clean(router)
    seen = {(e["spec"], e["method"], e["path"].split("/")[-1]) for e in router.exchanges}
    assert {("hubspot/crm-properties-v3.json", "GET", "deals"), ("hubspot/crm-properties-v3.json", "POST", "deals"),
            ("hubspot/crm-objects-v3.json", "GET", seeded["dealId"]),
            ("hubspot/crm-objects-v3.json", "POST", "read"), ("hubspot/crm-objects-v3.json", "PATCH", seeded["dealId"]),
            ("hubspot/crm-objects-v3.json", "POST", "search"), ("hubspot/crm-objects-v3.json", "POST", "upsert"),
            ("hubspot/crm-objects-v3.json", "POST", "update")} <= seen


async def test_hubspot_contract_paged_associations_conform(
        contract: Contract, routed: tuple[HubSpotCrm, SpecRouter]) -> None:
    crm, router = routed
    seeded = seed(contract, lines=4)
    contract.emulator.app.state.inline_association_limit = 1  # force the v4 association walk
    try:
        deal = await crm.get_deal(seeded["dealId"])
    finally:
        contract.emulator.app.state.inline_association_limit = 100
    assert [line.crm_id for line in deal.lines] == seeded["lineItemIds"]
    assert any(e["spec"] == "hubspot/crm-associations-v4.json" for e in router.exchanges)
    assert_clean(router)


async def test_hubspot_contract_malformed_request_is_rejected(contract: Contract) -> None:
    headers = hubspot_auth(contract.settings)
    objects = contract.proxies["/crm/v3/objects/"]
    before = contract.emulator.app.state.control.stats.requests
    async with httpx.AsyncClient(timeout=10) as client:
        # The emulator would answer these; the spec says they are not HubSpot requests.
        no_paging_fields = await client.post(f"{objects}/crm/v3/objects/deals/search", headers=headers,
                                             json={"filterGroups": []})
        upsert_without_id = await client.post(f"{objects}/crm/v3/objects/companies/batch/upsert", headers=headers,
                                              json={"inputs": [{"properties": {"name": "x"}}]})
        property_without_type = await client.post(
            f"{contract.proxies['/crm/v3/properties/']}/crm/v3/properties/deals", headers=headers,
            json={"name": "revops_x", "label": "X", "groupName": "dealinformation"})
    for response in (no_paging_fields, upsert_without_id, property_without_type):
        assert response.status_code == 422, response.text
        assert "stoplight.io/prism/errors#UNPROCESSABLE_ENTITY" in response.text
    assert contract.emulator.app.state.control.stats.requests == before  # refused before the emulator


def test_hubspot_contract_nonconforming_response_is_flagged(prism_log_dir: Path) -> None:
    """The response check can fail too: a deal without timestamps and with a numeric property."""
    upstream = FastAPI()

    @upstream.get("/crm/v3/objects/deals/{deal_id}")
    async def broken(deal_id: str) -> dict[str, Any]:
        return {"id": deal_id, "properties": {"amount": 12}, "archived": False}

    running = start_in_thread(upstream)
    try:
        with prism_proxy(spec_path(SPECS["/crm/v3/objects/"]), running.base_url, log_dir=prism_log_dir) as proxy:
            response = httpx.get(f"{proxy.base_url}/crm/v3/objects/deals/1", headers={"Authorization": "Bearer t"})
    finally:
        running.stop()
    messages = [str(v["message"]) for v in violations(response)]
    assert response.status_code == 500
    assert "Response body must have required property 'createdAt'" in messages
    assert "Response body property properties.amount must be string" in messages
