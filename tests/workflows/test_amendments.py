"""Amendment propagation end to end: quote-to-cash provisions a contract, the CLM executes amendments, and
``ContractAmendmentsWorkflow`` (fed by signal-with-start) propagates them to the ERP, billing and the CRM.
The real worker, the real dev server, the emulators over HTTP.

The propagation cases run against every CRM/CLM pair the stack presets name (``pair``, parametrised in
tests/workflows/conftest.py): the deal is seeded by the CRM's salesperson, signed and amended in the CLM by its
people, and what reaches the deal is read back through the CRM. Histories are saved from the default pair."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from canonical import ContractTerms, Money
from connectors.acts import DealDraft
from connectors.ironclad.mapping import terms_to_attributes
from runtime.launch import signal_amendment
from settings import Settings
from tests.helpers.activities import role_activities
from tests.helpers.approvals import DANA, signed_decision
from tests.helpers.deals import DealSpec, seed_deal
from tests.helpers.histories import save_history
from tests.helpers.pairs import Pair, crm_clm_stacks
from tests.helpers.servers import SandboxHandle
from tests.helpers.upserts import audit_upserts
from tests.helpers.waiting import eventually
from tests.workflows.test_quote_to_cash import run_to_end, stripe_objects
from worker import open_connectors
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.models import (
    AmendmentStage,
    ContractAmendmentsStatus,
    GapResolution,
    QuoteToCashResult,
)
from workflows.quote_to_cash import QuoteToCashWorkflow

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


@pytest.fixture
def amend_settings(flow_settings: Settings) -> Settings:
    return flow_settings.model_copy(update={"amendment_gap_timeout_seconds": 2.0})


def _worker(client: Client, settings: Settings, connectors: Any) -> Worker:
    return Worker(client, task_queue=settings.task_queue,
                  workflows=[QuoteToCashWorkflow, ContractAmendmentsWorkflow],
                  activities=role_activities(settings, crm=connectors.crm, clm=connectors.clm,
                                             billing=connectors.billing, erp=connectors.erp))


@pytest_asyncio.fixture
async def pair_worker(client: Client, pair: Pair) -> AsyncIterator[Worker]:
    """The worker for the pair's settings (its CRM and CLM adapters), amendments gap timeout as above."""
    pair.settings = pair.settings.model_copy(update={"amendment_gap_timeout_seconds": 2.0})
    async with open_connectors(pair.settings) as connectors, _worker(client, pair.settings, connectors) as w:
        yield w


@pytest_asyncio.fixture
async def amend_worker(client: Client, amend_settings: Settings, sandboxes: dict[str, SandboxHandle]
                       ) -> AsyncIterator[Worker]:
    async with open_connectors(amend_settings) as connectors, _worker(client, amend_settings, connectors) as w:
        yield w


# -- helpers ------------------------------------------------------------------------------------------
async def provision(client: Client, settings: Settings, sandboxes: dict[str, SandboxHandle],
                    spec: DealSpec) -> QuoteToCashResult:
    deal_id = seed_deal(sandboxes["hubspot"], spec)
    result = await run_to_end(client, settings, deal_id, sandboxes["ironclad"])
    assert result.outcome.value == "provisioned", result.reason
    assert result.contract and result.contract.clm_record_id and result.contract.terms
    return result


def amend(ironclad: SandboxHandle, record_id: str, sequence: int, before: ContractTerms,
          after: ContractTerms) -> str:
    """Execute amendment ``sequence`` in Ironclad with the properties that changed; its record ID."""
    old, new = terms_to_attributes(before), terms_to_attributes(after)
    changed = {k: v for k, v in new.items() if old.get(k) != v}
    response = httpx.post(f"{ironclad.base_url}/_sandbox/records/{record_id}/amendments",
                          json={"sequence": sequence, "properties": changed}, timeout=10)
    response.raise_for_status()
    return str(response.json()["recordId"])


def with_seats(terms: ContractTerms, seats: int, end_date: date | None = None) -> ContractTerms:
    """The terms with ``seats`` seats (and a new end date), valued over the term as the CLM records it."""
    [charge] = terms.recurring
    amended = charge.model_copy(update={"quantity": Decimal(seats)})
    end = end_date or terms.end_date
    return terms.model_copy(update={"recurring": [amended], "end_date": end,
                                    "total_value": amended.over_term(terms.start_date, end)})


async def status_of(handle: WorkflowHandle) -> ContractAmendmentsStatus:
    return await handle.query(ContractAmendmentsWorkflow.status)  # type: ignore[no-any-return]


