"""Reconciliation end to end: one discrepancy of each kind seeded in the emulators is found (and nothing
else), stored, and closed by the next run once fixed; the nightly schedule is created idempotently."""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session
from temporalio.client import Client
from temporalio.worker import Worker

from activities.reconciliation import ReconciliationActivities
from canonical import Account, BillingModel, Contact, ContractTerms, Money, Payment, Project
from canonical.ledger import Finding, FindingKind
from canonical.requests import ContractRequest
from cli.ledger import (
    RECONCILIATION_SCHEDULE_ID,
    cmd_exceptions,
    ensure_reconciliation_schedule,
    start_reconciliation,
)
from settings import Settings
from stores.findings import CLOSED, OPEN, findings_engine, list_findings, record_run
from tests.helpers.histories import save_history
from tests.helpers.ledger import BillingAccount, billing_account, draft_invoices, pay
from tests.helpers.servers import SandboxHandle
from worker import Connectors, open_connectors
from workflows.models import ReconciliationScope
from workflows.reconciliation import ReconciliationWorkflow

US01_TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


@dataclass
class ReconRig:
    client: Client
    settings: Settings
    connectors: Connectors
    sandboxes: dict[str, SandboxHandle]


@pytest_asyncio.fixture
async def recon(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
                ) -> AsyncIterator[ReconRig]:
    async with open_connectors(flow_settings) as connectors:
        activities = ReconciliationActivities(settings=flow_settings, clm=connectors.clm,
                                              billing=connectors.billing, erp=connectors.erp,
                                              findings=findings_engine(flow_settings.findings_database_url))
        async with Worker(client, task_queue=flow_settings.task_queue, workflows=[ReconciliationWorkflow],
                          activities=activities.all()):
            yield ReconRig(client=client, settings=flow_settings, connectors=connectors, sandboxes=sandboxes)


async def _erp_contact(rig: ReconRig, account: BillingAccount) -> str:
    found = await rig.connectors.erp.upsert_customer(
        US01_TENANT, Account(crm_id=account.company_id, name=f"Recon Co {uuid.uuid4().hex[:6]}"), contact=None,
        reference=f"hubspot-company-{account.company_id}-US01", idempotency_key=f"test-{uuid.uuid4()}")
    assert found.erp_contact_id
    return found.erp_contact_id


async def _post(rig: ReconRig, invoice_id: str, contact_id: str, *, total: str | None = None,
                number_suffix: str = "") -> str:
    invoice = await rig.connectors.billing.get_invoice(invoice_id)
    if number_suffix:  # Xero keeps a voided document's number: the corrected one needs its own
        invoice = invoice.model_copy(update={"number": f"{invoice.number}{number_suffix}"})
    if total is not None:  # a mistyped amount in the ERP
        line = invoice.lines[0]
        wrong = Money.of(total, invoice.currency)
        invoice = invoice.model_copy(update={"lines": [line.model_copy(update={"unit_amount": wrong, "amount": wrong,
                                                                               "quantity": Decimal(1)})]})
    return await rig.connectors.erp.post_invoice(US01_TENANT, invoice, erp_contact_id=contact_id,
                                                 idempotency_key=f"test-{uuid.uuid4()}")


async def _record_payment(rig: ReconRig, invoice_id: str, erp_id: str) -> None:
    invoice = await rig.connectors.billing.get_invoice(invoice_id)
    await rig.connectors.erp.record_payment(US01_TENANT, erp_id, Payment(
        billing_id=f"pay-{invoice_id}", invoice_billing_id=invoice_id, amount=invoice.amount_paid,
        paid_at=datetime.now(UTC)), idempotency_key=f"test-{uuid.uuid4()}")


async def _executed_contract(rig: ReconRig, deal_id: str) -> str:
    request = ContractRequest(
        deal_crm_id=deal_id, title=f"Order form {deal_id}", template_id=rig.settings.ironclad_template_id,
        legal_entity="US01", counterparty=Account(name=f"Counterparty {deal_id}"),
        signer=Contact(first_name="Sam", last_name="Signer", email="sam@example.com"),
        terms=ContractTerms(start_date=datetime.now(UTC).date(), total_value=Money.of("5000.00", "USD"),
                            billing_model=BillingModel.FIXED_FEE, fixed_fee=Money.of("5000.00", "USD")))
    contract = await rig.connectors.clm.launch_contract(request, idempotency_key=f"test-{uuid.uuid4()}")
    signed = rig.sandboxes["ironclad"].post_control(f"workflows/{contract.clm_workflow_id}/sign").json()
    return str(signed["recordId"])


