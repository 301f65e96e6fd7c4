"""The Ironclad emulator over HTTP: OAuth, refusals, launch validation, listing and pagination, faults,
signed webhooks, and the /_sandbox human acts. Checks here use plain httpx and cryptography, not the
connector, so a bug in one cannot hide one in the other."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request

from sandbox.serve import start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings


def _ironclad(settings: Settings) -> Any:
    return vendor_settings(settings, "ironclad")

API = "/public/api/v1"


def token(sandbox: SandboxHandle, settings: Settings) -> str:
    response = httpx.post(f"{sandbox.base_url}/oauth/token", json={
        "grant_type": "client_credentials", "client_id": _ironclad(settings).client_id,
        "client_secret": _ironclad(settings).client_secret, "scope": "public.workflows.readWorkflows"})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def api(ironclad_sandbox: SandboxHandle, settings: Settings) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {token(ironclad_sandbox, settings)}",
               "x-as-user-email": _ironclad(settings).user_email}
    with httpx.Client(base_url=f"{ironclad_sandbox.base_url}{API}", headers=headers, timeout=10) as client:
        yield client


def attributes(**overrides: Any) -> dict[str, Any]:
    attrs = {"counterpartyName": "Initech", "contractTitle": "Initech order form", "revopsKey": str(uuid.uuid4()),
             "revopsDealId": f"deal-{uuid.uuid4().hex[:8]}", "effectiveDate": "2026-02-01T00:00:00Z",
             "contractValue": {"currency": "USD", "amount": 12000.5}, "billingModel": "fixed_fee",
             "paymentTermsDays": 30}
    attrs.update(overrides)
    return {k: v for k, v in attrs.items() if v is not None}


def launch(api: httpx.Client, settings: Settings, **overrides: Any) -> dict[str, Any]:
    response = api.post("/workflows", json={"template": _ironclad(settings).template_id,
                                            "attributes": attributes(**overrides)})
    assert response.status_code == 200, response.text
    return dict(response.json())


# -- OAuth and refusals ------------------------------------------------------------------------
def test_ironclad_sandbox_token_accepts_json_and_basic_form(ironclad_sandbox: SandboxHandle,
                                                           settings: Settings) -> None:
    as_json = httpx.post(f"{ironclad_sandbox.base_url}/oauth/token", json={
        "grant_type": "client_credentials", "client_id": _ironclad(settings).client_id,
        "client_secret": _ironclad(settings).client_secret})
    as_form = httpx.post(f"{ironclad_sandbox.base_url}/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(_ironclad(settings).client_id, _ironclad(settings).client_secret))
    for response in (as_json, as_form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]


@pytest.mark.parametrize(("form", "status", "error"), [
    ({"grant_type": "client_credentials", "client_secret": "wrong"}, 401, "invalid_client"),
    ({"grant_type": "authorization_code"}, 403, "unauthorized_client"),
    ({}, 400, "invalid_request"),
])
def test_ironclad_sandbox_token_refusals(ironclad_sandbox: SandboxHandle, settings: Settings,
                                         form: dict[str, str], status: int, error: str) -> None:
    body = {"client_id": _ironclad(settings).client_id, "client_secret": _ironclad(settings).client_secret, **form}
    response = httpx.post(f"{ironclad_sandbox.base_url}/oauth/token", json=body)
    assert response.status_code == status and response.json()["error"] == error


def test_ironclad_sandbox_refuses_missing_unknown_and_expired_tokens(ironclad_sandbox: SandboxHandle,
                                                                    settings: Settings) -> None:
    url = f"{ironclad_sandbox.base_url}{API}/workflows"
    user = {"x-as-user-email": _ironclad(settings).user_email}
    missing = httpx.get(url, headers=user)
    unknown = httpx.get(url, headers={**user, "Authorization": "Bearer nope"})
    assert missing.status_code == unknown.status_code == 401
    assert missing.json() == {"code": "UNAUTHORIZED", "message": "invalid authentication token"}

    bearer = token(ironclad_sandbox, settings)
    assert httpx.get(url, headers={**user, "Authorization": f"Bearer {bearer}"}).status_code == 200
    ironclad_sandbox.post_control("tokens/expire")
    expired = httpx.get(url, headers={**user, "Authorization": f"Bearer {bearer}"})
    assert expired.status_code == 401
    assert expired.json() == {"code": "UNAUTHORIZED", "message": "token has expired"}


def test_ironclad_sandbox_requires_the_acting_user(ironclad_sandbox: SandboxHandle, settings: Settings) -> None:
    url = f"{ironclad_sandbox.base_url}{API}/workflows"
    bearer = {"Authorization": f"Bearer {token(ironclad_sandbox, settings)}"}
    missing = httpx.get(url, headers=bearer)
    stranger = httpx.get(url, headers={**bearer, "x-as-user-email": "stranger@example.com"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "MISSING_PARAM" and missing.json()["param"] == "x-as-user-email"
    assert stranger.status_code == 403 and stranger.json()["code"] == "FORBIDDEN"


# -- launch and read ------------------------------------------------------------------------
def test_ironclad_sandbox_launch_returns_the_launched_workflow(api: httpx.Client, settings: Settings) -> None:
    workflow = launch(api, settings, effectiveDate="2026-02-01")

    assert len(workflow["id"]) == 24 and workflow["ironcladId"].startswith("IC-")
    assert (workflow["status"], workflow["step"]) == ("active", "Review")
    assert workflow["attributes"]["effectiveDate"] == "2026-02-01T00:00:00Z"  # dates normalised
    assert workflow["schema"]["contractValue"] == "monetaryAmount"
    fetched = api.get(f"/workflows/{workflow['id']}").json()
    assert fetched["schema"]["contractValue"]["type"] == "monetaryAmount"
    assert api.get(f"/workflows/{workflow['ironcladId']}").json()["id"] == workflow["id"]


@pytest.mark.parametrize(("overrides", "code", "param"), [
    ({"counterpartyName": None}, "MISSING_PARAM", "counterpartyName"),
    ({"contractValue": {"currency": "USD", "amount": "lots"}}, "INVALID_PARAM", "contractValue"),
    ({"counterpartySignerEmail": "nope"}, "INVALID_PARAM", "counterpartySignerEmail"),
    ({"surprise": "x"}, "INVALID_PARAM", "surprise"),
])
def test_ironclad_sandbox_launch_validation_errors(api: httpx.Client, settings: Settings,
                                                   overrides: dict[str, Any], code: str, param: str) -> None:
    response = api.post("/workflows", json={"template": _ironclad(settings).template_id,
                                            "attributes": attributes(**overrides)})
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["param"]) == (code, param) and body["message"]


def test_ironclad_sandbox_launch_unknown_template(api: httpx.Client) -> None:
    response = api.post("/workflows", json={"template": "tmpl-missing", "attributes": attributes()})
    assert response.status_code == 400 and response.json()["param"] == "template"


def test_ironclad_sandbox_has_no_idempotency_so_lookups_matter(api: httpx.Client, settings: Settings,
                                                              ironclad_sandbox: SandboxHandle) -> None:
    """Ironclad has no idempotency header: the same launch twice makes two workflows, and the filter on
    our key attribute finds both (which is how the adapter looks before it creates)."""
    key = str(uuid.uuid4())
    first, second = launch(api, settings, revopsKey=key), launch(api, settings, revopsKey=key)
    assert first["id"] != second["id"]
    found = api.get("/workflows", params={"filter": f"Equals([revopsKey], '{key}')"}).json()
    assert found["count"] == 2 and {w["id"] for w in found["list"]} == {first["id"], second["id"]}
    assert "Idempotent-Replayed" not in api.get("/workflows").headers


def test_ironclad_sandbox_list_paginates(api: httpx.Client, settings: Settings) -> None:
    deal = f"deal-{uuid.uuid4().hex}"
    ids = [launch(api, settings, revopsDealId=deal)["id"] for _ in range(5)]
    formula = f"Equals([revopsDealId], '{deal}')"
    pages = [api.get("/workflows", params={"filter": formula, "page": p, "pageSize": 2}).json() for p in range(3)]

    assert [len(p["list"]) for p in pages] == [2, 2, 1]
    assert all(p["count"] == 5 and p["pageSize"] == 2 for p in pages)
    assert [w["id"] for p in pages for w in p["list"]] == ids
    too_big = api.get("/workflows", params={"pageSize": 101})
    assert too_big.status_code == 400 and too_big.json()["param"] == "pageSize"


def test_ironclad_sandbox_list_filters_by_status(api: httpx.Client, settings: Settings) -> None:
    deal = f"deal-{uuid.uuid4().hex}"
    kept, cancelled = launch(api, settings, revopsDealId=deal), launch(api, settings, revopsDealId=deal)
    assert api.post(f"/workflows/{cancelled['id']}/cancel", json={"comment": {"message": "dup"}}).status_code == 204
    formula = f"Equals([revopsDealId], '{deal}')"

    def ids(*status: str) -> set[str]:
        params: list[tuple[str, str]] = [("filter", formula), *(("status", s) for s in status)]
        return {w["id"] for w in api.get("/workflows", params=params).json()["list"]}

    assert ids() == {kept["id"]}  # default: active only
    assert ids("cancelled") == {cancelled["id"]}
    assert ids("active", "cancelled") == ids("active,cancelled") == {kept["id"], cancelled["id"]}


def test_ironclad_sandbox_cancel_states(api: httpx.Client, settings: Settings,
                                        ironclad_sandbox: SandboxHandle) -> None:
    workflow = launch(api, settings)
    assert api.post(f"/workflows/{workflow['id']}/cancel", json={}).json()["code"] == "MISSING_PARAM"
    assert api.post(f"/workflows/{workflow['id']}/cancel", json={"comment": {"message": "x"}}).status_code == 204
    again = api.post(f"/workflows/{workflow['id']}/cancel", json={"comment": {"message": "x"}})
    assert again.status_code == 400 and again.json()["code"] == "INVALID_STATE"
    fetched = api.get(f"/workflows/{workflow['id']}").json()
    assert fetched["status"] == "cancelled" and fetched["isCancelled"] is True
    assert fetched["signatures"]["state"] == "not_applicable"
    missing = api.post("/workflows/ffffffffffffffffffffffff/cancel", json={"comment": {"message": "x"}})
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


# -- faults ------------------------------------------------------------------------------------
def test_ironclad_sandbox_injected_error_uses_ironclad_shape(api: httpx.Client,
                                                             ironclad_sandbox: SandboxHandle) -> None:
    with ironclad_sandbox.faults(error_rate=1, status=502):
        response = api.get("/workflows")
        control = httpx.get(f"{ironclad_sandbox.base_url}/_sandbox/health")
    assert response.status_code == 502
    assert response.json()["code"] == "SERVER_ERROR" and "injected fault" in response.json()["message"]
    assert control.status_code == 200  # faults never touch /_sandbox


def test_ironclad_sandbox_injected_latency(api: httpx.Client, ironclad_sandbox: SandboxHandle) -> None:
    with ironclad_sandbox.faults(latency_ms=300):
        started = time.monotonic()
        assert api.get("/workflows").status_code == 200
        elapsed = time.monotonic() - started
    assert elapsed >= 0.3


def test_ironclad_sandbox_rate_limit_answers_429_with_retry_after(api: httpx.Client,
                                                                 ironclad_sandbox: SandboxHandle) -> None:
    with ironclad_sandbox.faults(rate_limit_per_second=0.25, rate_limit_burst=2):
        statuses = [api.get("/workflows") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    limited = statuses[2]
    assert limited.headers["Retry-After"] == "4"
    assert limited.json() == {"code": "TOO_MANY_REQUESTS", "message": "Too Many Requests"}


# -- human acts ---------------------------------------------------------------------------------
def test_ironclad_sandbox_approve_then_sign_creates_the_record(api: httpx.Client, settings: Settings,
                                                              ironclad_sandbox: SandboxHandle) -> None:
    workflow = launch(api, settings, expirationDate="2027-01-31T00:00:00Z")
    approved = ironclad_sandbox.post_control(f"workflows/{workflow['id']}/approve").json()
    assert approved["step"] == "Sign"
    signed = ironclad_sandbox.post_control(f"workflows/{workflow['id']}/sign", {"executed_date": "2026-02-03"}).json()
    again = ironclad_sandbox.post_control(f"workflows/{workflow['id']}/sign").json()

    assert signed["status"] == "completed" and again["recordId"] == signed["recordId"]
    fetched = api.get(f"/workflows/{workflow['id']}").json()
    assert (fetched["step"], fetched["isComplete"], fetched["recordIds"]) == ("Complete", True, [signed["recordId"]])
    record = api.get(f"/records/{signed['recordId']}").json()
    assert record["type"] == "orderForm" and record["name"] == "Initech order form"
    assert record["source"] == {"type": "workflow", "workflowId": f"workflow:{workflow['id']}"}
    props = record["properties"]
    assert props["contractValue"] == {"type": "monetary_amount", "value": {"currency": "USD", "amount": 12000.5}}
    assert props["agreementDate"] == {"type": "date", "value": "2026-02-03T00:00:00Z"}
    assert props["paymentTermsDays"] == {"type": "number", "value": 30}
    assert api.get(f"/records/{record['ironcladId']}").json()["id"] == record["id"]


def test_ironclad_sandbox_sign_cancelled_or_unknown_workflow(api: httpx.Client, settings: Settings,
                                                             ironclad_sandbox: SandboxHandle) -> None:
    workflow = launch(api, settings)
    api.post(f"/workflows/{workflow['id']}/cancel", json={"comment": {"message": "no"}})
    cancelled = httpx.post(f"{ironclad_sandbox.base_url}/_sandbox/workflows/{workflow['id']}/sign")
    unknown = httpx.post(f"{ironclad_sandbox.base_url}/_sandbox/workflows/ffffffffffffffffffffffff/sign")
    assert cancelled.status_code == 409 and unknown.status_code == 404


def test_ironclad_sandbox_autosign_completes_new_workflows(api: httpx.Client, settings: Settings,
                                                                 ironclad_sandbox: SandboxHandle) -> None:
    ironclad_sandbox.post_control("autosign", {"delay_seconds": 0.2})
    try:
        workflow = launch(api, settings)
    finally:
        assert ironclad_sandbox.post_control("autosign", {"delay_seconds": None}).json() == {"delay_seconds": None}
    assert workflow["status"] == "active"
    for _ in range(100):
        fetched = api.get(f"/workflows/{workflow['id']}").json()
        if fetched["status"] == "completed":
            break
        time.sleep(0.05)
    assert fetched["status"] == "completed" and len(fetched["recordIds"]) == 1
    later = launch(api, settings)
    time.sleep(0.4)
    assert api.get(f"/workflows/{later['id']}").json()["status"] == "active"  # turned off again


def test_ironclad_sandbox_amendment_links_and_rolls_up(api: httpx.Client, settings: Settings,
                                                       ironclad_sandbox: SandboxHandle) -> None:
    workflow = launch(api, settings)
    parent_id = ironclad_sandbox.post_control(f"workflows/{workflow['id']}/sign").json()["recordId"]
    one = ironclad_sandbox.post_control(f"records/{parent_id}/amendments", {
        "sequence": 1, "properties": {"contractValue": {"currency": "USD", "amount": 15000}},
        "executed_date": "2026-05-01"}).json()
    two = ironclad_sandbox.post_control(f"records/{parent_id}/amendments", {
        "sequence": 2, "properties": {"contractValue": {"currency": "USD", "amount": 9000}}}).json()
    replay = ironclad_sandbox.post_control(f"records/{parent_id}/amendments", {"sequence": 1}).json()

    assert (one["sequence"], two["sequence"]) == (1, 2) and replay["recordId"] == one["recordId"]
    amendment = api.get(f"/records/{one['recordId']}").json()
    assert (amendment["type"], amendment["parentId"], amendment["parentLinkType"]) == (
        "amendment", parent_id, "amendment")
    assert amendment["properties"]["amendmentNumber"] == {"type": "number", "value": 1}
    assert amendment["properties"]["agreementDate"]["value"] == "2026-05-01T00:00:00Z"
    parent = api.get(f"/records/{parent_id}").json()
    assert parent["amendments"] == [amendment["ironcladId"], api.get(f"/records/{two['recordId']}").json()[
        "ironcladId"]]
    assert parent["childIds"] == [one["recordId"], two["recordId"]]
    assert parent["properties"]["contractValue"] == {  # as amended, with the value first signed
        "type": "monetary_amount", "value": {"currency": "USD", "amount": 9000},
        "originalValue": {"currency": "USD", "amount": 12000.5}}
    bad = httpx.post(f"{ironclad_sandbox.base_url}/_sandbox/records/{parent_id}/amendments",
                     json={"sequence": 3, "properties": {"counterpartyName": "Other"}})
    assert bad.status_code == 400


# -- webhooks -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def captured(ironclad_sandbox: SandboxHandle) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/ironclad")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((dict(request.headers), await request.body()))
        return {"ok": True}

    running = start_in_thread(app)
    url = f"{running.base_url}/ironclad"
    ironclad_sandbox.post_control("webhooks", {"url": url})
    yield received
    ironclad_sandbox.control.webhooks.targets = [t for t in ironclad_sandbox.control.webhooks.targets
                                                 if t.url != url]
    running.stop()


def _delivery(received: list[tuple[dict[str, str], bytes]], event: str,
                    workflow_id: str) -> tuple[dict[str, str], bytes]:
    for _ in range(200):
        for headers, body in list(received):
            payload = json.loads(body)["payload"]
            if payload["event"] == event and payload["workflowID"] == workflow_id:
                return headers, body
        time.sleep(0.05)
    raise AssertionError(f"no {event} delivery for {workflow_id}")


def test_ironclad_sandbox_webhooks_are_signed_the_ironclad_way(
        api: httpx.Client, settings: Settings, ironclad_sandbox: SandboxHandle,
        captured: list[tuple[dict[str, str], bytes]]) -> None:
    workflow = launch(api, settings)
    ironclad_sandbox.post_control(f"workflows/{workflow['id']}/sign")
    pem = api.get("/webhooks/verification-key")
    assert pem.headers["content-type"].startswith("text/plain")
    public_key = serialization.load_pem_public_key(pem.content)
    assert isinstance(public_key, rsa.RSAPublicKey)

    for event in ("workflow_launched", "workflow_completed"):
        headers, body = _delivery(captured, event, workflow["id"])
        document = json.loads(body)
        assert set(document) == {"companyID", "payload", "timestamp", "webhookID"}
        assert document["payload"] == {"event": event, "templateID": _ironclad(settings).template_id,
                                       "workflowID": workflow["id"]}
        event_id = headers["x-ironclad-webhook-event-id"]
        verification = json.loads(headers["x-ironclad-webhook-verification"])
        assert (verification["signAlgorithm"], verification["encoding"]) == ("RSA-SHA256", "base64")
        stringified = json.dumps(document, separators=(",", ":"), ensure_ascii=False)  # JSON.stringify
        public_key.verify(base64.b64decode(verification["signature"]),
                          (event_id + stringified + verification["nonce"]).encode(),
                          padding.PKCS1v15(), hashes.SHA256())


def test_ironclad_sandbox_verification_key_rotates(api: httpx.Client, ironclad_sandbox: SandboxHandle) -> None:
    before = api.get("/webhooks/verification-key").text
    ironclad_sandbox.post_control("verification-key/rotate")
    after = api.get("/webhooks/verification-key").text
    assert before != after and after.startswith("-----BEGIN PUBLIC KEY-----")
