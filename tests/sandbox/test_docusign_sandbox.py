"""The DocuSign emulator as a hostile client meets it over real HTTP: the JWT assertion checked claim by claim,
DocuSign's error body, ``X-RateLimit-*`` on every answer and the 429, faults, and the human acts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.waiting import eventually

GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def assertion(settings: Settings, sandbox: SandboxHandle, **override: Any) -> str:
    config = vendor_settings(settings, "docusign")
    now = int(time.time())
    claims = {"iss": config.integration_key, "sub": config.user_id, "aud": sandbox.base_url.split("//", 1)[1],
              "iat": now, "exp": now + 3600, "scope": "signature impersonation"}
    key = override.pop("key", config.private_key)
    claims.update(override)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="RS256")


def token_answer(sandbox: SandboxHandle, token: str) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}/oauth/token", data={"grant_type": GRANT, "assertion": token}, timeout=10)


def api(settings: Settings, sandbox: SandboxHandle) -> tuple[str, dict[str, str]]:
    token = token_answer(sandbox, assertion(settings, sandbox)).json()["access_token"]
    account = vendor_settings(settings, "docusign").account_id
    return f"{sandbox.base_url}/restapi/v2.1/accounts/{account}", {"Authorization": f"Bearer {token}"}


def send_envelope(settings: Settings, base: str, headers: dict[str, str], **extra: Any) -> str:
    config = vendor_settings(settings, "docusign")
    body = {"templateId": config.template_id, "status": "sent", "emailSubject": "Order form",
            "templateRoles": [{"roleName": config.signer_role, "name": "Ada", "email": "ada@acme.example",
                               "tabs": {"textTabs": [{"tabLabel": "contractValue", "value": "USD 10.00"},
                                                     {"tabLabel": "notOnTheTemplate", "value": "x"}]}}],
            **extra}
    answer = httpx.post(f"{base}/envelopes", json=body, headers=headers, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["envelopeId"])


def test_docusign_sandbox_jwt_grant_issues_a_bearer_token(settings: Settings,
                                                          docusign_sandbox: SandboxHandle) -> None:
    answer = token_answer(docusign_sandbox, assertion(settings, docusign_sandbox))
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 3600


@pytest.mark.parametrize(("override", "reason"), [
    ({"iss": str(uuid.uuid4())}, "issuer_not_found"),
    ({"sub": str(uuid.uuid4())}, "user_not_found"),
    ({"aud": "account-d.docusign.com"}, "invalid audience"),
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "expired"),
    ({"exp": None}, "invalid assertion"),
    ({"key": "other"}, "no_valid_keys_or_signatures"),
])
def test_docusign_sandbox_jwt_assertion_is_checked_claim_by_claim(
        settings: Settings, docusign_sandbox: SandboxHandle, override: dict[str, Any], reason: str) -> None:
    if override.get("key") == "other":
        override["key"] = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    answer = token_answer(docusign_sandbox, assertion(settings, docusign_sandbox, **override))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant" and reason in answer.json()["error_description"]


def test_docusign_sandbox_refuses_other_grants_and_bad_tokens(settings: Settings,
                                                              docusign_sandbox: SandboxHandle) -> None:
    other = httpx.post(f"{docusign_sandbox.base_url}/oauth/token", data={"grant_type": "client_credentials"})
    base, _ = api(settings, docusign_sandbox)
    no_token = httpx.get(f"{base}/templates", headers={"Authorization": "Bearer nope"})
    userinfo = httpx.get(f"{docusign_sandbox.base_url}/oauth/userinfo", headers={"Authorization": "Bearer nope"})

    assert other.status_code == 400 and other.json()["error"] == "unsupported_grant_type"
    assert no_token.status_code == 401 and no_token.json()["errorCode"] == "AUTHORIZATION_INVALID_TOKEN"
    assert userinfo.status_code == 401


def test_docusign_sandbox_userinfo_names_the_account_base_uri(settings: Settings,
                                                              docusign_sandbox: SandboxHandle) -> None:
    _, headers = api(settings, docusign_sandbox)
    info = httpx.get(f"{docusign_sandbox.base_url}/oauth/userinfo", headers=headers).json()
    [account] = info["accounts"]
    assert account["account_id"] == vendor_settings(settings, "docusign").account_id
    assert account["base_uri"] == docusign_sandbox.base_url and account["is_default"] is True
    assert info["sub"] == vendor_settings(settings, "docusign").user_id


def test_docusign_sandbox_answers_carry_rate_limit_headers(settings: Settings,
                                                           docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    first = httpx.get(f"{base}/templates", headers=headers)
    second = httpx.get(f"{base}/templates", headers=headers)

    assert first.headers["X-RateLimit-Limit"] == "3000"
    assert int(second.headers["X-RateLimit-Remaining"]) == int(first.headers["X-RateLimit-Remaining"]) - 1
    assert 0 < int(first.headers["X-RateLimit-Reset"]) - time.time() <= 3600


def test_docusign_sandbox_rate_limit_is_a_429_the_docusign_way(settings: Settings,
                                                               docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    with docusign_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1, path_prefix="/restapi/"):
        answers = [httpx.get(f"{base}/templates", headers=headers) for _ in range(3)]
    limited = [a for a in answers if a.status_code == 429]

    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["errorCode"] == "HOURLY_APIINVOCATION_LIMIT_EXCEEDED"
    assert limited[0].headers["X-RateLimit-Remaining"] == "0"
    assert int(limited[0].headers["X-RateLimit-Reset"]) >= int(time.time())


def test_docusign_sandbox_errors_are_docusign_bodies(settings: Settings, docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    config = vendor_settings(settings, "docusign")
    missing = httpx.get(f"{base}/envelopes/{uuid.uuid4()}", headers=headers)
    malformed = httpx.get(f"{base}/envelopes/not-a-guid", headers=headers)
    no_from = httpx.get(f"{base}/envelopes", headers=headers)
    bad_role = httpx.post(f"{base}/envelopes", headers=headers, json={
        "templateId": config.template_id, "status": "sent", "templateRoles": [{"roleName": "Stranger"}]})
    bad_template = httpx.post(f"{base}/envelopes", headers=headers, json={"templateId": str(uuid.uuid4())})
    long_subject = httpx.post(f"{base}/envelopes", headers=headers, json={
        "templateId": config.template_id, "emailSubject": "x" * 101})
    with docusign_sandbox.faults(error_rate=1.0, status=503, path_prefix="/restapi/"):
        unavailable = httpx.get(f"{base}/templates", headers=headers)

    assert (missing.status_code, missing.json()["errorCode"]) == (404, "ENVELOPE_DOES_NOT_EXIST")
    assert (malformed.status_code, malformed.json()["errorCode"]) == (400, "INVALID_REQUEST_PARAMETER")
    assert (no_from.status_code, no_from.json()["errorCode"]) == (400, "INVALID_REQUEST_PARAMETER")
    assert (bad_role.status_code, bad_role.json()["errorCode"]) == (400, "INVALID_ROLE_NAME")
    assert (bad_template.status_code, bad_template.json()["errorCode"]) == (400, "TEMPLATE_ID_INVALID")
    assert (long_subject.status_code, long_subject.json()["errorCode"]) == (400, "INVALID_EMAIL_SUBJECT")
    assert unavailable.status_code == 503 and set(unavailable.json()) == {"errorCode", "message"}


def test_docusign_sandbox_tabs_not_on_the_template_are_ignored(settings: Settings,
                                                               docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    envelope_id = send_envelope(settings, base, headers)
    form = httpx.get(f"{base}/envelopes/{envelope_id}/form_data", headers=headers).json()
    values = {item["name"]: item["value"] for item in form["formData"]}
    assert values["contractValue"] == "USD 10.00" and "notOnTheTemplate" not in values


async def test_docusign_sandbox_sign_decline_and_autosign(settings: Settings,
                                                          docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    signed, declined = send_envelope(settings, base, headers), send_envelope(settings, base, headers)
    async with httpx.AsyncClient(base_url=docusign_sandbox.base_url, timeout=10) as http:
        await http.post(f"/_sandbox/envelopes/{signed}/sign", json={"completed_date": "2026-03-01"})
        await http.post(f"/_sandbox/envelopes/{declined}/decline", json={"reason": "no"})
        twice = await http.post(f"/_sandbox/envelopes/{declined}/sign")
        await http.post("/_sandbox/autosign", json={"delay_seconds": 0.1})
        try:
            later = send_envelope(settings, base, headers)

            async def status_of_later() -> str:
                return str((await http.get(f"{base}/envelopes/{later}", headers=headers)).json()["status"])

            await eventually(status_of_later, lambda status: status == "completed", timeout=10,
                             what="the auto-signed envelope")
        finally:
            await http.post("/_sandbox/autosign", json={"delay_seconds": None})
        done = (await http.get(f"{base}/envelopes/{signed}", headers=headers)).json()
        gone = (await http.get(f"{base}/envelopes/{declined}", headers=headers)).json()

    assert done["status"] == "completed" and done["completedDateTime"].startswith("2026-03-01")
    assert gone["status"] == "declined" and twice.status_code == 409


def test_docusign_sandbox_reset_keeps_the_template(settings: Settings, docusign_sandbox: SandboxHandle) -> None:
    base, headers = api(settings, docusign_sandbox)
    docusign_sandbox.post_control("reset")
    base, headers = api(settings, docusign_sandbox)  # tokens went with the reset
    templates = httpx.get(f"{base}/templates", headers=headers).json()["envelopeTemplates"]
    assert [t["templateId"] for t in templates] == [vendor_settings(settings, "docusign").template_id]
