"""The identity endpoints a Xero custom connection uses: ``POST /connect/token`` (client credentials) and
``GET /connections`` (the organisations the token may act for)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response

from sandbox.xero import wire
from sandbox.xero.core import DEFAULT_SCOPES, TOKEN_LIFETIME, XeroState


class Identity:
    """The identity routes over the shared :class:`XeroState`."""

    def __init__(self, state: XeroState) -> None:
        self.state = state

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.post("/connect/token")(self.token)
        app.get("/connections")(self.connections)

    async def token(self, request: Request) -> Response:
        config = self.state.config
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode(errors="replace")).items()}
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = secret = None
        if form.get("grant_type") != "client_credentials":
            return wire.json_response({"error": "unsupported_grant_type"}, 400)
        if client_id != config.client_id or secret != config.client_secret:
            return wire.json_response({"error": "invalid_client"}, 400)
        return wire.json_response({"access_token": self.state.issue_token(), "expires_in": TOKEN_LIFETIME,
                                   "token_type": "Bearer", "scope": form.get("scope") or DEFAULT_SCOPES})

    async def connections(self, request: Request) -> Response:
        if not self.state.authenticated(request):
            return wire.unauthorized()
        return wire.json_response([_connection(self.state, t) for t in self.state.tenants])


def _connection(state: XeroState, tenant: str) -> dict[str, Any]:
    created = datetime(2024, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
    return {"id": state.stable_id(tenant, "connection"), "authEventId": state.stable_id("auth-event"),
            "tenantId": tenant, "tenantType": "ORGANISATION", "tenantName": state.tenants[tenant].name,
            "createdDateUtc": created, "updatedDateUtc": created}
