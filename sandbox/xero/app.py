"""The Xero emulator: ``create_app(config, settings=...)`` serves the accounting API (``/api.xro/2.0``), the
Projects API (``/projects.xro/2.0``), the identity endpoints a custom connection uses
(``/connect/token``, ``/connections``) and the ``/_sandbox`` control routes.

Like Xero, paths are matched without regard to case (``/projects.xro/2.0/projects`` and
``/Projects`` are one route). Organisations (tenants) are the legal entities in ``Settings``.
"""

from __future__ import annotations

import base64
import binascii
import math
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.kit import Store, VendorStyle, create_sandbox_app
from sandbox.xero import accounting, projects, wire
from sandbox.xero.core import DEFAULT_SCOPES, TOKEN_LIFETIME, XeroState, entropy
from settings import Settings

_CANONICAL_SEGMENTS = {s.lower(): s for s in (
    "api.xro", "projects.xro", "Contacts", "Invoices", "Payments", "CreditNotes", "Allocations", "Accounts",
    "Projects", "ProjectsUsers", "Tasks", "Time", "connect", "token", "connections",
)}


class _CaseInsensitiveVendorPaths:
    """Rewrites vendor path segments to one spelling before routing (Xero ignores case)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_sandbox"):
            path = "/".join(_CANONICAL_SEGMENTS.get(part.lower(), part) for part in scope["path"].split("/"))
            if path != scope["path"]:
                scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _fault(status: int, message: str) -> Response:
    """Injected faults, answered the way Xero answers that status."""
    if status == 401:
        return wire.unauthorized()
    if status == 403:
        return wire.forbidden()
    if status == 404:
        return wire.not_found()
    if status == 400:
        return wire.validation_exception([{"ValidationErrors": [{"Message": message}]}])
    if status == 429:
        return _rate_limited(1.0)
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return wire.problem(status, title, message)


def _rate_limited(wait: float) -> Response:
    """Xero's 429: ``Retry-After`` in whole seconds and which limit was hit."""
    return wire.problem(429, "Too Many Requests", "Rate limit exceeded", headers={
        "Retry-After": str(max(1, math.ceil(wait))),
        "X-Rate-Limit-Problem": "minute",
        "X-MinLimit-Remaining": "0",
        "X-DayLimit-Remaining": "4000",
        "X-AppMinLimit-Remaining": "9000",
    })


class SeedContact(BaseModel):
    """``POST /_sandbox/contacts``: a contact as if someone had entered it in Xero."""

    tenantId: str  # noqa: N815 - Xero's spelling
    ContactID: str | None = Field(default=None, description="set to edit an existing contact instead")
    Name: str | None = None
    ContactNumber: str | None = None
    EmailAddress: str | None = None
    TaxNumber: str | None = None
    PaymentTermsDays: int | None = Field(default=None, ge=0, description="Sales terms, days after bill date")
    ContactStatus: str | None = None


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The Xero emulator app (see the module docstring)."""
    store = Store(database_url)
    app = create_sandbox_app(style=VendorStyle(vendor="xero", error=_fault, rate_limited=_rate_limited),
                             store=store, title="Xero sandbox")
    state = XeroState(config, settings, store, app.state.control)
    app.state.xero = state
    app.add_middleware(_CaseInsensitiveVendorPaths)
    books = accounting.register(app, state)
    projects.register(app, state)

    # -- identity ------------------------------------------------------------------------------
    @app.post("/connect/token")
    async def token(request: Request) -> Response:
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
        return wire.json_response({"access_token": state.issue_token(), "expires_in": TOKEN_LIFETIME,
                                   "token_type": "Bearer", "scope": form.get("scope") or DEFAULT_SCOPES})

    @app.get("/connections")
    async def connections(request: Request) -> Response:
        if not state.authenticated(request):
            return wire.unauthorized()
        return wire.json_response([_connection(state, t) for t in state.tenants])

    # -- /_sandbox ------------------------------------------------------------------------------
    @app.get("/_sandbox/tenants")
    async def tenants() -> dict[str, Any]:
        """The organisations, with the users who may log time and the chart of accounts."""
        return {"tenants": [
            {"tenantId": tid, "tenantName": e.name, "legalEntity": e.code, "currency": e.currency,
             "users": state.users(tid), "accounts": [{k: a[k] for k in ("Code", "Name", "Type")}
                                                     for a in state.accounts(tid)]}
            for tid, e in state.tenants.items()]}

    @app.post("/_sandbox/contacts")
    async def seed_contact(seed: SeedContact, request: Request) -> Response:
        """Create (or, with ``ContactID``, edit) a contact as a person would in Xero."""
        tenant = seed.tenantId.lower()
        if tenant not in state.tenants:
            return wire.json_response({"error": f"unknown tenant {seed.tenantId}"}, 404)
        element: dict[str, Any] = {k: v for k, v in seed.model_dump(exclude={"tenantId", "PaymentTermsDays"}).items()
                                   if v is not None}
        if seed.PaymentTermsDays is not None:
            element["PaymentTerms"] = {"Sales": {"Day": seed.PaymentTermsDays, "Type": "DAYSAFTERBILLDATE"}}
        saved, failure = books.write_contacts(request, tenant, [element])
        return failure if failure is not None else wire.json_response(wire.render(saved[0]), 201)

    @app.post("/_sandbox/tokens/revoke")
    async def revoke_tokens() -> dict[str, int]:
        """Forget every issued access token (the next API call gets a 401)."""
        count = len(state.tokens)
        state.tokens.clear()
        return {"revoked": count}

    @app.post("/_sandbox/webhooks/intent")
    async def intent_to_receive() -> dict[str, Any]:
        """Xero's intent-to-receive check: to every target, one correctly and one wrongly signed
        empty-events payload; the target passes when it answers 200 and 401 respectively."""
        results = []
        async with httpx.AsyncClient(timeout=5) as client:
            for target in state.control.webhooks.targets:
                if target.drop:
                    continue
                for signed_well in (True, False):
                    body = wire.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                                       "entropy": entropy()}).encode()
                    signature = state.sign(body) if signed_well else state.sign(body, b"not-the-webhook-key")
                    try:
                        response = await client.post(target.url, content=body, headers={
                            "Content-Type": "application/json", "x-xero-signature": signature})
                        status: int | str = response.status_code
                    except httpx.HTTPError as exc:
                        status = f"error: {exc.__class__.__name__}"
                    expected = 200 if signed_well else 401
                    results.append({"url": target.url, "signature": "valid" if signed_well else "invalid",
                                    "status": status, "expected": expected, "ok": status == expected})
                    state.control.webhooks.deliveries.append(
                        {"url": target.url, "body": body.decode(), "status": status, "attempts": 1,
                         "dropped": False, "intent": True})
        return {"results": results, "intent_ok": bool(results) and all(r["ok"] for r in results)}

    return app


def _connection(state: XeroState, tenant: str) -> dict[str, Any]:
    created = datetime(2024, 1, 1, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
    return {"id": state.stable_id(tenant, "connection"), "authEventId": state.stable_id("auth-event"),
            "tenantId": tenant, "tenantType": "ORGANISATION", "tenantName": state.tenants[tenant].name,
            "createdDateUtc": created, "updatedDateUtc": created}