async def _project(rig: ReconRig, deal_id: str, contact_id: str) -> str:
    project = await rig.connectors.erp.create_project(US01_TENANT, Project(
        code=f"P-{deal_id}-US01", name=f"Delivery {deal_id}", erp_contact_id=contact_id, erp_tenant_id=US01_TENANT,
        budget=Money.of("5000.00", "USD")), idempotency_key=f"test-{uuid.uuid4()}")
    assert project.erp_id
    return project.erp_id


def _set_deal_reference(rig: ReconRig, invoice_id: str, deal_id: str) -> None:
    """A person adds the missing CRM reference to the invoice in Stripe."""
    response = httpx.post(f"{rig.settings.stripe_base_url}/v1/invoices/{invoice_id}",
                          data={"metadata[revops_deal_id]": deal_id},
                          headers={"Authorization": f"Bearer {rig.settings.stripe_api_key}"}, timeout=10)
    response.raise_for_status()


# ---------------------------------------------------------------------------------------------------
async def test_reconciliation_finds_each_seeded_discrepancy_and_closes_them_when_fixed(recon: ReconRig) -> None:
    rig = recon
    billing, erp, stripe = rig.connectors.billing, rig.connectors.erp, rig.sandboxes["stripe"]
    account = await billing_account(billing, rig.sandboxes["hubspot"])
    contact_id = await _erp_contact(rig, account)
    clean, clean_paid, wrong_amount, missing, unpaid_in_erp = await draft_invoices(
        billing, account, ["100.00", "200.00", "300.00", "400.00", "500.00"])
    [no_crm_ref] = await draft_invoices(billing, account, ["600.00"], with_deal=False)
    for invoice_id in (clean, clean_paid, wrong_amount, missing, unpaid_in_erp, no_crm_ref):
        await billing.finalize_invoice(invoice_id)
    pay(stripe, clean_paid)
    pay(stripe, unpaid_in_erp)
    await _post(rig, clean, contact_id)
    await _record_payment(rig, clean_paid, await _post(rig, clean_paid, contact_id))
    wrong_erp_id = await _post(rig, wrong_amount, contact_id, total="330.00")
    unpaid_erp_id = await _post(rig, unpaid_in_erp, contact_id)
    await _post(rig, no_crm_ref, contact_id)

    tag = uuid.uuid4().hex[:8]
    deal_ok, deal_no_project, deal_no_billing = f"rc{tag}a", f"rc{tag}b", f"rc{tag}c"
    await _executed_contract(rig, deal_ok)
    await _project(rig, deal_ok, contact_id)
    await draft_invoices(billing, account, ["50.00"], project=f"P-{deal_ok}-US01")  # its billing schedule
    record_id = await _executed_contract(rig, deal_no_project)
    project_id = await _project(rig, deal_no_billing, contact_id)

    scope = ReconciliationScope(legal_entities=["US01"], customer_ids=[account.customer_id],
                                deal_ids=[deal_ok, deal_no_project, deal_no_billing])
    first = await start_reconciliation(rig.client, rig.settings, scope)

    found = {(f.kind.value, f.billing_id or f.clm_id or f.erp_id) for f in first.findings}
    assert found == {
        ("amount_mismatch", wrong_amount), ("missing_in_erp", missing), ("payment_mismatch", unpaid_in_erp),
        ("invoice_without_crm_reference", no_crm_ref), ("contract_without_project", record_id),
        ("project_without_billing", project_id),
    }
    assert first.counts == {k: 1 for k in ("amount_mismatch", "contract_without_project",
                                           "invoice_without_crm_reference", "missing_in_erp", "payment_mismatch",
                                           "project_without_billing")}
    assert first.opened == 6 and first.closed == 0
    mismatch = next(f for f in first.findings if f.kind.value == "amount_mismatch")
    assert mismatch.erp_id == wrong_erp_id and "330.00" in mismatch.erp_amount and "300.00" in mismatch.billing_amount
    [usd] = first.totals
    assert Decimal(usd.billing_invoiced) == Decimal("2100.00") and Decimal(usd.erp_invoiced) == Decimal("1730.00")
    engine = findings_engine(rig.settings.findings_database_url)
    with Session(engine) as session:
        stored = list_findings(session=session, scope=scope.key())
    assert {(r.kind, r.status) for r in stored} == {(k, OPEN) for k, _ in found}
    await save_history(rig.client.get_workflow_handle(first.run_id.split("/")[0]), "reconciliation_run")

    # people fix each one
    await erp.void_invoice(US01_TENANT, wrong_erp_id, idempotency_key=f"test-{uuid.uuid4()}")
    await _post(rig, wrong_amount, contact_id, number_suffix="-R")
    await _post(rig, missing, contact_id)
    await _record_payment(rig, unpaid_in_erp, unpaid_erp_id)
    _set_deal_reference(rig, no_crm_ref, account.deal_id)
    await _project(rig, deal_no_project, contact_id)
    await draft_invoices(billing, account, ["50.00"], project=f"P-{deal_no_project}-US01")
    await draft_invoices(billing, account, ["50.00"], project=f"P-{deal_no_billing}-US01")

    second = await start_reconciliation(rig.client, rig.settings, scope)

    assert second.findings == [] and second.counts == {}
    assert second.closed == 6 and second.opened == 0 and second.still_open == 0
    with Session(engine) as session:
        closed = list_findings(session=session, scope=scope.key(), status=CLOSED)
        still_open = list_findings(session=session, scope=scope.key())
    engine.dispose()
    assert len(closed) == 6 and all(r.closed_at for r in closed) and still_open == []


