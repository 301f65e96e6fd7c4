"""XeroWebhooks: ``x-xero-signature`` verification (computed here independently), parsing into
canonical events, the intent-to-receive probe, and the emulator's own deliveries end to end.

Xero's scheme has no timestamp, so there is no stale-signature case to test."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from canonical import Account, ErpRecordChanged
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.ports import WebhookReceiver
from connectors.xero import XeroWebhooks, from_settings, webhooks_from_settings
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings

TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def event(**update: Any) -> dict[str, Any]:
    resource = update.pop("resourceId", str(uuid.uuid4()))
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource}", "resourceId": resource,
            "eventDateUtc": "2024-06-21T01:15:39.902", "eventType": "UPDATE", "eventCategory": "INVOICE",
            "tenantId": TENANT, "tenantType": "ORGANISATION", **update}


def payload(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events), "firstEventSequence": 1, "lastEventSequence": len(events) or 1,
                       "entropy": "S0m3r4Nd0mt3xt"}).encode()


@pytest.fixture
def receiver(settings: Settings) -> XeroWebhooks:
    return webhooks_from_settings(settings)


def test_receiver_implements_the_port(receiver: XeroWebhooks) -> None:
    assert isinstance(receiver, WebhookReceiver) and receiver.vendor == "xero"


async def test_verify_accepts_a_correct_signature(receiver: XeroWebhooks, settings: Settings) -> None:
    changed = event()
    body = payload(changed)
    await receiver.verify(method="POST", url="http://x/webhooks/xero", body=body,
                          headers={"X-Xero-Signature": sign(body, vendor_settings(settings, "xero").webhook_key)})
    [parsed] = receiver.parse(headers={}, body=body)
    assert isinstance(parsed, ErpRecordChanged) and parsed.record_id == changed["resourceId"]


async def test_verify_refuses_a_tampered_body(receiver: XeroWebhooks, settings: Settings) -> None:
    body = payload(event())
    signature = sign(body, vendor_settings(settings, "xero").webhook_key)
    with pytest.raises(SignatureInvalid, match="does not match"):
        await receiver.verify(method="POST", url="http://x", body=body.replace(b"UPDATE", b"CREATE"),
                              headers={"x-xero-signature": signature})


async def test_verify_refuses_the_wrong_key(receiver: XeroWebhooks) -> None:
    body = payload(event())
    with pytest.raises(SignatureInvalid):
        await receiver.verify(method="POST", url="http://x", body=body,
                              headers={"x-xero-signature": sign(body, "someone-elses-key")})


async def test_verify_refuses_a_missing_header(receiver: XeroWebhooks) -> None:
    with pytest.raises(SignatureInvalid, match="missing x-xero-signature"):
        await receiver.verify(method="POST", url="http://x", body=payload(event()), headers={})


async def test_intent_to_receive_verifies_and_parses_to_nothing(receiver: XeroWebhooks, settings: Settings) -> None:
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                       "entropy": "ABCDEFGHIJKLMNOPQRST"}).encode()
    await receiver.verify(method="POST", url="http://x", body=body,
                          headers={"x-xero-signature": sign(body, vendor_settings(settings, "xero").webhook_key)})
    with pytest.raises(SignatureInvalid):
        await receiver.verify(method="POST", url="http://x", body=body,
                              headers={"x-xero-signature": sign(body, "wrong")})
    assert receiver.parse(headers={}, body=body) == []


def test_parse_gives_one_record_changed_event_per_xero_event(receiver: XeroWebhooks) -> None:
    invoice = event(eventType="CREATE")
    contact = event(eventCategory="CONTACT", resourceUrl="https://api.xero.com/api.xro/2.0/Contacts/x")
    parsed = receiver.parse(headers={}, body=payload(invoice, contact))
    assert [type(e) for e in parsed] == [ErpRecordChanged, ErpRecordChanged]
    first = parsed[0]
    assert isinstance(first, ErpRecordChanged)
    assert (first.source_system, first.tenant_id, first.category, first.record_id, first.change) == (
        "xero", TENANT, "invoice", invoice["resourceId"], "create")
    assert first.occurred_at == datetime(2024, 6, 21, 1, 15, 39, 902000, tzinfo=UTC)
    assert first.source_event_id == f"{TENANT}:INVOICE:{invoice['resourceId']}:CREATE:2024-06-21T01:15:39.902"
    assert first.correlation_id == f"xero-invoice-{invoice['resourceId']}"
    assert isinstance(parsed[1], ErpRecordChanged) and parsed[1].category == "contact"


def test_source_event_id_is_stable_for_a_redelivery_and_distinct_per_change(receiver: XeroWebhooks) -> None:
    one = event()
    again = receiver.parse(headers={}, body=payload(one))[0].source_event_id
    assert receiver.parse(headers={}, body=payload(dict(one)))[0].source_event_id == again
    later = receiver.parse(headers={}, body=payload({**one, "eventDateUtc": "2024-06-21T01:15:40.001"}))[0]
    assert later.source_event_id != again


def test_parse_acknowledges_the_known_events_of_a_batch_with_an_unknown_one(receiver: XeroWebhooks) -> None:
    """One event of a category or type we do not read must not make the whole batch refused."""
    known, other = event(eventType="CREATE"), event()
    parsed = receiver.parse(headers={}, body=payload(known, event(eventCategory="PAYROLL"),
                                                     event(eventType="DELETE"), other))
    assert [e.record_id for e in parsed if isinstance(e, ErpRecordChanged)] == [known["resourceId"],
                                                                               other["resourceId"]]
    assert [e.change for e in parsed if isinstance(e, ErpRecordChanged)] == ["create", "update"]


@pytest.mark.parametrize(("body", "field"), [
    (b"not json", "body"),
    (b"[]", "body"),
    (json.dumps({"firstEventSequence": 1}).encode(), "events"),
    (payload({k: v for k, v in event().items() if k != "resourceId"}), "events[0].resourceId"),
    (payload(event(eventDateUtc="yesterday")), "events[0].eventDateUtc"),
])
def test_parse_refuses_a_malformed_body_naming_the_field(receiver: XeroWebhooks, body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers={}, body=body)
    assert caught.value.field == field


# -- end to end: the emulator's deliveries verify with our receiver --------------------------------
class Inbox:
    """A tiny ingress stand-in: verifies with XeroWebhooks, answers 200 or 401 as Xero expects."""

    def __init__(self, receiver: XeroWebhooks) -> None:
        self.events: list[ErpRecordChanged] = []
        self.refused = 0
        self.app = FastAPI()

        @self.app.post("/webhooks/xero")
        async def deliver(request: Request) -> Response:
            body = await request.body()
            try:
                await receiver.verify(method="POST", url=str(request.url), headers=dict(request.headers), body=body)
            except SignatureInvalid:
                self.refused += 1
                return Response(status_code=401)
            self.events += [e for e in receiver.parse(headers=dict(request.headers), body=body)
                            if isinstance(e, ErpRecordChanged)]
            return Response(status_code=200)


@pytest.fixture
def inbox(receiver: XeroWebhooks, xero_sandbox: SandboxHandle) -> Iterator[tuple[Inbox, RunningApp]]:
    box = Inbox(receiver)
    running = start_in_thread(box.app)
    xero_sandbox.post_control("webhooks", {"url": f"{running.base_url}/webhooks/xero"})
    yield box, running
    httpx.delete(f"{xero_sandbox.base_url}/_sandbox/webhooks", timeout=10)
    running.stop()


async def test_emulator_webhook_verifies_and_names_the_new_contact(
        inbox: tuple[Inbox, RunningApp], settings: Settings, xero_sandbox: SandboxHandle) -> None:
    box, _ = inbox
    erp = from_settings(settings)
    try:
        ref = f"hubspot:company:{uuid.uuid4().hex[:8]}"
        created = await erp.upsert_customer(TENANT, Account(name=f"Hooked {ref}"), contact=None, reference=ref,
                                            idempotency_key=ref)
    finally:
        await erp.aclose()
    for _ in range(100):
        if any(e.record_id == created.erp_contact_id for e in box.events):
            break
        await asyncio.sleep(0.05)
    [seen] = [e for e in box.events if e.record_id == created.erp_contact_id]
    assert (seen.category, seen.change, seen.tenant_id) == ("contact", "create", TENANT)
    assert box.refused == 0


def test_emulator_intent_to_receive_passes_against_our_receiver(
        inbox: tuple[Inbox, RunningApp], xero_sandbox: SandboxHandle) -> None:
    box, running = inbox
    result = httpx.post(f"{xero_sandbox.base_url}/_sandbox/webhooks/intent", timeout=30).json()
    mine = [r for r in result["results"] if r["url"].startswith(running.base_url)]
    assert {(r["signature"], r["status"]) for r in mine} == {("valid", 200), ("invalid", 401)}
    assert result["intent_ok"] is True and box.refused == 1
