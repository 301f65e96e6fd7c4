"""The ingress's Prometheus endpoint (its own port), scraped over HTTP after deliveries: names and values."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx

from observability.metrics import serve_metrics
from stores.events import Outcome, claim_event, settle_event
from tests.helpers.webhooks import hubspot_delivery, hubspot_property_change, unique_deal_id
from tests.ingress.conftest import MakeIngress
from tests.observability.test_metrics import scrape, value


async def test_ingress_metrics_after_deliveries(make_ingress: MakeIngress) -> None:
    ingress = make_ingress()
    server = serve_metrics(ingress.app.state.metrics.registry, host="127.0.0.1", port=0)
    try:
        url = ingress.url("hubspot")
        good = hubspot_delivery(ingress.settings, url, [hubspot_property_change(unique_deal_id(), "dealstage",
                                                                                "closedwon")])
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.post(url, content=good.body, headers=good.headers)).status_code == 200
            forged = dataclasses.replace(good, headers={**good.headers, "X-HubSpot-Signature-v3": "Zm9yZ2Vk"})
            assert (await http.post(url, content=forged.body, headers=forged.headers)).status_code == 401
            assert (await http.post(ingress.url("acme"), content=b"{}")).status_code == 404
        # a Stripe event whose hand-over failed: waiting for the vendor's redelivery
        ingress.ledger.run_sync(claim_event, vendor="stripe", vendor_event_id="evt_unsettled")
        ingress.ledger.run_sync(settle_event, vendor="stripe", vendor_event_id="evt_unsettled",
                                outcome=Outcome.FAILED, workflow_id=None)
        samples = await asyncio.to_thread(scrape, server.url)
    finally:
        server.stop()
    assert value(samples, "revops_webhook_deliveries_total", vendor="hubspot", outcome="started") == 1
    assert value(samples, "revops_webhook_deliveries_total", vendor="hubspot", outcome="rejected") == 1
    assert value(samples, "revops_webhook_deliveries_total", vendor="unknown", outcome="rejected") == 1
    assert value(samples, "revops_ledger_events_unsettled", vendor="stripe", state="failed") == 1
    assert value(samples, "revops_ledger_events_unsettled", vendor="hubspot", state="failed") is None
    age = value(samples, "revops_ledger_event_oldest_unsettled_age_seconds", vendor="stripe")
    assert age is not None and age >= 0
