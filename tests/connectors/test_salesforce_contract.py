"""Contract of every request the Salesforce adapter sends: each is recorded on its way to the emulator and checked
against the JSON Schema written from Salesforce's REST API reference (``schemas/salesforce/requests.schema.json``,
which cites the pages), and every operation of the schema is exercised."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jsonschema
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from canonical import Account
from canonical.requests import AccountFigures, DealWriteBack
from connectors.salesforce import SalesforceCrm, from_settings
from settings import Settings
from tests.connectors.test_salesforce_adapter import seed
from tests.helpers.servers import SandboxHandle, with_vendor

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "salesforce" / "requests.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


class Recording(httpx.AsyncBaseTransport):
    """Forwards to the real network transport and keeps each request as the schema's instance."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        content_type = request.headers.get("content-type", "")
        self.requests.append({
            "method": request.method, "path": request.url.path,
            "query": dict(parse_qsl(request.url.query.decode())),
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "json": json.loads(body) if body and content_type.startswith("application/json") else None,
            "form": dict(parse_qsl(body.decode())) if content_type.startswith("application/x-www-form") else None,
        })
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def operation(request: dict[str, Any]) -> str:
    """The schema's one operation ``request`` is, or the reasons it matches none."""
    matching = [d["$ref"].rsplit("/", 1)[-1] for d in SCHEMA["oneOf"]
                if jsonschema.Draft202012Validator({**SCHEMA, "oneOf": [d]}).is_valid(request)]
    assert len(matching) == 1, (f"{request['method']} {request['path']} matches {matching}: "
                                f"{[e.message for e in VALIDATOR.iter_errors(request)][:3]}")
    return matching[0]


@pytest_asyncio.fixture
async def recorded(settings: Settings, salesforce_sandbox: SandboxHandle
                   ) -> AsyncIterator[tuple[SalesforceCrm, Recording]]:
    recording = Recording()
    adapter = from_settings(settings, transport=recording)
    yield adapter, recording
    await adapter.aclose()


async def test_salesforce_contract_every_request_matches_the_reference(
        recorded: tuple[SalesforceCrm, Recording], salesforce_sandbox: SandboxHandle) -> None:
    crm, recording = recorded
    since = datetime.now(UTC) - timedelta(seconds=1)
    seeded = seed(salesforce_sandbox.base_url)
    for _ in range(2):
        seed(salesforce_sandbox.base_url, line_items=[], contacts=[])
    await crm.get_deal(seeded["opportunityId"])
    await crm.write_back(seeded["opportunityId"], DealWriteBack(revops_status="contracted", contract_value="1.00"))
    pages = [p async for p in crm.deals_modified_since(since, page_size=200)]
    domain = f"contract-{uuid.uuid4().hex[:8]}.example"
    created = await crm.upsert_companies([Account(name="Contract Ltd", domain=domain)])
    await crm.upsert_companies([Account(crm_id=created.ids[0], name="Contract Ltd renamed")])
    await crm.list_companies(limit=1)
    await crm.list_companies(after=created.ids[0], limit=1)
    figures = [AccountFigures(currency="USD", billed="10.00", paid="0.00", outstanding="10.00", overdue="0.00",
                              credited="0.00")]
    await crm.write_account_figures(seeded["accountId"], figures)
    await crm.write_deal_figures(seeded["opportunityId"], figures)
    await crm.read_figures("companies", [seeded["accountId"]], ["USD"])

    seen = {operation(r) for r in recording.requests}

    assert pages and sum(len(p.deals) for p in pages) >= 3
    assert seen >= {"token_client_credentials", "get_record", "update_record", "query", "collection_update",
                    "collection_upsert"}


async def test_salesforce_contract_query_more_and_batch_size(recorded: tuple[SalesforceCrm, Recording],
                                                             salesforce_sandbox: SandboxHandle) -> None:
    crm, recording = recorded
    since = datetime.now(UTC) - timedelta(seconds=1)
    records = [{"attributes": {"type": "Opportunity"}, "Name": f"More {i}", "StageName": "Prospecting",
                "CloseDate": "2026-01-01"} for i in range(201)]
    for start in (0, 200):
        await crm._call("POST", crm._data("composite/sobjects"),
                        json={"allOrNone": True, "records": records[start:start + 200]})
    recording.requests.clear()

    pages = [p async for p in crm.deals_modified_since(since, page_size=50)]

    kinds = [operation(r) for r in recording.requests]
    assert len(pages) >= 2 and "query_more" in kinds
    first = next(r for r in recording.requests if operation(r) == "query")
    assert first["headers"]["sforce-query-options"] == "batchSize=200"  # Salesforce's minimum


async def test_salesforce_contract_jwt_bearer_token_request(settings: Settings,
                                                            salesforce_sandbox: SandboxHandle) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    salesforce_sandbox.post_control("connected-app/keys", {"public_key_pem": public})
    recording = Recording()
    adapter = from_settings(with_vendor(settings, "salesforce", jwt_private_key=pem), transport=recording)
    try:
        page = await adapter.list_companies(limit=1)
    finally:
        await adapter.aclose()

    assert page.accounts is not None
    assert [operation(r) for r in recording.requests][:2] == ["token_jwt_bearer", "query"]


def test_salesforce_contract_schema_refuses_what_the_reference_refuses() -> None:
    """The schema is not blind: a record ID in a collection upsert, 201 records, an unpinned version, a quoted
    datetime in SOQL and a standard field in a write-back are each refused."""
    bearer = {"authorization": "Bearer t", "content-type": "application/json"}
    upsert = {"method": "PATCH", "path": "/services/data/v60.0/composite/sobjects/Account/Revops_External_Ref__c",
              "headers": bearer, "query": {}, "form": None,
              "json": {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "A",
                                                        "Revops_External_Ref__c": "domain:a.example"}]}}
    assert VALIDATOR.is_valid(upsert)
    with_id = json.loads(json.dumps(upsert))
    with_id["json"]["records"][0]["Id"] = "001000000000001AAA"
    too_many = json.loads(json.dumps(upsert))
    too_many["json"]["records"] = upsert["json"]["records"] * 201
    old_version = {**upsert, "path": upsert["path"].replace("v60.0", "v52.0")}
    quoted = {"method": "GET", "path": "/services/data/v60.0/query/", "headers": bearer, "json": None,
              "query": {"q": "SELECT Id FROM Opportunity WHERE SystemModstamp >= '2026-01-01T00:00:00Z'"}}
    standard = {"method": "PATCH", "path": "/services/data/v60.0/sobjects/Opportunity/006000000000001AAA",
                "headers": bearer, "query": {}, "json": {"StageName": "Closed Won"}}
    for refused in (with_id, too_many, old_version, quoted, standard):
        assert not VALIDATOR.is_valid(refused)


@pytest.mark.parametrize("path", ["/services/data/v60.0/sobjects/Opportunity/006000000000001",
                                  "/services/data/v60.0/sobjects/Opportunity/006000000000001aaa"])
def test_salesforce_contract_schema_wants_the_18_character_id(path: str) -> None:
    request = {"method": "GET", "path": path, "query": {"fields": "Id"}, "headers": {"authorization": "Bearer t"},
               "json": None}
    assert not VALIDATOR.is_valid(request)
