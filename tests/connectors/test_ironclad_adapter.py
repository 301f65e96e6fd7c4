"""The Ironclad adapter against the emulator over real HTTP: every ClmPort method, idempotent launch,
and error translation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from canonical import (
    Account,
    BillingModel,
    BillingTrigger,
    Contact,
    ContractStatus,
    ContractTerms,
    Milestone,
    Money,
    RateCardEntry,
    RecurringCharge,
)
from canonical.requests import ContractRequest
from connectors.errors import AuthFailed, NotFound, RateLimited, Rejected, Unavailable
from connectors.ironclad import IroncladClm, from_settings
from connectors.ports import ClmPort
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor


def contract_request(settings: Settings, *, deal_id: str | None = None, email: str | None = "ada@acme.example",
                     template_id: str | None = None) -> ContractRequest:
    """A milestone + T&M + retainer contract with every kind of term filled in."""
    deal_id = deal_id or f"deal-{uuid.uuid4().hex[:10]}"
    return ContractRequest(
        deal_crm_id=deal_id,
        title=f"Order Form {deal_id}",
        template_id=template_id or vendor_settings(settings, "ironclad").template_id,
        legal_entity="EU01",
        counterparty=Account(name="Acme Größe GmbH", country="DE"),
        signer=Contact(first_name="Ada", last_name="Lovelace", email=email, role="signer"),
        terms=ContractTerms(
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            total_value=Money.of("48250.75", "EUR"),
            billing_model=BillingModel.MILESTONE,
            payment_terms_days=45,
            milestones=[Milestone(code="M1", name="Kick-off", amount=Money.of("10000.25", "EUR"),
                                  due_date=date(2026, 2, 1)),
                        Milestone(code="M2", name="Go-live", amount=Money.of("20000.50", "EUR"),
                                  requires_acceptance=False)],
            rate_card=[RateCardEntry(role="engineer", hourly_rate=Money.of("145.50", "EUR"))],
            recurring=[RecurringCharge(product_code="SUP", name="Support retainer", quantity=Decimal("1.5"),
                                       unit_price=Money.of("1000", "EUR"))],
            fixed_fee=Money.of("2500", "EUR"),
            billing_triggers=[BillingTrigger.ON_MILESTONE_ACCEPTANCE, BillingTrigger.MONTHLY_IN_ARREARS],
            budget_hours=Decimal("120.5"),
        ),
    )


def workflows_with_key(sandbox: SandboxHandle, key: str) -> list[dict[str, object]]:
    return sandbox.store.list("workflow", where=lambda w: w["attributes"].get("revopsKey") == key)


@pytest_asyncio.fixture
async def clm(settings: Settings, ironclad_sandbox: SandboxHandle) -> AsyncIterator[IroncladClm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def test_ironclad_adapter_implements_clm_port(clm: IroncladClm) -> None:
    assert isinstance(clm, ClmPort)


async def test_ironclad_launch_contract_sends_terms_as_attributes(clm: IroncladClm, settings: Settings,
                                                                  ironclad_sandbox: SandboxHandle) -> None:
    request, key = contract_request(settings), f"launch-{uuid.uuid4()}"
    contract = await clm.launch_contract(request, idempotency_key=key)

    assert contract.status is ContractStatus.IN_REVIEW
    assert contract.clm_workflow_id and contract.clm_record_id is None
    assert contract.terms == request.terms  # the round trip loses no cent and no list item
    assert contract.counterparty == "Acme Größe GmbH" and contract.deal_crm_id == request.deal_crm_id
    stored = ironclad_sandbox.store.get("workflow", contract.clm_workflow_id)
    assert stored is not None
    attrs = stored["attributes"]
    assert attrs["revopsKey"] == key
    assert attrs["contractValue"] == {"currency": "EUR", "amount": 48250.75}
    assert attrs["effectiveDate"] == "2026-01-01T00:00:00Z"
    assert attrs["counterpartySignerEmail"] == "ada@acme.example"
    assert stored["template"] == vendor_settings(settings, "ironclad").template_id


async def test_ironclad_launch_contract_same_key_twice_yields_one_workflow(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    request, key = contract_request(settings), f"idem-{uuid.uuid4()}"
    first = await clm.launch_contract(request, idempotency_key=key)
    second = await clm.launch_contract(request, idempotency_key=key)
    third, fourth = await asyncio.gather(clm.launch_contract(request, idempotency_key=key),
                                         clm.launch_contract(request, idempotency_key=key))

    assert {first.clm_workflow_id} == {second.clm_workflow_id, third.clm_workflow_id, fourth.clm_workflow_id}
    assert len(workflows_with_key(ironclad_sandbox, key)) == 1


async def test_ironclad_launch_contract_finds_a_completed_workflow_by_key(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    request, key = contract_request(settings), f"idem-done-{uuid.uuid4()}"
    first = await clm.launch_contract(request, idempotency_key=key)
    signed = ironclad_sandbox.post_control(f"workflows/{first.clm_workflow_id}/sign",
                                           {"executed_date": "2026-01-09"}).json()

    again = await clm.launch_contract(request, idempotency_key=key)

    assert again.clm_workflow_id == first.clm_workflow_id and again.status is ContractStatus.EXECUTED
    assert again.clm_record_id == signed["recordId"] and again.executed_on == date(2026, 1, 9)
    assert len(workflows_with_key(ironclad_sandbox, key)) == 1


async def test_ironclad_get_contract_follows_review_sign_and_execution(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    request = contract_request(settings)
    launched = await clm.launch_contract(request, idempotency_key=f"status-{uuid.uuid4()}")
    workflow_id = launched.clm_workflow_id
    assert workflow_id

    assert (await clm.get_contract(workflow_id)).status is ContractStatus.IN_REVIEW
    ironclad_sandbox.post_control(f"workflows/{workflow_id}/approve")
    assert (await clm.get_contract(workflow_id)).status is ContractStatus.SIGNING
    signed = ironclad_sandbox.post_control(f"workflows/{workflow_id}/sign",
                                           {"executed_date": "2026-01-05"}).json()

    executed = await clm.get_contract(workflow_id)
    assert executed.status is ContractStatus.EXECUTED
    assert executed.clm_workflow_id == workflow_id
    assert executed.clm_record_id == signed["recordId"]
    assert executed.executed_on == date(2026, 1, 5)
    assert executed.terms == request.terms
    assert executed.deal_crm_id == request.deal_crm_id and executed.title == request.title


async def test_ironclad_cancel_contract_cancels_and_is_repeatable(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"cancel-{uuid.uuid4()}")
    assert launched.clm_workflow_id

    await clm.cancel_contract(launched.clm_workflow_id, reason="deal lost")
    await clm.cancel_contract(launched.clm_workflow_id, reason="deal lost")  # a retried compensation

    assert (await clm.get_contract(launched.clm_workflow_id)).status is ContractStatus.CANCELLED
    comment = ironclad_sandbox.store.get("workflow_comment", f"{launched.clm_workflow_id}:cancel")
    assert comment is not None and comment["message"] == "deal lost"


async def test_ironclad_cancel_contract_refuses_an_executed_contract(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"cx-{uuid.uuid4()}")
    ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign")

    with pytest.raises(Rejected) as caught:
        await clm.cancel_contract(str(launched.clm_workflow_id), reason="too late")
    assert "already completed" in caught.value.message


async def test_ironclad_get_record_applies_amendments_in_sequence(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    request = contract_request(settings)
    launched = await clm.launch_contract(request, idempotency_key=f"amend-{uuid.uuid4()}")
    record_id = ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign",
                                              {"executed_date": "2026-01-05"}).json()["recordId"]
    # executed out of order on purpose: the record must still list them by sequence
    second = ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
        "sequence": 2, "executed_date": "2026-06-01",
        "properties": {"rateCard": '[{"role":"engineer","hourlyRate":{"currency":"EUR","amount":"150.00"}}]'},
    }).json()
    first = ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
        "sequence": 1, "executed_date": "2026-03-01",
        "properties": {"contractValue": {"currency": "EUR", "amount": 60000}, "expirationDate": "2027-06-30"},
    }).json()

    contract = await clm.get_record(record_id)

    assert contract.status is ContractStatus.EXECUTED and contract.clm_record_id == record_id
    assert contract.clm_workflow_id == launched.clm_workflow_id
    assert contract.executed_on == date(2026, 1, 5)
    assert contract.terms is not None
    assert contract.terms.total_value == Money.of("60000", "EUR")  # as amended
    assert contract.terms.rate_card[0].hourly_rate == Money.of("150", "EUR")
    assert [a.sequence for a in contract.amendments] == [1, 2]
    one, two = contract.amendments
    assert one.clm_amendment_id == first["recordId"] and two.clm_amendment_id == second["recordId"]
    assert one.contract_record_id == record_id and one.executed_on == date(2026, 3, 1)
    assert {c.field for c in one.changes} == {"total_value", "end_date"}
    value_change = next(c for c in one.changes if c.field == "total_value")
    assert (value_change.old, value_change.new) == ("48250.75 EUR", "60000.00 EUR")
    assert one.terms is not None and one.terms.rate_card[0].hourly_rate == Money.of("145.50", "EUR")
    assert [c.field for c in two.changes] == ["rate_card"]
    assert two.terms == contract.terms


async def test_ironclad_get_record_unknown_raises_not_found(clm: IroncladClm) -> None:
    with pytest.raises(NotFound) as caught:
        await clm.get_record(str(uuid.uuid4()))
    assert "couldn't find a record" in caught.value.message


async def test_ironclad_get_contract_unknown_raises_not_found(clm: IroncladClm) -> None:
    with pytest.raises(NotFound):
        await clm.get_contract("ffffffffffffffffffffffff")


async def test_ironclad_validation_error_is_rejected_with_vendor_message(clm: IroncladClm,
                                                                         settings: Settings) -> None:
    with pytest.raises(Rejected) as caught:
        await clm.launch_contract(contract_request(settings, email="not-an-email"),
                                  idempotency_key=f"bad-{uuid.uuid4()}")
    assert caught.value.message == ("INVALID_PARAM: attribute counterpartySignerEmail must be a valid email "
                                    "address (param counterpartySignerEmail)")
    assert caught.value.status == 400


async def test_ironclad_unknown_template_is_rejected(clm: IroncladClm, settings: Settings) -> None:
    with pytest.raises(Rejected) as caught:
        await clm.launch_contract(contract_request(settings, template_id="tmpl-nope"),
                                  idempotency_key=f"tmpl-{uuid.uuid4()}")
    assert "tmpl-nope" in caught.value.message


async def test_ironclad_server_error_is_unavailable(clm: IroncladClm, settings: Settings,
                                                    ironclad_sandbox: SandboxHandle) -> None:
    launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"5xx-{uuid.uuid4()}")
    with ironclad_sandbox.faults(error_rate=1, status=503), pytest.raises(Unavailable) as caught:
        await clm.get_contract(str(launched.clm_workflow_id))
    assert caught.value.status == 503 and "injected fault" in caught.value.message


async def test_ironclad_rate_limit_is_rate_limited_with_retry_after(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"429-{uuid.uuid4()}")
    with ironclad_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1):
        await clm.get_contract(str(launched.clm_workflow_id))  # takes the one token
        with pytest.raises(RateLimited) as caught:
            await clm.get_contract(str(launched.clm_workflow_id))
    assert caught.value.retry_after == 2.0
    assert "Too Many Requests" in caught.value.message


async def test_ironclad_timeout_is_unavailable(settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    adapter = from_settings(settings, timeout=0.3)
    try:
        await adapter.webhook_verification_key()  # token fetched before the slowdown
        with ironclad_sandbox.faults(latency_ms=1500), pytest.raises(Unavailable) as caught:
            await adapter.get_record(str(uuid.uuid4()))
        assert "timeout" in caught.value.message
    finally:
        await adapter.aclose()


async def test_ironclad_wrong_client_secret_is_auth_failed(settings: Settings,
                                                          ironclad_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "ironclad", client_secret="wrong"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await adapter.get_contract("ffffffffffffffffffffffff")
        assert caught.value.status == 401 and "invalid_client" in caught.value.message
    finally:
        await adapter.aclose()


async def test_ironclad_unknown_acting_user_is_auth_failed(settings: Settings,
                                                          ironclad_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "ironclad", user_email="stranger@example.com"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await adapter.get_contract("ffffffffffffffffffffffff")
        assert caught.value.status == 403 and "stranger@example.com" in caught.value.message
    finally:
        await adapter.aclose()


async def test_ironclad_expired_token_is_refreshed(clm: IroncladClm, settings: Settings,
                                                   ironclad_sandbox: SandboxHandle) -> None:
    await clm.webhook_verification_key()
    before = len(ironclad_sandbox.store.list("oauth_token"))
    expired = ironclad_sandbox.post_control("tokens/expire").json()["expired"]
    assert expired >= 1

    key = await clm.webhook_verification_key()

    assert key.startswith("-----BEGIN PUBLIC KEY-----")
    assert len(ironclad_sandbox.store.list("oauth_token")) == before + 1  # one new token, fetched once


async def test_ironclad_error_message_reads_oauth_and_api_bodies() -> None:
    from connectors.ironclad.client import error_message

    api = httpx.Response(400, json={"code": "MISSING_PARAM", "message": "missing required attribute",
                                    "param": "counterpartyName"})
    oauth = httpx.Response(401, json={"error": "invalid_client", "error_description": "invalid client"})
    text = httpx.Response(502, text="<html>bad gateway</html>")
    assert error_message(api) == "MISSING_PARAM: missing required attribute (param counterpartyName)"
    assert error_message(oauth) == "invalid_client: invalid client"
    assert error_message(text) == "<html>bad gateway</html>"
