"""The NetSuite emulator: ``create_app(config, settings=..., database_url=...)`` serves the REST record API v1
(``/services/rest/record/v1``), SuiteQL (``/services/rest/query/v1/suiteql``) and the ``/_sandbox`` controls.

Every vendor request is checked the way NetSuite's gateway checks it: the account's concurrency limit first
(429 ``CONCURRENCY_LIMIT_EXCEEDED`` beyond ``config.concurrency`` requests in flight), then authentication: a
``Bearer`` access token of the OAuth 2.0 machine-to-machine flow (:mod:`sandbox.netsuite.oauth2`, whose token
endpoint this app serves too) or else Token-Based Authentication (:mod:`sandbox.netsuite.auth`), then the JSON
body. Subsidiaries are the legal entities of
``settings`` (their ERP tenant IDs) plus ``config.subsidiary_id`` (the parent company); currencies are
``config.currency_ids``. The people's acts (a payment recorded by hand, a project budget edited) are under
``/_sandbox/acts``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from sandbox.kit import Store, VendorStyle, create_sandbox_app
from sandbox.netsuite import wire
from sandbox.netsuite.auth import TbaRefused, TbaVerifier
from sandbox.netsuite.oauth2 import ClientCredentials
from sandbox.netsuite.records import Records
from settings import Settings

_CODES = {400: "USER_ERROR", 401: "INVALID_LOGIN", 403: "INSUFFICIENT_PERMISSION", 404: "NONEXISTENT_ID",
          409: "RCRD_HAS_BEEN_CHANGED"}


def _fault(status: int, message: str) -> Response:
    if status == 429:
        return wire.concurrency_exceeded()
    return wire.error(status, _CODES.get(status, "UNEXPECTED_ERROR"), message)


class RecordedPayment(BaseModel):
    """``POST /_sandbox/acts/payment``: a person records a customer's payment against an invoice in NetSuite."""

    invoiceId: str  # noqa: N815 - NetSuite's spelling
    amount: Decimal = Field(gt=0)
    tranDate: str | None = None  # noqa: N815
    memo: str | None = None


class EditedBudget(BaseModel):
    """``POST /_sandbox/acts/project-budget``: a person edits a project's budget (``jobPrice``) in NetSuite."""

    projectId: str  # noqa: N815
    jobPrice: Decimal = Field(ge=0)  # noqa: N815


class CompletedTask(BaseModel):
    """``POST /_sandbox/acts/task-complete``: a project manager marks a project task (a milestone) Completed."""

    projectId: str  # noqa: N815 - NetSuite's spelling: the job
    milestone: str = Field(min_length=1, description="the code the task's title starts with, or the task's ID")
    acceptedBy: str = Field(min_length=1)  # noqa: N815


def request_target(request: Request) -> str:
    """The URL as the client sent it: the raw path (still percent-encoded, as RFC 5849 signs it) and query."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string") or b""
    base = f"{request.url.scheme}://{request.url.netloc}{raw_path.decode('latin-1')}"
    return f"{base}?{query.decode('latin-1')}" if query else base


class ConcurrencyLimit:
    """The account's limit of requests in flight (the outermost middleware: injected latency counts too)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/_sandbox"):
            return await call_next(request)
        if self.in_flight >= self.limit:
            return wire.concurrency_exceeded()
        self.in_flight += 1
        try:
            return await call_next(request)
        finally:
            self.in_flight -= 1


class Gateway:
    """Authentication (an OAuth 2.0 bearer token, else TBA) and body parsing in front of every record and query
    route."""

    def __init__(self, verifier: TbaVerifier, oauth2: ClientCredentials) -> None:
        self.verifier = verifier
        self.oauth2 = oauth2

    def refusal(self, request: Request, raw: bytes) -> str | None:
        """Why the request is not authenticated, or ``None``."""
        header = request.headers.get("authorization")
        scheme, _, token = (header or "").strip().partition(" ")
        if scheme.lower() == "bearer":
            return self.oauth2.bearer_refusal(token)
        try:
            self.verifier.verify(request.method, request_target(request), header, raw)
        except TbaRefused as exc:
            return str(exc)
        return None

    async def __call__(self, request: Request, handler: Callable[[Any], Awaitable[Response]]) -> Response:
        raw = await request.body()
        if (refused := self.refusal(request, raw)) is not None:
            return wire.unauthorized(refused)
        body: Any = None
        if raw.strip():
            try:
                body = wire.loads(raw)
            except ValueError:
                return wire.invalid("The request body is not valid JSON.", "INVALID_CONTENT")
        return await handler(body)


