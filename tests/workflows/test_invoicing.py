"""One-off invoicing on the time-skipping server: the drafts quote-to-cash leaves in billing (fixed fee,
milestones) are finalized on their billing date or when their milestone is accepted, each once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.billing import BillingActivities
from canonical import BillingSchedule, BillingScheduleKind, Money, ScheduledCharge
from canonical.billing import OneOffInvoice
from canonical.deal import BillingModel, Deal, DealLine
from canonical.keys import invoicing_workflow_id
from connectors.errors import Rejected
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.fakes import FakeBilling, FakePorts, fake_deal
from tests.helpers.histories import save_history
from tests.helpers.outcomes import deal_outcome
from tests.helpers.waiting import eventually
from workflows.invoicing import OneOffInvoicingWorkflow
from workflows.models import (
    InvoicingStage,
    MilestoneAcceptance,
    OneOffInvoicingInput,
    OneOffInvoicingStatus,
    Stage,
)
from workflows.quote_to_cash import QuoteToCashWorkflow


def charge(code: str, amount: str, bill_on: date | None) -> ScheduledCharge:
    return ScheduledCharge(product_code=code, description=code, unit_amount=Money.of(amount, "USD"), bill_on=bill_on)


async def drafts(billing: FakeBilling, today: date) -> list[OneOffInvoice]:
    schedule = BillingSchedule(kind=BillingScheduleKind.MILESTONE, customer_id="cus_1", currency="USD",
                               start_date=today, charges=[
                                   charge("KICKOFF", "5000.00", today + timedelta(days=10)),
                                   charge("DESIGN", "7000.00", today + timedelta(days=60)),
                                   charge("GO-LIVE", "8000.00", None)])
    return (await billing.create_schedule(schedule, idempotency_key=f"k-{uuid.uuid4()}")).drafts


async def test_one_off_invoices_are_finalized_on_their_date_or_on_acceptance_each_once(
        time_skipping_env: WorkflowEnvironment, flow_settings: Settings) -> None:
    billing = FakeBilling()
    today = datetime.now(UTC).date()
    kickoff, design, go_live = await drafts(billing, today)
    client = time_skipping_env.client
    async with Worker(client, task_queue=flow_settings.task_queue, workflows=[OneOffInvoicingWorkflow],
                      activities=BillingActivities(billing=billing).all()):
        handle = await client.start_workflow(
            OneOffInvoicingWorkflow.run, OneOffInvoicingInput(project_code="P-1-US01", legal_entity="US01",
                                                              drafts=[kickoff, design, go_live]),
            id=f"invoicing-fake-P-{uuid.uuid4()}", task_queue=flow_settings.task_queue)
        status = await eventually(lambda: handle.query(OneOffInvoicingWorkflow.status),
                                  lambda s: s.stage is InvoicingStage.WAITING and s.timeline, what="waiting")
        assert [d.charge_code for d in status.waiting] == ["KICKOFF", "DESIGN", "GO-LIVE"] and not billing.finalized

        await time_skipping_env.sleep(timedelta(days=11))  # the kick-off's billing date passes

        await eventually(lambda: handle.query(OneOffInvoicingWorkflow.status),
                         lambda s: s.finalized == [kickoff.invoice_id], what="kick-off finalized on its date")
        assert billing.finalized == [kickoff.invoice_id], "the others wait (design: day 60, go-live: acceptance)"

        # the design milestone is accepted before its date: finalized now
        accepted = await handle.execute_update(OneOffInvoicingWorkflow.accept_milestone,
                                               MilestoneAcceptance(charge_code="DESIGN", accepted_by="pm@acme"))
        assert accepted.finalized == [kickoff.invoice_id, design.invoice_id]
        with pytest.raises(WorkflowUpdateFailedError):  # nothing waits for it any more
            await handle.execute_update(OneOffInvoicingWorkflow.accept_milestone,
                                        MilestoneAcceptance(charge_code="DESIGN", accepted_by="pm@acme"))

        await handle.execute_update(OneOffInvoicingWorkflow.accept_milestone,
                                    MilestoneAcceptance(charge_code="GO-LIVE", accepted_by="pm@acme"))
        result: OneOffInvoicingStatus = await handle.result()
        await save_history(handle, "invoicing_dated_and_accepted")

    assert result.stage is InvoicingStage.DONE and result.waiting == [] and result.refused == {}
    assert billing.finalized == [kickoff.invoice_id, design.invoice_id, go_live.invoice_id], "each once"


async def test_quote_to_cash_hands_a_fixed_fee_deals_drafts_to_their_finalization_flow(
        time_skipping_env: WorkflowEnvironment, settings: Settings) -> None:
    """A fixed-fee deal provisioned: its draft invoices used to stay drafts for ever; now the provisioning
    starts the project's invoicing flow, which holds each draft until it is due."""
    ports = FakePorts()
    own = settings.model_copy(update={"task_queue": f"invoicing-{uuid.uuid4()}", "activity_retry_max_seconds": 1.0,
                                      "contract_poll_interval_seconds": 60.0})
    client = time_skipping_env.client
    deal_id = ports.add_deal(fake_deal(start=datetime.now(UTC).date() + timedelta(days=20)))
    async with Worker(client, task_queue=own.task_queue, workflows=[QuoteToCashWorkflow, OneOffInvoicingWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        handle = await start_quote_to_cash(client, own, deal_id)
        status = await eventually(lambda: handle.query(QuoteToCashWorkflow.status),
                                  lambda s: s.stage is Stage.AWAITING_SIGNATURE, what="contract out")
        assert status.contract and status.contract.clm_workflow_id
        ports.clm.sign(status.contract.clm_workflow_id)
        result = await deal_outcome(handle)
        assert result.outcome is Stage.PROVISIONED
        [schedule] = ports.billing.schedules.values()
        [draft] = schedule.drafts
        assert draft.bill_on == datetime.now(UTC).date() + timedelta(days=20)
        [engagement] = result.engagements
        invoicing = client.get_workflow_handle_for(OneOffInvoicingWorkflow.run,
                                                   invoicing_workflow_id("stripe", engagement.project.code))
        seen = await eventually(lambda: invoicing.query(OneOffInvoicingWorkflow.status),
                                lambda s: bool(s.timeline), what="the invoicing flow running")
        assert [d.invoice_id for d in seen.waiting] + seen.finalized == [draft.invoice_id]
        done = seen
        if seen.waiting:  # (awaiting the deal may already have skipped time past the billing date)
            # its date is covered by the test above; here the person accepting the work finalizes it
            done = await invoicing.execute_update(OneOffInvoicingWorkflow.accept_milestone,
                                                  MilestoneAcceptance(charge_code=draft.charge_code, accepted_by="pm"))
    assert done.finalized == [draft.invoice_id] == ports.billing.finalized


async def test_a_draft_billing_refuses_to_finalize_is_shown_and_tried_again_the_next_day(
        time_skipping_env: WorkflowEnvironment, flow_settings: Settings) -> None:
    billing = FakeBilling()
    today = datetime.now(UTC).date()
    kickoff, _, _ = await drafts(billing, today)
    billing.refuse["finalize_invoice"] = Rejected("invoice has no line items")
    client = time_skipping_env.client
    async with Worker(client, task_queue=flow_settings.task_queue, workflows=[OneOffInvoicingWorkflow],
                      activities=BillingActivities(billing=billing).all()):
        handle = await client.start_workflow(
            OneOffInvoicingWorkflow.run, OneOffInvoicingInput(project_code="P-2-US01", legal_entity="US01",
                                                              drafts=[kickoff]),
            id=f"invoicing-fake-P-{uuid.uuid4()}", task_queue=flow_settings.task_queue)
        await time_skipping_env.sleep(timedelta(days=11))
        refused = await eventually(lambda: handle.query(OneOffInvoicingWorkflow.status),
                                   lambda s: bool(s.refused), what="refusal shown")
        assert refused.exception_kind == "provisioning_failed" and refused.waiting == [kickoff]
        assert "no line items" in refused.refused[kickoff.invoice_id] and not billing.finalized

        del billing.refuse["finalize_invoice"]  # someone fixed the draft in billing
        await time_skipping_env.sleep(timedelta(days=1, hours=1))
        result: OneOffInvoicingStatus = await handle.result()
    assert result.finalized == [kickoff.invoice_id] == billing.finalized
    assert result.refused == {} and result.exception_kind == "" and result.stage is InvoicingStage.DONE


async def test_starter_accept_milestone_finalizes_now_and_refuses_what_does_not_wait(
        client: Client, flow_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """A project manager accepts a milestone from the command line, by project code: its invoice is finalized at
    once; a second acceptance, an unknown project and a hostile name are refused with their exit codes."""
    import starter
    from bootstrap import for_cli

    billing = FakeBilling()
    today = datetime.now(UTC).date()
    _kickoff, design, go_live = await drafts(billing, today)
    project = f"P-{uuid.uuid4().hex[:8]}-US01"
    async with Worker(client, task_queue=flow_settings.task_queue, workflows=[OneOffInvoicingWorkflow],
                      activities=BillingActivities(billing=billing).all()):
        handle = await client.start_workflow(
            OneOffInvoicingWorkflow.run, OneOffInvoicingInput(project_code=project, legal_entity="US01",
                                                              drafts=[design, go_live]),
            id=invoicing_workflow_id("stripe", project), task_queue=flow_settings.task_queue)
        await eventually(lambda: handle.query(OneOffInvoicingWorkflow.status),
                         lambda s: s.stage is InvoicingStage.WAITING, what="waiting")
        async with for_cli(flow_settings, client=client) as parts:
            assert await starter.run(["accept-milestone", project, "GO-LIVE", "--by", "pm@acme"], parts=parts) == 0
            assert billing.finalized == [go_live.invoice_id]
            assert "finalized " + go_live.invoice_id in capsys.readouterr().out
            assert await starter.run(["accept-milestone", handle.id, "GO-LIVE", "--by", "pm@acme"],
                                     parts=parts) == 1  # nothing waits for it any more
            assert "no draft invoice waits for milestone" in capsys.readouterr().err
            assert await starter.run(["accept-milestone", "P-unknown-US01", "DESIGN", "--by", "pm"], parts=parts) == 2
            assert await starter.run(["accept-milestone", project, "DESIGN", "--by", "pm\x1b[2J"], parts=parts) == 2
            assert "\x1b" not in capsys.readouterr().err
        assert billing.finalized == [go_live.invoice_id], "the refused acceptances finalized nothing"
        await handle.terminate("test over")


def milestone_deal() -> Deal:
    """A deal of two acceptance milestones (no billing date until the contract's end)."""
    deal = fake_deal(model=BillingModel.MILESTONE)
    return deal.model_copy(update={"lines": [
        DealLine(product_code="MS-DESIGN", name="Design phase", quantity=Decimal(1), unit_price=Decimal("1200"),
                 billing_model=BillingModel.MILESTONE),
        DealLine(product_code="MS-BUILD", name="Build phase", quantity=Decimal(1), unit_price=Decimal("1800"),
                 billing_model=BillingModel.MILESTONE)]})


async def test_a_milestone_accepted_in_the_project_system_is_invoiced_once_and_the_other_still_waits(
        client: Client, flow_settings: Settings) -> None:
    """A milestone deal is provisioned: nothing is finalized until a person accepts MS-DESIGN in the project
    system; then exactly MS-DESIGN's invoice is finalized (seen again: nothing more) and MS-BUILD still waits
    (until its own acceptance, here by the update)."""
    ports = FakePorts()
    own = flow_settings.model_copy(update={"milestone_poll_interval_seconds": 1.0})
    deal_id = ports.add_deal(milestone_deal())
    async with Worker(client, task_queue=own.task_queue, workflows=[QuoteToCashWorkflow, OneOffInvoicingWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        handle = await start_quote_to_cash(client, own, deal_id)
        status = await eventually(lambda: handle.query(QuoteToCashWorkflow.status),
                                  lambda s: s.stage is Stage.AWAITING_SIGNATURE, what="contract out")
        assert status.contract and status.contract.clm_workflow_id
        ports.clm.sign(status.contract.clm_workflow_id)
        result = await deal_outcome(handle)
        assert result.outcome is Stage.PROVISIONED
        [engagement] = result.engagements
        project_id = engagement.project.erp_id or ""
        [schedule] = ports.billing.schedules.values()
        design, build = schedule.drafts
        assert (design.charge_code, build.charge_code) == ("MS-DESIGN", "MS-BUILD")
        invoicing = client.get_workflow_handle_for(OneOffInvoicingWorkflow.run,
                                                   invoicing_workflow_id("stripe", engagement.project.code))
        await eventually(lambda: ports.erp.milestone_reads, lambda n: n >= 2, what="the project system asked twice")
        assert ports.billing.finalized == [], "no invoice is finalized before a person accepts"

        ports.erp.accept_milestone(project_id, "MS-DESIGN")  # the project manager, in the project system
        seen = await eventually(lambda: invoicing.query(OneOffInvoicingWorkflow.status),
                                lambda s: s.finalized == [design.invoice_id], what="MS-DESIGN finalized")
        assert [d.charge_code for d in seen.waiting] == ["MS-BUILD"]
        reads = ports.erp.milestone_reads
        await eventually(lambda: ports.erp.milestone_reads, lambda n: n >= reads + 2, what="asked again")
        again = await invoicing.query(OneOffInvoicingWorkflow.status)
        assert again.finalized == [design.invoice_id] == ports.billing.finalized, "exactly once"
        assert [d.charge_code for d in again.waiting] == ["MS-BUILD"], "MS-BUILD still waits"

        done = await invoicing.execute_update(OneOffInvoicingWorkflow.accept_milestone,
                                              MilestoneAcceptance(charge_code="MS-BUILD", accepted_by="pm"))
        assert done.finalized == [design.invoice_id, build.invoice_id] == ports.billing.finalized
        final: OneOffInvoicingStatus = await invoicing.result()
    assert final.stage is InvoicingStage.DONE and final.waiting == []
