"""The webhook HTTP app: verify with the vendor's connector, parse, dedupe, hand over to Temporal, record.

    POST /webhooks/{hubspot|ironclad|stripe|xero}   GET /healthz

Answers:

- 200 ``{"outcome", "workflow_id", "event_id", "events": [...]}`` once Temporal accepted every event
  (started, signalled), or the event was a duplicate or of no interest (ignored);
- 401 missing, wrong or stale signature (with the reason); 400 not the vendor's shape (with the field);
  413 body over ``settings.ingress_max_body_bytes``; 404 unknown vendor;
- 503 when Temporal cannot take it now (``Retry-After`` set): the vendor redelivers, and the ledger
  marks the event ``failed`` so the redelivery routes it again.

Xero wants no body in any answer (its intent-to-receive check included), so Xero answers carry the
outcome in ``X-Revops-*`` headers instead. Every delivery, refused ones included, is in the ledger.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from connectors.errors import PayloadInvalid, RateLimited, SignatureInvalid, Unavailable
from connectors.ports import ClmPort, CrmPort, WebhookReceiver
from ingress.ledger import EventLedger, Outcome, SignatureCheck
from ingress.routing import ClientProvider, EventIntake, EventRouter, Received, Routed, RoutingUnavailable
from settings import Settings

log = logging.getLogger("revops.ingress")

#: headers worth keeping with a delivery (signatures, vendor event IDs), lower-case prefixes
_KEPT_HEADERS = ("x-hubspot-", "x-ironclad-", "x-xero-", "stripe-", "content-type", "user-agent")
_BODYLESS_VENDORS = frozenset({"xero"})
RETRY_AFTER_SECONDS = 30

Hook = Callable[[], Awaitable[None]]


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(_KEPT_HEADERS)}


def _answer(vendor: str, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    headers = dict(headers or {})
    if vendor in _BODYLESS_VENDORS:
        for key in ("outcome", "workflow_id", "event_id", "reason", "field"):
            if payload.get(key):
                headers[f"X-Revops-{key.replace('_', '-').title()}"] = str(payload[key])[:200]
        return Response(status_code=status, headers=headers)
    return JSONResponse(status_code=status, content=payload, headers=headers)


def _summary(results: list[Routed]) -> dict[str, Any]:
    events = [{"outcome": r.outcome.value, "workflow_id": r.workflow_id, "event_id": r.event_id,
               "reason": r.reason} for r in results]
    first = events[0] if events else {"outcome": Outcome.IGNORED.value, "workflow_id": None, "event_id": None}
    return {"outcome": first["outcome"], "workflow_id": first["workflow_id"], "event_id": first["event_id"],
            "events": events}


def create_app(*, settings: Settings, client_provider: ClientProvider, receivers: Mapping[str, WebhookReceiver],
               ledger: EventLedger, clm: ClmPort | None, on_startup: Sequence[Hook] = (),
               on_shutdown: Sequence[Hook] = (), crm: CrmPort | None = None) -> FastAPI:
    """The ingress app over the given receivers (by vendor path), ledger and Temporal client provider."""
    intake = EventIntake(router=EventRouter(settings=settings, clients=client_provider, clm=clm, crm=crm),
                         ledger=ledger)
    limit = settings.ingress_max_body_bytes

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        yield
        for hook in on_shutdown:
            await hook()

    app = FastAPI(title="RevOps ingress", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.intake = intake
    app.state.ledger = ledger
    app.state.settings = settings

    def signed_url(request: Request) -> str:
        """The URL the vendor called (HubSpot signs it); behind a proxy, from ``ingress_public_url``."""
        if not settings.ingress_public_url:
            return str(request.url)
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{settings.ingress_public_url.rstrip('/')}{request.url.path}{query}"

    async def refuse(vendor: str, received: Received, status: int, reason: str,
                     extra: dict[str, Any] | None = None) -> Response:
        try:
            await intake.record_refusal(received, outcome=Outcome.REJECTED, reason=reason, status=status)
        except SQLAlchemyError:
            log.exception("could not record a refused %s delivery", vendor)
        log.info("%s delivery refused (%d): %s", vendor, status, reason)
        return _answer(vendor, status, {"outcome": Outcome.REJECTED.value, "reason": reason, **(extra or {})})

    async def accept_all(events: Sequence[Any], received: Received) -> list[Routed]:
        return [await intake.accept(event, received) for event in events]

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "vendors": sorted(receivers)}

    @app.post("/webhooks/{vendor}")
    async def webhook(vendor: str, request: Request) -> Response:
        received = Received(vendor=vendor[:40], request_id=uuid4().hex, signature=SignatureCheck.UNCHECKED,
                            headers=kept_headers(request.headers))
        receiver = receivers.get(vendor)
        if receiver is None:
            return await refuse(vendor, received, 404, f"unknown vendor {vendor[:40]!r}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            received.body_bytes = int(declared)
            return await refuse(vendor, received, 413, f"body of {declared} bytes is over the {limit}-byte limit")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                received.body_bytes = len(body)
                return await refuse(vendor, received, 413, f"body is over the {limit}-byte limit")
        raw = bytes(body)
        received.body, received.body_bytes = raw.decode("utf-8", errors="replace"), len(raw)
        try:
            await receiver.verify(method=request.method, url=signed_url(request), headers=request.headers, body=raw)
        except SignatureInvalid as exc:
            if isinstance(exc.__cause__, Unavailable | RateLimited):
                # the verification key could not be fetched: our problem, not a forgery; ask for redelivery
                await intake.record_refusal(received, outcome=Outcome.FAILED, reason=exc.reason, status=503)
                return _answer(vendor, 503, {"outcome": Outcome.FAILED.value, "reason": exc.reason},
                               {"Retry-After": str(RETRY_AFTER_SECONDS)})
            received.signature = SignatureCheck.INVALID
            return await refuse(vendor, received, 401, exc.reason)
        received.signature = SignatureCheck.VALID
        try:
            events = receiver.parse(headers=request.headers, body=raw)
        except PayloadInvalid as exc:
            return await refuse(vendor, received, 400, f"{exc.field}: {exc.reason}", {"field": exc.field})
        try:
            if not events:
                await intake.record_refusal(received, outcome=Outcome.IGNORED, status=200,
                                            reason="no event a flow acts on")
                return _answer(vendor, 200, _summary([]))
            # Shielded: a vendor that hangs up (or a shutdown that cancels this request) must not stop an
            # event between being claimed in the ledger and being settled there.
            results = await asyncio.shield(asyncio.ensure_future(accept_all(events, received)))
        except RoutingUnavailable as exc:
            return _answer(vendor, 503, {"outcome": Outcome.FAILED.value, "reason": exc.reason},
                           {"Retry-After": str(RETRY_AFTER_SECONDS)})
        except SQLAlchemyError as exc:
            log.exception("event ledger unavailable")
            return _answer(vendor, 503, {"outcome": Outcome.FAILED.value, "reason": f"event ledger: {exc}"[:300]},
                           {"Retry-After": str(RETRY_AFTER_SECONDS)})
        except Exception as exc:
            log.exception("%s delivery failed", vendor)
            return _answer(vendor, 500, {"outcome": Outcome.FAILED.value, "reason": type(exc).__name__})
        return _answer(vendor, 200, _summary(results))

    return app


def receivers_from_settings(settings: Settings, *, clm: Any) -> dict[str, WebhookReceiver]:
    """The four vendors' receivers; Ironclad's fetches its key through ``clm``."""
    from connectors import hubspot, ironclad, stripe, xero

    return {
        "hubspot": hubspot.webhooks_from_settings(settings),
        "ironclad": ironclad.webhooks_from_settings(settings, clm=clm),
        "stripe": stripe.webhooks_from_settings(settings),
        "xero": xero.webhooks_from_settings(settings),
    }


def build_from_settings(settings: Settings, *, ensure_schedule: bool = True) -> FastAPI:
    """The composition of the served app: receivers, ledger, Temporal client, CLM and the poll schedule."""
    from connectors import hubspot, ironclad
    from ingress.schedule import keep_poll_schedule
    from orchestration.connect import connect

    clm = ironclad.from_settings(settings)
    crm = hubspot.from_settings(settings)
    ledger = EventLedger.from_settings(settings)
    provider = ClientProvider(functools.partial(connect, settings), timeout=settings.ingress_temporal_timeout_seconds)
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    if ensure_schedule:
        start, stop = keep_poll_schedule(provider, settings)
        startup.append(start)
        shutdown.append(stop)

    async def close() -> None:
        await clm.aclose()
        await crm.aclose()
        ledger.close()

    shutdown.append(close)
    return create_app(settings=settings, client_provider=provider, receivers=receivers_from_settings(settings, clm=clm),
                      ledger=ledger, clm=clm, crm=crm, on_startup=startup, on_shutdown=shutdown)


async def serve(settings: Settings) -> None:
    """Serve the ingress on ``settings.ingress_host:ingress_port`` until cancelled."""
    import uvicorn

    app = build_from_settings(settings)
    config = uvicorn.Config(app, host=settings.ingress_host, port=settings.ingress_port, log_level="info",
                            access_log=False)
    await uvicorn.Server(config).serve()


__all__ = ["build_from_settings", "create_app", "kept_headers", "receivers_from_settings", "serve"]
