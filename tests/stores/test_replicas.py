"""Exactly-once with replicas: two OS processes on one PostgreSQL database, each the real intake over the real
ledger, take the same events at the same moment; every event is routed once, and recorded as started once.

``deliver``: two ingress replicas each receive every delivery (a vendor retrying to another replica).
``poll``: two workers' CRM polls find the same deals (overlapping windows) and hand them over.
``sweep``: two workers' ledger sweeps find the same failed events due and route them again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, col, func, select

from devstack.postgres import PostgresServer
from stores.events import AcceptedEvent, Delivery, EventLedger, EventState, Outcome, claim_event, settle_event
from tests.helpers.codec import keyring_for_tests
from tests.helpers.replica import VENDOR, stage_event

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 120


def _replicas(url: str, mode: str) -> list[str]:
    """Both replicas started together (each migrates and opens the ledger), then let go at the same instant."""
    go_at = time.time() + 6
    procs = [subprocess.Popen([sys.executable, "-m", "tests.helpers.replica", "--url", url, "--mode", mode,
                               "--name", name, "--events", str(EVENTS), "--go-at", f"{go_at:.3f}"],
                              cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for name in ("a", "b")]
    routed: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-2000:]
        routed += json.loads(out.strip().splitlines()[-1])["routed"]
    return routed


def _counts(url: str) -> tuple[int, Counter[str]]:
    ledger = EventLedger.from_url(url, keyring_for_tests())
    try:
        with Session(ledger.engine) as session:
            started = session.exec(select(func.count()).select_from(Delivery)
                                   .where(col(Delivery.outcome) == Outcome.STARTED.value)).one()
            states = Counter(r.state for r in session.exec(select(AcceptedEvent)).all())
    finally:
        ledger.close()
    return int(started), states


@pytest.fixture
def shared_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database(f"replicas_{uuid.uuid4().hex[:16]}")


def test_replicas_two_ingress_processes_route_each_delivery_once(shared_url: str) -> None:
    routed = _replicas(shared_url, "deliver")
    started, states = _counts(shared_url)

    assert [e for e, n in Counter(routed).items() if n > 1] == []
    assert len(routed) == EVENTS and started == EVENTS
    assert states == Counter({EventState.DONE.value: EVENTS})


def test_replicas_two_workers_route_each_polled_event_once(shared_url: str) -> None:
    routed = _replicas(shared_url, "poll")
    started, states = _counts(shared_url)

    assert [e for e, n in Counter(routed).items() if n > 1] == []
    assert len(routed) == EVENTS and started == EVENTS and all(e.startswith("poll:") for e in routed)
    assert states == Counter({EventState.DONE.value: EVENTS})


def test_replicas_two_workers_sweep_each_failed_event_once(shared_url: str) -> None:
    ledger = EventLedger.from_url(shared_url, keyring_for_tests())
    try:
        for n in range(EVENTS):  # each delivered once, then Temporal was away: failed, its backoff passed
            event = stage_event(f"evt-{n}")
            sealed = ledger.seal(json.dumps({"event": json.loads(event.model_dump_json())}))
            ledger.run_sync(claim_event, vendor=VENDOR, vendor_event_id=event.source_event_id, event=sealed)
            ledger.run_sync(settle_event, vendor=VENDOR, vendor_event_id=event.source_event_id,
                            outcome=Outcome.FAILED, workflow_id=None, error="Temporal unavailable",
                            retry_base_seconds=0, retry_max_seconds=0)
        with Session(ledger.engine) as session:
            for row in session.exec(select(AcceptedEvent)).all():
                row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
                session.add(row)
            session.commit()
    finally:
        ledger.close()

    routed = _replicas(shared_url, "sweep")
    started, states = _counts(shared_url)

    assert [e for e, n in Counter(routed).items() if n > 1] == []
    assert len(routed) == EVENTS and started == EVENTS
    assert states == Counter({EventState.DONE.value: EVENTS})
