"""The HubSpot emulator over HTTP: HubSpot's refusals, idempotent upsert, faults, rate limits,
auth, paging, webhooks and the ``/_sandbox`` human acts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, hubspot_auth, vendor_settings


def _hubspot(settings: Settings) -> Any:
    return vendor_settings(settings, "hubspot")


@pytest.fixture
def hs(hubspot_sandbox: SandboxHandle, settings: Settings) -> Iterator[httpx.Client]:
    """An authenticated client for the emulator's public API."""
    with httpx.Client(base_url=hubspot_sandbox.base_url, timeout=10,
                      headers=hubspot_auth(settings)) as client:
        yield client


def seed(hubspot_sandbox: SandboxHandle, **body: Any) -> dict[str, Any]:
    payload = {"deal": {"dealname": f"Deal {uuid.uuid4().hex[:8]}", "dealstage": "qualifiedtobuy"}, **body}
    response = httpx.post(f"{hubspot_sandbox.base_url}/_sandbox/seed/deal", json=payload, timeout=10)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def define(hs: httpx.Client, object_type: str, name: str, **extra: Any) -> httpx.Response:
    group = {"deals": "dealinformation", "companies": "companyinformation"}[object_type]
    return hs.post(f"/crm/v3/properties/{object_type}", json={
        "name": name, "label": name, "type": "string", "fieldType": "text", "groupName": group, **extra})


def unique_ref_property(hs: httpx.Client) -> str:
    response = define(hs, "companies", "revops_external_ref", hasUniqueValue=True)
    assert response.status_code in (201, 409)
    return "revops_external_ref"


# -- HubSpot's refusals -------------------------------------------------------------------------------
def test_hubspot_sandbox_refuses_unknown_property_until_defined(hs: httpx.Client, hubspot_sandbox: SandboxHandle
                                                                ) -> None:
    deal_id = seed(hubspot_sandbox)["dealId"]
    name = f"revops_probe_{uuid.uuid4().hex[:8]}"

    refused = hs.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": {name: "x"}})
    created = define(hs, "deals", name)
    accepted = hs.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": {name: "x"}})

    body = refused.json()
    assert refused.status_code == 400 and body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"] and f'Property \\"{name}\\" does not exist' in body["message"]
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST" and uuid.UUID(body["correlationId"])
    assert created.status_code == 201 and created.headers["Location"].endswith(f"/deals/{name}")
    assert accepted.status_code == 200 and accepted.json()["properties"] == {name: "x"}


def test_hubspot_sandbox_refuses_duplicate_property_definition(hs: httpx.Client) -> None:
    name = f"revops_dup_{uuid.uuid4().hex[:8]}"
    assert define(hs, "deals", name).status_code == 201
    again = define(hs, "deals", name)
    assert again.status_code == 409 and again.json()["category"] == "OBJECT_ALREADY_EXISTS"


def test_hubspot_sandbox_refuses_read_only_and_ill_typed_values(hs: httpx.Client, hubspot_sandbox: SandboxHandle
                                                                ) -> None:
    deal_id = seed(hubspot_sandbox)["dealId"]
    response = hs.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": {
        "hs_lastmodifieddate": "2020-01-01T00:00:00Z", "amount": "lots", "dealstage": "nowhere"}})
    codes = {e["code"] for e in response.json()["errors"]}
    assert response.status_code == 400 and codes == {"READ_ONLY_VALUE", "INVALID_FLOAT", "INVALID_OPTION"}
    assert "amount" not in httpx.get(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}").json()["properties"]


def test_hubspot_sandbox_unknown_object_is_404(hs: httpx.Client) -> None:
    response = hs.get("/crm/v3/objects/deals/424242424242")
    assert response.status_code == 404 and response.json()["category"] == "OBJECT_NOT_FOUND"


# -- idempotency: upsert by a unique property ------------------------------------------------------------
def test_hubspot_sandbox_upsert_replay_returns_the_same_object(hs: httpx.Client, hubspot_sandbox: SandboxHandle
                                                               ) -> None:
    prop = unique_ref_property(hs)
    ref = f"domain:replay-{uuid.uuid4().hex[:8]}.com"
    request = {"inputs": [{"id": ref, "idProperty": prop, "properties": {"name": "Replay Inc"}}]}

    first = hs.post("/crm/v3/objects/companies/batch/upsert", json=request).json()
    second = hs.post("/crm/v3/objects/companies/batch/upsert", json=request).json()

    assert first["status"] == second["status"] == "COMPLETE"
    (one,), (two,) = first["results"], second["results"]
    assert one["id"] == two["id"] and (one["new"], two["new"]) == (True, False)
    assert one["properties"][prop] == ref
    stored = hubspot_sandbox.store.list("hs:companies", where=lambda c: c["properties"].get(prop) == ref)
    assert len(stored) == 1


