"""The NetSuite emulator's OAuth 2.0 machine-to-machine flow over real HTTP: the token endpoint checks the JWT
assertion (made here with PyJWT, not by our connector) and issues expiring bearer tokens that every REST and
SuiteQL route accepts beside TBA."""

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

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def token_url(sandbox: SandboxHandle) -> str:
    return f"{sandbox.base_url}{TOKEN_PATH}"


def assertion(settings: Settings, sandbox: SandboxHandle, *, key: str | None = None, kid: str | None = None,
              alg: str = "PS256", **claims: Any) -> str:
    """A client assertion as NetSuite documents it, the emulator's defaults unless overridden."""
    ns = vendor_settings(settings, "netsuite")
    now = int(time.time())
    body = {"iss": ns.client_id, "scope": ["rest_webservices"], "aud": token_url(sandbox), "iat": now,
            "exp": now + 3600, **claims}
    headers = {"typ": "JWT", "kid": kid or ns.certificate_id}
    return jwt.encode(body, key or ns.private_key_pem(), algorithm=alg, headers=headers)


def grant(sandbox: SandboxHandle, client_assertion: str) -> httpx.Response:
    return httpx.post(token_url(sandbox), data={"grant_type": "client_credentials",
                                                "client_assertion_type": ASSERTION_TYPE,
                                                "client_assertion": client_assertion})


def new_key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: httpx.Response) -> str:
    return str(response.json()["o:errorDetails"][0]["o:errorCode"])


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_netsuite_oauth2_grant_issues_a_bearer_token_that_reads_records_and_suiteql(
        settings: Settings, netsuite_sandbox: SandboxHandle, alg: str) -> None:
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, alg=alg))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == "3600" and body["access_token"]
    token = body["access_token"]
    record = httpx.get(f"{netsuite_sandbox.base_url}/services/rest/record/v1/subsidiary/1", headers=bearer(token))
    assert record.status_code == 200 and record.json()["id"] == "1"
    query = httpx.post(f"{netsuite_sandbox.base_url}/services/rest/query/v1/suiteql",
                       headers={**bearer(token), "Prefer": "transient"},
                       json={"q": "SELECT id FROM subsidiary WHERE id = 1"})
    assert query.status_code == 200, query.text
    assert [row["id"] for row in query.json()["items"]] == ["1"]


def test_netsuite_oauth2_scope_as_comma_separated_text_with_restlets_is_accepted(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, scope="restlets,rest_webservices"))
    assert answer.status_code == 200 and answer.json()["access_token"]


def test_netsuite_oauth2_forged_signature_is_refused(settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    forged_key, _public = new_key_pair()
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, key=forged_key))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert "signature" in answer.json()["error_description"]


@pytest.mark.parametrize(("claims", "error", "reason"), [
    ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant", "expired"),
    ({"exp": int(time.time()) + 7200}, "invalid_grant", "longer than an hour"),
    ({"iat": int(time.time()) + 1800}, "invalid_grant", "issued in the future"),
    ({"aud": "https://1234567.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"}, "invalid_grant",
     "audience"),
    ({"iss": "not-the-client-id"}, "invalid_client", "client ID"),
    ({"scope": ["suite_analytics"]}, "invalid_scope", "rest_webservices"),
    ({"scope": "rest_webservices,everything"}, "invalid_scope", "unknown scope"),
])
def test_netsuite_oauth2_assertion_with_bad_claims_is_refused(
        settings: Settings, netsuite_sandbox: SandboxHandle, claims: dict[str, Any], error: str,
        reason: str) -> None:
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, **claims))
    assert answer.status_code in (400, 401) and answer.json()["error"] == error
    assert reason in answer.json()["error_description"]


def test_netsuite_oauth2_unknown_certificate_id_is_refused(settings: Settings,
                                                           netsuite_sandbox: SandboxHandle) -> None:
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, kid=f"cert-{uuid.uuid4().hex}"))
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert "certificate" in answer.json()["error_description"]


def test_netsuite_oauth2_wrong_grant_type_or_assertion_type_is_invalid_request(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    good = assertion(settings, netsuite_sandbox)
    for form in ({"grant_type": "password", "client_assertion_type": ASSERTION_TYPE, "client_assertion": good},
                 {"grant_type": "client_credentials", "client_assertion_type": "basic", "client_assertion": good},
                 {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}):
        answer = httpx.post(token_url(netsuite_sandbox), data=form)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_netsuite_oauth2_registered_certificate_is_trusted_under_its_new_id_until_revoked(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    private, public = new_key_pair()
    ns = vendor_settings(settings, "netsuite")
    mapped = httpx.post(f"{netsuite_sandbox.base_url}/_sandbox/oauth2/certificates",
                        json={"client_id": ns.client_id, "public_key_pem": public})
    assert mapped.status_code == 201
    certificate_id = mapped.json()["certificate_id"]
    assert certificate_id != ns.certificate_id
    answer = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, key=private, kid=certificate_id))
    assert answer.status_code == 200 and answer.json()["access_token"]
    # the new key is trusted under its own ID only
    crossed = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, key=private))
    assert crossed.status_code == 401 and crossed.json()["error"] == "invalid_client"
    revoked = httpx.delete(f"{netsuite_sandbox.base_url}/_sandbox/oauth2/certificates/{certificate_id}")
    assert revoked.status_code == 200 and revoked.json() == {"revoked": True}
    after = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox, key=private, kid=certificate_id))
    assert after.status_code == 401 and after.json()["error"] == "invalid_client"


def test_netsuite_oauth2_unknown_or_expired_bearer_token_is_invalid_login(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    record = f"{netsuite_sandbox.base_url}/services/rest/record/v1/subsidiary/1"
    unknown = httpx.get(record, headers=bearer("not-a-token"))
    assert unknown.status_code == 401 and error_code(unknown) == "INVALID_LOGIN"
    token = grant(netsuite_sandbox, assertion(settings, netsuite_sandbox)).json()["access_token"]
    assert httpx.get(record, headers=bearer(token)).status_code == 200
    expired = httpx.post(f"{netsuite_sandbox.base_url}/_sandbox/oauth2/tokens/expire")
    assert expired.status_code == 200 and expired.json()["expired"] >= 1
    after = httpx.get(record, headers=bearer(token))
    assert after.status_code == 401 and error_code(after) == "INVALID_LOGIN"
    assert "expired" in after.json()["o:errorDetails"][0]["detail"]
