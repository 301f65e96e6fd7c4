"""The Xero emulator: ``create_app(config, settings=...)`` serves the accounting API (``/api.xro/2.0``), the
Projects API (``/projects.xro/2.0``), the identity endpoints a custom connection uses
(``/connect/token``, ``/connections``) and the ``/_sandbox`` control routes.

Like Xero, paths are matched without regard to case (``/projects.xro/2.0/projects`` and
``/Projects`` are one route). Organisations (tenants) are the legal entities in ``Settings``.
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from sandbox.kit import Store, VendorStyle, create_sandbox_app
from sandbox.xero import accounting, projects, wire
from sandbox.xero.controls import Controls
from sandbox.xero.core import XeroState
from sandbox.xero.identity import Identity
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


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The Xero emulator app (see the module docstring)."""
    store = Store(database_url)
    app = create_sandbox_app(style=VendorStyle(vendor="xero", error=_fault, rate_limited=_rate_limited,
                                                        tenant_header="Xero-Tenant-Id"),
                             store=store, title="Xero sandbox")
    state = XeroState(config, settings, store, app.state.control)
    app.state.xero = state
    app.add_middleware(_CaseInsensitiveVendorPaths)
    books = accounting.register(app, state)
    projects.register(app, state)
    Identity(state).register(app)
    Controls(state, books).register(app)
    return app

