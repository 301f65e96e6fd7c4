"""Amendment propagation branches on the time-skipping server with in-memory ports (tests/helpers/fakes.py):
the real workflow and activities, days of workflow time in milliseconds. The end-to-end paths over the
emulators stay in test_amendments.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest_asyncio
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from canonical.deal import ProvisionedEntity, ProvisioningRecord
from canonical.exceptions import ExceptionKind
from canonical.keys import project_code
from canonical.provisioning import proposed_terms
from runtime.launch import signal_amendment
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.fakes import FakePorts, fake_deal
from tests.helpers.waiting import eventually
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.models import AmendmentStage, ContractAmendmentsStatus


@pytest_asyncio.fixture
async def rig(time_skipping_env: WorkflowEnvironment, settings: Settings
              ) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, FakePorts]]:
    ports = FakePorts()
    own = settings.model_copy(update={"task_queue": f"amend-branches-{uuid.uuid4()}", "activity_retry_max_seconds": 1.0,
                                      "amendment_approval_reminder_hours": 24.0,
                                      "amendment_approval_expiry_days": 2.0})
    async with Worker(time_skipping_env.client, task_queue=own.task_queue, workflows=[ContractAmendmentsWorkflow],
                      activities=role_activities(own, **ports.as_kwargs())):
        yield time_skipping_env, own, ports


async def status_of(handle: WorkflowHandle[Any, Any]) -> ContractAmendmentsStatus:
    return await handle.query(ContractAmendmentsWorkflow.status)  # type: ignore[no-any-return]


async def test_branch_amendment_decrease_expires_without_a_decision_and_is_not_propagated(
        rig: tuple[WorkflowEnvironment, Settings, FakePorts]) -> None:
    env, settings, ports = rig
    deal = fake_deal()
    entity = settings.entity("US01")
    provisioned = ProvisionedEntity(legal_entity=entity.code, tenant_id=entity.erp_tenant_id,
                                    project_code=project_code(deal.crm_id, entity.code), project_id="project-1",
                                    billing_customer_id="cust-1", budget="12000.00")
    ports.add_deal(deal.model_copy(update={"write_backs": deal.write_backs.model_copy(
        update={"provisioned": ProvisioningRecord(entities=[provisioned])})}))
    signed = proposed_terms(deal)
    record_id = ports.clm.executed(deal, signed)
    lower = proposed_terms(fake_deal(discount="20"))  # the same deal at 9,600 instead of 12,000
    ports.clm.amend(record_id, lower)

    handle = await signal_amendment(env.client, settings, record_id, sequence=1)
    waiting = await eventually(lambda: status_of(handle), lambda s: s.stage is AmendmentStage.AWAITING_APPROVAL,
                               what="amendment awaiting finance")
    assert waiting.current and waiting.current.approval
    assert any("decreases" in r for r in waiting.current.approval.reasons)
    assert ports.crm.written[deal.crm_id]["approval_status"] == "pending"

    await env.sleep(timedelta(days=3))  # a reminder after one day, the expiry after two
    status = await eventually(lambda: status_of(handle), lambda s: [h.outcome for h in s.history] == ["expired"],
                              what="amendment expired")

    [record] = status.history
    assert record.approval is not None and record.approval.status == "expired"
    assert record.approval.reminders_sent == 1 and record.approval.decision is None
    assert status.terms == signed and status.next_sequence == 2, "an expired decrease leaves the terms as signed"
    assert status.stage is AmendmentStage.WAITING and status.exception_kind is ExceptionKind.NONE
    written = ports.crm.written[deal.crm_id]
    assert (written["approval_status"], written["amendment_status"]) == ("expired", "expired")
    assert "contract_value" not in written, "nothing propagated to the CRM's contract value"
    assert ports.erp.projects == {} and ports.billing.schedules == {}, "nothing propagated to ERP or billing"
    await handle.terminate("test done")
