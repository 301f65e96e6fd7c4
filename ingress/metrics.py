"""The ingress's Prometheus metrics (served on ``settings.ingress_metrics_port``, 9465, apart from the webhook
port so that only the webhooks face the internet):

- ``revops_webhook_deliveries_total{vendor, outcome}``: every delivery the ingress answered, by its outcome
  (started, signalled, duplicate, ignored, rejected, failed); vendors we do not serve count as ``unknown``;
- ``revops_ledger_events_unsettled{vendor, state}``: vendor events in the event ledger not handed over yet
  (``in_flight``: being routed; ``failed``: waiting for the vendor's redelivery), read at scrape time;
- ``revops_ledger_event_oldest_unsettled_age_seconds{vendor}``: how long the oldest of them has waited;
- ``revops_vendor_calls_total{vendor, status}`` and ``revops_vendor_call_seconds{vendor}``: the ingress's own vendor
  calls (deal look-ups for run summaries, Ironclad contract and key look-ups), as the worker counts its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import Session, func, select

from stores.events import AcceptedEvent, EventLedger, EventState


def unsettled_events(*, session: Session) -> list[tuple[str, str, int, datetime]]:
    """(vendor, state, count, oldest first seen) of the events not yet handed over."""
    query = (select(AcceptedEvent.vendor, AcceptedEvent.state, func.count(), func.min(AcceptedEvent.first_seen_at))
             .where(AcceptedEvent.state != EventState.DONE.value)
             .group_by(AcceptedEvent.vendor, AcceptedEvent.state))
    return [(vendor, state, count, oldest) for vendor, state, count, oldest in session.exec(query).all()]


class UnsettledEvents(Collector):
    """Reads the event ledger at each scrape (one grouped count)."""

    def __init__(self, ledger: EventLedger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[Metric]:
        count = GaugeMetricFamily("revops_ledger_events_unsettled",
                                  "Vendor events in the event ledger not handed over to Temporal yet",
                                  labels=["vendor", "state"])
        age = GaugeMetricFamily("revops_ledger_event_oldest_unsettled_age_seconds",
                                "Age of the oldest vendor event not handed over yet", labels=["vendor"])
        now = datetime.now(UTC)
        oldest: dict[str, float] = {}
        for vendor, state, n, first_seen in self.ledger.run_sync(unsettled_events):
            count.add_metric([vendor, state], float(n))
            seen = first_seen if first_seen.tzinfo else first_seen.replace(tzinfo=UTC)
            oldest[vendor] = max(oldest.get(vendor, 0.0), (now - seen).total_seconds())
        for vendor, seconds in oldest.items():
            age.add_metric([vendor], seconds)
        yield count
        yield age


class IngressMetrics:
    """The ingress's registry: delivery counts (kept in process) and the ledger's unsettled events."""

    def __init__(self, *, vendors: Iterable[str], ledger: EventLedger | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.vendors = frozenset(vendors)
        self.deliveries = Counter("revops_webhook_deliveries", "Webhook deliveries answered, by vendor and outcome",
                                  ["vendor", "outcome"], registry=self.registry)
        self.vendor_calls = Counter("revops_vendor_calls", "Vendor API calls by vendor and status",
                                    ["vendor", "status"], registry=self.registry)
        self.vendor_latency = Histogram("revops_vendor_call_seconds", "Vendor API call latency", ["vendor"],
                                        registry=self.registry)
        if ledger is not None:
            self.registry.register(UnsettledEvents(ledger))

    def observe_vendor_call(self, vendor: str, status: str, seconds: float) -> None:
        """The observer ``connectors.http.observe_vendor_calls`` takes (``serve`` adds it)."""
        self.vendor_calls.labels(vendor, status).inc()
        self.vendor_latency.labels(vendor).observe(seconds)

    def delivered(self, vendor: str, outcome: str) -> None:
        """Count one delivery; a path naming no vendor we serve counts as ``unknown`` (bounded labels)."""
        self.deliveries.labels(vendor if vendor in self.vendors else "unknown", outcome).inc()


__all__ = ["IngressMetrics", "UnsettledEvents", "unsettled_events"]
