"""The webhook HTTP app: verify with the vendor's connector, parse, dedupe, hand over to Temporal, record.

    POST /webhooks/<adapter>   GET /healthz (alive)   GET /readyz (Temporal, ledger)

Answers:

- 200 ``{"outcome", "workflow_id", "event_id", "events": [...]}`` once Temporal accepted every event
  (started, signalled), or the event was a duplicate or of no interest (ignored);
- 401 missing, wrong or stale signature (with the reason); 400 not the vendor's shape (with the field);
  413 body over ``settings.ingress_max_body_bytes``; 408 body not received within
  ``ingress_read_timeout_seconds``; 404 unknown vendor;
- 503 "try later" with ``Retry-After`` when Temporal (or the ledger) cannot take it now, and nothing
  more (no address, no gRPC text): the vendor redelivers, and the ledger marks the event ``failed`` so
  the redelivery, or the upkeep sweep, routes it again.

The signature is verified before anything of the body is kept or parsed: a refused delivery is in the
ledger as its SHA-256, size and reason only; an accepted body is kept encrypted. Parsing is bounded
(size, nesting depth, events per delivery) and any parse failure is a recorded 400, never a 500.

Xero wants no body in any answer (its intent-to-receive check included), so Xero answers carry the
outcome in ``X-Revops-*`` headers instead. Every delivery, refused ones included, is in the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from bootstrap import build_intake, for_ingress
from connectors.errors import PayloadInvalid, RateLimited, SignatureInvalid, Unavailable
from connectors.ports import ClmPort, CrmPort, WebhookReceiver
from ingress.metrics import IngressMetrics
from intake import ClientProvider, Received, Routed, RoutingUnavailable
from observability.tracing import trace_headers
from runtime.logs import configure_logging
from settings import Settings
from stores.events import EventLedger, Outcome, SignatureCheck, probe_writable

log = logging.getLogger("revops.ingress")

#: headers worth keeping with a delivery (signatures, vendor event IDs), lower-case prefixes
#: headers kept with every delivery; a receiver adds its vendor's own (``header_prefixes``)
_KEPT_HEADERS = ("content-type", "user-agent")
RETRY_AFTER_SECONDS = 30

Hook = Callable[[], Awaitable[None]]


def header_safe(value: object, limit: int = 200) -> str:
    """A value fit to echo in a response header or a ledger column: printable ASCII (no CR, LF or NUL),
    bounded."""
    text = str(value)
    return "".join(c if " " <= c <= "~" else "?" for c in text[:limit])


def kept_headers(headers: Mapping[str, str], prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """The headers worth keeping with a delivery (ours and the receiver's ``prefixes``), sanitized and bounded
    (they may come from anyone)."""
    kept: dict[str, str] = {}
    wanted = (*_KEPT_HEADERS, *prefixes)
    for key, value in headers.items():
        if key.lower().startswith(wanted) and len(kept) < 12:
            kept[header_safe(key.lower(), 60)] = header_safe(value, 300)
    return kept


def _answer(receiver: Any, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> Response:
    """JSON; for a receiver that renders its vendor's own answer (``render_answer(status, payload)`` -> body and
    media type, e.g. a SOAP acknowledgement) that; for a vendor that wants no body (the receiver's
    ``bodyless_answers``) the same in headers."""
    headers = dict(headers or {})
    render = getattr(receiver, "render_answer", None)
    if render is not None:
        content, media_type = render(status, payload)
        return Response(content=content, status_code=status, media_type=media_type, headers=headers)
    if getattr(receiver, "bodyless_answers", False):
        for key in ("outcome", "workflow_id", "event_id", "reason", "field"):
            if payload.get(key):
                headers[f"X-Revops-{key.replace('_', '-').title()}"] = header_safe(payload[key])
        return Response(status_code=status, headers=headers)
    return JSONResponse(status_code=status, content=payload, headers=headers)


def _try_later(receiver: Any) -> Response:
    """503 that says only "try later": the reason stays in the ledger and the log."""
    return _answer(receiver, 503, {"outcome": Outcome.FAILED.value, "reason": "try later"},
                   {"Retry-After": str(RETRY_AFTER_SECONDS)})


def _summary(results: list[Routed]) -> dict[str, Any]:
    events = [{"outcome": r.outcome.value, "workflow_id": r.workflow_id, "event_id": r.event_id,
               "reason": r.reason} for r in results]
    first = events[0] if events else {"outcome": Outcome.IGNORED.value, "workflow_id": None, "event_id": None}
    return {"outcome": first["outcome"], "workflow_id": first["workflow_id"], "event_id": first["event_id"],
            "events": events}


def create_app(*, settings: Settings, client_provider: ClientProvider, receivers: Mapping[str, WebhookReceiver],
               ledger: EventLedger, clm: ClmPort | None, on_startup: Sequence[Hook] = (),
               on_shutdown: Sequence[Hook] = (), crm: CrmPort | None = None,
               metrics: IngressMetrics | None = None) -> FastAPI:
    """The ingress app over the given receivers (by vendor path), ledger and Temporal client provider."""
    metrics = metrics or IngressMetrics(vendors=receivers, ledger=ledger)

    intake = build_intake(settings, clients=client_provider, ledger=ledger, clm=clm, crm=crm,
                          on_recorded=metrics.delivered)
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
    app.state.metrics = metrics  # served on its own port by serve() (ingress_metrics_port)

    def signed_url(request: Request) -> str:
        """The URL the vendor called (HubSpot signs it); behind a proxy, from ``ingress_public_url``."""
        if not settings.ingress_public_url:
            return str(request.url)
        query = f"?{request.url.query}" if request.url.query else ""
        return f"{settings.ingress_public_url.rstrip('/')}{request.url.path}{query}"

    async def refuse(vendor: str, received: Received, status: int, reason: str,
                     extra: dict[str, Any] | None = None) -> Response:
        reason = header_safe(reason, 300)
        try:
            await intake.record_refusal(received, outcome=Outcome.REJECTED, reason=reason, status=status)
        except SQLAlchemyError:
            log.exception("could not record a refused delivery", extra={"vendor": received.vendor})
        log.info("delivery refused", extra={"vendor": received.vendor, "status": status, "reason": reason,
                                            "request_id": received.request_id})
        return _answer(receivers.get(vendor), status,
                       {"outcome": Outcome.REJECTED.value, "reason": reason, **(extra or {})})

    async def accept_all(events: Sequence[Any], received: Received) -> list[Routed]:
        return [await intake.accept(event, received) for event in events]

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: the process answers. Whether it can do its work is ``/readyz``."""
        return {"status": "ok", "vendors": sorted(receivers)}

    @app.get("/readyz")
    async def readyz() -> Response:
        """Readiness: Temporal answers and the ledger takes a write; 503 (without details) otherwise."""
        checks: dict[str, str] = {}
        try:
            client = await client_provider.get()
            await asyncio.wait_for(client.service_client.check_health(), settings.ingress_temporal_timeout_seconds)
            checks["temporal"] = "ok"
        except Exception as exc:  # any failure means "not ready"; the detail goes to the log only
            client_provider.forget()
            checks["temporal"] = "unavailable"
            log.warning("readiness: Temporal unavailable", extra={"error": type(exc).__name__})
        try:
            await ledger.run(probe_writable)
            checks["ledger"] = "ok"
        except Exception as exc:
            checks["ledger"] = "unavailable"
            log.warning("readiness: ledger not writable", extra={"error": type(exc).__name__})
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ready else 503, content={"status": "ready" if ready else "not ready",
                                                                        **checks},
                            headers={} if ready else {"Retry-After": str(RETRY_AFTER_SECONDS)})

    async def read_body(request: Request, received: Received) -> bytes | int:
        """The body, or the status refusing it (413 over the limit, 408 too slow)."""
        body = bytearray()
        try:
            async with asyncio.timeout(settings.ingress_read_timeout_seconds):
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > limit:
                        received.body_bytes = len(body)
                        return 413
        except TimeoutError:
            received.body_bytes = len(body)
            return 408
        return bytes(body)

    @app.post("/webhooks/{vendor}")
    async def webhook(vendor: str, request: Request) -> Response:
        receiver = receivers.get(vendor)
        prefixes = tuple(getattr(receiver, "header_prefixes", ()))
        received = Received(vendor=header_safe(vendor, 40), request_id=uuid4().hex,
                            signature=SignatureCheck.UNCHECKED, headers={**kept_headers(request.headers, prefixes),
                                                                         **trace_headers()})
        if receiver is None:
            return await refuse(vendor, received, 404, f"unknown vendor {header_safe(vendor, 40)!r}")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            received.body_bytes = min(int(declared[:20]), 2**62)
            return await refuse(vendor, received, 413, f"body of {declared[:20]} bytes is over the {limit}-byte limit")
        raw = await read_body(request, received)
        if raw == 413:
            return await refuse(vendor, received, 413, f"body is over the {limit}-byte limit")
        if raw == 408:
            return await refuse(vendor, received, 408, "body not received in time")
        assert isinstance(raw, bytes)
        # Until the signature is good, the body is anyone's: only its digest and size are kept.
        received.body_bytes, received.body_sha256 = len(raw), hashlib.sha256(raw).hexdigest()
        try:
            await receiver.verify(method=request.method, url=signed_url(request), headers=request.headers, body=raw)
        except SignatureInvalid as exc:
            if isinstance(exc.__cause__, Unavailable | RateLimited):
                # the verification key could not be fetched: our problem, not a forgery; ask for redelivery
                await intake.record_refusal(received, outcome=Outcome.FAILED, reason=header_safe(exc.reason, 300),
                                            status=503)
                return _try_later(receivers.get(vendor))
            received.signature = SignatureCheck.INVALID
            return await refuse(vendor, received, 401, exc.reason)
        except Exception as exc:  # a receiver must never turn a forgery into a 500
            received.signature = SignatureCheck.INVALID
            return await refuse(vendor, received, 401, f"signature not verifiable ({type(exc).__name__})")
        received.signature = SignatureCheck.VALID
        try:
            events = receiver.parse(headers=request.headers, body=raw)
        except PayloadInvalid as exc:
            field = header_safe(exc.field, 80)
            return await refuse(vendor, received, 400, f"{field}: {exc.reason}", {"field": field})
        except Exception as exc:  # bounded parsing raises PayloadInvalid; anything else is still a 400
            return await refuse(vendor, received, 400, f"body: not the vendor's shape ({type(exc).__name__})",
                                {"field": "body"})
        received.body = raw.decode("utf-8", errors="replace")  # verified: kept, encrypted
        try:
            if not events:
                await intake.record_refusal(received, outcome=Outcome.IGNORED, status=200,
                                            reason="no event a flow acts on")
                return _answer(receivers.get(vendor), 200, _summary([]))
            # Shielded: a vendor that hangs up (or a shutdown that cancels this request) must not stop an
            # event between being claimed in the ledger and being settled there.
            results = await asyncio.shield(asyncio.ensure_future(accept_all(events, received)))
        except RoutingUnavailable as exc:
            log.warning("delivery not handed over", extra={"vendor": received.vendor, "reason": exc.reason,
                                                           "request_id": received.request_id})
            return _try_later(receivers.get(vendor))
        except SQLAlchemyError as exc:
            log.error("event ledger unavailable", extra={"vendor": received.vendor, "error": type(exc).__name__,
                                                         "request_id": received.request_id})
            return _try_later(receivers.get(vendor))
        except Exception as exc:
            log.error("delivery failed", extra={"vendor": received.vendor, "error": type(exc).__name__,
                                                "request_id": received.request_id})
            return _answer(receivers.get(vendor), 500, {"outcome": Outcome.FAILED.value, "reason": type(exc).__name__})
        return _answer(receivers.get(vendor), 200, _summary(results))

    return app


