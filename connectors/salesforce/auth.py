"""OAuth 2.0 for a connected app: the client-credentials flow, or the JWT bearer flow when a private key is
configured. Salesforce's token answers carry no ``expires_in``: a session lasts as the org's session settings say,
so the token is kept until a call is refused with 401 ``INVALID_SESSION_ID``, then fetched again once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
import jwt

from connectors.errors import AuthFailed, ConnectorError
from connectors.http import DEFAULT_TIMEOUT, send
from connectors.salesforce.errors import VENDOR, error_message, reclassified

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/services/oauth2/token"


class SalesforceAuth(httpx.Auth):
    """Bearer token of a connected app, fetched on first use and again after ``INVALID_SESSION_ID``."""

    requires_response_body = True

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, jwt_username: str | None = None,
                 jwt_private_key: str | None = None, jwt_audience: str = "",
                 token_client: httpx.AsyncClient | None = None) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwt_username = jwt_username
        self.jwt_private_key = jwt_private_key
        self.jwt_audience = jwt_audience
        self._token_client = token_client
        self._token: str | None = None
        self._lock = asyncio.Lock()
        self.fetched = 0  # how many tokens were fetched (a refresh is the second)

    def _form(self) -> dict[str, str]:
        if self.jwt_private_key:
            claims = {"iss": self.client_id, "sub": self.jwt_username, "aud": self.jwt_audience,
                      "exp": int(time.time()) + 180}
            return {"grant_type": JWT_GRANT, "assertion": jwt.encode(claims, self.jwt_private_key, algorithm="RS256")}
        return {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}

    async def token(self, *, refused: str | None = None) -> str:
        """The current token; a new one when there is none or ``refused`` is the one we hold."""
        async with self._lock:
            if self._token and self._token != refused:
                return self._token
            client = self._token_client or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
            try:
                response = await send(client, "POST", self.token_url, vendor=VENDOR, error_message=error_message,
                                      data=self._form())
            except ConnectorError as exc:
                fixed = reclassified(exc)
                if fixed is exc:  # never raise an error "from" itself: its cause chain would loop
                    raise
                raise fixed from exc
            finally:
                if self._token_client is None:
                    await client.aclose()
            try:
                body: Any = response.json()
                token = str(body["access_token"])
            except (ValueError, KeyError, TypeError) as exc:
                raise AuthFailed(f"token response without an access_token: {exc!r}", vendor=VENDOR,
                                 status=response.status_code) from exc
            self._token = token
            self.fetched += 1
            return token

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("SalesforceAuth is for AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = await self.token()
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            # the session expired or was revoked: one new token, shared by every request refused with the old one
            request.headers["Authorization"] = f"Bearer {await self.token(refused=used)}"
            yield request


__all__ = ["JWT_GRANT", "TOKEN_PATH", "SalesforceAuth"]
