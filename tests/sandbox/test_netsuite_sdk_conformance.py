"""A widely used NetSuite client (the ``netsuite`` package: httpx + authlib's OAuth 1.0a with HMAC-SHA256 and
``oauth_body_hash``) judges the NetSuite emulator: TBA, record get and upsert by external ID, a partial payment
applied to an invoice, and SuiteQL paging. Where the client and the emulator disagree, the emulator is wrong."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from netsuite import Config, NetSuiteRestApi, TokenAuth
from netsuite.exceptions import NetsuiteAPIRequestError

from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings


def uid() -> str:
    return uuid.uuid4().hex[:10]


class EmulatedRestApi(NetSuiteRestApi):
    """The client with its account host replaced by the emulator's (the only change an integrator makes)."""

    def __init__(self, config: Config, base_url: str) -> None:
        super().__init__(config)
        self._base_url = base_url

    def _make_url(self, subpath: str) -> str:
        return f"{self._base_url}/services/rest{subpath}"


def client(settings: Settings, sandbox: SandboxHandle, account: str | None = None, **secrets: str
           ) -> EmulatedRestApi:
    ns = vendor_settings(settings, "netsuite")
    auth = {"consumer_key": ns.consumer_key, "consumer_secret": ns.consumer_secret, "token_id": ns.token_id,
            "token_secret": ns.token_secret, **secrets}
    return EmulatedRestApi(Config(account=account or ns.account_id, auth=TokenAuth(**auth)), sandbox.base_url)


@pytest.fixture
def api(settings: Settings, netsuite_sandbox: SandboxHandle) -> EmulatedRestApi:
    return client(settings, netsuite_sandbox)


async def test_netsuite_sdk_tba_reads_a_subsidiary_and_a_currency(api: EmulatedRestApi) -> None:
    subsidiary = await api.get("/record/v1/subsidiary/1")
    currency = await api.get(f"/record/v1/currency/{subsidiary['currency']['id']}")
    assert subsidiary["id"] == "1" and currency["symbol"] == "USD"


@pytest.mark.parametrize("override", [{"token_secret": "wrong"}, {"account": "7654321_SB1"}])
async def test_netsuite_sdk_bad_secret_or_realm_is_401_with_netsuites_body(
        settings: Settings, netsuite_sandbox: SandboxHandle, override: dict[str, str]) -> None:
    with pytest.raises(NetsuiteAPIRequestError) as refused:
        await client(settings, netsuite_sandbox, **override).get("/record/v1/subsidiary/1")
    body = json.loads(refused.value.response_text)
    assert refused.value.status_code == 401 and body["status"] == 401
    assert body["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


async def test_netsuite_sdk_upsert_by_external_id_then_get(api: EmulatedRestApi) -> None:
    eid = f"sdk-{uid()}"
    created = await api.put(f"/record/v1/customer/eid:{eid}", json={
        "companyName": f"SDK Co {eid}", "subsidiary": {"id": "1"}, "email": "ap@sdk.example"})
    again = await api.put(f"/record/v1/customer/eid:{eid}", json={"companyName": f"SDK Co {eid} renamed"})
    doc = await api.get(f"/record/v1/customer/eid:{eid}")
    by_id = await api.get(f"/record/v1/customer/{doc['id']}")

    assert created is None and again is None  # 204 No Content, as NetSuite answers an upsert
    assert doc["externalId"] == eid and doc["companyName"] == f"SDK Co {eid} renamed"
    assert doc["email"] == "ap@sdk.example" and by_id["id"] == doc["id"]


async def test_netsuite_sdk_partial_payment_applied_to_an_invoice(api: EmulatedRestApi) -> None:
    eid = f"sdk-{uid()}"
    await api.put(f"/record/v1/customer/eid:{eid}", json={"companyName": f"Payer {eid}", "subsidiary": {"id": "1"}})
    customer = await api.get(f"/record/v1/customer/eid:{eid}")
    await api.put(f"/record/v1/invoice/eid:inv-{eid}", json={
        "entity": {"id": customer["id"]}, "subsidiary": {"id": "1"}, "tranDate": "2024-05-01",
        "item": {"items": [{"item": {"id": "1"}, "quantity": 2, "rate": 125.5, "amount": 251.0}]}})
    invoice = await api.get(f"/record/v1/invoice/eid:inv-{eid}")
    await api.post("/record/v1/customerPayment", json={
        "customer": {"id": customer["id"]}, "subsidiary": {"id": "1"}, "payment": 100.25,
        "apply": {"items": [{"doc": {"id": invoice["id"]}, "apply": True, "amount": 100.25}]}})
    after = await api.get(f"/record/v1/invoice/{invoice['id']}")

    assert (invoice["total"], invoice["amountPaid"], invoice["amountRemaining"]) == (251.0, 0, 251.0)
    assert (after["amountPaid"], after["amountRemaining"], after["status"]["refName"]) == (100.25, 150.75, "Open")


async def _customers(api: EmulatedRestApi, prefix: str, count: int) -> list[str]:
    for n in range(count):
        await api.put(f"/record/v1/customer/eid:{prefix}-{n}", json={
            "companyName": f"{prefix} {n}", "subsidiary": {"id": "1"}})
    return [f"{prefix}-{n}" for n in range(count)]


async def test_netsuite_sdk_suiteql_pages_with_has_more_and_next_links(api: EmulatedRestApi) -> None:
    prefix = f"page{uid()}"
    made = await _customers(api, prefix, 5)
    query = f"SELECT id, externalid FROM customer WHERE externalid LIKE '{prefix}-%' ORDER BY externalid DESC"
    pages: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await api.suiteql(q=query, limit=2, offset=offset)
        pages.append(page)
        if not page["hasMore"]:
            break
        [following] = [link["href"] for link in page["links"] if link["rel"] == "next"]
        offset += 2
        assert following.endswith(f"limit=2&offset={offset}")

    assert [p["count"] for p in pages] == [2, 2, 1] and {p["totalResults"] for p in pages} == {5}
    assert [row["externalid"] for p in pages for row in p["items"]] == sorted(made, reverse=True)


async def test_netsuite_sdk_suiteql_dates_in_and_not_like(api: EmulatedRestApi) -> None:
    prefix = f"when{uid()}"
    made = await _customers(api, prefix, 3)
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    listed = ", ".join(f"'{eid}'" for eid in made[:2])
    page = await api.suiteql(q=f"SELECT externalid FROM customer WHERE lastmodifieddate >= TO_DATE('{since}', "
                               f"'YYYY-MM-DD HH24:MI:SS') AND externalid IN ({listed}) AND NOT companyname "
                               f"LIKE '% 1' ORDER BY externalid", limit=10)
    future = await api.suiteql(q=f"SELECT externalid FROM customer WHERE externalid = '{made[0]}' AND "
                                 "lastmodifieddate > TO_DATE('2999-01-01', 'YYYY-MM-DD')")
    assert [row["externalid"] for row in page["items"]] == [made[0]]
    assert future["items"] == [] and future["hasMore"] is False


async def test_netsuite_sdk_suiteql_outside_the_subset_is_400_with_netsuites_body(api: EmulatedRestApi) -> None:
    with pytest.raises(NetsuiteAPIRequestError) as refused:
        await api.suiteql(q="SELECT id FROM customer WHERE id = 1 UNION SELECT id FROM job")
    body = json.loads(refused.value.response_text)
    assert refused.value.status_code == 400 and body["o:errorDetails"][0]["o:errorCode"] == "INVALID_PARAMETER"
