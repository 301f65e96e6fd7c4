"""Salesforce CRM emulator (REST API v60.0): OAuth 2.0 (client credentials, JWT bearer) with expiring sessions,
sObject rows, upsert by external ID, SOQL (a parsed subset) with ``nextRecordsUrl`` paging, sObject Collections,
describe, the daily API allowance with ``Sforce-Limit-Info``, Salesforce's error array, and Outbound Messages
when an opportunity's stage changes.

``/_sandbox`` adds what only a person could do (seed and move opportunities), the session and limit controls,
and the kit's faults and webhook targets (the outbound message endpoints).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sandbox.kit import Store, VendorStyle, create_sandbox_app
from sandbox.salesforce.controls import Controls
from sandbox.salesforce.org import Org, SalesforceError
from sandbox.salesforce.outbound import TRIGGER_FIELDS, OutboundMessages
from sandbox.salesforce.rest import Rest
from sandbox.salesforce.sessions import Sessions
from settings import Settings

_CODES = {400: "INVALID_FIELD", 401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED", 404: "NOT_FOUND",
          409: "UNABLE_TO_LOCK_ROW", 423: "UNABLE_TO_LOCK_ROW"}


def salesforce_error(status: int, message: str) -> JSONResponse:
    """An error in Salesforce's shape (fault injection)."""
    code = _CODES.get(status, "SERVER_UNAVAILABLE" if status >= 500 else "INVALID_FIELD")
    return JSONResponse(status_code=status, content=SalesforceError(status, code, message).body())


def salesforce_rate_limited(_wait: float) -> JSONResponse:
    """Salesforce has no 429: a spent allowance or too many concurrent requests is 403 REQUEST_LIMIT_EXCEEDED."""
    return JSONResponse(status_code=403, content=SalesforceError(
        403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.").body())


async def _salesforce_error(_request: Request, exc: SalesforceError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.body())


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return salesforce_error(400, f"Invalid input: {exc.errors()[:3]}")


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The Salesforce emulator app (``create_app(adapter settings, settings=...)``, served by
    ``devstack.emulators``)."""
    store = Store(database_url)
    style = VendorStyle(vendor="salesforce", error=salesforce_error, rate_limited=salesforce_rate_limited)
    app = create_sandbox_app(style=style, store=store, title="Salesforce sandbox")
    org = Org(store, config.org_id)
    sessions = Sessions(config)
    outbound = OutboundMessages(app.state.control, store, config)
    app.state.org, app.state.sessions, app.state.outbound = org, sessions, outbound

    def on_change(sobject: str, record: dict[str, Any], changed: dict[str, Any]) -> None:
        if sobject == "Opportunity" and TRIGGER_FIELDS & set(changed):
            outbound.stage_changed(record)

    @app.middleware("http")
    async def limit_info(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.url.path.startswith("/services/data/"):
            response.headers["Sforce-Limit-Info"] = sessions.limit_info()
        return response

    app.exception_handler(SalesforceError)(_salesforce_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    sessions.register(app)
    rest = Rest(org, on_change)
    api = APIRouter(dependencies=[Depends(sessions.require)])
    rest.register(app, api)
    app.include_router(api)
    Controls(org, rest).register(app)
    return app


__all__ = ["create_app", "salesforce_error", "salesforce_rate_limited"]
