"""The findings store on SQLite and PostgreSQL (``store_url``): a run opens, refreshes and closes findings by
key; an operator's acknowledgement holds while a run still sees the finding; listing shows each key once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from canonical.reconciliation import Finding, FindingKind
from stores.findings import ACKNOWLEDGED, CLOSED, OPEN, acknowledge, findings_engine, list_findings, record_run

T0 = datetime(2026, 3, 31, 23, 0, tzinfo=UTC)


def _orphan(erp_id: str) -> Finding:
    return Finding(kind=FindingKind.ORPHAN_IN_ERP, key=f"orphan_in_erp:EU01:{erp_id}", legal_entity="EU01",
                   erp_id=erp_id, detail=f"ERP invoice {erp_id} has no billing invoice")


def test_findings_store_opens_acknowledges_and_closes_by_key(store_url: str) -> None:
    engine = findings_engine(store_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            first = record_run(session=session, scope="all", run_id="r1", now=T0,
                               findings=[_orphan("x1"), _orphan("x2")])
            acked = acknowledge(session=session, finding="orphan_in_erp:EU01:x1", reason="bank confirms",
                                by="Dana", now=T0 + timedelta(minutes=5))
            second = record_run(session=session, scope="all", run_id="r2", now=T0 + timedelta(hours=1),
                                findings=[_orphan("x1"), _orphan("x3")])
            listed = list_findings(session=session, status=None)
    finally:
        engine.dispose()

    assert (first.opened, first.closed, first.still_open) == (2, 0, 2)
    assert [(r.key, r.status) for r in acked] == [("orphan_in_erp:EU01:x1", ACKNOWLEDGED)]
    assert (second.opened, second.closed, second.still_open) == (1, 1, 2)
    by_key = {r.key: r for r in listed}
    assert {k: r.status for k, r in by_key.items()} == {"orphan_in_erp:EU01:x1": ACKNOWLEDGED,
                                                       "orphan_in_erp:EU01:x2": CLOSED,
                                                       "orphan_in_erp:EU01:x3": OPEN}
    x1 = by_key["orphan_in_erp:EU01:x1"]
    assert (x1.times_seen, x1.ack_reason, x1.last_run_id) == (2, "bank confirms", "r2")
    assert x1.acknowledged_at == T0 + timedelta(minutes=5)  # an aware moment, equal on both backends
    assert by_key["orphan_in_erp:EU01:x2"].closed_at == T0 + timedelta(hours=1)