def test_hubspot_sandbox_unique_value_reuse_is_refused(hs: httpx.Client) -> None:
    prop = unique_ref_property(hs)
    ref = f"domain:taken-{uuid.uuid4().hex[:8]}.com"
    created = hs.post("/crm/v3/objects/companies", json={"properties": {"name": "First", prop: ref},
                                                          "associations": []})
    clash = hs.post("/crm/v3/objects/companies", json={"properties": {"name": "Second", prop: ref},
                                                        "associations": []})
    assert created.status_code == 201
    assert clash.status_code == 409 and clash.json()["category"] == "OBJECT_ALREADY_EXISTS"
    assert f"Existing ID: {created.json()['id']}" in clash.json()["message"]


def test_hubspot_sandbox_upsert_finds_a_unique_value_after_it_changed(hs: httpx.Client) -> None:
    """The look-up by a unique property (an index since 20,000 upserts made it quadratic) follows a value
    changed by PATCH: the old value is free again, the new one names the record, and values compare exactly."""
    prop = unique_ref_property(hs)
    tag = uuid.uuid4().hex[:8]
    old, new, upper = f"domain:old-{tag}.com", f"domain:new-{tag}.com", f"domain:OLD-{tag}.com"

    def upsert(ref: str) -> dict[str, Any]:
        answer = hs.post("/crm/v3/objects/companies/batch/upsert", json={
            "inputs": [{"id": ref, "idProperty": prop, "properties": {"name": f"Moved {tag}"}}]})
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["results"][0])

    first = upsert(old)
    moved = hs.patch(f"/crm/v3/objects/companies/{first['id']}", json={"properties": {prop: new}})
    by_new, by_old, by_case = upsert(new), upsert(old), upsert(upper)

    assert moved.status_code == 200
    assert (by_new["id"], by_new["new"]) == (first["id"], False)
    assert by_old["new"] and by_old["id"] != first["id"]
    assert by_case["new"] and by_case["id"] not in (first["id"], by_old["id"])


def test_hubspot_sandbox_upsert_needs_a_unique_property(hs: httpx.Client) -> None:
    response = hs.post("/crm/v3/objects/companies/batch/upsert", json={
        "inputs": [{"id": "acme.com", "idProperty": "domain", "properties": {"name": "Acme"}}]})
    assert response.status_code == 400 and "not a unique value property" in response.json()["message"]


