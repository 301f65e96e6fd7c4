"""Delegation of authority on ``decide_approval``, on the time-skipping server with the production worker:
signed approvals only, registered approvers within their limits, never the deal's owner, two distinct
approvers above the dual threshold, and amendment approvals that expire."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from canonical.authority import Approver
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.approvals import CHRIS, DANA, SAM, pending_request, sign_request, signed_decision
from tests.helpers.deals import DealSpec, Line, deal_properties, seed_deal
from tests.helpers.histories import save_history
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from worker import build_worker, open_connectors
from workflows.models import ApprovalDecision, ApprovalState, QuoteToCashResult, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

PAT = "pat@revops.example"  # a second unlimited approver (treasurer) for dual approval


def discounted(discount: str, *, quantity: str = "100", price: str = "100.00") -> DealSpec:
    """A one-year subscription billed annually: its amount is quantity x price less discount (one period)."""
    return DealSpec(lines=[Line("PLAT-ENT", "Enterprise seats", quantity=quantity, price=price, discount=discount,
                                model="subscription", frequency="annually")])


@pytest.fixture
def ts_settings(settings: Settings) -> Settings:
    approvers = [*settings.approvers, Approver(id=PAT, name="Pat (Treasurer)", role="treasurer")]
    return settings.model_copy(update={
        "task_queue": f"authority-{uuid.uuid4()}", "activity_retry_max_seconds": 2.0,
        "contract_poll_interval_seconds": 1.0, "approvers": approvers})


@pytest_asyncio.fixture
async def ts_worker(time_skipping_env: WorkflowEnvironment, ts_settings: Settings,
                    sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[Worker]:
    async with open_connectors(ts_settings) as connectors, \
            build_worker(time_skipping_env.client, ts_settings, connectors) as w:
        yield w


async def _status(handle: WorkflowHandle) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


async def awaiting_approval(client: Client, settings: Settings, hubspot: SandboxHandle,
                            spec: DealSpec) -> WorkflowHandle:
    deal_id = seed_deal(hubspot, spec)
    handle = await start_quote_to_cash(client, settings, deal_id)
    await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_APPROVAL, what="awaiting approval")
    return handle


@pytest.fixture
def sign(time_skipping_env: WorkflowEnvironment, ts_settings: Settings) -> Any:
    """Decisions signed on the time-skipping server's clock (ahead of the wall clock once a test skipped time)."""

    async def make(handle: WorkflowHandle, approver: str, *, settings: Settings | None = None,
                   ago: timedelta = timedelta(0), workflow_id: str | None = None,
                   request: ApprovalState | None = None, **kwargs: Any) -> ApprovalDecision:
        now = await time_skipping_env.get_current_time() - ago
        approval = request if request is not None else await pending_request(handle)
        return sign_request(settings or ts_settings, workflow_id or handle.id, approval, approver, now=now,
                            **kwargs)

    return make


async def refusal(handle: WorkflowHandle, decision: ApprovalDecision | dict[str, Any]) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("decide_approval", decision)
    return str(refused.value.cause)


