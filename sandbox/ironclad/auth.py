"""Ironclad's OAuth 2.0 token endpoint (client credentials)."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.ironclad.core import IroncladSandbox
from sandbox.kit import json_error


class OAuth:
    """``POST /oauth/token``: tokens for the client credentials in ``Settings``."""

    def __init__(self, sandbox: IroncladSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the route to ``app``."""
        app.post("/oauth/token")(self.token)

    async def token(self, request: Request) -> Response:
        raw = await request.body()
        if "application/json" in request.headers.get("content-type", ""):
            try:
                form = json.loads(raw or b"{}")
            except ValueError:
                form = None
            if not isinstance(form, dict):
                return json_error(400, {"error": "invalid_request", "error_description": "malformed JSON body"})
        else:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, binascii.Error):
                return json_error(401, {"error": "invalid_client", "error_description": "invalid client"})
        grant = form.get("grant_type")
        if not grant:
            return json_error(400, {"error": "invalid_request", "error_description": "missing grant_type"})
        config = self.sandbox.config
        if client_id != config.client_id or client_secret != config.client_secret:
            return json_error(401, {"error": "invalid_client", "error_description": "invalid client"})
        if grant != "client_credentials":
            return json_error(403, {"error": "unauthorized_client",
                                    "error_description": "client not authorized to use this oauth grant type"})
        return JSONResponse(self.sandbox.issue_token(form.get("scope")))
