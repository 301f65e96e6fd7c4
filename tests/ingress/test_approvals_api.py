"""The approvals API over real HTTP, against the real dev server and the production worker: who may decide is
the bearer token's subject, and the workflow's validator has the last word."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from ingress.approvals import create_approvals_app
from ingress.identity import TokenInvalid, TokenVerifier, mint_token
from intake import ClientProvider
from runtime.launch import start_quote_to_cash
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.approvals import CHRIS, DANA, SAM
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.ingress.conftest import connector_to
from workflows.models import QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest.fixture
def approvals_api(client: Client, flow_settings: Settings) -> Iterator[RunningApp]:
    provider = ClientProvider(connector_to(client.service_client.config.target_host, client.namespace))
    running = start_in_thread(create_approvals_app(settings=flow_settings, clients=provider))
    yield running
    running.stop()


def auth(settings: Settings, subject: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, subject, **kwargs)}"}


async def _status(handle: WorkflowHandle) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def pending_deal(client: Client, settings: Settings, hubspot: SandboxHandle, discount: str) -> WorkflowHandle:
    deal_id = seed_deal(hubspot, DealSpec(lines=[Line("PLAT-ENT", "Enterprise seats", quantity="100", price="100.00",
                                                      discount=discount, model="subscription",
                                                      frequency="monthly")]))
    handle = await start_quote_to_cash(client, settings, deal_id)
    await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_APPROVAL, what="awaiting approval")
    return handle


async def listed(http: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await http.get("/approvals", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_approvals_api_lists_refuses_over_limit_and_decides(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
    approvals_api: RunningApp
) -> None:
    handle = await pending_deal(client, flow_settings, sandboxes["hubspot"], "25")
    dana, sam = auth(flow_settings, DANA), auth(flow_settings, SAM)
    async with httpx.AsyncClient(base_url=approvals_api.base_url, timeout=30) as http:
        items = await eventually(lambda: listed(http, dana),
                                 lambda found: any(i["workflow_id"] == handle.id for i in found), what="listed")
        [item] = [i for i in items if i["workflow_id"] == handle.id]
        assert item["amount"] == "90000.00 USD" and item["discount_percent"] == "25"
        assert item["kind"] == "deal" and any("discount 25" in r for r in item["reasons"]) and item["may_decide"]
        assert "payment 30 days" in item["terms"] and item["expires_at"] > item["requested_at"]
        [as_sam] = [i for i in await listed(http, sam) if i["workflow_id"] == handle.id]
        assert not as_sam["may_decide"] and "limit of 10%" in as_sam["refusal"]

        refused = await http.post(f"/approvals/{handle.id}", json={"approved": True, "note": "go"}, headers=sam)
        assert refused.status_code == 403
        assert "discount 25% is over Sam (Sales Ops)'s limit of 10%" in refused.json()["detail"]

        decided = await http.post(f"/approvals/{handle.id}", json={"approved": True, "note": "strategic"},
                                  headers=dana)
        assert decided.status_code == 200, decided.text
        assert decided.json()["status"] == "approved" and decided.json()["approver"] == DANA

        status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                                  what="contract out")
        [recorded] = status.approval.decisions  # type: ignore[union-attr]
        assert (recorded.approver, recorded.channel, recorded.subject) == (DANA, "api", DANA)
        assert handle.id not in [i["workflow_id"] for i in await listed(http, dana)]
        again = await http.post(f"/approvals/{handle.id}", json={"approved": False}, headers=dana)
        assert again.status_code == 409 and "no approval is pending" in again.json()["detail"]
    await handle.terminate("test done")


async def test_approvals_api_answers_401_for_missing_forged_and_expired_tokens(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
    approvals_api: RunningApp
) -> None:
    handle = await pending_deal(client, flow_settings, sandboxes["hubspot"], "20")
    forged = jwt.encode({"sub": DANA, "iss": flow_settings.approvals_jwt_issuer,
                         "aud": flow_settings.approvals_jwt_audience, "exp": int(time.time()) + 600},
                        "not-the-secret-not-the-secret-not-the-secret", algorithm="HS256")
    expired = mint_token(flow_settings, DANA, now=time.time() - 7200, ttl_seconds=600)
    other_audience = jwt.encode({"sub": DANA, "iss": flow_settings.approvals_jwt_issuer, "aud": "someone-else",
                                 "exp": int(time.time()) + 600}, flow_settings.approvals_jwt_secret or "",
                                algorithm="HS256")
    unsigned = jwt.encode({"sub": DANA, "iss": flow_settings.approvals_jwt_issuer,
                           "aud": flow_settings.approvals_jwt_audience, "exp": int(time.time()) + 600}, None,
                          algorithm="none")
    cases = {None: "bearer token is required", forged: "signature is not valid", expired: "expired",
             other_audience: "not valid", unsigned: "not valid"}
    async with httpx.AsyncClient(base_url=approvals_api.base_url, timeout=30) as http:
        for token, reason in cases.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for method, path, body in (("GET", "/approvals", None),
                                       ("POST", f"/approvals/{handle.id}", {"approved": True})):
                response = await http.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (token, response.text)
                assert reason in response.json()["detail"]
                assert response.headers["www-authenticate"].startswith("Bearer")
        stranger = auth(flow_settings, "mallory@laptop")
        assert (await http.get("/approvals", headers=stranger)).status_code == 403
        refused = await http.post(f"/approvals/{handle.id}", json={"approved": True}, headers=stranger)
        assert refused.status_code == 403 and "not a registered approver" in refused.json()["detail"]
        elsewhere = await http.post("/approvals/ledger-stripe-cus_1", json={"approved": True},
                                    headers=auth(flow_settings, DANA))
        assert elsewhere.status_code == 404
    assert (await _status(handle)).approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


def test_token_verifier_rs256_with_a_jwks_file(tmp_path: Path, settings: Settings) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "idp-1", "use": "sig",
                                                               "alg": "RS256"}]}))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    rs = settings.model_copy(update={"approvals_jwt_algorithm": "RS256", "approvals_jwt_secret": None,
                                     "approvals_jwks_file": tmp_path / "jwks.json"})
    verifier = TokenVerifier.from_settings(rs)
    claims = {"sub": DANA, "iss": rs.approvals_jwt_issuer, "aud": rs.approvals_jwt_audience,
              "exp": int(time.time()) + 600}

    assert verifier.verify(jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "idp-1"})).subject == DANA
    with pytest.raises(TokenInvalid, match="no key 'idp-2'"):
        verifier.verify(jwt.encode(claims, pem, algorithm="RS256", headers={"kid": "idp-2"}))
    # an HS256 token made with the public key as a secret (algorithm confusion) is refused
    with pytest.raises(TokenInvalid):
        verifier.verify(jwt.encode(claims, "x" * 64, algorithm="HS256", headers={"kid": "idp-1"}))
    with pytest.raises(ValueError, match="tokens can only be minted locally"):
        mint_token(rs, DANA)


async def test_serve_answers_webhooks_and_approvals_on_their_own_ports(
    client: Client, flow_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``starter.py serve``: the webhook port and the approvals port (inbox, API) side by side."""
    import asyncio

    from ingress.app import serve
    from sandbox.serve import free_port

    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    served = flow_settings.model_copy(update={"ingress_port": free_port(), "approvals_port": free_port()})
    task = asyncio.ensure_future(serve(served))
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            async def inbox() -> int:
                try:
                    return (await http.get(f"{served.approvals_base_url}/inbox")).status_code
                except httpx.TransportError:
                    return 0

            assert await eventually(inbox, lambda code: code == 200, what="inbox served") == 200
            health = await http.get(f"http://{served.ingress_host}:{served.ingress_port}/healthz")
            assert health.json()["status"] == "ok"
            assert (await http.get(f"{served.approvals_base_url}/approvals")).status_code == 401
            webhook_port = f"http://{served.ingress_host}:{served.ingress_port}"
            assert (await http.get(f"{webhook_port}/inbox")).status_code == 404, "no inbox on the webhook port"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_approvals_api_refuses_malformed_bodies_and_ids_with_4xx_and_signs_nothing(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
    approvals_api: RunningApp
) -> None:
    """Every malformed body is a 4xx with a reason (never a 500); a workflow ID outside the ID grammar (a
    newline, a space, a control character) is refused before anything is read or signed; a caller may not
    bring their own nonce or approver."""
    handle = await pending_deal(client, flow_settings, sandboxes["hubspot"], "20")
    dana = auth(flow_settings, DANA)
    async with httpx.AsyncClient(base_url=approvals_api.base_url, timeout=30) as http:
        for body in ([], "yes", None, 7, {}, {"approved": "yes"}, {"approved": 1}, {"approved": None},
                     {"approved": True, "note": ["x"]}, {"approved": True, "note": "n" * 2001},
                     {"approved": True, "nonce": "0123456789abcdef"}, {"approved": True, "approver": CHRIS}):
            response = await http.post(f"/approvals/{handle.id}", json=body, headers=dana)
            assert response.status_code == 422, (body, response.status_code, response.text)
            assert response.json()["detail"].startswith("malformed request"), body
        raw = await http.post(f"/approvals/{handle.id}", content=b"{not json", headers={
            **dana, "Content-Type": "application/json"})
        assert raw.status_code == 422, raw.text
        for spliced in (f"{handle.id}%0Asam@revops.example", f"{handle.id}%20x", f"{handle.id}%1B%5B2J",
                        "q2c-hubspot-", "ledger-stripe-cus_1"):
            response = await http.post(f"/approvals/{spliced}", json={"approved": True}, headers=dana)
            assert response.status_code == 404, (spliced, response.text)
            assert "\n" not in response.text and "\x1b" not in response.text
    assert (await _status(handle)).approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_approvals_api_judges_authority_before_signing_and_knows_upper_case_people(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle],
    approvals_api: RunningApp
) -> None:
    """Sam (10 %) is refused by the API itself on a 20 % deal; Dana's IdP sends her ID in upper case and she
    decides as herself; the answer carries no proof and the security headers."""
    handle = await pending_deal(client, flow_settings, sandboxes["hubspot"], "20")
    async with httpx.AsyncClient(base_url=approvals_api.base_url, timeout=30) as http:
        refused = await http.post(f"/approvals/{handle.id}", json={"approved": True},
                                  headers=auth(flow_settings, SAM))
        assert refused.status_code == 403 and "limit of 10%" in refused.json()["detail"]
        listed_upper = await listed(http, auth(flow_settings, "DANA@RevOps.example"))
        assert any(i["workflow_id"] == handle.id and i["may_decide"] for i in listed_upper)
        decided = await http.post(f"/approvals/{handle.id}", json={"approved": True, "note": "ok"},
                                  headers=auth(flow_settings, "DANA@RevOps.example"))
        assert decided.status_code == 200, decided.text
        assert decided.json()["approver"] == DANA and "proof" not in decided.text
        assert decided.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in decided.headers["content-security-policy"]
    status = await _status(handle)
    [recorded] = status.approval.decisions  # type: ignore[union-attr]
    assert recorded.approver == DANA and recorded.channel == "api"
    raw = json.loads(json.dumps(await handle.query("status"), default=str))
    # by key, not by text: once approved the deal may already be "awaiting_signature" of its contract
    keys, proofs = _keys_and_proofs(raw)
    assert proofs and all(p is None for p in proofs), "the status query never returns a proof"
    assert not keys & {"signature", "nonce", "key_id"}, keys & {"signature", "nonce", "key_id"}


def _keys_and_proofs(value: Any) -> tuple[set[str], list[Any]]:
    """Every key anywhere in a JSON value, and the value of every ``proof`` key."""
    keys: set[str] = set()
    proofs: list[Any] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            keys |= set(item)
            proofs += [v for k, v in item.items() if k == "proof"]
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item
    return keys, proofs
