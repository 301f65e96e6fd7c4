"""The KPIs gathered from the running system (real worker, real dev server, emulators, the event ledger) and
printed by ``starter.py kpis``: a seeded scenario whose figures are worked out by hand beside each assertion."""

from __future__ import annotations

import argparse
import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from bootstrap import for_cli
from canonical import CreditNote, DealStageReached, EventEnvelope, Money
from canonical.kpis import KpiReport
from canonical.reconciliation import FindingKind, finding
from cli import kpis as kpis_cli
from observability.kpis import gather_kpis
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.events import Delivery, EventLedger, Outcome, SignatureCheck, record_delivery
from stores.findings import CLOSED, findings_engine, list_findings, record_run
from tests.helpers.deals import DealSpec, seed_deal
from tests.helpers.ledger import billing_account, canonical, draft_invoices, finalize, pay, signal, stripe_events
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_quote_to_cash import run_to_end, wait_for_stage
from worker import open_connectors
from workflows.models import LedgerStatus, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


def record_webhook(ledger: EventLedger, deal_id: str, *, occurred: datetime, routed: datetime) -> None:
    event = DealStageReached(source_system="hubspot", source_event_id=f"evt-{deal_id}", occurred_at=occurred,
                             correlation_id=f"hubspot-{deal_id}", deal_id=deal_id, stage="closedwon")
    ledger.run_sync(record_delivery, delivery=Delivery(
        request_id=f"req-{deal_id}", vendor="hubspot", vendor_event_id=event.source_event_id,
        event_kind=event.kind, received_at=routed, signature=SignatureCheck.VALID.value,
        outcome=Outcome.STARTED.value, workflow_id=f"q2c-hubspot-{deal_id}", status_code=200,
        event=EventEnvelope(event=event).model_dump_json()))


