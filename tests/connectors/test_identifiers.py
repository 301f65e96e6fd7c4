"""IDs at the connector boundary: the vendor's documented form or a ``Rejected`` before any request, and
every path segment quoted (``../../properties/deals`` once made the HubSpot adapter read another path
with the integration's token)."""

from __future__ import annotations

import httpx
import pytest

from connectors import hubspot, ironclad, stripe, xero
from connectors.errors import PayloadInvalid, Rejected
from connectors.identifiers import (
    NUMERIC_ID,
    PREFIXED_ID,
    SAFE_ID,
    UUID,
    InvalidIdentifier,
    checked_id,
    load_json,
    payload_id,
    segment,
)
from settings import Settings

HOSTILE = ["../../properties/deals", "..", ".", "", "1/2", "12\r\nX-Evil: 1", "1\x002", "x" * 200_000, "a b",
           "%2e%2e", "?q=1", "#frag"]


class Recorder:
    """A transport that records every request and answers 404 (no request should reach it)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"message": "not found"})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("deal_id", HOSTILE + ["12a", "-1"])
async def test_identifiers_hubspot_adapter_refuses_a_non_numeric_deal_id_before_any_request(
    deal_id: str, recorder: Recorder
) -> None:
    crm = hubspot.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    try:
        with pytest.raises(InvalidIdentifier) as raised:
            await crm.get_deal(deal_id)
        with pytest.raises(Rejected):
            await crm.associated_ids_v4("deals", deal_id, "companies")
    finally:
        await crm.aclose()
    assert recorder.paths == []
    assert "\n" not in str(raised.value) and len(str(raised.value)) < 120


@pytest.mark.parametrize("bad", HOSTILE + ["cus", "CUS_1", "cus_1/../../v1/charges"])
async def test_identifiers_stripe_adapter_refuses_a_malformed_id_before_any_request(
    bad: str, recorder: Recorder
) -> None:
    billing = stripe.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    try:
        with pytest.raises(InvalidIdentifier):
            await billing.get_invoice(bad)
        with pytest.raises(InvalidIdentifier):
            await billing.get_customer(bad)
    finally:
        await billing.aclose()
    assert recorder.paths == []


@pytest.mark.parametrize("bad", HOSTILE)
async def test_identifiers_xero_and_ironclad_adapters_refuse_hostile_ids(bad: str, recorder: Recorder) -> None:
    erp = xero.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    clm = ironclad.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    try:
        with pytest.raises(InvalidIdentifier):
            await erp.get_project("4f7a0c1e-0001-4000-8000-000000000001", bad)
        with pytest.raises(InvalidIdentifier):
            await clm.get_contract(bad)
    finally:
        await erp.aclose()
        await clm.aclose()
    assert recorder.paths == []


async def test_identifiers_valid_ids_reach_the_vendor_path_quoted(recorder: Recorder) -> None:
    crm = hubspot.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    billing = stripe.from_settings(_settings(), transport=httpx.MockTransport(recorder))
    try:
        with pytest.raises(Exception):  # noqa: B017 - the recorder answers 404; the path is what we check
            await crm.get_deal("12345")
        with pytest.raises(Exception):  # noqa: B017
            await billing.get_invoice("in_1MtHbELkdIwHu7ix")
    finally:
        await crm.aclose()
        await billing.aclose()
    assert recorder.paths[0].startswith("/crm/v3/objects/deals/12345?")
    assert recorder.paths[-1] == "/v1/invoices/in_1MtHbELkdIwHu7ix"


def test_identifiers_formats() -> None:
    assert checked_id(12345, "deal", NUMERIC_ID) == "12345"
    assert checked_id("cus_00000000000001", "customer", PREFIXED_ID) == "cus_00000000000001"
    assert checked_id("4F7A0C1E-0001-4000-8000-000000000001", "contact", UUID)
    assert segment("webhookEvent1a2b", "event") == "webhookEvent1a2b"
    for value, pattern in ((True, NUMERIC_ID), (1.5, NUMERIC_ID), ("in-1", PREFIXED_ID), ("not-a-uuid", UUID),
                           ("..", SAFE_ID), (None, SAFE_ID), ("x" * 256, SAFE_ID)):
        with pytest.raises(InvalidIdentifier):
            checked_id(value, "id", pattern)
    with pytest.raises(PayloadInvalid, match="objectId"):
        payload_id(False, "[0].objectId", NUMERIC_ID)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 33 + b"1" + b"}" * 33, b"\xff\xfe", b"1" * 10_000,
                                  b'["\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]'])
def test_identifiers_bounded_json_refuses_with_payload_invalid(body: bytes) -> None:
    if body.startswith(b'["'):  # brackets inside a string are not nesting
        assert load_json(body) == ['"' + "[" * 40]
        return
    with pytest.raises(PayloadInvalid) as raised:
        load_json(body)
    assert raised.value.field == "body" and len(raised.value.reason) < 200
