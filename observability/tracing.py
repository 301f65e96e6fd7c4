"""OpenTelemetry traces across every system: the ingress request (FastAPI instrumentation), the Temporal start or
signal, the workflow and each activity (``temporalio.contrib.opentelemetry.TracingInterceptor`` on every client
:func:`runtime.connect.connect` makes, hence on the worker too), and each vendor call (httpx
instrumentation), in one trace. The trace ID also travels in the ``X-Correlation-ID`` header to vendors
(``connectors/http.py``) and in the event ledger row's headers (``traceparent``).

The exporter is chosen in settings (``OTEL_TRACES_EXPORTER``, named and meant as OpenTelemetry's variable):
``none`` (the default: no provider is installed, every span is a no-op), ``otlp`` (OTLP over HTTP to
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), ``console``, or ``discard`` (made and dropped: the benchmark's measure).
Tests pass their own exporter (an in-memory one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult

from settings import Settings

log = logging.getLogger("revops.tracing")

_provider: TracerProvider | None = None


def tracing_enabled() -> bool:
    return _provider is not None


def exporter_from_settings(settings: Settings) -> SpanExporter | None:
    """The span exporter the settings choose; ``None`` for ``none``."""
    choice = settings.otel_traces_exporter.strip().lower()
    if choice in ("", "none"):
        return None
    if choice == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otel_exporter_otlp_traces_endpoint)
    if choice == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if choice == "discard":
        return DiscardingSpanExporter()
    raise ValueError("otel_traces_exporter must be none, otlp, console or discard, "
                     f"not {settings.otel_traces_exporter!r}")


class DiscardingSpanExporter(SpanExporter):
    """Takes every span and drops it: the cost of making spans without a collector (benchmarks)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def setup_tracing(settings: Settings, *, service: str, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the process's tracer provider and instrument httpx, unless the settings say ``none``.

    ``exporter`` (tests) overrides the settings and exports each span as it ends.
    """
    global _provider
    chosen = exporter or exporter_from_settings(settings)
    if chosen is None:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(chosen) if exporter is not None else BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:  # the API sets a provider once per process
        log.info("a tracer provider was already installed; spans go to it")
        provider = trace.get_tracer_provider()  # type: ignore[assignment]
        if exporter is not None:  # a test's exporter sees the spans of the provider in place
            provider.add_span_processor(SimpleSpanProcessor(exporter))
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    _provider = provider
    log.info("traces exported by %s", type(chosen).__name__)
    return provider


def shutdown_tracing() -> None:
    """Flush and stop tracing (tests; a process exiting flushes by itself)."""
    global _provider
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor().uninstrument()
    _provider.force_flush()
    _provider = None


def client_interceptors() -> list[Any]:
    """The Temporal client interceptors: the tracing one when tracing is on (the worker inherits it)."""
    if not tracing_enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def _drop_query(span: Any, scope: dict[str, Any]) -> None:
    """Keep a request's query out of its span: a vendor that can carry nothing else puts a shared secret there
    (the endpoint URL of an outbound message), and spans leave the process."""
    query = (scope.get("query_string") or b"").decode("latin-1")
    attributes = getattr(span, "attributes", None)
    if not query or span is None or not span.is_recording() or not attributes:
        return
    for key, value in list(attributes.items()):
        if isinstance(value, str) and query in value:
            span.set_attribute(key, value.replace(f"?{query}", "").replace(query, "[redacted]"))


def instrument_ingress(app: Any) -> None:
    """Server spans for the ingress's requests, without their query strings (no-op when tracing is off)."""
    if not tracing_enabled():
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, tracer_provider=_provider, server_request_hook=_drop_query)


def trace_headers() -> dict[str, str]:
    """The active trace context as W3C headers (``traceparent``), for the event ledger row; empty when none."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        propagate.inject(carrier)
    return carrier


def annotate(**attributes: str | None) -> None:
    """Business attributes (vendor event ID, workflow ID = business key, ...) on the active span."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for key, value in attributes.items():
        if value:
            span.set_attribute(f"revops.{key}", value)


__all__ = ["DiscardingSpanExporter", "annotate", "client_interceptors", "exporter_from_settings",
           "instrument_ingress", "setup_tracing", "shutdown_tracing", "trace_headers", "tracing_enabled"]
