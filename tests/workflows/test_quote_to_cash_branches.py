"""Quote-to-cash branches on the time-skipping server with in-memory ports: compensation, pre-existing
records, contract cancellation, a data exception fixed by a signal, approval expiry. The real workflow and
the real activities run; only the vendors are fakes (tests/helpers/fakes.py), so each case takes
milliseconds of vendor time and days of workflow time pass at once. The emulator end-to-end tests in
test_quote_to_cash.py keep the happy paths over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from canonical import Money
from canonical.deal import BillingModel, DealLine
from canonical.exceptions import ExceptionKind
from canonical.parties import LegalEntity
from connectors.errors import Rejected
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.fakes import FakePorts, fake_deal
from tests.helpers.outcomes import deal_outcome
from tests.helpers.waiting import eventually
from workflows.models import DealCorrection, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest_asyncio.fixture
async def rig(time_skipping_env: Any, settings: Settings) -> AsyncIterator[tuple[Client, Settings, FakePorts]]:
    ports = FakePorts()
    own = settings.model_copy(update={"task_queue": f"branches-{uuid.uuid4()}", "activity_retry_max_seconds": 1.0,
                                      "contract_poll_interval_seconds": 60.0, "approval_reminder_hours": 24.0,
                                      "approval_expiry_days": 2.0})
    client: Client = time_skipping_env.client
    async with Worker(client, task_queue=own.task_queue, workflows=[QuoteToCashWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        yield client, own, ports


async def status_of(handle: WorkflowHandle[Any, Any]) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def signed_when_out(handle: WorkflowHandle[Any, Any], ports: FakePorts) -> None:
    """The counterparty signs as soon as the contract is out."""
    status = await eventually(lambda: status_of(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out for signature")
    assert status.contract and status.contract.clm_workflow_id
    ports.clm.sign(status.contract.clm_workflow_id)


async def test_branch_refused_billing_schedule_undoes_what_this_run_created(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    deal_id = ports.add_deal(fake_deal())
    ports.billing.refuse["create_schedule"] = Rejected("invoice item amount is invalid")

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.FAILED and "undone" in result.reason
    [project] = ports.erp.projects.values()
    assert ports.erp.closed == [project.erp_id]
    assert ports.erp.archived == [c.erp_contact_id for t in ports.erp.contacts.values() for c in t.values()]
    assert ports.billing.deleted == list(ports.billing.customers.values())
    written = ports.crm.written[deal_id]
    assert written["revops_status"] == "failed" and "undone" in written["revops_exception"]


async def test_branch_compensation_keeps_records_that_existed_before_the_run(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    deal = fake_deal()
    deal_id = ports.add_deal(deal)
    assert deal.account and deal.account.crm_id
    reference = f"hubspot-company-{deal.account.crm_id}-US01"
    ports.billing.customers[reference] = "cust-existing"
    await ports.erp.upsert_customer(settings.entity("US01").erp_tenant_id, deal.account, contact=None,
                                    reference=reference, idempotency_key="seed")
    ports.billing.refuse["create_schedule"] = Rejected("refused")

    handle = await start_quote_to_cash(client, settings, deal_id)
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.FAILED
    assert ports.erp.archived == [] and ports.billing.deleted == [], "records older than the run are kept"
    assert len(ports.erp.closed) == 1, "the project this run created is closed"


async def test_branch_contract_cancelled_in_the_clm_stops_before_provisioning(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    deal_id = ports.add_deal(fake_deal())

    handle = await start_quote_to_cash(client, settings, deal_id)
    status = await eventually(lambda: status_of(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out")
    assert status.contract and status.contract.clm_workflow_id
    ports.clm.cancel(status.contract.clm_workflow_id)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.CANCELLED
    assert ports.erp.projects == {} and ports.billing.schedules == {}
    assert ports.crm.written[deal_id]["revops_status"] == "cancelled"


async def test_branch_missing_region_waits_until_a_corrected_deal_arrives(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    deal = fake_deal(region=None)
    deal_id = ports.add_deal(deal)

    handle = await start_quote_to_cash(client, settings, deal_id)
    waiting = await eventually(lambda: status_of(handle), lambda s: s.stage is Stage.DATA_EXCEPTION,
                               what="data exception")
    assert [m.field for m in waiting.missing] == ["region"]
    assert ports.crm.written[deal_id]["revops_status"] == "data_exception"

    await handle.signal(QuoteToCashWorkflow.deal_corrected,
                        DealCorrection(deal=deal.model_copy(update={"region": "NA"})))
    await signed_when_out(handle, ports)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.PROVISIONED
    assert ports.crm.written[deal_id]["revops_status"] == "provisioned"


async def test_branch_approval_expires_after_two_days_without_a_decision(
        rig: tuple[Client, Settings, FakePorts]) -> None:
    client, settings, ports = rig
    deal_id = ports.add_deal(fake_deal(discount="40"))

    handle = await start_quote_to_cash(client, settings, deal_id)
    result = await deal_outcome(handle)

    assert result.outcome is Stage.EXPIRED
    status = await status_of(handle)
    assert status.approval and status.approval.reminders_sent == 1 and status.approval.status == "expired"
    assert ports.clm.contracts == {}, "nothing launched without approval"
    assert ports.crm.written[deal_id]["approval_status"] == "expired"


async def test_branch_kwd_deal_no_entity_can_hold_waits_in_a_data_exception(
        time_skipping_env: Any, settings: Settings) -> None:
    # Issue 24: a KWD deal (3 decimals) was routed to the USD entity and posted rounded. The controller's book:
    # NA has US01 (bills USD only); MEA has KW01 (bills KWD, books in an ERP keeping 2 decimals). Neither can
    # hold 3703.701 KWD, so the deal waits, visibly, and nothing reaches the ERP or billing.
    ports = FakePorts()
    kw01 = LegalEntity(code="KW01", name="RevOps Kuwait", region="MEA", currency="KWD",
                       erp_tenant_id="4f7a0c1e-0009-4000-8000-000000000009", countries=["KW"])
    own = settings.model_copy(update={"task_queue": f"branches-{uuid.uuid4()}", "activity_retry_max_seconds": 1.0,
                                      "contract_poll_interval_seconds": 60.0,
                                      "legal_entities": [*settings.legal_entities, kw01]})
    kwd = fake_deal().model_copy(update={"currency": "KWD", "lines": [
        DealLine(product_code="IMPL", name="Implementation", quantity=Decimal(1), unit_price=Decimal("3703.701"),
                 billing_model=BillingModel.FIXED_FEE)]})
    deal_id = ports.add_deal(kwd)
    client: Client = time_skipping_env.client
    async with Worker(client, task_queue=own.task_queue, workflows=[QuoteToCashWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        handle = await start_quote_to_cash(client, own, deal_id)
        waiting = await eventually(lambda: status_of(handle), lambda s: s.stage is Stage.DATA_EXCEPTION,
                                   what="currency exception")
        [missing] = waiting.missing
        assert missing.field == "currency" and "US01 bills USD, not KWD" in missing.reason
        assert "KWD" in ports.crm.written[deal_id]["revops_exception"]

        await handle.signal(QuoteToCashWorkflow.deal_corrected,
                            DealCorrection(deal=kwd.model_copy(update={"region": "MEA"})))
        waiting = await eventually(lambda: status_of(handle),
                                   lambda s: any("decimals" in m.reason for m in s.missing), what="ERP precision")
        assert waiting.stage is Stage.DATA_EXCEPTION and waiting.exception_kind is ExceptionKind.MISSING_DATA
        assert [m.field for m in waiting.missing] == ["currency"]
        assert "KW01" in waiting.missing[0].reason and "KWD has 3 decimals" in waiting.missing[0].reason
        assert ports.erp.projects == {} and ports.billing.schedules == {} and ports.clm.contracts == {}

        await handle.signal(QuoteToCashWorkflow.deal_corrected, DealCorrection(deal=kwd.model_copy(update={
            "currency": "USD", "lines": [kwd.lines[0].model_copy(update={"unit_price": Decimal("3703.70")})]})))
        await signed_when_out(handle, ports)
        result = await deal_outcome(handle)
    assert result.outcome is Stage.PROVISIONED
    [project] = ports.erp.projects.values()
    assert project.budget == Money.of("3703.70", "USD")