# ---------------------------------------------------------------------------------------------------
async def test_authority_refuses_an_unsigned_decision_naming_any_approver(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """The issue's raw update: a made-up approver, no API signature, a 60 % discount."""
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"], discounted("60"))

    reason = await refusal(handle, {"approver": "CFO (definitely)", "approved": True, "note": ""})
    assert "no signed approval" in reason
    # a real approver's name, but not signed by the API, is refused the same way
    assert "no signed approval" in await refusal(handle, ApprovalDecision(approver=CHRIS, approved=True))

    status = await _status(handle)
    assert status.approval is not None and status.approval.status == "pending" and status.approval.decisions == []
    await handle.terminate("test done")


async def test_authority_refuses_a_forged_or_tampered_or_stale_signature(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"], discounted("20"))
    forger = ts_settings.model_copy(update={"approval_signing_keys": [
        "dev:" + base64.b64encode(b"m" * 32).decode()]})

    assert "signature does not match" in await refusal(handle, await sign(handle, DANA, settings=forger))
    tampered = (await sign(handle, DANA, approved=False)).model_copy(update={"approved": True})
    assert "signature does not match" in await refusal(handle, tampered)
    other_workflow = await sign(handle, DANA, workflow_id="q2c-hubspot-other")
    assert "signature does not match" in await refusal(handle, other_workflow)
    stale = await sign(handle, DANA, ago=timedelta(hours=1))
    assert "expired" in await refusal(handle, stale)
    assert (await _status(handle)).approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_authority_refuses_an_unknown_approver_even_when_signed(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"], discounted("20"))

    reason = await refusal(handle, await sign(handle, "mallory@laptop"))

    assert "'mallory@laptop' is not a registered approver" in reason
    await handle.terminate("test done")


async def test_authority_refuses_an_approver_over_their_limit_then_a_senior_one_approves(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    client = time_skipping_env.client
    # 25 % discount: over sales ops' 10 %; 40,000 x 0.75 = 30,000 USD also over their 25,000
    handle = await awaiting_approval(client, ts_settings, sandboxes["hubspot"], discounted("25", quantity="400"))

    reason = await refusal(handle, await sign(handle, SAM))
    assert "discount 25% is over Sam (Sales Ops)'s limit of 10%" in reason

    outcome = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                          await sign(handle, DANA, note="strategic",
                                                          channel="inbox"))
    assert outcome.status == "approved"
    status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out")
    [recorded] = status.approval.decisions  # type: ignore[union-attr]
    assert (recorded.approver, recorded.channel, recorded.subject) == (DANA, "inbox", DANA)
    assert any(f"approved by {DANA} via inbox" in t.note for t in status.timeline)
    await handle.terminate("test done")


async def test_authority_refuses_an_amount_over_the_limit(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    # 1,500 x 100 = 150,000 USD at 5 %: within Dana's discount, over her 100,000
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"],
                                     discounted("5", quantity="1500"))

    reason = await refusal(handle, await sign(handle, DANA))

    assert "over Dana (Finance)'s limit of 100000 USD" in reason
    await handle.terminate("test done")


async def test_authority_refuses_the_deals_own_owner(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    spec = discounted("20")
    spec.owner = "90002"  # Dana's HubSpot owner ID
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"], spec)

    reason = await refusal(handle, await sign(handle, DANA))

    assert "owns this deal" in reason and "segregation of duties" in reason
    outcome = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                          await sign(handle, CHRIS, approved=False, note="no"))
    assert outcome.status == "rejected"
    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.REJECTED


async def test_authority_dual_approval_waits_for_two_distinct_approvers(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot = sandboxes["hubspot"]
    # 3,000 x 100 = 300,000 USD: above the 250,000 dual-approval threshold
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, hubspot, discounted("0", quantity="3000"))
    status = await _status(handle)
    assert status.approval is not None and status.approval.required == 2
    assert any("two approvers" in r for r in status.approval.reasons)

    first = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                        await sign(handle, CHRIS, note="fine by me"))
    assert (first.status, first.approvals, first.required) == ("pending", 1, 2)
    assert "already decided" in await refusal(handle, await sign(handle, CHRIS))
    status = await _status(handle)
    assert status.stage is Stage.AWAITING_APPROVAL and status.approval.status == "pending"  # type: ignore[union-attr]

    second = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                         await sign(handle, PAT, note="agreed"))

    assert (second.status, second.approvals) == ("approved", 2)
    status = await eventually(lambda: _status(handle), lambda s: s.stage is Stage.AWAITING_SIGNATURE,
                              what="contract out after the second approval")
    assert [d.approver for d in status.approval.decisions] == [CHRIS, PAT]  # type: ignore[union-attr]
    assert deal_properties(hubspot, status.deal_id)["revops_approval_note"] == f"{CHRIS}, {PAT}: agreed"
    await save_history(handle, "quote_to_cash_dual_approval")
    await handle.terminate("test done")


async def test_authority_a_rejection_by_one_of_two_approvers_rejects(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"],
                                     discounted("0", quantity="3000"))
    await handle.execute_update(QuoteToCashWorkflow.decide_approval, await sign(handle, CHRIS))

    await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                await sign(handle, PAT, approved=False, note="too big"))

    result: QuoteToCashResult = await handle.result()
    assert result.outcome is Stage.REJECTED and "too big" in result.reason