async def until(handle: WorkflowHandle, check: Any, what: str, timeout: float = 60) -> ContractAmendmentsStatus:
    return await eventually(lambda: status_of(handle), check, timeout=timeout, what=what)


def applied(*sequences: int) -> Any:
    return lambda s: [h.sequence for h in s.history] == list(sequences) and s.current is None


def subscription_item(stripe: SandboxHandle, customer_id: str) -> dict[str, Any]:
    [subscription] = stripe_objects(stripe, "subscription", customer_id)
    [item] = subscription["items"]["data"]
    return dict(item)


def xero_project(xero: SandboxHandle, tenant: str, project_id: str) -> dict[str, Any]:
    return dict(xero.store.get("project", project_id, tenant=tenant) or {})


async def attrs(handle: WorkflowHandle) -> dict[str, Any]:
    description = await handle.describe()
    return {k.name: v for k, v in description.typed_search_attributes}  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------
DEFAULT_PAIR = crm_clm_stacks()[0]


async def save_default(pair: Pair, handle: WorkflowHandle, name: str) -> None:
    """Saved histories come from the default pair (one history per case, replayed by test_replay.py)."""
    if pair.stack == DEFAULT_PAIR:
        await save_history(handle, name)


async def provisioned(client: Client, pair: Pair, draft: DealDraft | None = None
                      ) -> tuple[QuoteToCashResult, str, ContractTerms]:
    """A provisioned deal of the pair: the result, the executed contract's record ID and its terms."""
    _seeded, result = await pair.provision(client, draft or DealDraft(model="subscription"))
    record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
    assert record_id and signed
    return result, record_id, signed


