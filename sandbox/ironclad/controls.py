"""``/_sandbox`` acts no public Ironclad API offers: approve, sign, decline, auto-sign, execute an
amendment, expire tokens, rotate the webhook signing key."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from sandbox.ironclad.core import (
    AmendmentRequest,
    AutosignRequest,
    DeclineRequest,
    IroncladSandbox,
    SandboxError,
    SignRequest,
    base_url,
)


def _sandbox_error(exc: SandboxError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content={"error": exc.message})


class Controls:
    """The human acts over the shared :class:`IroncladSandbox`."""

    def __init__(self, sandbox: IroncladSandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app``."""
        app.post("/_sandbox/workflows/{workflow_id}/approve")(self.approve)
        app.post("/_sandbox/workflows/{workflow_id}/sign")(self.sign)
        app.post("/_sandbox/workflows/{workflow_id}/decline")(self.decline)
        app.post("/_sandbox/autosign")(self.autosign)
        app.post("/_sandbox/records/{record_id}/amendments")(self.amendment)
        app.post("/_sandbox/tokens/expire")(self.expire_tokens)
        app.post("/_sandbox/verification-key/rotate")(self.rotate_key)

    async def approve(self, workflow_id: str, request: Request) -> Response:
        try:
            workflow = self.sandbox.approve(workflow_id, base_url(request))
        except SandboxError as exc:
            return _sandbox_error(exc)
        return JSONResponse({"workflowId": workflow["id"], "step": workflow["step"], "status": workflow["status"]})

    async def sign(self, workflow_id: str, body: SignRequest | None = None) -> Response:
        try:
            workflow, record_id = self.sandbox.sign(workflow_id, body.executed_date if body else None)
        except SandboxError as exc:
            return _sandbox_error(exc)
        return JSONResponse({"workflowId": workflow["id"], "recordId": record_id, "status": workflow["status"]})

    async def decline(self, workflow_id: str, body: DeclineRequest | None = None) -> Response:
        """The counterparty declines to sign: the workflow is cancelled (``workflow_cancelled`` is emitted)."""
        try:
            workflow = self.sandbox._active(workflow_id)
        except SandboxError as exc:
            return _sandbox_error(exc)
        if workflow["status"] == "completed":
            return _sandbox_error(SandboxError(409, f"workflow {workflow_id} is already signed"))
        self.sandbox.cancel(workflow, body.reason if body else "declined by the counterparty")
        return JSONResponse({"workflowId": workflow["id"], "status": workflow["status"]})

    async def autosign(self, body: AutosignRequest) -> dict[str, Any]:
        self.sandbox.autosign_delay = body.delay_seconds
        return {"delay_seconds": self.sandbox.autosign_delay}

    async def amendment(self, record_id: str, body: AmendmentRequest) -> Response:
        try:
            return JSONResponse(self.sandbox.execute_amendment(record_id, body))
        except SandboxError as exc:
            return _sandbox_error(exc)

    async def expire_tokens(self) -> dict[str, int]:
        """Every issued token expires now (clients must fetch a new one)."""
        tokens = self.sandbox.store.list("oauth_token")
        for token in tokens:
            self.sandbox.store.put("oauth_token", token["token"], {**token, "expires_at": 0})
        return {"expired": len(tokens)}

    async def rotate_key(self) -> dict[str, str]:
        self.sandbox.signer.rotate()
        return {"status": "rotated"}
