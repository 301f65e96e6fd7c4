"""Quote-to-cash end to end: the real worker, the real dev server, the emulators over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.worker import Worker

from canonical import Account, DealStageReached
from canonical.requests import ProvisioningRecord
from connectors.xero import from_settings as xero_from_settings
from intake import ClientProvider, EventRouter
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.events import Outcome
from tests.helpers.approvals import DANA, sign_request, signed_decision
from tests.helpers.deals import DealSpec, Line, deal_properties, edit_deal, seed_deal
from tests.helpers.histories import save_history
from tests.helpers.outcomes import deal_outcome
from tests.helpers.servers import SandboxHandle, stripe_auth
from tests.helpers.upserts import audit_upserts
from tests.helpers.waiting import eventually
from workflows.models import (
    ApprovalState,
    ContractExecutedSignal,
    DealCorrection,
    QuoteToCashResult,
    QuoteToCashStatus,
    RecheckRequest,
    Stage,
    TimeBillingStage,
)
from workflows.quote_to_cash import QuoteToCashWorkflow
from workflows.time_billing import TimeBillingWorkflow


async def _status(handle: WorkflowHandle) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def wait_for_stage(handle: WorkflowHandle, stage: Stage, timeout: float = 30) -> QuoteToCashStatus:
    return await eventually(lambda: _status(handle), lambda s: s.stage is stage, timeout=timeout,
                            what=f"stage {stage.value}")


def sign(ironclad: SandboxHandle, clm_workflow_id: str) -> dict[str, Any]:
    """Every party signs in Ironclad (the human act the public API does not offer)."""
    response = httpx.post(f"{ironclad.base_url}/_sandbox/workflows/{clm_workflow_id}/sign", timeout=10)
    response.raise_for_status()
    return dict(response.json())


async def sign_when_out(handle: WorkflowHandle, ironclad: SandboxHandle) -> str:
    status = await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)
    assert status.contract and status.contract.clm_workflow_id
    sign(ironclad, status.contract.clm_workflow_id)
    return status.contract.clm_workflow_id


def live(store_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for i in store_items if not i.get("deleted")]


def stripe_objects(stripe: SandboxHandle, kind: str, customer_id: str) -> list[dict[str, Any]]:
    return live(stripe.store.list(kind, where=lambda o: o.get("customer") == customer_id))


async def run_to_end(client: Client, settings: Settings, deal_id: str, ironclad: SandboxHandle,
                     history: str | None = None) -> QuoteToCashResult:
    handle = await start_quote_to_cash(client, settings, deal_id)
    await sign_when_out(handle, ironclad)
    result: QuoteToCashResult = await handle.result()
    if history:
        await save_history(handle, history)
    return result


# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["subscription", "milestone", "time_and_materials", "retainer", "fixed_fee"])
async def test_quote_to_cash_provisions_each_billing_model(
    model: str, client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot, ironclad, stripe = sandboxes["hubspot"], sandboxes["ironclad"], sandboxes["stripe"]
    deal_id = seed_deal(hubspot, DealSpec(model=model))

    result = await run_to_end(client, flow_settings, deal_id, ironclad, history=f"quote_to_cash_{model}")

    assert result.outcome is Stage.PROVISIONED, result.reason
    [engagement] = result.engagements
    assert engagement.legal_entity == "US01"
    assert engagement.project and engagement.project.erp_id and engagement.project.tasks
    assert all(t.erp_id for t in engagement.project.tasks)
    customer_id = engagement.billing_customer_id
    assert customer_id and live(stripe.store.list("customer", where=lambda c: c["id"] == customer_id))
    if model in ("subscription", "retainer"):
        [subscription] = stripe_objects(stripe, "subscription", customer_id)
        assert subscription["id"] in engagement.billing_schedule_ids
    elif model in ("milestone", "fixed_fee"):
        drafts = stripe_objects(stripe, "invoice", customer_id)
        expected = 2 if model == "milestone" else 1
        assert len(drafts) == expected and all(i["status"] == "draft" for i in drafts)
    else:
        prices = live(stripe.store.list("price", where=lambda p: p.get("metadata", {}).get("revops_product_code")
                                        in ("TM-CONSULTANT", "TM-ARCHITECT")
                                        and p["id"] in engagement.billing_schedule_ids))
        assert len(prices) == 2
        # its logged time is billed monthly at the executed rate card by the project's own flow
        time = client.get_workflow_handle_for(TimeBillingWorkflow.run, f"time-stripe-P-{deal_id}-US01")
        seen = await eventually(lambda: time.query(TimeBillingWorkflow.status), lambda s: bool(s.timeline),
                                what="the time billing flow running")
        assert seen.stage is TimeBillingStage.WAITING and seen.period is not None
    props = deal_properties(hubspot, deal_id)
    assert props["revops_status"] == "provisioned"
    assert props["revops_clm_workflow_id"] == result.contract.clm_workflow_id  # type: ignore[union-attr]
    record = ProvisioningRecord.model_validate_json(props["revops_provisioned"])
    [entity] = record.entities
    assert (entity.legal_entity, entity.project_code, entity.billing_customer_id) == ("US01", f"P-{deal_id}-US01",
                                                                                      customer_id)
    assert entity.project_id == engagement.project.erp_id and entity.erp_contact_id == engagement.erp_contact_id
    assert entity.budget == str(engagement.project.budget.amount)
    assert record.billing_ids == engagement.billing_schedule_ids
    assert f"stripe:customer:{customer_id}" in result.business_keys
    # every billing record it created can be found by its ID (subscriptions, invoices, products, prices)
    assert {f"stripe:{obj}:{i}" for i in engagement.billing_schedule_ids
            for prefix, obj in (("sub_", "subscription"), ("in_", "invoice"), ("prod_", "product"),
                                ("price_", "price")) if i.startswith(prefix)} <= set(result.business_keys)


async def test_quote_to_cash_second_start_attaches_to_running_run(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec())
    first = await start_quote_to_cash(client, flow_settings, deal_id)
    second = await start_quote_to_cash(client, flow_settings, deal_id, trigger="webhook")

    assert second.id == first.id == f"q2c-hubspot-{deal_id}"
    assert second.result_run_id == first.result_run_id
    await sign_when_out(first, sandboxes["ironclad"])
    result: QuoteToCashResult = await first.result()
    assert result.outcome is Stage.PROVISIONED
    contacts = [c for c in sandboxes["ironclad"].store.list("workflow")
                if c.get("attributes", {}).get("revopsDealId") == deal_id]
    assert len(contacts) == 1, "one contract launched for one deal"


async def test_quote_to_cash_approval_approved_then_provisioned(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot = sandboxes["hubspot"]
    deal_id = seed_deal(hubspot, DealSpec(lines=[Line("PLAT-ENT", "Enterprise seats", quantity="100",
                                                      price="100.00", discount="25", model="subscription",
                                                      frequency="monthly")]))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    status = await wait_for_stage(handle, Stage.AWAITING_APPROVAL)
    assert any("discount 25" in r for r in status.approval.reasons)  # type: ignore[union-attr]
    await eventually(lambda: asyncio.sleep(0, deal_properties(hubspot, deal_id)),
                     lambda p: p.get("revops_approval_status") == "pending", what="pending written back")
    listed = await eventually(lambda: _pending_ids(client), lambda ids: handle.id in ids, what="pending listing")
    assert handle.id in listed

    outcome = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                          await signed_decision(flow_settings, handle, DANA, note="ok"))

    assert outcome.accepted and outcome.status == "approved"
    await sign_when_out(handle, sandboxes["ironclad"])
    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.PROVISIONED
    await eventually(lambda: asyncio.sleep(0, deal_properties(hubspot, deal_id)),
                     lambda p: p.get("revops_approval_status") == "approved", what="approval written back")
    await save_history(handle, "quote_to_cash_approved")


async def _pending_ids(client: Client) -> list[str]:
    query = 'WorkflowType = "QuoteToCashWorkflow" AND Stage = "awaiting_approval" AND ExecutionStatus = "Running"'
    return [e.id async for e in client.list_workflows(query)]


async def test_quote_to_cash_approval_rejected_ends_cleanly_with_reason(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot = sandboxes["hubspot"]
    deal_id = seed_deal(hubspot, DealSpec(payment_terms="90"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_APPROVAL)

    await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                await signed_decision(flow_settings, handle, DANA, approved=False,
                                                      note="terms too long"))

    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.REJECTED and "terms too long" in result.reason
    await save_history(handle, "quote_to_cash_rejected")
    assert result.contract is None and result.engagements == []
    props = deal_properties(hubspot, deal_id)
    assert props["revops_status"] == "rejected"
    assert props["revops_approval_note"] == f"{DANA}: terms too long"


async def test_quote_to_cash_decide_approval_refused_when_nothing_pending(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec())  # within policy: no approval needed
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)

    now = datetime.now(UTC)
    made_up = ApprovalState(reasons=[], requested_at=now, expires_at=now, request_id=1,
                            run_id=(await handle.describe()).run_id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                    sign_request(flow_settings, handle.id, made_up, DANA))

    assert "no approval is pending" in str(refused.value.cause)
    events = [e async for e in handle.fetch_history_events()]
    assert not any(e.HasField("workflow_execution_update_accepted_event_attributes") for e in events), \
        "a refused update leaves no trace in history"
    await handle.terminate("test done")


async def test_quote_to_cash_decide_approval_refuses_blank_approver(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(non_standard=True))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_APPROVAL)

    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update("decide_approval", {"approver": "  ", "approved": True, "note": ""})

    assert (await _status(handle)).approval.status == "pending"  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_quote_to_cash_missing_data_waits_then_resumes_when_corrected(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot = sandboxes["hubspot"]
    deal_id = seed_deal(hubspot, DealSpec(region=None, start_date=None))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)

    status = await wait_for_stage(handle, Stage.DATA_EXCEPTION)
    assert {m.field for m in status.missing} == {"region", "start_date"}
    assert status.exception_kind.value == "missing_data"
    description = await handle.describe()
    attrs = {k.name: v for k, v in description.typed_search_attributes}  # type: ignore[attr-defined]
    assert attrs["ExceptionKind"] == "missing_data" and attrs["Stage"] == "data_exception"
    # the stage moves before the CRM write-back lands: wait for the CRM, never read it at once
    await eventually(lambda: "region" in deal_properties(hubspot, deal_id).get("revops_exception", ""),
                     what="missing data written to the deal")

    # An operator re-checks too early: still missing, and the run keeps waiting.
    early = await handle.execute_update(QuoteToCashWorkflow.recheck_deal, RecheckRequest(requested_by="ops"))
    assert not early.complete and {m.field for m in early.missing} == {"region", "start_date"}

    edit_deal(hubspot, deal_id, {"revops_region": "NA", "revops_start_date": "2027-02-01"})
    await handle.signal(QuoteToCashWorkflow.deal_corrected, DealCorrection(changed_properties=["revops_region"]))

    await sign_when_out(handle, sandboxes["ironclad"])
    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.PROVISIONED
    assert deal_properties(hubspot, deal_id).get("revops_exception", "") == ""
    await save_history(handle, "quote_to_cash_missing_data")


async def test_quote_to_cash_contract_signal_is_honoured(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    slow_poll = flow_settings.model_copy(update={"contract_poll_interval_seconds": 3600.0})
    async with _worker_with(client, slow_poll, sandboxes):
        deal_id = seed_deal(sandboxes["hubspot"], DealSpec())
        handle = await start_quote_to_cash(client, slow_poll, deal_id)
        clm_id = await sign_when_out(handle, sandboxes["ironclad"])
        # The hourly poll would not see the signature for an hour; the webhook's signal does at once.
        await handle.signal(QuoteToCashWorkflow.contract_executed, ContractExecutedSignal(clm_workflow_id=clm_id))
        result: QuoteToCashResult = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.outcome is Stage.PROVISIONED


def _worker_with(client: Client, settings: Settings, sandboxes: dict[str, SandboxHandle]) -> Any:
    from contextlib import asynccontextmanager

    from worker import build_worker, open_connectors

    @asynccontextmanager
    async def run() -> Any:
        async with open_connectors(settings) as connectors, build_worker(client, settings, connectors) as w:
            yield w

    return run()


async def test_quote_to_cash_survives_a_503_storm_with_one_record_of_each_kind(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    stripe, xero = sandboxes["stripe"], sandboxes["xero"]
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="subscription"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)

    with stripe.faults(error_rate=0.3, status=503, seed=7), xero.faults(error_rate=0.3, status=503, seed=11):
        await sign_when_out(handle, sandboxes["ironclad"])
        await wait_for_stage(handle, Stage.PROVISIONING)
        result: QuoteToCashResult = await asyncio.wait_for(handle.result(), timeout=120)

    assert result.outcome is Stage.PROVISIONED, result.reason
    assert stripe.control.stats.faults > 0, "the storm really happened"
    [engagement] = result.engagements
    ref = f"hubspot-company-{_company_id(result)}-US01"
    assert len(live(stripe.store.list("customer", where=lambda c: c.get("metadata", {}).get("revops_ref") == ref))) == 1
    assert len(stripe_objects(stripe, "subscription", engagement.billing_customer_id or "")) == 1
    tenant = flow_settings.entity("US01").erp_tenant_id
    assert len(_contacts_with_reference(xero, tenant, ref)) == 1
    assert len(_projects_with_code(xero, tenant, f"P-{deal_id}-US01")) == 1


def _company_id(result: QuoteToCashResult) -> str:
    return next(k.split(":")[2] for k in result.business_keys if k.startswith("hubspot:company:"))


def _xero(xero: SandboxHandle, kind: str, tenant: str, where: Any) -> list[dict[str, Any]]:
    return xero.store.list(kind, tenant=tenant, where=where)


def _contacts_with_reference(xero: SandboxHandle, tenant: str, reference: str) -> list[dict[str, Any]]:
    return _xero(xero, "contact", tenant, lambda c: c.get("ContactNumber") == reference)


def _projects_with_code(xero: SandboxHandle, tenant: str, code: str) -> list[dict[str, Any]]:
    return _xero(xero, "project", tenant, lambda p: str(p.get("name", "")).startswith(f"[{code}]"))


async def test_quote_to_cash_non_retryable_failure_compensates_everything_created(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot, stripe = sandboxes["hubspot"], sandboxes["stripe"]
    deal_id = seed_deal(hubspot, DealSpec(model="subscription"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)

    # Stripe refuses the subscription (a 400 is not retried): everything before it must be undone.
    with stripe.faults(error_rate=1.0, status=400, path_prefix="/v1/subscriptions", methods=["POST"]):
        await sign_when_out(handle, sandboxes["ironclad"])
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=60)

    # The run ends Failed in Temporal (not a green Completed), after compensation and write-back; the outcome
    # rides along as the error's details.
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ProvisioningFailed" and cause.non_retryable
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED
    result = QuoteToCashResult.model_validate(cause.details[0])
    assert result.outcome is Stage.FAILED and "Rejected" in result.reason and cause.message == result.reason
    assert deal_properties(hubspot, deal_id)["revops_status"] == "failed"
    await save_history(handle, "quote_to_cash_compensated")
    status = await _status(handle)
    assert status.exception_kind.value == "provisioning_failed"
    company_ref = f"hubspot-company-{_company_id(result)}-US01"
    [customer_id] = [k.split(":")[2] for k in result.business_keys if k.startswith("stripe:customer:")]
    assert (stripe.store.get("customer", customer_id) or {}).get("deleted"), "the Stripe customer was deleted"
    assert not stripe_objects(stripe, "subscription", customer_id)
    prices = stripe.store.list("price", where=lambda p: p.get("metadata", {}).get("revops_deal_id") == deal_id)
    assert prices and not any(p["active"] for p in prices), "the prices made for the deal were deactivated"
    xero, tenant = sandboxes["xero"], flow_settings.entity("US01").erp_tenant_id
    [project] = _projects_with_code(xero, tenant, f"P-{deal_id}-US01")
    assert project["status"] == "CLOSED", "the Xero project was closed"
    [contact] = _contacts_with_reference(xero, tenant, company_ref)
    assert contact["ContactStatus"] == "ARCHIVED", "the Xero contact created by this run was archived"
    props = deal_properties(hubspot, deal_id)
    assert props["revops_status"] == "failed" and "undone" in props["revops_exception"]


async def test_quote_to_cash_splits_a_two_entity_deal(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    lines = [Line("PLAT-PRO", "Platform seats", quantity="10", price="40.00", model="subscription",
                  frequency="monthly"),
             Line("MS-ROLLOUT-DE", "German rollout", price="8000.00", model="milestone", entity="EU01")]
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="subscription", lines=lines))

    result = await run_to_end(client, flow_settings, deal_id, sandboxes["ironclad"],
                              history="quote_to_cash_two_entities")

    assert result.outcome is Stage.PROVISIONED, result.reason
    assert [e.legal_entity for e in result.engagements] == ["US01", "EU01"]
    us, eu = result.engagements
    assert us.project.erp_tenant_id != eu.project.erp_tenant_id  # type: ignore[union-attr]
    assert us.billing_customer_id != eu.billing_customer_id
    assert [t.name for t in eu.project.tasks] == ["MS-ROLLOUT-DE German rollout"]  # type: ignore[union-attr]


async def test_quote_to_cash_found_by_any_business_id(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="fixed_fee"))
    result = await run_to_end(client, flow_settings, deal_id, sandboxes["ironclad"])
    [engagement] = result.engagements

    for key in (f"stripe:customer:{engagement.billing_customer_id}", f"xero:project:{engagement.project.erp_id}",
                f"ironclad:workflow:{result.contract.clm_workflow_id}", f"hubspot:deal:{deal_id}"):  # type: ignore[union-attr]
        found = await eventually(lambda key=key: _ids_with(client, key), lambda ids: bool(ids), what=key)
        assert found == [f"q2c-hubspot-{deal_id}"]


async def _ids_with(client: Client, key: str) -> list[str]:
    return [e.id async for e in client.list_workflows(f'BusinessKeys = "{key}"')]


async def test_quote_to_cash_approval_expires_after_reminders(
    time_skipping_env: Any, settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """Days of waiting pass in seconds on the time-skipping server: two reminders, then expiry."""
    hubspot = sandboxes["hubspot"]
    timed = settings.model_copy(update={"task_queue": f"ts-{deal_suffix()}", "approval_reminder_hours": 24.0,
                                        "approval_expiry_days": 3.0, "activity_retry_max_seconds": 2.0})
    client = time_skipping_env.client
    deal_id = seed_deal(hubspot, DealSpec(non_standard=True))
    async with _worker_with(client, timed, sandboxes):
        handle = await start_quote_to_cash(client, timed, deal_id)
        result: QuoteToCashResult = await handle.result()
        status = await _status(handle)
        await save_history(handle, "quote_to_cash_expired")

    assert result.outcome is Stage.EXPIRED
    assert status.approval is not None and status.approval.reminders_sent == 2
    assert status.approval.status == "expired"
    props = deal_properties(hubspot, deal_id)
    assert props["revops_approval_status"] == "expired" and props["revops_status"] == "expired"
    assert "no decision within 3 days" in props["revops_approval_note"]


def deal_suffix() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


async def test_quote_to_cash_new_run_for_a_provisioned_deal_changes_nothing(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    ironclad = sandboxes["ironclad"]
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="retainer"))
    first = await run_to_end(client, flow_settings, deal_id, ironclad)
    assert first.outcome is Stage.PROVISIONED

    # A late duplicate trigger after the first run finished starts nothing (the outcome is final) ...
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_quote_to_cash(client, flow_settings, deal_id, trigger="webhook")
    # ... and a run an operator reopens by mistake sees the write-back and stops.
    again = await start_quote_to_cash(client, flow_settings, deal_id, trigger="manual", reopen=True)
    second: QuoteToCashResult = await again.result()

    assert second.outcome is Stage.SKIPPED and "already provisioned" in second.reason
    # the re-run carries the IDs the first one wrote back, so it is findable and not an empty row in the UI
    assert {k for k in first.business_keys if not k.startswith(("stripe:product:", "stripe:price:"))} <= set(
        second.business_keys), (first.business_keys, second.business_keys)
    launched = [w for w in ironclad.store.list("workflow") if w.get("attributes", {}).get("revopsDealId") == deal_id]
    assert len(launched) == 1


async def test_quote_to_cash_upserts_search_attributes_once_per_task_and_only_changes(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:

    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="fixed_fee"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await sign_when_out(handle, sandboxes["ironclad"])
    assert (await handle.result()).outcome is Stage.PROVISIONED

    audit = await audit_upserts(handle, from_start=True)
    state, stages, upserts, tasks, events = audit.state, audit.stages, audit.upserts, audit.tasks, audit.events
    markers, local_steps = audit.markers, audit.local_steps
    assert markers == 0, "the unreleased version carries no patch markers"
    # Short reads and idempotent CRM writes run as local activities; the whole deal fits in 66 events (a fixed
    # fee: 3 of them start the one-off invoicing flow that finalizes its draft invoices when due; the customer
    # matches in the ERP and in billing are local reads, one marker each).
    assert local_steps >= 4 and events <= 66, f"{events} events, {local_steps} local steps"
    assert (state["Stage"], state["ExceptionKind"]) == ("provisioned", "")
    assert stages[0] == "loading" and stages[-1] == "provisioned"
    assert all(a != b for a, b in zip(stages, stages[1:], strict=False)), stages
    assert f"hubspot:deal:{deal_id}" in state["BusinessKeys"]  # type: ignore[operator]
    assert upserts < 12, f"{upserts} upserts in {tasks} workflow tasks"


async def test_quote_to_cash_compensates_master_data_whose_create_answer_was_lost(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """Xero and Stripe commit the contact and the customer but the answers are lost; the retries find them.
    They carry this run's ownership mark, so the compensation still archives and deletes them."""
    hubspot, stripe, xero = sandboxes["hubspot"], sandboxes["stripe"], sandboxes["xero"]
    deal_id = seed_deal(hubspot, DealSpec(model="subscription"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)

    with xero.faults(lost_answers=1, path_prefix="/api.xro/2.0/Contacts", methods=["PUT"]), \
            stripe.faults(error_rate=1.0, status=400, path_prefix="/v1/subscriptions", methods=["POST"],
                          lost_answers=1, lost_answer_path_prefix="/v1/customers"):
        await sign_when_out(handle, sandboxes["ironclad"])
        result = await asyncio.wait_for(deal_outcome(handle), timeout=90)
        assert xero.control.answers_to_lose == 0 and stripe.control.answers_to_lose == 0, "answers were lost"

    assert result.outcome is Stage.FAILED
    tenant = flow_settings.entity("US01").erp_tenant_id
    [contact] = _contacts_with_reference(xero, tenant, f"hubspot-company-{_company_id(result)}-US01")
    assert contact["ContactStatus"] == "ARCHIVED", "the contact this run made (answer lost) was archived"
    [customer_id] = [k.split(":")[2] for k in result.business_keys if k.startswith("stripe:customer:")]
    customer = stripe.store.get("customer", customer_id) or {}
    assert customer.get("deleted"), "the Stripe customer this run made (answer lost) was deleted"


async def test_quote_to_cash_leaves_master_data_it_did_not_create(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """A contact and customer that existed before the run (no mark of this run) survive its compensation."""
    hubspot, stripe, xero = sandboxes["hubspot"], sandboxes["stripe"], sandboxes["xero"]
    deal_id = seed_deal(hubspot, DealSpec(model="subscription"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    status = await wait_for_stage(handle, Stage.AWAITING_SIGNATURE)
    assert status.business_keys
    company_id = next(k.split(":")[2] for k in status.business_keys if k.startswith("hubspot:company:"))
    reference = f"hubspot-company-{company_id}-US01"
    tenant = flow_settings.entity("US01").erp_tenant_id
    async with httpx.AsyncClient(base_url=stripe.base_url, timeout=10,
                                 headers=stripe_auth(flow_settings)) as api:
        made = await api.post("/v1/customers", data={"name": "Pre-existing", "metadata[revops_ref]": reference})
        made.raise_for_status()
    erp = xero_from_settings(flow_settings)
    try:
        before = await erp.upsert_customer(tenant, Account(name=f"Pre-existing {company_id}"), contact=None,
                                           reference=reference, idempotency_key=f"finance-{deal_id}")
    finally:
        await erp.aclose()

    with stripe.faults(error_rate=1.0, status=400, path_prefix="/v1/subscriptions", methods=["POST"]):
        await sign_when_out(handle, sandboxes["ironclad"])
        result = await asyncio.wait_for(deal_outcome(handle), timeout=90)

    assert result.outcome is Stage.FAILED
    [contact] = _contacts_with_reference(xero, tenant, reference)
    assert contact["ContactID"] == before.erp_contact_id and contact["ContactStatus"] == "ACTIVE"
    assert not (stripe.store.get("customer", made.json()["id"]) or {}).get("deleted")


async def test_quote_to_cash_closed_deal_is_not_started_again_by_a_later_event(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """A replayed stage event after the rejection changes nothing; only an operator's reopen starts a run."""
    hubspot = sandboxes["hubspot"]
    deal_id = seed_deal(hubspot, DealSpec(payment_terms="90"))
    handle = await start_quote_to_cash(client, flow_settings, deal_id)
    await wait_for_stage(handle, Stage.AWAITING_APPROVAL)
    await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                await signed_decision(flow_settings, handle, DANA, approved=False,
                                                      note="terms too long"))
    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.REJECTED
    first_run = (await handle.describe()).run_id

    router = EventRouter(settings=flow_settings, clients=ClientProvider.fixed(client))
    replayed = DealStageReached(source_system="hubspot", source_event_id=f"replayed-{deal_id}",
                                occurred_at=datetime.now(UTC), correlation_id="c", deal_id=deal_id,
                                stage="approval")
    routed = await router.route(replayed)
    with pytest.raises(WorkflowAlreadyStartedError):
        await start_quote_to_cash(client, flow_settings, deal_id, trigger="webhook")

    assert routed.outcome is Outcome.DUPLICATE and "closed" in routed.reason
    described = await client.get_workflow_handle(f"q2c-hubspot-{deal_id}").describe()
    assert described.run_id == first_run, "no new run"
    props = deal_properties(hubspot, deal_id)
    assert props["revops_status"] == "rejected" and props["revops_approval_note"] == f"{DANA}: terms too long"

    reopened = await start_quote_to_cash(client, flow_settings, deal_id, reopen=True)
    assert reopened.result_run_id != first_run
    await wait_for_stage(reopened, Stage.AWAITING_APPROVAL)
    await reopened.terminate("test over")
