"""The Ironclad adapter's ``get_signed_terms``: a record's terms as first signed, under its amendments."""

from __future__ import annotations

import uuid

from canonical import Money
from connectors.ironclad import IroncladClm
from settings import Settings
from tests.connectors.test_ironclad_adapter import clm, contract_request  # noqa: F401
from tests.helpers.servers import SandboxHandle


async def test_ironclad_get_signed_terms_ignores_amendments(
        clm: IroncladClm, settings: Settings, ironclad_sandbox: SandboxHandle) -> None:  # noqa: F811
    request = contract_request(settings)
    launched = await clm.launch_contract(request, idempotency_key=f"signed-{uuid.uuid4()}")
    record_id = ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign",
                                              {"executed_date": "2026-01-05"}).json()["recordId"]
    ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
        "sequence": 1, "properties": {"contractValue": {"currency": "EUR", "amount": 60000},
                                      "expirationDate": "2027-06-30"}})

    signed = await clm.get_signed_terms(record_id)
    amended = await clm.get_record(record_id)

    assert signed == request.terms
    assert amended.terms is not None and amended.terms.total_value == Money.of("60000", "EUR")
    assert signed.total_value != amended.terms.total_value
