"""The NetSuite adapter with OAuth 2.0 machine to machine (``auth=oauth2``) against the emulator over real HTTP:
the client assertion, one token cached across calls, a refresh when NetSuite ends the token mid-run, and
refusals as ``AuthFailed``."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from canonical import Account
from connectors.errors import AuthFailed
from connectors.netsuite.client import NetSuiteErp, from_settings
from connectors.netsuite.oauth2 import ClientCredentialsGrant, OAuth2Auth
from connectors.netsuite.spec import SANDBOX_PRIVATE_KEY, NetSuiteSettings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor

TENANT = "1"


def oauth2_settings(settings: Settings, **fields: object) -> Settings:
    return with_vendor(settings, "netsuite", auth="oauth2", **fields)


def grant_of(erp: NetSuiteErp) -> ClientCredentialsGrant:
    auth = erp._client.auth
    assert isinstance(auth, OAuth2Auth)
    return auth.grant


def other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_netsuite_oauth2_assertion_has_the_documented_header_and_claims(settings: Settings) -> None:
    config = vendor_settings(oauth2_settings(settings), "netsuite")
    grant = ClientCredentialsGrant(config, httpx.AsyncClient(), clock=lambda: 1_700_000_000.0)
    token = grant.assertion()
    header = jwt.get_unverified_header(token)
    private = serialization.load_pem_private_key(SANDBOX_PRIVATE_KEY.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = private.public_key()
    claims = jwt.decode(token, public, algorithms=["PS256"], audience=grant.token_url,
                        options={"verify_exp": False, "verify_iat": False})
    assert header == {"alg": "PS256", "typ": "JWT", "kid": config.certificate_id}
    assert grant.token_url == f"{config.base_url}/services/rest/auth/oauth2/v1/token"
    assert claims == {"iss": config.client_id, "scope": ["rest_webservices"], "aud": grant.token_url,
                      "iat": 1_700_000_000, "exp": 1_700_000_000 + 1800}


async def test_netsuite_oauth2_adapter_upserts_a_customer_and_queries_with_one_cached_token(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    erp = from_settings(oauth2_settings(settings))
    try:
        ref = f"hubspot-company-{uuid.uuid4().hex[:10]}-US01"
        made = await erp.upsert_customer(TENANT, Account(name=f"Acme {ref}"), contact=None, reference=ref,
                                         idempotency_key=f"k-{ref}")
        found = await erp.find_customers(TENANT, [ref])  # SuiteQL
        rows = await erp.suiteql(f"SELECT id FROM customer WHERE externalid = '{ref}'")
        assert made.erp_contact_id and found == {ref: made.erp_contact_id}
        assert [row["id"] for row in rows] == [made.erp_contact_id]
        assert grant_of(erp).fetched == 1  # one grant served every call
    finally:
        await erp.aclose()


async def test_netsuite_oauth2_token_ended_mid_run_is_fetched_again_and_the_call_retried(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    erp = from_settings(oauth2_settings(settings))
    try:
        ref = f"hubspot-company-{uuid.uuid4().hex[:10]}-US01"
        made = await erp.upsert_customer(TENANT, Account(name=f"Acme {ref}"), contact=None, reference=ref,
                                         idempotency_key=f"k-{ref}")
        first = grant_of(erp)._token
        netsuite_sandbox.post_control("oauth2/tokens/expire")
        found = await erp.find_customer(TENANT, ref)  # 401 -> a new grant -> the same call again
        assert found is not None and found.erp_contact_id == made.erp_contact_id
        assert grant_of(erp).fetched == 2 and grant_of(erp)._token != first
        assert await erp.find_customers(TENANT, [ref]) == {ref: made.erp_contact_id}
        assert grant_of(erp).fetched == 2
    finally:
        await erp.aclose()


async def test_netsuite_oauth2_token_is_renewed_shortly_before_it_expires(
        settings: Settings, netsuite_sandbox: SandboxHandle) -> None:
    config = vendor_settings(oauth2_settings(settings), "netsuite")
    now = [1_000.0]
    async with httpx.AsyncClient(base_url=config.base_url) as client:
        grant = ClientCredentialsGrant(config, client, monotonic=lambda: now[0])
        first = await grant.token()
        now[0] += 3600 - 120  # still two minutes left: kept
        assert await grant.token() == first and grant.fetched == 1
        now[0] += 90  # within a minute of the end: renewed before NetSuite refuses it
        assert await grant.token() != first and grant.fetched == 2


async def test_netsuite_oauth2_private_key_from_a_path(settings: Settings, netsuite_sandbox: SandboxHandle,
                                                       tmp_path: Path) -> None:
    path = tmp_path / "netsuite-m2m.pem"
    path.write_text(SANDBOX_PRIVATE_KEY)
    erp = from_settings(oauth2_settings(settings, private_key=str(path)))
    try:
        assert await erp.find_customer(TENANT, f"absent-{uuid.uuid4().hex[:8]}") is None
        assert grant_of(erp).fetched == 1
    finally:
        await erp.aclose()


@pytest.mark.parametrize(("fields", "reason"), [
    ({"private_key": other_private_key()}, "invalid_client"),
    ({"certificate_id": "not-a-mapped-certificate"}, "invalid_client"),
    ({"client_id": "not-the-client"}, "invalid_client"),
    ({"scopes": "restlets"}, "invalid_scope"),
])
async def test_netsuite_oauth2_refused_grant_is_auth_failed(settings: Settings, netsuite_sandbox: SandboxHandle,
                                                            fields: dict[str, str], reason: str) -> None:
    erp = from_settings(oauth2_settings(settings, **fields))
    try:
        with pytest.raises(AuthFailed, match=reason):
            await erp.find_customer(TENANT, "anything")
    finally:
        await erp.aclose()


def test_netsuite_oauth2_secrets_stay_out_of_reprs(settings: Settings) -> None:
    config: NetSuiteSettings = vendor_settings(oauth2_settings(settings), "netsuite")
    grant = ClientCredentialsGrant(config, httpx.AsyncClient())
    grant._token = "live-access-token-value"
    body = SANDBOX_PRIVATE_KEY.splitlines()[1]
    assert config.auth == "oauth2"
    assert body not in repr(config) and body not in str(config.model_dump(exclude={"private_key"}))
    assert "live-access-token-value" not in repr(grant) and body not in repr(grant)


def test_netsuite_tba_stays_the_default(settings: Settings) -> None:
    config = vendor_settings(settings, "netsuite")
    erp = from_settings(settings)
    assert config.auth == "tba" and not isinstance(erp._client.auth, OAuth2Auth)
