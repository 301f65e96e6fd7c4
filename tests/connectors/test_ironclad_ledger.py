"""IroncladClm.list_executed_records against the Ironclad emulator: executed contracts (not their
amendments), narrowed to some CRM deals."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from canonical import Account, BillingModel, Contact, ContractTerms, Money
from canonical.requests import ContractRequest
from connectors.ironclad import IroncladClm, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, with_vendor


@pytest_asyncio.fixture
async def clm(settings: Settings, ironclad_sandbox: SandboxHandle) -> AsyncIterator[IroncladClm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def test_ironclad_list_executed_records_by_deal_without_amendments(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    deal_id, unsigned_deal = f"D-{uuid.uuid4().hex[:8]}", f"D-{uuid.uuid4().hex[:8]}"
    records = []
    for deal in (deal_id, unsigned_deal):
        request = ContractRequest(
            deal_crm_id=deal, title=f"Order form {deal}", 
            legal_entity="US01", counterparty=Account(name="Epsilon"), signer=Contact(email="s@example.com"),
            terms=ContractTerms(start_date=datetime.now(UTC).date(), total_value=Money.of("100.00", "USD"),
                                billing_model=BillingModel.FIXED_FEE, fixed_fee=Money.of("100.00", "USD")))
        contract = await clm.launch_contract(request, idempotency_key=f"k-{uuid.uuid4()}")
        if deal == deal_id:
            signed = ironclad_sandbox.post_control(f"workflows/{contract.clm_workflow_id}/sign").json()
            records.append(signed["recordId"])
    ironclad_sandbox.post_control(f"records/{records[0]}/amendments",
                                  {"sequence": 1, "properties": {"contractValue": {"currency": "USD", "amount": 150}}})

    found = await clm.list_executed_records(deal_ids=[deal_id, unsigned_deal])

    assert [c.clm_record_id for c in found] == records
    assert found[0].deal_crm_id == deal_id and found[0].terms is not None
    everything = await clm.list_executed_records()
    assert records[0] in {c.clm_record_id for c in everything}


async def _signed_record(clm: IroncladClm, ironclad: SandboxHandle, deal_id: str) -> str:
    request = ContractRequest(
        deal_crm_id=deal_id, title=f"Order form {deal_id}", legal_entity="US01", counterparty=Account(name="Zeta"),
        signer=Contact(email="s@example.com"),
        terms=ContractTerms(start_date=datetime.now(UTC).date(), total_value=Money.of("100.00", "USD"),
                            billing_model=BillingModel.FIXED_FEE, fixed_fee=Money.of("100.00", "USD")))
    contract = await clm.launch_contract(request, idempotency_key=f"k-{uuid.uuid4()}")
    return str(ironclad.post_control(f"workflows/{contract.clm_workflow_id}/sign").json()["recordId"])


async def test_ironclad_records_changed_since_gives_contracts_amended_since_with_their_amendments(
        clm: IroncladClm, ironclad_sandbox: SandboxHandle) -> None:
    """The amendment poll's read: a contract whose amendment was executed after ``since`` comes back with it; a
    contract untouched since does not."""
    amended = await _signed_record(clm, ironclad_sandbox, f"D-{uuid.uuid4().hex[:8]}")
    untouched = await _signed_record(clm, ironclad_sandbox, f"D-{uuid.uuid4().hex[:8]}")
    await asyncio.sleep(1.1)  # record times are whole seconds
    since = datetime.now(UTC)
    amendment = ironclad_sandbox.post_control(f"records/{amended}/amendments", {
        "sequence": 1, "properties": {"contractValue": {"currency": "USD", "amount": 150}}}).json()["recordId"]

    found, cursor = await clm.records_changed_since(since - timedelta(seconds=1))

    ids = [c.clm_record_id for c in found]
    assert amended in ids and untouched not in ids and cursor is None
    assert ids.count(amended) == 1, "the amendment record and its parent name one contract"
    [contract] = [c for c in found if c.clm_record_id == amended]
    [first] = contract.amendments
    assert (first.sequence, first.clm_amendment_id, first.contract_record_id) == (1, amendment, amended)
    assert contract.terms is not None and contract.terms.total_value == Money.of("150", "USD")
    later, _ = await clm.records_changed_since(datetime.now(UTC) + timedelta(hours=1))
    assert later == []


async def test_ironclad_records_changed_since_paces_every_read_at_the_adapters_limit(
        settings: Settings, ironclad_sandbox: SandboxHandle) -> None:
    """The list, the changed contract and its amendment: three reads at 5/s are two gaps of 0.2 s at least."""
    paced = from_settings(with_vendor(settings, "ironclad", requests_per_second=5.0))
    try:
        record_id = await _signed_record(paced, ironclad_sandbox, f"D-{uuid.uuid4().hex[:8]}")
        await asyncio.sleep(1.1)
        since = datetime.now(UTC).replace(microsecond=0)
        ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
            "sequence": 1, "properties": {"contractValue": {"currency": "USD", "amount": 120}}})
        began = time.monotonic()

        found, _ = await paced.records_changed_since(since)

        assert record_id in [c.clm_record_id for c in found]
        assert time.monotonic() - began >= 0.4
    finally:
        await paced.aclose()