async def test_reconciliation_schedule_is_created_once_then_updated(client: Client, flow_settings: Settings) -> None:
    schedule_id = f"{RECONCILIATION_SCHEDULE_ID}-{uuid.uuid4().hex[:8]}"
    assert await ensure_reconciliation_schedule(client, flow_settings, schedule_id=schedule_id) == "created"
    changed = flow_settings.model_copy(update={"reconciliation_cron": "30 3 * * *"})
    assert await ensure_reconciliation_schedule(client, changed, schedule_id=schedule_id) == "updated"
    handle = client.get_schedule_handle(schedule_id)
    description = await handle.describe()
    [calendar] = description.schedule.spec.calendars  # the server keeps a cron expression as a calendar
    assert [r.start for r in calendar.hour] == [3] and [r.start for r in calendar.minute] == [30]
    action = description.schedule.action
    assert getattr(action, "workflow", None) == "ReconciliationWorkflow"
    await handle.delete()


async def test_reconciliation_exceptions_command_lists_open_and_closed_findings(
        flow_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = flow_settings.model_copy(update={"findings_url": f"sqlite:///{tmp_path / 'findings.sqlite'}"})
    engine = findings_engine(settings.findings_database_url)
    gap = Finding(kind=FindingKind.MISSING_IN_ERP, key="missing_in_erp:in_1", legal_entity="US01", billing_id="in_1",
                  billing_amount="10.00", detail="billing invoice in_1 is not in the ERP")
    mismatch = Finding(kind=FindingKind.AMOUNT_MISMATCH, key="amount_mismatch:in_2", legal_entity="US01",
                       billing_id="in_2", erp_id="x-2", billing_amount="5.00 USD", erp_amount="6.00 USD")
    with Session(engine) as session:
        record_run(session=session, scope="all", run_id="r1", findings=[gap, mismatch], now=datetime.now(UTC))
        outcome = record_run(session=session, scope="all", run_id="r2", findings=[mismatch], now=datetime.now(UTC))
    engine.dispose()
    assert (outcome.opened, outcome.closed, outcome.counts) == (0, 1, {"amount_mismatch": 1})

    args = argparse.Namespace(all=False, closed=False, kind=None, scope=None, limit=50, json=False)
    assert await cmd_exceptions(settings, args) == 0
    listed = capsys.readouterr().out
    assert "amount_mismatch US01 stripe in_2, xero x-2 (5.00 USD vs 6.00 USD)" in listed and "in_1" not in listed

    assert await cmd_exceptions(settings, argparse.Namespace(**{**vars(args), "closed": True, "json": True})) == 0
    [closed] = json.loads(capsys.readouterr().out)
    assert closed["key"] == "missing_in_erp:in_1" and closed["status"] == "closed" and closed["last_run_id"] == "r2"