def test_authority_limits_are_per_currency() -> None:
    from canonical.authority import ApprovalAuthority, ApprovalFacts, authority_refusal
    from canonical.money import Money

    dana = Approver(id=DANA, name="Dana", role="finance_manager", max_amount={"usd": Decimal(100)})
    authority = ApprovalAuthority(approvers=[dana])
    eur = ApprovalFacts(amount=Money.of("10", "EUR"), legal_entity="EU01")
    assert authority_refusal(authority, eur, DANA, []) == "Dana has no approval limit in EUR"
    usd = ApprovalFacts(amount=Money.of("100", "USD"))
    assert authority_refusal(authority, usd, DANA, []) is None


async def test_authority_raw_update_from_a_plain_client_is_refused(
    temporal_env: WorkflowEnvironment, worker: Worker, flow_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """Anyone who reaches Temporal with a plain SDK client (no converter of ours, any identity) is refused."""
    client = temporal_env.client
    handle = await awaiting_approval(client, flow_settings, sandboxes["hubspot"], discounted("60"))
    mallory = await Client.connect(client.service_client.config.target_host, namespace=client.namespace,
                                   identity="mallory@laptop")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await mallory.get_workflow_handle(handle.id).execute_update(
            "decide_approval", {"approver": "CFO (definitely)", "approved": True})

    # the reason is encrypted like every failure message (a client without the codec key sees it encoded)
    assert "no signed approval" in str(refused.value.cause) or "Encoded failure" in str(refused.value.cause)
    status = await _status(handle)
    assert status.stage is Stage.AWAITING_APPROVAL and status.approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


# -- amendment decreases: same rules, and they expire -------------------------------------------------
async def amendment_awaiting_approval(client: Client, settings: Settings, sandboxes: dict[str, SandboxHandle],
                                      *, owner: str | None = None) -> WorkflowHandle:
    from tests.workflows.test_amendments import amend, provision, signal_amendment, until, with_seats

    spec = DealSpec(model="subscription")
    spec.owner = owner
    result = await provision(client, settings, sandboxes, spec)
    record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
    assert record_id and signed
    amend(sandboxes["ironclad"], record_id, 1, signed, with_seats(signed, 10))
    handle = await signal_amendment(client, settings, record_id, sequence=1)
    await until(handle, lambda s: s.current is not None and s.current.approval is not None, "awaiting approval")
    return handle


async def test_authority_amendment_decrease_follows_the_same_rules(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    from tests.workflows.test_amendments import applied, until

    handle = await amendment_awaiting_approval(time_skipping_env.client, ts_settings, sandboxes, owner="90002")

    assert "no signed approval" in await refusal(handle, {"approver": "CFO (definitely)", "approved": True})
    assert "segregation of duties" in await refusal(handle, await sign(handle, DANA))
    assert "not a registered approver" in await refusal(handle, await sign(handle, "eve@x"))
    await handle.execute_update("decide_approval", await sign(handle, SAM, note="ok"))

    status = await until(handle, applied(1), "amendment applied")
    [record] = status.history
    assert record.outcome == "applied"
    [decided] = record.approval.decisions  # type: ignore[union-attr]
    assert (decided.approver, decided.subject, decided.channel) == (SAM, SAM, "test")
    await handle.terminate("test done")


async def test_authority_amendment_approval_expires_and_is_written_back(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """On the dev server with an expiry of seconds (the time-skipping server cannot skip while other tests'
    leftovers hold its clock): reminded, expired, not propagated, written back."""
    from tests.workflows.test_amendments import applied, subscription_item, until
    from tests.workflows.test_amendments import save_history as save_amendments_history

    hubspot, stripe = sandboxes["hubspot"], sandboxes["stripe"]
    quick = flow_settings.model_copy(update={"amendment_approval_expiry_days": 4 / 86400,
                                             "amendment_approval_reminder_hours": 1.5 / 3600})
    async with open_connectors(quick) as connectors, build_worker(client, quick, connectors):
        handle = await amendment_awaiting_approval(client, quick, sandboxes)
        status = await until(handle, applied(1), "amendment expired")
        # a proof for the expired request itself (its run, request and terms) is refused: nothing is pending
        late = sign_request(quick, handle.id, status.history[0].approval, DANA)  # type: ignore[arg-type]
        assert "no approval is pending" in await refusal(handle, late)
        await save_amendments_history(handle, "amendments_approval_expired")
        await handle.terminate("test done")

    [record] = status.history
    assert record.outcome == "expired" and record.approval is not None and record.approval.status == "expired"
    assert record.approval.reminders_sent >= 1
    customer_id = status.provisioned[0].billing_customer_id or ""
    assert subscription_item(stripe, customer_id)["quantity"] == 20, "an expired decrease is not propagated"
    props = deal_properties(hubspot, status.deal_id)
    assert props["revops_approval_status"] == "expired" and props["revops_amendment_status"] == "expired"
    assert "Amendment 1: no decision within" in props["revops_approval_note"]
    assert "decide_approval" not in status.waiting_for


async def test_authority_raw_temporal_cli_update_is_refused(
    temporal_env: WorkflowEnvironment, worker: Worker, flow_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """The issue's own command: ``temporal workflow update execute`` straight at the server."""
    import asyncio

    from runtime.devserver import dev_server_path

    client = temporal_env.client
    handle = await awaiting_approval(client, flow_settings, sandboxes["hubspot"], discounted("60"))
    cli = await asyncio.create_subprocess_exec(
        dev_server_path(), "workflow", "update", "execute", "--address", client.service_client.config.target_host,
        "--namespace", client.namespace, "--workflow-id", handle.id, "--identity", "mallory@laptop",
        "--name", "decide_approval", "--input", '{"approver":"CFO (definitely)","approved":true}',
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(cli.communicate(), timeout=60)

    assert cli.returncode != 0, out
    assert "no signed approval" in (out + err).decode() or "Encoded failure" in (out + err).decode()
    status = await _status(handle)
    assert status.stage is Stage.AWAITING_APPROVAL and status.approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


# -- issue 23: a proof cannot be spliced, replayed or carried to other terms, runs or requests ---------
async def test_attacker_replays_a_used_proof_for_the_second_half_of_a_dual_approval(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"],
                                     discounted("0", quantity="3000"))
    proof = await sign(handle, CHRIS, note="fine by me")
    await handle.execute_update(QuoteToCashWorkflow.decide_approval, proof)

    assert "already been used" in await refusal(handle, proof)
    status = await _status(handle)
    assert [d.approver for d in status.approval.decisions] == [CHRIS]  # type: ignore[union-attr]
    assert status.approval.status == "pending"  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_attacker_signs_for_smaller_terms_than_the_pending_request(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """A proof for 9,000 USD at 5 % (within Sam's limits) is refused on a 30,000 USD request at 25 %."""
    from canonical.authority import ApprovalFacts
    from canonical.money import Money

    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"],
                                     discounted("25", quantity="400"))
    pending = await pending_request(handle)
    smaller = pending.model_copy(update={"facts": ApprovalFacts(amount=Money.of("9000", "USD"),
                                                                discount_percent=Decimal(5))})

    assert "other terms" in await refusal(handle, await sign(handle, SAM, request=smaller))
    other_request = pending.model_copy(update={"request_id": pending.request_id + 1})
    assert "approval request 2, not the pending request 1" in await refusal(
        handle, await sign(handle, DANA, request=other_request))
    assert (await _status(handle)).approval.decisions == []  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_attacker_replays_a_proof_on_a_reopened_run_of_the_same_deal(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    client = time_skipping_env.client
    first = await awaiting_approval(client, ts_settings, sandboxes["hubspot"], discounted("20"))
    kept = await sign(first, DANA, note="signed for the first run")
    await first.terminate("operator stopped it")
    deal_id = (await _status(first)).deal_id
    reopened = await start_quote_to_cash(client, ts_settings, deal_id, reopen=True)
    await eventually(lambda: _status(reopened), lambda s: s.stage is Stage.AWAITING_APPROVAL, what="reopened")
    assert (await pending_request(reopened)).run_id != kept.proof.run_id  # type: ignore[union-attr]

    assert "another run" in await refusal(client.get_workflow_handle(reopened.id), kept)
    assert (await _status(reopened)).approval.decisions == []  # type: ignore[union-attr]
    await reopened.terminate("test done")


async def test_attacker_replays_an_amendment_approval_on_the_next_amendment(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """Queued amendments share one workflow: the proof that approved amendment 1 (and a fresh one signed for
    its request) must not approve amendment 2."""
    from runtime.launch import signal_amendment
    from tests.workflows.test_amendments import amend, applied, provision, until, with_seats

    client = time_skipping_env.client
    result = await provision(client, ts_settings, sandboxes, DealSpec(model="subscription"))
    record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
    assert record_id and signed
    amend(sandboxes["ironclad"], record_id, 1, signed, with_seats(signed, 10))
    amend(sandboxes["ironclad"], record_id, 2, with_seats(signed, 10), with_seats(signed, 5))
    handle = await signal_amendment(client, ts_settings, record_id, sequence=1)
    await signal_amendment(client, ts_settings, record_id, sequence=2)
    await until(handle, lambda s: s.current is not None and s.current.approval is not None, "amendment 1 waits")
    first_request = await pending_request(handle)
    used = await sign(handle, DANA, note="ok for 1")
    await handle.execute_update("decide_approval", used)
    status = await until(handle, lambda s: s.current is not None and s.current.sequence == 2
                         and s.current.approval is not None, "amendment 2 waits")
    second_request = status.current.approval  # type: ignore[union-attr]
    assert second_request is not None and second_request.request_id == first_request.request_id + 1
    assert second_request.terms_digest != first_request.terms_digest

    assert "approval request 1, not the pending request 2" in await refusal(handle, used)
    fresh_for_first = await sign(handle, DANA, request=first_request)
    assert "approval request 1, not the pending request 2" in await refusal(handle, fresh_for_first)
    assert (await pending_request(handle)).decisions == []
    await handle.execute_update("decide_approval", await sign(handle, DANA, note="ok for 2"))
    await until(handle, applied(1, 2), "both applied")
    await handle.terminate("test done")


async def test_an_upper_case_approver_id_decides_as_the_registered_person(
    time_skipping_env: WorkflowEnvironment, ts_worker: Worker, sign: Any, ts_settings: Settings,
    sandboxes: dict[str, SandboxHandle]
) -> None:
    """An identity provider that sends ``Dana@RevOps.Example`` is not locked out, and it is still Dana."""
    handle = await awaiting_approval(time_skipping_env.client, ts_settings, sandboxes["hubspot"], discounted("20"))

    outcome = await handle.execute_update(QuoteToCashWorkflow.decide_approval,
                                          await sign(handle, "Dana@RevOps.Example", note="ok"))

    assert outcome.status == "approved" and outcome.approver == DANA
    status = await _status(handle)
    [recorded] = status.approval.decisions  # type: ignore[union-attr]
    assert recorded.approver == DANA and status.approval.decision is not None  # type: ignore[union-attr]
    assert status.approval.decision.proof is None, "the status query never shows a proof"  # type: ignore[union-attr]
    await handle.terminate("test done")


async def test_used_nonces_and_request_ids_survive_continue_as_new(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    """After amendment 1 is approved the workflow continues as new: the next run's input carries the used nonce
    and the request counter, so amendment 2's request is number 2, and the old proof is refused there."""
    from runtime.launch import signal_amendment
    from tests.workflows.test_amendments import amend, applied, provision, until, with_seats
    from workflows.models import ContractAmendmentsInput

    settings = flow_settings.model_copy(update={"amendments_continue_as_new_after": 1})
    async with open_connectors(settings) as connectors, build_worker(client, settings, connectors):
        result = await provision(client, settings, sandboxes, DealSpec(model="subscription"))
        record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
        assert record_id and signed
        amend(sandboxes["ironclad"], record_id, 1, signed, with_seats(signed, 10))
        handle = await signal_amendment(client, settings, record_id, sequence=1)
        await until(handle, lambda s: s.current is not None and s.current.approval is not None, "amendment 1 waits")
        used = await signed_decision(settings, handle, DANA, note="ok")
        first_run = (await handle.describe()).run_id
        await handle.execute_update("decide_approval", used)
        await until(handle, applied(1), "amendment 1 applied")
        await eventually(handle.describe, lambda d: d.run_id != first_run, what="continued as new")

        latest = client.get_workflow_handle(handle.id)
        history = await latest.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [carried_input] = await client.data_converter.decode(started.input.payloads, [ContractAmendmentsInput])
        assert carried_input.carried is not None
        memory = carried_input.carried.approval_gate
        assert memory.last_request_id == 1 and used.proof is not None and used.proof.nonce in memory.used_nonces

        amend(sandboxes["ironclad"], record_id, 2, with_seats(signed, 10), with_seats(signed, 5))
        await signal_amendment(client, settings, record_id, sequence=2)
        await until(latest, lambda s: s.current is not None and s.current.approval is not None, "amendment 2 waits")
        assert (await pending_request(latest)).request_id == 2
        reason = await refusal(latest, used)
        assert "another run" in reason
        await latest.terminate("test done")
