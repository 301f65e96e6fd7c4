"""``/public/api/v1/webhooks``: the public key a receiver verifies the webhook signatures with."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from sandbox.ironclad.core import API, IroncladSandbox


class Webhooks:
    """The webhook routes over the shared :class:`IroncladSandbox`."""

    def __init__(self, sandbox: IroncladSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.get(f"{API}/webhooks/verification-key")(self.verification_key)

    async def verification_key(self, request: Request) -> Response:
        if (denied := self.sandbox.authorize(request)) is not None:
            return denied
        return PlainTextResponse(self.sandbox.signer.public_pem())
