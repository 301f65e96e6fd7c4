"""OAuth 2.0 machine to machine (the client credentials flow with a JWT assertion), NetSuite's alternative to TBA.

As NetSuite documents it ("OAuth 2.0 Client Credentials Flow", docs.oracle.com/en/cloud/saas/netsuite/
ns-online-help: "POST Request to the Token Endpoint and the Access Token Response", section_162755359851.html,
and "The Request Token Structure", section_162790605110.html): the integration POSTs a form to
``<account>/services/rest/auth/oauth2/v1/token`` with ``grant_type=client_credentials``,
``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and ``client_assertion`` = a JWT
signed with the private half of the certificate uploaded in the M2M setup. Its header: ``typ`` JWT, ``alg``
PS256 (by default; RS256 also works), ``kid`` = the certificate ID NetSuite gave the upload. Its claims: ``iss`` =
the integration record's client ID, ``scope`` (rest_webservices, restlets, suite_analytics), ``aud`` = the token
endpoint's URL, ``iat`` and ``exp`` (less than an hour after ``iat``). The answer's ``access_token`` is valid 60
minutes (``expires_in`` "3600") and goes on every REST and SuiteQL call as ``Authorization: Bearer``.

The token is fetched on first use, kept until a minute before it expires, and fetched again once when a call is
refused with 401 (that call is then sent once more). Neither the key nor a token is ever put in a message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx
import jwt

from connectors.errors import AuthFailed, Rejected
from connectors.http import send
from connectors.netsuite.spec import NetSuiteSettings

VENDOR = "netsuite"
TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: the assertion is used once, right away; NetSuite refuses one that lives an hour or longer
ASSERTION_SECONDS = 1800
#: a token this close to its end is renewed before use rather than refused mid-call
RENEW_BEFORE_SECONDS = 60.0


def grant_error(response: httpx.Response) -> str:
    """The token endpoint's explanation: OAuth's ``{"error", "error_description"}``."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "error" in body:
        return f"{body['error']}: {body.get('error_description') or ''}".rstrip(": ")
    return response.text[:300]


class ClientCredentialsGrant:
    """The account's access token by the client credentials flow, cached until shortly before it expires."""

    def __init__(self, config: NetSuiteSettings, client: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.client = client
        self.token_url = f"{config.base_url.rstrip('/')}{TOKEN_PATH}"
        self._clock, self._monotonic = clock, monotonic
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many tokens were granted (a refresh is the second)

    def __repr__(self) -> str:
        return f"ClientCredentialsGrant(client_id={self.config.client_id!r}, token_url={self.token_url!r})"

    def assertion(self) -> str:
        """The signed client assertion (see the module docstring)."""
        now = int(self._clock())
        scopes = [s.strip() for s in self.config.scopes.split(",") if s.strip()]
        claims = {"iss": self.config.client_id, "scope": scopes, "aud": self.token_url, "iat": now,
                  "exp": now + ASSERTION_SECONDS}
        try:
            key = self.config.private_key_pem()
        except OSError as exc:
            raise AuthFailed("NETSUITE_PRIVATE_KEY is neither a PEM key nor a readable file", vendor=VENDOR) from exc
        try:
            return jwt.encode(claims, key, algorithm=self.config.assertion_algorithm,
                              headers={"typ": "JWT", "kid": self.config.certificate_id})
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise AuthFailed("NETSUITE_PRIVATE_KEY is not a usable RSA private key", vendor=VENDOR) from exc

    async def token(self, *, refused: str | None = None) -> str:
        """The live token; a new one when there is none, it is about to expire, or ``refused`` is the one held."""
        async with self._lock:
            if refused is not None and self._token == refused:
                self._token = None
            if self._token and self._monotonic() < self._expires_at - RENEW_BEFORE_SECONDS:
                return self._token
            form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": self.assertion()}
            try:
                response = await send(self.client, "POST", self.token_url, vendor=VENDOR, error_message=grant_error,
                                      data=form, headers={"Accept": "application/json"})
            except (Rejected, AuthFailed) as exc:  # 400/401 invalid_request, invalid_client, invalid_grant...
                raise AuthFailed(f"the OAuth 2.0 grant was refused: {exc.message}", vendor=VENDOR,
                                 status=exc.status) from exc
            self._token, lifetime = self._parsed(response)
            self._expires_at = self._monotonic() + lifetime
            self.fetched += 1
            return self._token

    @staticmethod
    def _parsed(response: httpx.Response) -> tuple[str, float]:
        try:
            body: Any = response.json()
            return str(body["access_token"]), float(body.get("expires_in", 3600))  # NetSuite sends it as text
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise AuthFailed("the token answer holds no usable access_token", vendor=VENDOR,
                             status=response.status_code) from exc


class OAuth2Auth(httpx.Auth):
    """``Authorization: Bearer`` from the grant; a 401 fetches a new token once and sends the request again."""

    def __init__(self, grant: ClientCredentialsGrant) -> None:
        self.grant = grant

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2Auth is for AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = await self.grant.token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.grant.token(refused=used)}"
            yield request


__all__ = ["ASSERTION_TYPE", "TOKEN_PATH", "ClientCredentialsGrant", "OAuth2Auth", "grant_error"]