def create_app(config: Any, *, settings: Settings, database_url: str = "sqlite://") -> FastAPI:
    """The NetSuite emulator app (see the module docstring)."""
    store = Store(database_url)
    app = create_sandbox_app(style=VendorStyle(vendor="netsuite", error=_fault,
                                               rate_limited=lambda _wait: wire.concurrency_exceeded()),
                             store=store, title="NetSuite sandbox")
    currencies = {str(cid): code for code, cid in config.currency_ids.items()}
    subsidiaries = {str(config.subsidiary_id): {"name": "Parent Company", "currency": config.base_currency}}
    subsidiaries |= {e.erp_tenant_id: {"name": e.name, "currency": e.currency} for e in settings.legal_entities}
    records = Records(store, account_id=config.account_id, subsidiaries=subsidiaries, currencies=currencies,
                      tax_item_id=str(config.tax_item_id))
    gateway = Gateway(TbaVerifier(account_id=config.account_id, consumer_key=config.consumer_key,
                                  consumer_secret=config.consumer_secret, token_id=config.token_id,
                                  token_secret=config.token_secret), ClientCredentials(config))
    app.state.netsuite = records
    app.state.netsuite_oauth2 = gateway.oauth2
    gateway.oauth2.register(app)
    records.register(app, gateway)
    app.middleware("http")(ConcurrencyLimit(config.concurrency))

    @app.get("/_sandbox/subsidiaries")
    async def list_subsidiaries() -> dict[str, Any]:
        """The account's subsidiaries and currencies (what the TBA values reach)."""
        return {"account": config.account_id, "subsidiaries": [{"id": k, **v} for k, v in subsidiaries.items()],
                "currencies": [{"id": k, "symbol": v} for k, v in currencies.items()]}

    @app.post("/_sandbox/acts/payment", status_code=201)
    async def record_payment(act: RecordedPayment) -> Response:
        """A person records a payment against an invoice (no external ID: it came from no integration)."""
        return records.payment_by_hand(act.invoiceId, act.amount, tran_date=act.tranDate,
                                       memo=act.memo or "Recorded by hand")

    @app.post("/_sandbox/acts/project-budget")
    async def edit_budget(act: EditedBudget) -> Response:
        """A person edits a project's budget."""
        job = records.find("job", act.projectId)
        if job is None:
            return wire.not_found("job", act.projectId)
        job["jobPrice"] = str(act.jobPrice)
        return wire.json_response(records.save("job", job))

    @app.post("/_sandbox/acts/task-complete")
    async def complete_task(act: CompletedTask) -> Response:
        """A person marks the job's task of a milestone Completed (NetSuite's ``status`` COMPLETE)."""
        job = records.find("job", act.projectId) or records.by_external_id("job", act.projectId)
        if job is None:
            return wire.not_found("job", act.projectId)
        wanted = act.milestone.lower()
        tasks = records.store.list("projectTask", where=lambda t: (t.get("company") or {}).get("id") == job["id"]
                                   and (t["id"] == act.milestone or str(t.get("title", "")).lower().split(" ", 1)[0]
                                        == wanted))
        if not tasks:
            return wire.not_found("projectTask", act.milestone)
        task = tasks[0]
        task["status"] = {"id": "COMPLETE", "refName": "Completed"}
        return wire.json_response({**records.save("projectTask", task), "job": job["id"],
                                   "acceptedBy": act.acceptedBy})

    return app


__all__ = ["create_app"]
