"""The org's OAuth endpoint and sessions: ``POST /services/oauth2/token`` (client credentials, JWT bearer), the
bearer check on every API call (401 ``INVALID_SESSION_ID`` for an unknown or expired session), and the org's
daily API allowance (403 ``REQUEST_LIMIT_EXCEEDED`` once spent; ``Sforce-Limit-Info`` on every answer).

``/_sandbox/`` controls: register the connected app's JWT public key (Salesforce trusts the certificate uploaded
to the connected app), expire every session (refresh is exercised), set the session lifetime and the allowance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from sandbox.salesforce.org import ORG_USER_ID, SalesforceError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """The OAuth endpoint's RFC 6749 error body."""
    return JSONResponse(status_code=status, content={"error": error, "error_description": description})


class ApiLimit(BaseModel):
    max: int = Field(default=100_000, ge=0, description="API requests allowed in the rolling 24 hours")
    used: int = Field(default=0, ge=0)


class SessionSettings(BaseModel):
    seconds: float = Field(default=7200, gt=0, description="how long a session lives (the org's timeout)")


class JwtKey(BaseModel):
    public_key_pem: str
    client_id: str | None = None


class Sessions:
    """Sessions, the JWT keys the connected app trusts, and the API allowance."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self.jwt_keys: dict[str, list[str]] = {}  # client id -> PEM public keys
        self.limit = ApiLimit()
        self.lifetime = SessionSettings()

    def register(self, app: FastAPI) -> None:
        app.post("/services/oauth2/token")(self.token)
        app.post("/_sandbox/connected-app/keys")(self.add_key)
        app.post("/_sandbox/sessions/expire")(self.expire_all)
        app.post("/_sandbox/sessions")(self.set_lifetime)
        app.post("/_sandbox/api-limit")(self.set_limit)

    async def token(self, request: Request) -> Response:
        form = dict((await request.form()).items())
        grant = str(form.get("grant_type") or "")
        if grant == "client_credentials":
            client_id, client_secret = self._client(request, form)
            if not (hmac.compare_digest(client_id, self.config.client_id)
                    and hmac.compare_digest(client_secret, self.config.client_secret)):
                return oauth_error("invalid_client", "invalid client credentials")
        elif grant == JWT_GRANT:
            refused = self._check_assertion(str(form.get("assertion") or ""))
            if refused:
                return oauth_error("invalid_grant", refused)
        else:
            return oauth_error("unsupported_grant_type", "grant type not supported")
        return JSONResponse(self._issue(str(request.base_url).rstrip("/")))

    @staticmethod
    def _client(request: Request, form: dict[str, Any]) -> tuple[str, str]:
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                return user, password
            except (ValueError, UnicodeDecodeError):
                return "", ""
        return str(form.get("client_id") or ""), str(form.get("client_secret") or "")

    def _check_assertion(self, assertion: str) -> str | None:
        """Why the JWT assertion is refused, or ``None``: signature by a registered key, iss, sub, aud, exp."""
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return "invalid assertion"
        keys = self.jwt_keys.get(str(claims.get("iss")), [])
        if not keys:
            return "invalid_client_id: client identifier invalid"
        for key in keys:
            try:
                jwt.decode(assertion, key, algorithms=["RS256"], audience=self.config.jwt_audience,
                           options={"require": ["exp", "iss", "sub", "aud"]})
            except jwt.ExpiredSignatureError:
                return "expired authorization code"
            except jwt.InvalidAudienceError:
                return "audience is invalid"
            except jwt.PyJWTError:
                continue
            if claims.get("sub") != self.config.jwt_username:
                return "user hasn't approved this consumer"
            return None
        return "invalid assertion: signature does not match a certificate of the connected app"

    def _issue(self, instance_url: str) -> dict[str, Any]:
        token = f"{self.config.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
        self.tokens[token] = time.monotonic() + self.lifetime.seconds
        issued = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{self.config.org_id}/{ORG_USER_ID}"
        signature = base64.b64encode(hmac.new(self.config.client_secret.encode(), (identity + issued).encode(),
                                              hashlib.sha256).digest()).decode()
        return {"access_token": token, "instance_url": instance_url, "id": identity, "token_type": "Bearer",
                "issued_at": issued, "signature": signature, "scope": "api"}

    def require(self, request: Request) -> None:
        """A live session's bearer token, else 401 ``INVALID_SESSION_ID``; then one request of the allowance."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.tokens.get(token.strip()) if scheme.lower() in ("bearer", "oauth") else None
        if expiry is None or expiry < time.monotonic():
            self.tokens.pop(token.strip(), None)
            raise SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.limit.used >= self.limit.max:
            raise SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.limit.used += 1

    def limit_info(self) -> str:
        return f"api-usage={self.limit.used}/{self.limit.max}"

    async def add_key(self, key: JwtKey) -> dict[str, Any]:
        """Trust a public key for the connected app's JWT bearer flow (the certificate upload)."""
        client_id = key.client_id or self.config.client_id
        self.jwt_keys.setdefault(client_id, []).append(key.public_key_pem)
        return {"client_id": client_id, "keys": len(self.jwt_keys[client_id])}

    async def expire_all(self) -> dict[str, int]:
        """Every session ends now (an admin revoked them, or the timeout passed)."""
        count = len(self.tokens)
        self.tokens.clear()
        return {"expired": count}

    async def set_lifetime(self, body: SessionSettings) -> dict[str, Any]:
        self.lifetime = body
        return body.model_dump()

    async def set_limit(self, body: ApiLimit) -> dict[str, Any]:
        self.limit = body
        return body.model_dump()
