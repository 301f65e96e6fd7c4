"""A secret in a webhook URL's query (Salesforce outbound messages carry theirs there) never reaches a span: the
ingress's server spans keep the path and drop the query."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from connectors.salesforce.webhooks import from_settings
from ingress.app import create_app
from intake import ClientProvider
from observability.tracing import instrument_ingress, setup_tracing, shutdown_tracing
from sandbox.serve import start_in_thread
from settings import Settings
from stores.events import EventLedger
from tests.helpers.servers import vendor_settings
from tests.ingress.conftest import connector_to


@pytest.fixture
def exporter(settings: Settings) -> Iterator[InMemorySpanExporter]:
    found = InMemorySpanExporter()
    assert setup_tracing(settings, service="revops-test", exporter=found) is not None
    yield found
    shutdown_tracing()
    found.clear()


async def test_tracing_drops_the_query_of_webhook_urls(settings: Settings, exporter: InMemorySpanExporter,
                                                       tmp_path: Path) -> None:
    s = settings.model_copy(update={"data_dir": tmp_path, "crm_adapter": "salesforce"})
    config = vendor_settings(s, "salesforce")
    ledger = EventLedger.from_settings(s)
    app = create_app(settings=s, client_provider=ClientProvider(connector_to("127.0.0.1:9"), timeout=1),
                     receivers={"salesforce": from_settings(s)}, ledger=ledger, clm=None)
    instrument_ingress(app)
    running = start_in_thread(app)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            url = f"{running.base_url}/webhooks/salesforce?{config.outbound_secret_param}={config.outbound_secret}"
            response = await http.post(url, content=b"<not-a-message/>", headers={"Content-Type": "text/xml"})
    finally:
        running.stop()
        ledger.close()

    assert response.status_code == 401  # refused before anything else: the span still records the request
    # the ingress's spans (the test's own client, playing Salesforce, records the URL it called: not ours)
    spans = [span for span in exporter.get_finished_spans() if span.attributes and span.kind is not SpanKind.CLIENT]
    assert spans, "the ingress recorded no span"
    values = [str(v) for span in spans for v in (span.attributes or {}).values()]
    assert any("/webhooks/salesforce" in v for v in values)
    assert not [(span.name, k) for span in spans for k, v in (span.attributes or {}).items()
                if config.outbound_secret in str(v)]