def build_from_settings(settings: Settings, *, ensure_schedule: bool = True) -> FastAPI:
    """The served app over the parts ``bootstrap.for_ingress`` builds (receivers, ledger, Temporal client, CRM and
    CLM), keeping the poll and upkeep schedules in step unless told not to."""
    from ingress.schedule import keep_poll_schedule

    parts = for_ingress(settings)
    startup: list[Hook] = []
    shutdown: list[Hook] = []
    if ensure_schedule:
        start, stop = keep_poll_schedule(parts.clients, settings)
        startup.append(start)
        shutdown.append(stop)
    shutdown.append(parts.aclose)
    return create_app(settings=settings, client_provider=parts.clients, receivers=parts.receivers,
                      ledger=parts.ledger, clm=parts.clm, crm=parts.crm, on_startup=startup, on_shutdown=shutdown)


async def serve(settings: Settings) -> None:
    """Serve the ingress on ``settings.ingress_host:ingress_port`` and the approvals API and finance inbox on
    ``approvals_host:approvals_port`` until cancelled."""
    import uvicorn

    from connectors.http import observe_vendor_calls
    from observability.metrics import MetricsServer, serve_metrics
    from observability.tracing import instrument_ingress, setup_tracing
    from runtime.startup import refuse_unsound_settings

    configure_logging()
    refuse_unsound_settings(settings)  # the approver registry and no development secret beyond the sandbox
    setup_tracing(settings, service="revops-ingress")  # before the app: its Temporal client takes the interceptor
    from ingress.approvals import approvals_server
    app = build_from_settings(settings)
    instrument_ingress(app)
    stop_observing = observe_vendor_calls(app.state.metrics.observe_vendor_call)
    metrics_server: MetricsServer | None = None
    if settings.ingress_metrics_port:
        try:
            metrics_server = serve_metrics(app.state.metrics.registry, host=settings.metrics_host,
                                           port=settings.ingress_metrics_port)
            log.info("ingress metrics on %s", metrics_server.url)
        except OSError as exc:
            log.warning("ingress metrics not served on %s:%s (%s)", settings.metrics_host,
                        settings.ingress_metrics_port, exc)
    configure_logging()
    config = uvicorn.Config(app, host=settings.ingress_host, port=settings.ingress_port, log_level="info",
                            access_log=False, log_config=None, **serving_limits(settings))
    # the approvals API and inbox on their own port: when either server stops (a signal reaches one), both do
    servers = [uvicorn.Server(config), approvals_server(settings)]
    tasks = [asyncio.ensure_future(server.serve()) for server in servers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        stop_observing()
        if metrics_server is not None:
            metrics_server.stop()


def serving_limits(settings: Settings) -> dict[str, Any]:
    """uvicorn's limits for a port that faces the internet: idle keep-alive, a cap on concurrent
    connections (uvicorn answers 503 past it), bounded header size; the body read is bounded by
    ``ingress_read_timeout_seconds`` in the app."""
    return {"timeout_keep_alive": settings.ingress_keep_alive_seconds,
            "limit_concurrency": settings.ingress_max_concurrency,
            "h11_max_incomplete_event_size": 16 * 1024,
            "timeout_graceful_shutdown": 10}


__all__ = ["build_from_settings", "create_app", "kept_headers", "serve"]