def test_hubspot_sandbox_batch_limits_and_partial_reads(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    deal_id = seed(hubspot_sandbox)["dealId"]
    too_many = hs.post("/crm/v3/objects/deals/batch/read", json={
        "inputs": [{"id": str(i)} for i in range(101)], "properties": [], "propertiesWithHistory": []})
    partial = hs.post("/crm/v3/objects/deals/batch/read", json={
        "inputs": [{"id": deal_id}, {"id": "1"}], "properties": ["dealname"], "propertiesWithHistory": []})
    assert too_many.status_code == 400
    assert partial.status_code == 207 and [r["id"] for r in partial.json()["results"]] == [deal_id]
    assert partial.json()["errors"][0]["context"] == {"ids": ["1"]}


# -- faults, rate limits, auth ---------------------------------------------------------------------------
def test_hubspot_sandbox_injected_error_uses_hubspot_shape(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    with hubspot_sandbox.faults(error_rate=1, status=502):
        response = hs.get("/crm/v3/properties/deals")
    body = response.json()
    assert response.status_code == 502 and body["status"] == "error" and "correlationId" in body
    assert hs.get("/crm/v3/properties/deals").status_code == 200


def test_hubspot_sandbox_error_rate_is_a_share(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    with hubspot_sandbox.faults(error_rate=0.5, status=503, seed=7):
        statuses = [hs.get("/crm/v3/properties/contacts").status_code for _ in range(40)]
    assert 5 < statuses.count(503) < 35 and statuses.count(200) == 40 - statuses.count(503)


def test_hubspot_sandbox_latency_is_added(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    with hubspot_sandbox.faults(latency_ms=300):
        started = time.monotonic()
        response = hs.get("/crm/v3/properties/deals")
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed >= 0.3


def test_hubspot_sandbox_rate_limit_answers_hubspots_429(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    with hubspot_sandbox.faults(rate_limit_per_second=1, rate_limit_burst=2):
        statuses = [hs.get("/crm/v3/properties/deals") for _ in range(3)]
    limited = statuses[-1]
    body = limited.json()
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert (body["status"], body["errorType"], body["policyName"]) == ("error", "RATE_LIMIT", "SECONDLY")
    assert body["message"] == "You have reached your secondly limit." and body["correlationId"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert limited.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"


@pytest.mark.parametrize("authorization", [None, "Bearer pat-wrong", "Basic cGF0OnNhbmRib3g="])
def test_hubspot_sandbox_refuses_bad_credentials(hubspot_sandbox: SandboxHandle, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{hubspot_sandbox.base_url}/crm/v3/properties/deals", headers=headers)
    assert response.status_code == 401 and response.json()["category"] == "INVALID_AUTHENTICATION"


# -- paging ------------------------------------------------------------------------------------------------
def test_hubspot_sandbox_search_pages_with_after(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    tag = uuid.uuid4().hex[:8]
    names = [f"Paged {tag} {i}" for i in range(5)]
    ids = [seed(hubspot_sandbox, deal={"dealname": n, "amount": str(100 - i)})["dealId"]
           for i, n in enumerate(names)]
    query = {"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "IN", "values": names}]}],
             "sorts": [{"propertyName": "amount", "direction": "ASCENDING"}], "properties": ["amount"], "limit": 2}
    seen: list[str] = []
    after: str | None = "0"
    for _ in range(5):
        page = hs.post("/crm/v3/objects/deals/search", json={**query, "after": after}).json()
        assert page["total"] == 5
        seen += [r["id"] for r in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert seen == list(reversed(ids))
    too_big = hs.post("/crm/v3/objects/deals/search", json={**query, "limit": 201})
    assert too_big.status_code == 400


def test_hubspot_sandbox_lists_and_associations_page(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed(hubspot_sandbox, line_items=[{"name": f"L{i}", "price": "1"} for i in range(3)])
    first = hs.get("/crm/v3/objects/deals", params={"limit": 2}).json()
    second = hs.get("/crm/v3/objects/deals", params={"limit": 2, "after": first["paging"]["next"]["after"]}).json()
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    path = f"/crm/v4/objects/deals/{seeded['dealId']}/associations/line_items"
    one = hs.get(path, params={"limit": 2}).json()
    rest = hs.get(path, params={"limit": 2, "after": one["paging"]["next"]["after"]}).json()
    assert [r["toObjectId"] for r in one["results"] + rest["results"]] == seeded["lineItemIds"]
    assert one["results"][0]["associationTypes"][0]["typeId"] == 19 and "paging" not in rest


# -- objects and the /_sandbox human acts -------------------------------------------------------------
def test_hubspot_sandbox_seed_creates_associated_objects(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    seeded = seed(hubspot_sandbox, company={"name": "Seeded Co", "revops_external_ref": f"s-{uuid.uuid4()}"},
                  contacts=[{"email": "a@seeded.co", "revops_contact_role": "billing"}],
                  line_items=[{"name": "Seat", "price": "12.50", "quantity": "4", "hs_discount_percentage": "10"}])

    deal = hs.get(f"/crm/v3/objects/deals/{seeded['dealId']}",
                  params={"associations": "companies,contacts,line_items"}).json()
    line = hs.get(f"/crm/v3/objects/line_items/{seeded['lineItemIds'][0]}",
                  params={"properties": "amount,price"}).json()
    inspected = httpx.get(f"{hubspot_sandbox.base_url}/_sandbox/deals/{seeded['dealId']}").json()

    assert {r["type"] for r in deal["associations"]["companies"]["results"]} == {
        "deal_to_company", "deal_to_company_unlabeled"}
    assert [r["id"] for r in deal["associations"]["contacts"]["results"]] == seeded["contactIds"]
    assert [r["id"] for r in deal["associations"]["line items"]["results"]] == seeded["lineItemIds"]
    assert line["properties"] == {"amount": "45.00", "price": "12.50"}  # HubSpot's calculated net amount
    assert inspected["associations"]["companies"] == [seeded["companyId"]]
    assert inspected["properties"]["hs_object_id"] == seeded["dealId"]


def test_hubspot_sandbox_tracks_last_modified(hs: httpx.Client, hubspot_sandbox: SandboxHandle) -> None:
    deal_id = seed(hubspot_sandbox, deal={"dealname": "Clock", "dealstage": "qualifiedtobuy"})["dealId"]
    before = hs.get(f"/crm/v3/objects/deals/{deal_id}").json()
    time.sleep(0.01)
    same = hs.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": {"dealname": "Clock"}}).json()
    time.sleep(0.01)
    changed = hs.patch(f"/crm/v3/objects/deals/{deal_id}", json={"properties": {"dealname": "Clock 2"}}).json()
    assert same["updatedAt"] == before["updatedAt"]
    assert changed["updatedAt"] > before["updatedAt"]
    after = hs.get(f"/crm/v3/objects/deals/{deal_id}").json()["properties"]
    assert after["hs_lastmodifieddate"] == changed["updatedAt"] and after["dealname"] == "Clock 2"


def test_hubspot_sandbox_stage_move_and_edit(hubspot_sandbox: SandboxHandle) -> None:
    deal_id = seed(hubspot_sandbox)["dealId"]
    moved = httpx.post(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}/stage", json={"stage": "closedwon"})
    again = httpx.post(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}/stage", json={"stage": "closedwon"})
    bogus = httpx.post(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}/stage", json={"stage": "on-the-moon"})
    edited = httpx.patch(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}",
                         json={"properties": {"revops_region": "APAC"}})
    props = httpx.get(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}").json()["properties"]
    assert moved.json()["changed"] is True and len(moved.json()["eventIds"]) == 1
    assert again.json() == {"dealId": deal_id, "stage": "closedwon", "changed": False, "eventIds": []}
    assert bogus.status_code == 400 and "INVALID_OPTION" in bogus.json()["message"]
    assert edited.json()["changed"] == {"revops_region": "APAC"}
    assert (props["dealstage"], props["revops_region"]) == ("closedwon", "APAC")


# -- webhooks ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inbox(hubspot_sandbox: SandboxHandle) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A registered webhook target that records what it receives."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/hooks/hubspot")
    async def hook(request: Request) -> dict[str, bool]:
        received.append({"url": str(request.url), "headers": dict(request.headers), "body": await request.body()})
        return {"ok": True}

    running: RunningApp = start_in_thread(app)
    url = f"{running.base_url}/hooks/hubspot"
    hubspot_sandbox.post_control("webhooks", {"url": url})
    yield url, received
    httpx.delete(f"{hubspot_sandbox.base_url}/_sandbox/webhooks")
    running.stop()


def wait_for(received: list[dict[str, Any]], event_id: int) -> dict[str, Any]:
    for _ in range(100):
        for delivery in received:
            if any(e["eventId"] == event_id for e in json.loads(delivery["body"])):
                return delivery
        time.sleep(0.05)
    raise AssertionError(f"event {event_id} was not delivered")


def test_hubspot_sandbox_webhook_is_signed_v3(settings: Settings, hubspot_sandbox: SandboxHandle,
                                              inbox: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = inbox
    deal_id = seed(hubspot_sandbox)["dealId"]
    moved = httpx.post(f"{hubspot_sandbox.base_url}/_sandbox/deals/{deal_id}/stage", json={"stage": "contractsent"})

    delivery = wait_for(received, moved.json()["eventIds"][0])

    headers, body = delivery["headers"], delivery["body"]
    timestamp = headers["x-hubspot-request-timestamp"]
    expected = base64.b64encode(hmac.new(_hubspot(settings).client_secret.encode(),
                                         b"POST" + url.encode() + body + timestamp.encode(),
                                         hashlib.sha256).digest()).decode()
    assert headers["x-hubspot-signature-v3"] == expected
    assert abs(time.time() * 1000 - int(timestamp)) < 60_000
    secret = _hubspot(settings).client_secret
    assert headers["x-hubspot-signature"] == hashlib.sha256(secret.encode() + body).hexdigest()
    (event,) = json.loads(body)
    assert event["subscriptionType"] == "deal.propertyChange" and event["objectId"] == int(deal_id)
    assert (event["propertyName"], event["propertyValue"], event["changeSource"]) == (
        "dealstage", "contractsent", "CRM_UI")
    assert {"eventId", "subscriptionId", "portalId", "appId", "occurredAt", "attemptNumber"} <= set(event)


def test_hubspot_sandbox_api_patch_emits_one_event_per_changed_property(
        hs: httpx.Client, hubspot_sandbox: SandboxHandle, inbox: tuple[str, list[dict[str, Any]]]) -> None:
    _url, received = inbox
    deal = {"dealname": "Emitter", "dealstage": "qualifiedtobuy", "amount": "5"}
    deal_id = seed(hubspot_sandbox, deal=deal)["dealId"]
    hs.patch(f"/crm/v3/objects/deals/{deal_id}",
             json={"properties": {"dealname": "Emitter", "amount": "6", "dealstage": "closedwon"}})

    events: list[dict[str, Any]] = []
    for _ in range(100):
        events = [e for d in list(received) for e in json.loads(d["body"])
                  if e["objectId"] == int(deal_id) and e["subscriptionType"] == "deal.propertyChange"]
        if events:
            break
        time.sleep(0.05)
    changes = sorted((e["propertyName"], e["propertyValue"]) for e in events)
    assert changes == [("amount", "6"), ("dealstage", "closedwon")]  # dealname did not change
    assert {e["changeSource"] for e in events} == {"INTEGRATION"}