async def test_kpis_from_the_running_system(client: Client, worker: Worker, flow_settings: Settings,
                                            sandboxes: dict[str, SandboxHandle], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    settings = flow_settings.model_copy(update={"data_dir": tmp_path})  # this test's own event ledger and findings
    hubspot, ironclad, stripe = sandboxes["hubspot"], sandboxes["ironclad"], sandboxes["stripe"]

    # d1: provisioned in US01 (USD), 20 seats x 45.00 = 900.00 a month from today; d2: waits in a data
    # exception (no region, no start date)
    today = datetime.now(UTC).date()
    d1 = seed_deal(hubspot, DealSpec(model="subscription", start_date=today.isoformat(),
                                     end_date=(today + timedelta(days=364)).isoformat()))
    result = await run_to_end(client, settings, d1, ironclad)
    assert result.outcome is Stage.PROVISIONED
    d2 = seed_deal(hubspot, DealSpec(region=None, start_date=None))
    await wait_for_stage(await start_quote_to_cash(client, settings, d2), Stage.DATA_EXCEPTION)
    d1_status: QuoteToCashStatus = await client.get_workflow_handle(f"q2c-hubspot-{d1}").query(
        QuoteToCashWorkflow.status)
    at = {m.name: m.at for m in d1_status.milestones}
    signed_to_project = (at["project_created"] - at["contract_signed"]).total_seconds()
    started_to_billing = (at["billing_live"] - at["started"]).total_seconds()

    # three US01 invoices on d1, issued today: 1000.00 with 400.00 paid (600 outstanding), 500.00 with a 200.00
    # credit note before any payment (300 outstanding) and 900.00 unpaid (900 outstanding): outstanding 1800,
    # billed 2400 -> DSO 1800 / 2400 x 90 = 67.5
    async with open_connectors(settings) as connectors:
        account = dataclasses.replace(await billing_account(connectors.billing, hubspot), deal_id=d1)
        first, second, third = await draft_invoices(connectors.billing, account, ["1000.00", "500.00", "900.00"])
        events = [e for i in (first, second, third)
                  for e in canonical(settings, (await finalize(connectors.billing, stripe, i))[-1])]
        events += [e for raw in pay(stripe, first, 40000) for e in canonical(settings, raw)]
        note = await connectors.billing.create_credit_note(
            CreditNote(billing_id="", invoice_billing_id=second, amount=Money.of("200.00", "USD"),
                       reason="order_change"), idempotency_key=f"test-{uuid.uuid4()}")
        [raw_note] = stripe_events(stripe, note.billing_id, "credit_note.created")
        events += canonical(settings, raw_note)
        handle = await signal(client, settings, account.customer_id, events)
    await eventually(lambda: handle.query("open_items", result_type=LedgerStatus),
                     lambda s: sum(i.outstanding for i in s.open_items) == Decimal(1800),
                     what="partial payment and credit note applied")

    # reconciliation once found the 1000.00 invoice missing in the ERP, then saw it posted and closed the
    # finding: a person was needed all the same
    engine = findings_engine(settings.findings_database_url)
    with Session(engine) as session:
        seen = finding(FindingKind.MISSING_IN_ERP, "US01", first, billing_id=first, currency="USD")
        record_run(session=session, scope="US01", run_id="r1", findings=[seen], now=datetime.now(UTC))
        record_run(session=session, scope="US01", run_id="r2", findings=[], now=datetime.now(UTC))
        assert [f.status for f in list_findings(session=session, status=None)] == [CLOSED]
    engine.dispose()

    # two webhooks handed over 3 s and 5 s after the vendor's event: p50 3 s, p90 5 s (nearest rank of [3, 5])
    ledger = EventLedger.from_settings(settings)
    now = datetime.now(UTC)
    record_webhook(ledger, "w1", occurred=now - timedelta(seconds=3), routed=now)
    record_webhook(ledger, "w2", occurred=now - timedelta(seconds=15), routed=now - timedelta(seconds=10))
    ledger.close()

    report: KpiReport = await eventually(lambda: gather_kpis(client, settings),
                                         lambda r: r.entity("all").deals == 2, what="both deals listed")
    us, everything = report.entity("US01"), report.entity("all")
    assert us.deals == 1
    assert (us.contract_signed_to_project.n, us.contract_signed_to_project.p50_seconds) == (1, signed_to_project)
    assert us.closed_won_to_billing_live.p90_seconds == started_to_billing
    assert signed_to_project >= 0 and started_to_billing >= signed_to_project
    # d2 waits for data: 1 of 2 deals overall; d1 alone in US01: 0 of 1
    assert (everything.data_exceptions.count, everything.data_exceptions.total) == (1, 2)
    assert (us.data_exceptions.count, us.data_exceptions.total) == (0, 1)
    # d1 created a Xero contact and a Stripe customer, found none: 0 of 2 look-ups avoided a duplicate
    assert (us.duplicate_customers_avoided.count, us.duplicate_customers_avoided.total) == (0, 2)
    # all three name d1, in US01, in USD, issued today, in the schedule's first month: only the 900.00 one is
    # the contract's 900.00 a month; 1000.00 and 500.00 are on no item of its schedule -> 1 of 3
    assert (us.invoices_aligned.count, us.invoices_aligned.total) == (1, 3)
    # the 1000.00 invoice had a reconciliation finding (closed since); the others no refusal, failure or
    # finding -> 1 of 3
    assert (us.billing_exceptions.count, us.billing_exceptions.total) == (1, 3)
    usd = {f.currency: f for f in us.dso}["USD"]
    assert (Decimal(usd.outstanding), Decimal(usd.billed_in_window), usd.dso_days) == (Decimal(1800),
                                                                                       Decimal(2400), "67.5")
    assert (report.webhook_to_workflow.n, report.webhook_to_workflow.p50_seconds,
            report.webhook_to_workflow.p90_seconds) == (2, 3.0, 5.0)

    # starter.py kpis --entity US01 --json prints the same figures
    args = argparse.Namespace(entity="US01", since=None, json=True)
    assert await kpis_cli.cmd_kpis(client, for_cli(settings), args) == 0
    printed: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert [e["legal_entity"] for e in printed["entities"]] == ["US01"]
    assert printed["entities"][0]["dso"][0]["dso_days"] == "67.5"
    # and the table names every KPI
    assert await kpis_cli.cmd_kpis(client, for_cli(settings), argparse.Namespace(entity=None, since="2020-01-01",
                                                                        json=False)) == 0
    table = capsys.readouterr().out
    for label in ("contract signed -> project created", "deal closed-won -> billing live", "DSO USD",
                  "amendment executed -> propagated", "billing exception rate", "webhook -> workflow latency"):
        assert label in table


async def test_kpis_command_refuses_bad_arguments(client: Client, settings: Settings,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert await kpis_cli.cmd_kpis(client, for_cli(settings),
                                   argparse.Namespace(entity="XX99", since=None, json=False)) == 2
    assert "unknown legal entity 'XX99'" in capsys.readouterr().err
    assert await kpis_cli.cmd_kpis(client, for_cli(settings), argparse.Namespace(entity=None, since="yesterday",
                                                                        json=False)) == 2
    assert "not an ISO date" in capsys.readouterr().err


async def test_starter_kpis_command_line(monkeypatch: pytest.MonkeyPatch, client: Client, flow_settings: Settings,
                                        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``starter.py kpis`` as an operator types it: JSON on an empty task queue, exit 2 on a bad argument."""
    import starter

    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("TASK_QUEUE", flow_settings.task_queue)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert await starter.run(["kpis", "--json", "--since", "2026-01-01"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [e["legal_entity"] for e in printed["entities"]] == ["all"] and printed["entities"][0]["deals"] == 0
    assert printed["since"].startswith("2026-01-01T00:00:00")
    assert await starter.run(["kpis", "--entity", "XX99"]) == 2
    assert "unknown legal entity" in capsys.readouterr().err
