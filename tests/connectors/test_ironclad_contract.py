"""Contract tests: Prism (validating proxy, ``--errors``) between the Ironclad adapter and the emulator.

Two proxies, because the vendor publishes two specs: the public API (servers ``.../public/api/v1``) and
OAuth 2.0 (servers ``.../oauth``). Prism matches spec paths without the servers' base path and appends
the request path to the upstream URL, so each proxy's upstream is the emulator plus that base path, and a
small transport sends the adapter's real URLs (``/public/api/v1/...``, ``/oauth/token``) to the matching
proxy without the prefix. The adapter itself is the production one, built by ``from_settings``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from canonical import ContractStatus
from connectors.errors import Unavailable
from connectors.ironclad import IroncladClm, from_settings
from settings import Settings
from tests.connectors.test_ironclad_adapter import contract_request
from tests.helpers.prism import PrismProxy, prism_proxy, spec_path, violations
from tests.helpers.servers import SandboxHandle, vendor_settings

PUBLIC_SPEC = "ironclad/ironclad-public-api-openapi.yml"
OAUTH_SPEC = "ironclad/ironclad-oauth-20-api-openapi.yml"
PREFIXES = {"/public/api/v1": "api", "/oauth": "oauth"}


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    violations: list[dict[str, object]]
    body: str


@dataclass
class SpecRouter(httpx.AsyncBaseTransport):
    """Sends ``/public/api/v1/*`` to the API proxy and ``/oauth/*`` to the OAuth proxy; records each reply."""

    proxies: dict[str, PrismProxy]
    exchanges: list[Exchange] = field(default_factory=list)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        prefix = next(p for p in PREFIXES if path.startswith(p))
        target = httpx.URL(self.proxies[PREFIXES[prefix]].base_url)
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port,
                                            path=path[len(prefix):])
        request.headers["host"] = f"{target.host}:{target.port}"
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.exchanges.append(Exchange(request.method, path, response.status_code,
                                       response.headers.get("content-type", ""), violations(response),
                                       response.text))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(scope="module")
def proxies(ironclad_sandbox: SandboxHandle, prism_log_dir: Path) -> Iterator[dict[str, PrismProxy]]:
    with prism_proxy(spec_path(PUBLIC_SPEC), f"{ironclad_sandbox.base_url}/public/api/v1",
                     log_dir=prism_log_dir) as api, \
         prism_proxy(spec_path(OAUTH_SPEC), f"{ironclad_sandbox.base_url}/oauth", log_dir=prism_log_dir) as oauth:
        yield {"api": api, "oauth": oauth}


@pytest_asyncio.fixture
async def checked(settings: Settings, proxies: dict[str, PrismProxy]) -> AsyncIterator[
        tuple[IroncladClm, SpecRouter]]:
    router = SpecRouter(proxies)
    adapter = from_settings(settings, transport=router)
    yield adapter, router
    await adapter.aclose()


def assert_conforms(router: SpecRouter) -> None:
    problems = [e for e in router.exchanges
                if e.violations or "problem+json" in e.content_type or e.status >= 400]
    assert not problems, problems


async def test_ironclad_contract_every_adapter_operation_conforms(
        checked: tuple[IroncladClm, SpecRouter], settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    clm, router = checked
    request, key = contract_request(settings), f"contract-{uuid.uuid4()}"

    launched = await clm.launch_contract(request, idempotency_key=key)
    again = await clm.launch_contract(request, idempotency_key=key)
    assert again.clm_workflow_id == launched.clm_workflow_id
    assert (await clm.get_contract(str(launched.clm_workflow_id))).status is ContractStatus.IN_REVIEW
    ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/approve")
    assert (await clm.get_contract(str(launched.clm_workflow_id))).status is ContractStatus.SIGNING
    record_id = ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign").json()["recordId"]
    ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
        "sequence": 1, "properties": {"contractValue": {"currency": "EUR", "amount": 50000},
                                      "expirationDate": "2027-12-31T00:00:00Z"}})
    executed = await clm.get_contract(str(launched.clm_workflow_id))
    assert executed.status is ContractStatus.EXECUTED and len(executed.amendments) == 1
    assert (await clm.get_record(record_id)).amendments[0].sequence == 1

    other = await clm.launch_contract(contract_request(settings), idempotency_key=f"contract-{uuid.uuid4()}")
    ironclad_sandbox.post_control(f"workflows/{other.clm_workflow_id}/sign")
    assert (await clm.get_contract(str(other.clm_workflow_id))).status is ContractStatus.EXECUTED
    assert (await clm.webhook_verification_key()).startswith("-----BEGIN PUBLIC KEY-----")

    operations = {(e.method, e.path.rsplit("/", 1)[0] if e.path.count("/") > 4 else e.path)
                  for e in router.exchanges}
    assert ("POST", "/oauth/token") in operations  # the token request went through the OAuth spec too
    assert {"POST", "GET"} <= {m for m, p in operations if p.startswith("/public/api/v1/workflows")}
    assert any(e.path.startswith("/public/api/v1/records/") for e in router.exchanges)
    assert any(e.path.endswith("/verification-key") for e in router.exchanges)
    assert_conforms(router)


async def test_ironclad_contract_cancel_request_conforms(
        checked: tuple[IroncladClm, SpecRouter], settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    """The spec gives cancel's ``204`` an ``application/json`` object body, which a 204 cannot carry, so
    Prism (``--errors``) turns the emulator's correct bodiless 204 into a 500. What we can prove: the
    request passed validation and was forwarded (the workflow is cancelled), and the only complaints are
    about that impossible body."""
    clm, router = checked
    launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"cancel-{uuid.uuid4()}")

    with pytest.raises(Unavailable):
        await clm.cancel_contract(str(launched.clm_workflow_id), reason="duplicate deal")

    assert ironclad_sandbox.store.get("workflow", str(launched.clm_workflow_id))["status"] == "cancelled"
    cancel = next(e for e in router.exchanges if e.path.endswith("/cancel"))
    problems = json.loads(cancel.body)["validation"]
    assert cancel.status == 500 and problems
    assert all(p["location"][0] == "response" for p in problems)
    assert {str(p["message"]) for p in problems} <= {
        'The received media type "" does not match the one specified in the current response: application/json',
        "Response body must be object"}
    router.exchanges.remove(cancel)
    assert (await clm.get_contract(str(launched.clm_workflow_id))).status is ContractStatus.CANCELLED
    assert_conforms(router)


async def test_ironclad_contract_refuses_a_malformed_launch(proxies: dict[str, PrismProxy],
                                                            settings: Settings,
                                                            ironclad_sandbox: SandboxHandle) -> None:
    tag = f"malformed-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=proxies["api"].base_url) as raw:
        response = await raw.post("/workflows", headers={"Authorization": "Bearer whatever"},
                                  json={"template": vendor_settings(settings, "ironclad").template_id,
                                        "title": "not a field",
                                        "attributes": {"revopsKey": tag}})
    assert response.status_code == 422 and "problem+json" in response.headers["content-type"]
    assert "counterpartyName" in response.text
    # refused by the validator, never forwarded
    assert not ironclad_sandbox.store.list("workflow", where=lambda w: w["attributes"].get("revopsKey") == tag)


async def test_ironclad_contract_refuses_a_malformed_token_request(proxies: dict[str, PrismProxy]) -> None:
    async with httpx.AsyncClient(base_url=proxies["oauth"].base_url) as raw:
        response = await raw.post("/token", json={"grant_type": "password", "username": "u"})
    assert response.status_code == 422 and "problem+json" in response.headers["content-type"]
