"""The DocuSign adapter against the emulator over real HTTP: every ClmPort method, the look-up-before-send launch,
amendments as linked envelopes, listStatusChanges paging, the JWT grant and error and rate-limit translation."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
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
from connectors.acts import acts_for
from connectors.docusign import DocuSignClm, from_settings
from connectors.docusign.acts import DocuSignActs
from connectors.errors import AuthFailed, Conflict, NotFound, RateLimited, Rejected, Unavailable
from connectors.ports import ClmPort
from connectors.registry import default_registry
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor


def contract_request(*, deal_id: str | None = None) -> ContractRequest:
    """A milestone + T&M + retainer contract with every kind of term filled in."""
    deal_id = deal_id or f"deal-{uuid.uuid4().hex[:10]}"
    return ContractRequest(
        deal_crm_id=deal_id, title=f"Order Form {deal_id}", legal_entity="EU01",
        counterparty=Account(name="Acme Größe GmbH", country="DE"),
        signer=Contact(first_name="Ada", last_name="Lovelace", email="ada@acme.example", role="signer"),
        terms=ContractTerms(
            start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
            total_value=Money.of("48250.75", "EUR"), billing_model=BillingModel.MILESTONE, payment_terms_days=45,
            milestones=[Milestone(code="M1", name="Kick-off", amount=Money.of("10000.25", "EUR"),
                                  due_date=date(2026, 2, 1)),
                        Milestone(code="M2", name="Go-live", amount=Money.of("20000.50", "EUR"),
                                  requires_acceptance=False)],
            rate_card=[RateCardEntry(role="engineer", hourly_rate=Money.of("145.50", "EUR"))],
            recurring=[RecurringCharge(product_code="SUP", name="Support retainer", quantity=Decimal("1.5"),
                                       unit_price=Money.of("1000", "EUR"))],
            fixed_fee=Money.of("2500", "EUR"), billing_triggers=[BillingTrigger.ON_MILESTONE_ACCEPTANCE],
            budget_hours=Decimal("120.5")))


@pytest_asyncio.fixture
async def clm(settings: Settings, docusign_sandbox: SandboxHandle) -> AsyncIterator[DocuSignClm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


@pytest_asyncio.fixture
async def acts(settings: Settings, docusign_sandbox: SandboxHandle) -> AsyncIterator[DocuSignActs]:
    spec = next(s for s in default_registry(settings).all() if s.name == "docusign")
    async with httpx.AsyncClient(timeout=10) as http:
        yield acts_for(spec, settings, http)


def envelopes_of(sandbox: SandboxHandle, deal_id: str) -> list[dict[str, object]]:
    return [e for e in sandbox.store.list("envelope")
            if any(f["name"] == "revopsDealId" and f["value"] == deal_id
                   for f in e["customFields"]["textCustomFields"])]


async def test_docusign_adapter_is_the_clm_port(clm: DocuSignClm) -> None:
    assert isinstance(clm, ClmPort)


async def test_docusign_launch_sends_one_envelope_per_key(clm: DocuSignClm, docusign_sandbox: SandboxHandle) -> None:
    request = contract_request()
    key = f"launch-{uuid.uuid4().hex}"

    first = await clm.launch_contract(request, idempotency_key=key)
    again = await clm.launch_contract(request, idempotency_key=key)

    assert first.clm_workflow_id and again.clm_workflow_id == first.clm_workflow_id
    assert first.status is ContractStatus.SIGNING and first.clm_record_id is None
    assert again.title == request.title and again.deal_crm_id == request.deal_crm_id
    stored = envelopes_of(docusign_sandbox, request.deal_crm_id)
    assert len(stored) == 1 and stored[0]["status"] == "sent"
    assert stored[0]["tabs"]["contractValue"] == "EUR 48250.75"  # type: ignore[index]


async def test_docusign_launch_whose_answer_was_lost_is_not_sent_again(
        clm: DocuSignClm, settings: Settings, docusign_sandbox: SandboxHandle) -> None:
    request = contract_request()
    key = uuid.uuid4().hex
    await clm.templates()  # the token and the base URI first: the lost answer is the envelope's
    account = vendor_settings(settings, "docusign").account_id
    with docusign_sandbox.faults(lost_answers=1, path_prefix=f"/restapi/v2.1/accounts/{account}/envelopes",
                                 methods=["POST"]):
        with pytest.raises(Unavailable):
            await clm.launch_contract(request, idempotency_key=key)
        retried = await clm.launch_contract(request, idempotency_key=key)

    [stored] = envelopes_of(docusign_sandbox, request.deal_crm_id)
    assert retried.clm_workflow_id == stored["envelopeId"] and retried.status is ContractStatus.SIGNING


async def test_docusign_signed_envelope_is_the_executed_record_with_exact_terms(
        clm: DocuSignClm, acts: DocuSignActs) -> None:
    request = contract_request()
    launched = await clm.launch_contract(request, idempotency_key=uuid.uuid4().hex)
    assert launched.clm_workflow_id
    await acts.sign(launched.clm_workflow_id, executed_date="2026-01-05")

    executed = await clm.get_contract(launched.clm_workflow_id)
    record = await clm.get_record(launched.clm_workflow_id)

    assert executed.status is ContractStatus.EXECUTED and executed.clm_record_id == launched.clm_workflow_id
    assert executed.terms == request.terms and record.terms == request.terms
    assert executed.terms is not None and executed.terms.total_value.amount == Decimal("48250.75")
    assert executed.counterparty == "Acme Größe GmbH" and executed.executed_on == date(2026, 1, 5)
    assert executed.legal_entity == "EU01" and executed.deal_crm_id == request.deal_crm_id
    assert await clm.get_signed_terms(launched.clm_workflow_id) == request.terms


async def test_docusign_amendments_are_linked_envelopes_applied_in_sequence(
        clm: DocuSignClm, acts: DocuSignActs) -> None:
    request = contract_request()
    launched = await clm.launch_contract(request, idempotency_key=uuid.uuid4().hex)
    record_id = launched.clm_workflow_id or ""
    await acts.sign(record_id)
    raised = request.terms.model_copy(update={"total_value": Money.of("50000.00", "EUR")})
    extended = raised.model_copy(update={"end_date": date(2027, 6, 30)})

    await acts.amend(record_id, sequence=1, before=request.terms, after=raised)
    await acts.amend(record_id, sequence=2, before=raised, after=extended)
    await acts.amend(record_id, sequence=2, before=raised, after=extended)  # a repeat changes nothing

    record = await clm.get_record(record_id)
    assert [a.sequence for a in record.amendments] == [1, 2]
    assert [c.field for c in record.amendments[0].changes] == ["total_value"]
    assert [(c.field, c.new) for c in record.amendments[1].changes] == [("end_date", "2027-06-30")]
    assert record.terms == extended and record.amendments[1].terms == extended
    assert all(a.clm_amendment_id and a.clm_amendment_id != record_id for a in record.amendments)
    assert await clm.get_signed_terms(record_id) == request.terms
    executed = await clm.list_executed_records(deal_ids=[request.deal_crm_id])
    assert [c.clm_record_id for c in executed] == [record_id]  # amendment envelopes are not contracts


async def test_docusign_cancel_voids_once_and_refuses_a_completed_envelope(
        clm: DocuSignClm, acts: DocuSignActs, docusign_sandbox: SandboxHandle) -> None:
    open_one = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    signed = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    await acts.sign(signed.clm_workflow_id or "")

    await clm.cancel_contract(open_one.clm_workflow_id or "", reason="deal lost")
    await clm.cancel_contract(open_one.clm_workflow_id or "", reason="deal lost")  # a retry: no error

    assert (await clm.get_contract(open_one.clm_workflow_id or "")).status is ContractStatus.CANCELLED
    assert docusign_sandbox.store.get("envelope", open_one.clm_workflow_id or "")["voidedReason"] == "deal lost"  # type: ignore[index]
    with pytest.raises(Conflict):
        await clm.cancel_contract(signed.clm_workflow_id or "", reason="too late")


async def test_docusign_declined_envelope_is_cancelled(clm: DocuSignClm, acts: DocuSignActs) -> None:
    launched = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    await acts.decline(launched.clm_workflow_id or "", reason="price too high")

    assert (await clm.get_contract(launched.clm_workflow_id or "")).status is ContractStatus.CANCELLED


async def test_docusign_unknown_envelope_is_not_found(clm: DocuSignClm) -> None:
    with pytest.raises(NotFound):
        await clm.get_contract(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        await clm.get_record(str(uuid.uuid4()))


async def test_docusign_records_changed_since_pages_by_start_position(
        settings: Settings, docusign_sandbox: SandboxHandle, acts: DocuSignActs) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    small = from_settings(with_vendor(settings, "docusign", page_size=2))
    try:
        ids = []
        for _ in range(3):
            launched = await small.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
            await acts.sign(launched.clm_workflow_id or "")
            ids.append(launched.clm_workflow_id)
        unsigned = await small.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)

        seen: list[str | None] = []
        cursor: str | None = None
        pages = 0
        while True:
            contracts, cursor = await small.records_changed_since(since, cursor=cursor)
            seen += [c.clm_record_id for c in contracts]
            pages += 1
            if cursor is None:
                break
        later, _ = await small.records_changed_since(datetime.now(UTC) + timedelta(minutes=1))
    finally:
        await small.aclose()

    assert set(ids) <= set(seen) and unsigned.clm_workflow_id not in seen
    assert pages >= 2 and later == []


async def test_docusign_expired_token_is_fetched_again(clm: DocuSignClm, docusign_sandbox: SandboxHandle) -> None:
    launched = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    docusign_sandbox.post_control("tokens/expire")

    assert (await clm.get_contract(launched.clm_workflow_id or "")).status is ContractStatus.SIGNING


async def test_docusign_jwt_signed_with_another_key_is_refused(settings: Settings,
                                                               docusign_sandbox: SandboxHandle) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    for wrong in ({"private_key": other}, {"user_id": str(uuid.uuid4())}, {"integration_key": str(uuid.uuid4())}):
        adapter = from_settings(with_vendor(settings, "docusign", **wrong))
        try:
            with pytest.raises(AuthFailed):
                await adapter.get_contract(str(uuid.uuid4()))
        finally:
            await adapter.aclose()


async def test_docusign_429_is_rate_limited_until_the_window_resets(
        clm: DocuSignClm, docusign_sandbox: SandboxHandle) -> None:
    await clm.templates()  # token and base URI first: the fault is on the API only
    with docusign_sandbox.faults(rate_limit_per_second=0.2, rate_limit_burst=1, path_prefix="/restapi/"):
        await clm.templates()
        with pytest.raises(RateLimited) as caught:
            await clm.templates()
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 6


async def test_docusign_used_up_window_is_waited_for_or_raised() -> None:
    """Remaining 0 with a reset far off: the next call is not sent but raised as RateLimited (unit, MockTransport)."""
    sent: list[str] = []
    reset = int(time.time()) + 120

    def vendor(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        if request.url.path == "/oauth/userinfo":
            return httpx.Response(200, json={"accounts": [{"account_id": vendor_settings(Settings(
                _env_file=None), "docusign").account_id, "base_uri": "http://docusign.test"}]})  # type: ignore[call-arg]
        return httpx.Response(200, json={"envelopeTemplates": []},
                              headers={"X-RateLimit-Limit": "3000", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": str(reset)})

    adapter = from_settings(Settings(_env_file=None), transport=httpx.MockTransport(vendor))  # type: ignore[call-arg]
    try:
        assert await adapter.templates() == []
        with pytest.raises(RateLimited) as caught:
            await adapter.templates()
    finally:
        await adapter.aclose()
    assert sent.count("/restapi/v2.1/accounts/46026c9a-b277-4242-80ec-7abd4e0677e2/templates") == 1
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


@pytest.mark.parametrize(("status", "code", "expected"), [
    (400, "ENVELOPE_DOES_NOT_EXIST", NotFound),
    (400, "USER_LACKS_PERMISSIONS", AuthFailed),
    (400, "HOURLY_APIINVOCATION_LIMIT_EXCEEDED", RateLimited),
    (400, "ENVELOPE_CANNOT_VOID_INVALID_STATE", Conflict),
    (400, "INVALID_REQUEST_BODY", Rejected),
    (503, "UNSPECIFIED_ERROR", Unavailable),
])
async def test_docusign_error_code_decides_the_error_class(status: int, code: str,
                                                           expected: type[Exception]) -> None:
    """DocuSign answers many refusals with a 400 whose ``errorCode`` says what happened (unit, MockTransport)."""
    account = vendor_settings(Settings(_env_file=None), "docusign").account_id  # type: ignore[call-arg]

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 3600})
        if request.url.path == "/oauth/userinfo":
            return httpx.Response(200, json={"accounts": [{"account_id": account,
                                                           "base_uri": "http://docusign.test"}]})
        return httpx.Response(status, json={"errorCode": code, "message": "refused"})

    adapter = from_settings(Settings(_env_file=None), transport=httpx.MockTransport(vendor))  # type: ignore[call-arg]
    try:
        with pytest.raises(expected) as caught:
            await adapter.get_contract(str(uuid.uuid4()))
    finally:
        await adapter.aclose()
    assert type(caught.value) is expected and code in str(caught.value)