async def test_amendments_scope_expansion_propagates_to_every_system(
    client: Client, pair: Pair, pair_worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    stripe, xero = sandboxes["stripe"], sandboxes["xero"]
    result, record_id, signed = await provisioned(client, pair)
    [engagement] = result.engagements
    expanded = with_seats(signed, 30, signed.end_date.replace(year=2028))  # type: ignore[union-attr]
    amendment_id = await pair.amend(record_id, 1, signed, expanded)

    # the CLM executed it an hour before its webhook reached us: the cycle time counts from the execution
    executed_at = datetime.now(UTC) - timedelta(hours=1)
    handle = await signal_amendment(client, pair.settings, record_id, sequence=1, clm_amendment_id=amendment_id,
                                    executed_at=executed_at)
    status = await until(handle, applied(1), "amendment 1 applied")

    assert handle.id == f"contract-{pair.clm_name}-{record_id}"
    [record] = status.history
    assert record.outcome == "applied" and record.executed_at == executed_at and record.applied_at is not None
    assert record.cycle_time_seconds == (record.applied_at - executed_at).total_seconds()
    # an hour, plus the propagation itself (seconds here): never from the signal's arrival
    assert 3600 <= record.cycle_time_seconds < 3600 + 300
    assert status.terms == expanded and status.next_sequence == 2 and status.stage is AmendmentStage.WAITING
    item = subscription_item(stripe, engagement.billing_customer_id or "")
    assert item["quantity"] == 30, [t.note for t in status.timeline]
    [subscription] = stripe_objects(stripe, "subscription", engagement.billing_customer_id or "")
    assert subscription["cancel_at"] is not None and subscription["cancel_at"] > 1830000000  # moved into 2028
    project = xero_project(xero, engagement.project.erp_tenant_id, engagement.project.erp_id)  # type: ignore[union-attr,arg-type]
    # 30 seats x 45.00 a month over the 24 months to 2028-12-31 (issue 24: the term, not one month)
    assert Decimal(project["estimate"]["value"]) == Decimal("32400.00")
    assert project["deadlineUtc"].startswith("2028-12-31")
    deal_id = engagement.deal_crm_id
    assert Decimal(await pair.deal_field(deal_id, "contract_value")) == Decimal("32400")
    assert Decimal(await pair.deal_field(deal_id, "forecast_amount")) == Decimal("32400")
    assert await pair.deal_field(deal_id, "amendment_sequence") == "1"
    assert await pair.deal_field(deal_id, "amendment_status") == "applied"
    assert (await pair.deal_field(deal_id, "forecast_end_date")).startswith("2028-12-31")
    found = await eventually(lambda: _ids_with(client, f"{pair.clm_name}:record:{amendment_id}"), bool,
                             what="keys")
    assert found == [handle.id]
    await save_default(pair, handle, "amendments_scope_expansion")
    await handle.terminate("test done")


async def test_amendments_upsert_search_attributes_once_per_task_and_only_changes(
    client: Client, pair: Pair, pair_worker: Worker
) -> None:
    """Every upsert is a history event and a visibility write: the amendments run batches them as quote-to-cash
    does (at most one per workflow task, none that changes nothing), and the attributes still end right."""
    result, record_id, signed = await provisioned(client, pair)
    amendment_id = await pair.amend(record_id, 1, signed, with_seats(signed, 30))
    handle = await signal_amendment(client, pair.settings, record_id, sequence=1, clm_amendment_id=amendment_id)
    await until(handle, applied(1), "amendment 1 applied")

    audit = await audit_upserts(handle)
    state, stages, upserts, tasks = audit.state, audit.stages, audit.upserts, audit.tasks
    assert (state["Stage"], state["ExceptionKind"]) == ("waiting", "")
    assert stages[0] == "loading" and "applying" in stages, stages
    assert all(a != b for a, b in zip(stages, stages[1:], strict=False)), stages
    assert {f"{pair.clm_name}:record:{record_id}", f"{pair.clm_name}:record:{amendment_id}",
            f"{pair.crm_name}:deal:{result.engagements[0].deal_crm_id}"} <= set(state["BusinessKeys"])
    assert state["LegalEntity"] == result.engagements[0].legal_entity and state["DealSize"]
    assert upserts <= tasks, f"{upserts} upserts in {tasks} workflow tasks"
    await handle.terminate("test done")


async def _ids_with(client: Client, key: str) -> list[str]:
    return [e.id async for e in client.list_workflows(f'BusinessKeys = "{key}"')]


async def test_amendments_out_of_order_and_twice_apply_once_each_in_order(
    client: Client, pair: Pair, pair_worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    stripe = sandboxes["stripe"]
    result, record_id, signed = await provisioned(client, pair)
    customer_id = result.engagements[0].billing_customer_id or ""
    steps = [signed, with_seats(signed, 25), with_seats(signed, 30), with_seats(signed, 40)]
    ids = {n: await pair.amend(record_id, n, steps[n - 1], steps[n]) for n in (1, 2, 3)}

    handle = None
    for sequence in (3, 1, 3, 2, 1, 2):
        handle = await signal_amendment(client, pair.settings, record_id, sequence=sequence,
                                        clm_amendment_id=ids[sequence])
    assert handle is not None
    status = await until(handle, applied(1, 2, 3), "amendments 1, 2, 3 applied in order")

    assert status.duplicates_ignored == 3
    assert [h.outcome for h in status.history] == ["applied"] * 3
    assert all(h.deliveries == 2 for h in status.history)
    [subscription] = stripe_objects(stripe, "subscription", customer_id)
    assert subscription["items"]["data"][0]["quantity"] == 40
    updates = [e for e in stripe.store.list("event", where=lambda e: e["type"] == "customer.subscription.updated"
                                            and e["data"]["object"]["id"] == subscription["id"])]
    quantities = [e["data"]["object"]["items"]["data"][0]["quantity"] for e in updates]
    assert [q for q in quantities if q in (25, 30, 40)] == [25, 30, 40], "one item update per amendment, in order"
    await save_default(pair, handle, "amendments_out_of_order")
    await handle.terminate("test done")


async def test_amendments_gap_times_out_into_exception_and_is_resolved_from_the_clm(
    client: Client, pair: Pair, pair_worker: Worker
) -> None:
    result, record_id, signed = await provisioned(client, pair)
    first = with_seats(signed, 22)
    await pair.amend(record_id, 1, signed, first)
    second_id = await pair.amend(record_id, 2, first, with_seats(signed, 24))

    # Amendment 1's webhook is lost: only 2 arrives.
    handle = await signal_amendment(client, pair.settings, record_id, sequence=2, clm_amendment_id=second_id)
    status = await until(handle, lambda s: s.stage is AmendmentStage.AMENDMENT_GAP, "gap exception", timeout=30)

    assert status.exception_kind.value == "amendment_gap" and status.missing_sequences == [1]
    assert status.history == []
    found = await eventually(lambda: attrs(handle), lambda a: a.get("ExceptionKind") == "amendment_gap",
                             what="ExceptionKind search attribute")
    assert found["Stage"] == "amendment_gap"
    deal_id = result.engagements[0].deal_crm_id
    await eventually(lambda: pair.deal_field(deal_id, "revops_exception"), lambda text: "Amendment gap" in text,
                     what="the gap named on the deal in the CRM")

    resolved = await handle.execute_update(ContractAmendmentsWorkflow.resolve_gap, GapResolution(operator="ops"))

    assert resolved.found == [1] and resolved.still_missing == []
    status = await until(handle, applied(1, 2), "amendments applied after the gap")
    assert status.exception_kind.value == "" and status.terms is not None
    assert status.terms.recurring[0].quantity == 24
    await save_default(pair, handle, "amendments_gap")
    await handle.terminate("test done")


@pytest.mark.parametrize("approved", [True, False])
async def test_amendments_decrease_waits_for_finance_decision(
    approved: bool, client: Client, pair: Pair, pair_worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    stripe = sandboxes["stripe"]
    result, record_id, signed = await provisioned(client, pair)
    customer_id = result.engagements[0].billing_customer_id or ""
    await pair.amend(record_id, 1, signed, with_seats(signed, 10))

    handle = await signal_amendment(client, pair.settings, record_id, sequence=1)
    status = await until(handle, lambda s: s.stage is AmendmentStage.AWAITING_APPROVAL, "awaiting approval")
    assert status.current and status.current.approval
    assert any("decreases" in r for r in status.current.approval.reasons)
    deal_id = result.engagements[0].deal_crm_id
    # the stage moves before the CRM write-back lands: wait for the CRM, never read it at once
    await eventually(lambda: pair.deal_field(deal_id, "approval_status"), lambda s: s == "pending",
                     what="approval status pending in the CRM")
    assert subscription_item(stripe, customer_id)["quantity"] == 20, "nothing changes before finance decides"

    outcome = await handle.execute_update(ContractAmendmentsWorkflow.decide_approval,
                                          await signed_decision(pair.settings, handle, DANA, approved=approved,
                                                                note="ok"))

    assert outcome.accepted and outcome.status == ("approved" if approved else "rejected")
    status = await until(handle, applied(1), "decision taken")
    [record] = status.history
    decided = "approved" if approved else "rejected"
    await eventually(lambda: pair.deal_field(deal_id, "approval_status"), lambda s: s == decided,
                     what=f"approval status {decided} in the CRM")
    if approved:
        assert record.outcome == "applied" and subscription_item(stripe, customer_id)["quantity"] == 10
        # 10 seats x 45.00 x 12 months
        assert Decimal(await pair.deal_field(deal_id, "contract_value")) == 5400
        assert status.terms is not None and status.terms.total_value == Money.of("5400", "USD")
    else:
        assert record.outcome == "rejected" and subscription_item(stripe, customer_id)["quantity"] == 20
        assert await pair.deal_field(deal_id, "amendment_status") == "rejected"
        assert status.terms == signed
    assert DANA in await pair.deal_field(deal_id, "approval_note")
    if approved:
        await save_default(pair, handle, "amendments_decrease_approved")
    await handle.terminate("test done")


async def test_amendments_vendor_outage_mid_propagation_retried_without_duplicates(
    client: Client, pair: Pair, pair_worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    stripe, xero = sandboxes["stripe"], sandboxes["xero"]
    result, record_id, signed = await provisioned(client, pair, DealDraft(model="milestone"))
    [engagement] = result.engagements
    extra = signed.milestones[0].model_copy(update={"code": "MS-EXTRA", "name": "Extra phase",
                                                    "amount": Money.of("5000", "USD")})
    expanded = signed.model_copy(update={"milestones": [*signed.milestones, extra],
                                         "total_value": signed.total_value + extra.amount})
    await pair.amend(record_id, 1, signed, expanded)

    with stripe.faults(error_rate=0.25, status=503, seed=3), xero.faults(error_rate=0.25, status=503, seed=5):
        handle = await signal_amendment(client, pair.settings, record_id, sequence=1)
        status = await until(handle, applied(1), "applied through the outage", timeout=120)

    assert stripe.control.stats.faults > 0 and xero.control.stats.faults > 0, "the outage really happened"
    assert status.history[0].outcome == "applied"
    invoices = stripe_objects(stripe, "invoice", engagement.billing_customer_id or "")
    extra_invoices = [i for i in invoices if i["metadata"].get("revops_milestone") == "MS-EXTRA"]
    assert len(extra_invoices) == 1 and extra_invoices[0]["total"] == 500000
    assert len(invoices) == 3
    tenant = engagement.project.erp_tenant_id  # type: ignore[union-attr]
    tasks = xero.store.list("task", tenant=tenant, where=lambda t: t["projectId"] == engagement.project.erp_id)  # type: ignore[union-attr]
    assert [t["name"] for t in tasks].count("MS-EXTRA Extra phase") == 1
    project = xero_project(xero, tenant, engagement.project.erp_id)  # type: ignore[union-attr,arg-type]
    assert Decimal(project["estimate"]["value"]) == Decimal("35000.00")
    await save_default(pair, handle, "amendments_outage")
    await handle.terminate("test done")


async def test_amendments_webhook_after_propagation_failed_resumes_instead_of_counting_a_duplicate(
    client: Client, pair: Pair, pair_worker: Worker
) -> None:
    _result, record_id, signed = await provisioned(client, pair)

    # an operator announces amendment 1 before the CLM has it: it cannot be read, the run waits visibly
    handle = await signal_amendment(client, pair.settings, record_id, sequence=1,
                                    source_event_id=f"cli-{record_id}-1")
    await until(handle, lambda s: s.stage.value == "propagation_failed", "propagation failed")

    # the CLM executes it; its webhook for the same amendment resumes the propagation (no retry needed)
    amendment_id = await pair.amend(record_id, 1, signed, with_seats(signed, 30))
    await signal_amendment(client, pair.settings, record_id, sequence=1, clm_amendment_id=amendment_id,
                           source_event_id=f"webhook-{amendment_id}")
    status = await until(handle, applied(1), "applied after the webhook")

    [record] = status.history
    assert (record.outcome, record.clm_amendment_id, record.deliveries) == ("applied", amendment_id, 2)
    assert status.duplicates_ignored == 0 and status.exception_kind.value == ""
    await handle.terminate("test done")


async def test_amendments_erp_budget_changed_in_xero_becomes_ownership_conflict(
    client: Client, pair: Pair, pair_worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    xero = sandboxes["xero"]
    result, record_id, signed = await provisioned(client, pair)
    [engagement] = result.engagements
    project = engagement.project
    assert project and project.erp_id
    # A project manager raises the budget in Xero by hand.
    held = xero_project(xero, project.erp_tenant_id, project.erp_id)
    held["estimate"] = {"currency": "USD", "value": "2000.00"}
    xero.store.put("project", project.erp_id, held, tenant=project.erp_tenant_id)
    await pair.amend(record_id, 1, signed, with_seats(signed, 30))

    handle = await signal_amendment(client, pair.settings, record_id, sequence=1)
    status = await until(handle, lambda s: s.stage is AmendmentStage.OWNERSHIP_CONFLICT, "ownership conflict")

    assert status.exception_kind.value == "ownership_conflict" and "2000" in status.conflict
    assert xero_project(xero, project.erp_tenant_id, project.erp_id)["estimate"]["value"] == "2000.00"
    await handle.execute_update(ContractAmendmentsWorkflow.resolve_conflict,
                                {"operator": "pm", "keep_erp_value": True})
    status = await until(handle, applied(1), "applied keeping the ERP budget")
    assert xero_project(xero, project.erp_tenant_id, project.erp_id)["estimate"]["value"] == "2000.00"
    assert status.exception_kind.value == ""
    await handle.terminate("test done")


async def test_amendments_continue_as_new_keeps_terms_and_sequence(
    client: Client, amend_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    settings = amend_settings.model_copy(update={"amendments_continue_as_new_after": 2})
    async with open_connectors(settings) as connectors, _worker(client, settings, connectors):
        ironclad, stripe = sandboxes["ironclad"], sandboxes["stripe"]
        result = await provision(client, settings, sandboxes, DealSpec(model="subscription"))
        record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
        assert record_id and signed
        steps = [signed, *(with_seats(signed, 20 + n) for n in range(1, 6))]
        handle = None
        for n in range(1, 6):
            amend(ironclad, record_id, n, steps[n - 1], steps[n])
            handle = await signal_amendment(client, settings, record_id, sequence=n)
        assert handle is not None
        first_run = (await handle.describe()).run_id
        status = await until(handle, applied(1, 2, 3, 4, 5), "five amendments over several runs", timeout=90)
        # A duplicate of an amendment applied in an earlier run is still recognised.
        await signal_amendment(client, settings, record_id, sequence=1)
        status = await until(handle, lambda s: s.duplicates_ignored >= 1, "old duplicate ignored")

        assert status.runs >= 3 and (await handle.describe()).run_id != first_run
        assert status.next_sequence == 6 and status.terms == steps[5]
        assert [h.sequence for h in status.history] == [1, 2, 3, 4, 5]
        assert subscription_item(stripe, result.engagements[0].billing_customer_id or "")["quantity"] == 25
        await save_history(handle, "amendments_continue_as_new")
        await handle.terminate("test done")
