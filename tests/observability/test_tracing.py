"""One connected OpenTelemetry trace for a webhook-started deal: the ingress request, the Temporal start, the
workflow and its activities, and the vendor calls they make; business keys as attributes; the trace in the event
ledger row and in the correlation header to vendors. Spans go to an in-memory exporter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bootstrap import receivers_from_settings
from connectors import hubspot, ironclad
from connectors.http import CORRELATION_HEADER, build_client, correlation_id
from ingress.app import create_app
from intake import ClientProvider
from observability.tracing import (
    client_interceptors,
    exporter_from_settings,
    instrument_ingress,
    setup_tracing,
    shutdown_tracing,
)
from runtime.connect import data_converter
from sandbox.serve import start_in_thread
from settings import Settings
from stores.events import EventLedger, list_deliveries
from tests.helpers.deals import DealSpec, seed_deal
from tests.helpers.ids import quote_to_cash_id
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.webhooks import hubspot_delivery, hubspot_property_change
from tests.workflows.test_quote_to_cash import wait_for_stage
from worker import build_worker, open_connectors
from workflows.models import Stage


def _ironclad(settings: Settings) -> Any:
    return vendor_settings(settings, "ironclad")


@pytest.fixture
def exporter(settings: Settings) -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    assert setup_tracing(settings, service="revops-test", exporter=found) is not None
    yield found
    shutdown_tracing()
    found.clear()


@pytest_asyncio.fixture
async def traced_client(temporal_env: WorkflowEnvironment, exporter: InMemorySpanExporter) -> AsyncIterator[Client]:
    """A client with the tracing interceptor, as ``runtime.connect.connect`` builds it when tracing is on."""
    interceptors = client_interceptors()
    assert interceptors, "tracing is on: the client carries the tracing interceptor"
    yield await Client.connect(temporal_env.client.service_client.config.target_host,
                               namespace=temporal_env.client.namespace, data_converter=data_converter(Settings()),
                               interceptors=interceptors)


def _trace_of(spans: list[ReadableSpan], span: ReadableSpan) -> list[ReadableSpan]:
    assert span.context is not None
    return [s for s in spans if s.context is not None and s.context.trace_id == span.context.trace_id]


async def test_webhook_started_deal_is_one_connected_trace(traced_client: Client, exporter: InMemorySpanExporter,
                                                           flow_settings: Settings, temporal_env: WorkflowEnvironment,
                                                           sandboxes: dict[str, SandboxHandle], tmp_path: object
                                                           ) -> None:
    settings = flow_settings.model_copy(update={"data_dir": tmp_path})
    target, namespace = temporal_env.client.service_client.config.target_host, temporal_env.client.namespace

    async def connect() -> Client:  # the ingress's own loop gets its own client, traced like every other
        return await Client.connect(target, namespace=namespace, data_converter=data_converter(Settings()),
                                    interceptors=client_interceptors())

    ledger = EventLedger.from_settings(settings)
    clm, crm = ironclad.from_settings(settings), hubspot.from_settings(settings)
    app = create_app(settings=settings, client_provider=ClientProvider(connect, timeout=5),
                     receivers=receivers_from_settings(settings, clm=clm), ledger=ledger, clm=clm, crm=crm,
                     on_shutdown=[clm.aclose, crm.aclose])
    instrument_ingress(app)
    served = start_in_thread(app)
    try:
        async with open_connectors(settings) as connectors, build_worker(traced_client, settings, connectors):
            deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="subscription"))
            url = f"{served.base_url}/webhooks/hubspot"
            delivery = hubspot_delivery(settings, url, [hubspot_property_change(deal_id, "dealstage", "closedwon")])
            async with httpx.AsyncClient(timeout=10) as http:
                answer = await http.post(url, content=delivery.body, headers=delivery.headers)
            assert answer.status_code == 200 and answer.json()["outcome"] == "started", answer.text
            await wait_for_stage(traced_client.get_workflow_handle(quote_to_cash_id(deal_id)),
                                 Stage.AWAITING_SIGNATURE)
    finally:
        served.stop()
    rows = ledger.run_sync(list_deliveries, vendor="hubspot", limit=10)
    ledger.close()

    spans = list(exporter.get_finished_spans())
    [request] = [s for s in spans if s.kind is SpanKind.SERVER and s.attributes
                 and s.attributes.get("revops.workflow_id") == quote_to_cash_id(deal_id)]
    assert request.attributes is not None
    assert request.attributes["revops.vendor"] == "hubspot"
    assert request.attributes["revops.vendor_event_id"] == answer.json()["event_id"]
    assert request.attributes["revops.event_kind"] == "deal.stage_reached"
    one = _trace_of(spans, request)
    names = {s.name for s in one}
    assert "StartWorkflow:QuoteToCashWorkflow" in names
    assert "RunWorkflow:QuoteToCashWorkflow" in names
    assert {"StartActivity:load_deal", "RunActivity:load_deal", "RunActivity:launch_contract"} <= names
    # the workflow ID (the deal's business key) on every workflow and activity span
    for span in one:
        if span.name.startswith(("RunWorkflow:", "RunActivity:", "StartActivity:")):
            assert span.attributes and span.attributes.get("temporalWorkflowID") == quote_to_cash_id(deal_id)
    vendors = tuple(vendor_settings(settings, v).base_url for v in ("hubspot", "ironclad", "stripe", "xero"))
    vendor_calls = [s for s in one if s.kind is SpanKind.CLIENT and s.attributes
                    and str(s.attributes.get("url.full") or s.attributes.get("http.url")).startswith(vendors)]
    hosts = {str(s.attributes.get("url.full") or s.attributes.get("http.url")) for s in vendor_calls if s.attributes}
    assert any(f"/crm/v3/objects/deals/{deal_id}" in h for h in hosts), hosts  # HubSpot, from load_deal
    assert any(_ironclad(settings).base_url in h for h in hosts), hosts  # Ironclad, from launch_contract
    # connected: one root (the sender's request: the test's own httpx client is traced too, and the ingress
    # continues a trace it is sent), every other span's parent in the same trace
    ids = {s.context.span_id for s in one if s.context is not None}
    roots = [s for s in one if s.parent is None]
    assert len(roots) == 1 and roots[0].kind is SpanKind.CLIENT, [r.name for r in roots]
    for span in one:
        if span is not roots[0]:
            assert span.parent is not None and span.parent.span_id in ids, span.name
    # the vendor calls hang under the activity that made them (or the request: the ingress reads the deal once
    # for the run's summary)
    by_id = {s.context.span_id: s for s in one if s.context is not None}
    parents = {by_id[c.parent.span_id].name for c in vendor_calls if c.parent is not None}
    assert len(parents) > 1 and all(p.startswith("RunActivity:") or p == request.name for p in parents), parents
    assert all(c.parent is not None for c in vendor_calls)
    # the event ledger row carries the request's trace context
    [row] = [r for r in rows if r.workflow_id == quote_to_cash_id(deal_id)]
    traceparent = json.loads(row.headers)["traceparent"]
    assert request.context is not None
    assert traceparent.split("-")[1] == trace.format_trace_id(request.context.trace_id)


async def test_correlation_header_carries_the_trace_id() -> None:
    seen: list[str | None] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get(CORRELATION_HEADER))
        return httpx.Response(200, json={})

    client = build_client(base_url="http://vendor.test", transport=httpx.MockTransport(answer))
    token = correlation_id.set("q2c-hubspot-42/load_deal#1")
    try:
        await client.get("/no-trace")
        with TracerProvider().get_tracer("test").start_as_current_span("activity") as span:
            await client.get("/traced")
            trace_id = trace.format_trace_id(span.get_span_context().trace_id)
    finally:
        correlation_id.reset(token)
        await client.aclose()
    assert seen == ["q2c-hubspot-42/load_deal#1", f"q2c-hubspot-42/load_deal#1 trace={trace_id}"]


def test_exporter_is_chosen_in_settings(settings: Settings) -> None:
    assert settings.otel_traces_exporter == "none" and exporter_from_settings(settings) is None
    with pytest.raises(ValueError, match="must be none, otlp, console or discard"):
        exporter_from_settings(settings.model_copy(update={"otel_traces_exporter": "zipkin"}))


def test_otlp_exporter_posts_spans_to_the_configured_endpoint(settings: Settings) -> None:
    received: list[tuple[str, bytes]] = []
    collector = FastAPI()

    @collector.post("/v1/traces")
    async def traces(request: Request) -> Response:
        received.append((request.headers.get("content-type", ""), await request.body()))
        return Response(status_code=200)

    served = start_in_thread(collector)
    try:
        chosen = exporter_from_settings(settings.model_copy(update={
            "otel_traces_exporter": "otlp", "otel_exporter_otlp_traces_endpoint": f"{served.base_url}/v1/traces"}))
        assert chosen is not None
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(chosen))
        with provider.get_tracer("test").start_as_current_span("q2c-hubspot-77 load_deal"):
            pass
        provider.shutdown()
    finally:
        served.stop()
    [(content_type, body)] = received
    assert content_type == "application/x-protobuf" and b"q2c-hubspot-77 load_deal" in body
