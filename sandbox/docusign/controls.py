"""``/_sandbox`` acts no public DocuSign API offers: a person signs or declines an envelope, an amendment is
signed, auto-signing, expired tokens, and the HMAC keys Connect signs with (rotation)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from sandbox.docusign.core import (
    AmendmentRequest,
    AutosignRequest,
    ConnectKeys,
    DeclineRequest,
    DocuSignSandbox,
    SandboxError,
    SignRequest,
)


class Controls:
    """The human acts over the shared :class:`DocuSignSandbox`."""

    def __init__(self, sandbox: DocuSignSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.post("/_sandbox/envelopes/{envelope_id}/sign")(self.sign)
        app.post("/_sandbox/envelopes/{envelope_id}/decline")(self.decline)
        app.post("/_sandbox/envelopes/{envelope_id}/amendments")(self.amendment)
        app.post("/_sandbox/autosign")(self.autosign)
        app.post("/_sandbox/tokens/expire")(self.expire_tokens)
        app.post("/_sandbox/connect/keys")(self.connect_keys)

    async def sign(self, envelope_id: str, body: SignRequest | None = None) -> Response:
        """Every recipient signs: the envelope is completed (Connect sends ``envelope-completed``)."""
        try:
            envelope = self.sandbox.complete(envelope_id, body.completed_date if body else None)
        except SandboxError as exc:
            return exc.response()
        return JSONResponse({"envelopeId": envelope["envelopeId"], "status": envelope["status"]})

    async def decline(self, envelope_id: str, body: DeclineRequest | None = None) -> Response:
        """The signer declines (Connect sends ``envelope-declined``)."""
        try:
            envelope = self.sandbox.decline(envelope_id, body.reason if body else "declined by the signer")
        except SandboxError as exc:
            return exc.response()
        return JSONResponse({"envelopeId": envelope["envelopeId"], "status": envelope["status"]})

    async def amendment(self, envelope_id: str, body: AmendmentRequest) -> Response:
        try:
            return JSONResponse(self.sandbox.amend(envelope_id, body))
        except SandboxError as exc:
            return exc.response()

    async def autosign(self, body: AutosignRequest) -> dict[str, Any]:
        self.sandbox.autosign_delay = body.delay_seconds
        return {"delay_seconds": self.sandbox.autosign_delay}

    async def expire_tokens(self) -> dict[str, int]:
        """Every issued token expires now (clients must run the JWT grant again)."""
        tokens = self.sandbox.store.list("oauth_token")
        for token in tokens:
            self.sandbox.store.put("oauth_token", token["token"], {**token, "expires_at": 0})
        return {"expired": len(tokens)}

    async def connect_keys(self, body: ConnectKeys) -> dict[str, int]:
        """The HMAC keys Connect signs with from now on (one ``X-DocuSign-Signature-n`` per key)."""
        self.sandbox.connect_keys = list(body.keys)
        return {"keys": len(body.keys)}
