"""The KPIs read the event ledger through its store: accepted events are kept encrypted (the ingress seals
them), and the latency KPI is computed from the decrypted canonical event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from canonical import DealStageReached, EventEnvelope
from observability.kpis import delivery_facts
from settings import Settings
from stores.events import Delivery, EventLedger, Outcome, SignatureCheck, record_delivery


def test_delivery_facts_read_the_sealed_events_of_the_ledger(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    ledger = EventLedger.from_settings(settings)
    routed = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC)
    event = DealStageReached(source_system="crm", source_event_id="evt-1", occurred_at=routed - timedelta(seconds=7),
                             correlation_id="crm-1", deal_id="1", stage="closedwon")
    envelope = EventEnvelope(event=event).model_dump_json()
    # as the ingress records an accepted delivery: body and canonical event sealed with the codec keys
    ledger.run_sync(record_delivery, delivery=Delivery(
        request_id="req-1", vendor="crm", vendor_event_id="evt-1", event_kind=event.kind, received_at=routed,
        signature=SignatureCheck.VALID.value, outcome=Outcome.STARTED.value, workflow_id="q2c-crm-1",
        status_code=200, body=ledger.seal("{}"), event=ledger.seal(envelope)))
    ledger.close()

    [fact] = delivery_facts(settings)
    assert fact.vendor == "crm"
    assert fact.occurred_at == routed - timedelta(seconds=7)
    assert fact.routed_at == routed  # 7 s from the vendor's event to Temporal's acceptance
