"""Ironclad webhook verification (RSA over event ID + body + nonce) and parsing, with signatures
computed here independently, plus the emulator's own deliveries end to end."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request

from canonical import AmendmentExecuted, ContractExecuted
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.ironclad import IroncladClm, IroncladWebhooks, from_settings, webhooks_from_settings
from connectors.ports import WebhookReceiver
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.connectors.test_ironclad_adapter import contract_request
from tests.helpers.servers import SandboxHandle

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def delivery(payload: dict[str, Any], *, key: rsa.RSAPrivateKey = KEY, event_id: str | None = None,
             algorithm: str = "RSA-SHA256") -> tuple[dict[str, str], bytes]:
    """Headers and body as Ironclad sends them: sign(eventId + JSON.stringify(body) + nonce)."""
    event_id = event_id or f"webhookEvent{secrets.token_hex(12)}"
    body = {"companyID": "605b9829cdd37d296123f4b4", "payload": payload,
            "timestamp": "2026-04-07T21:36:52.776Z", "webhookID": "611fb96cb670f852d58db210"}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    nonce = secrets.token_hex(8)
    signature = key.sign((event_id + text + nonce).encode(), padding.PKCS1v15(), hashes.SHA256())
    verification = {"nonce": nonce, "signAlgorithm": algorithm, "signature": base64.b64encode(signature).decode(),
                    "encoding": "base64"}
    return ({"X-Ironclad-Webhook-Event-Id": event_id, "X-Ironclad-Webhook-Verification": json.dumps(verification),
             "Content-Type": "application/json"}, text.encode())


COMPLETED = {"event": "workflow_completed", "templateID": "tmpl-msa-order-form",
             "workflowID": "611fbd699f4a33b41d9f8295"}


class KeySource:
    """Serves a PEM and counts fetches."""

    def __init__(self, key: rsa.RSAPrivateKey = KEY) -> None:
        self.key = key
        self.fetches = 0

    async def __call__(self) -> str:
        self.fetches += 1
        return pem(self.key)


async def verify(receiver: IroncladWebhooks, headers: dict[str, str], body: bytes) -> None:
    await receiver.verify(method="POST", url="https://ingress.example/webhooks/ironclad", headers=headers, body=body)


async def test_ironclad_webhooks_implement_receiver() -> None:
    assert isinstance(IroncladWebhooks(KeySource()), WebhookReceiver)


async def test_ironclad_webhook_valid_signature_verifies_and_key_is_cached() -> None:
    source = KeySource()
    receiver = IroncladWebhooks(source)
    for _ in range(3):
        await verify(receiver, *delivery(COMPLETED))
    assert source.fetches == 1


async def test_ironclad_webhook_non_ascii_body_verifies() -> None:
    headers, body = delivery({**COMPLETED, "note": "Größe – ✓"})
    receiver = IroncladWebhooks(KeySource())
    await verify(receiver, headers, body)
    [executed] = receiver.parse(headers=headers, body=body)
    assert isinstance(executed, ContractExecuted) and executed.clm_workflow_id == COMPLETED["workflowID"]


async def test_ironclad_webhook_tampered_body_is_refused() -> None:
    headers, body = delivery(COMPLETED)
    tampered = body.replace(b"611fbd699f4a33b41d9f8295", b"611fbd699f4a33b41d9f8296")
    with pytest.raises(SignatureInvalid, match="does not match"):
        await verify(IroncladWebhooks(KeySource()), headers, tampered)


async def test_ironclad_webhook_other_event_id_is_refused() -> None:
    headers, body = delivery(COMPLETED)
    headers["X-Ironclad-Webhook-Event-Id"] = "webhookEventforged"
    with pytest.raises(SignatureInvalid, match="does not match"):
        await verify(IroncladWebhooks(KeySource()), headers, body)


async def test_ironclad_webhook_wrong_key_is_refused_after_one_refetch() -> None:
    source = KeySource()
    receiver = IroncladWebhooks(source, refetch_after_seconds=0)
    with pytest.raises(SignatureInvalid, match="does not match"):
        await verify(receiver, *delivery(COMPLETED, key=OTHER_KEY))
    assert source.fetches == 2  # the cached key, then one fetch in case it was rotated


async def test_ironclad_webhook_refetches_at_most_once_per_interval() -> None:
    source = KeySource()
    receiver = IroncladWebhooks(source, refetch_after_seconds=3600)
    for _ in range(3):
        with pytest.raises(SignatureInvalid):
            await verify(receiver, *delivery(COMPLETED, key=OTHER_KEY))
    assert source.fetches == 1


async def test_ironclad_webhook_rotated_key_verifies_after_refetch() -> None:
    source = KeySource(KEY)
    receiver = IroncladWebhooks(source, refetch_after_seconds=0)
    await verify(receiver, *delivery(COMPLETED))
    source.key = OTHER_KEY  # Ironclad rotated its key pair
    await verify(receiver, *delivery(COMPLETED, key=OTHER_KEY))
    assert source.fetches == 2


@pytest.mark.parametrize("header", ["X-Ironclad-Webhook-Event-Id", "X-Ironclad-Webhook-Verification"])
async def test_ironclad_webhook_missing_header_is_refused(header: str) -> None:
    headers, body = delivery(COMPLETED)
    del headers[header]
    with pytest.raises(SignatureInvalid, match=f"missing {header}"):
        await verify(IroncladWebhooks(KeySource()), headers, body)


@pytest.mark.parametrize("value", ["not json", '{"nonce": "n"}', '{"nonce":"n","signAlgorithm":"RSA-SHA256",'
                                   '"signature":"***","encoding":"base64"}'])
async def test_ironclad_webhook_malformed_verification_header_is_refused(value: str) -> None:
    headers, body = delivery(COMPLETED)
    headers["X-Ironclad-Webhook-Verification"] = value
    with pytest.raises(SignatureInvalid, match="malformed"):
        await verify(IroncladWebhooks(KeySource()), headers, body)


async def test_ironclad_webhook_unknown_algorithm_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match="unsupported signAlgorithm"):
        await verify(IroncladWebhooks(KeySource()), *delivery(COMPLETED, algorithm="RSA-MD5"))


async def test_ironclad_webhook_unfetchable_key_is_refused() -> None:
    async def broken() -> str:
        return "not a pem"

    with pytest.raises(SignatureInvalid, match="not a PEM"):
        await verify(IroncladWebhooks(broken), *delivery(COMPLETED))


def test_ironclad_webhook_workflow_completed_parses_to_contract_executed() -> None:
    headers, body = delivery(COMPLETED, event_id="webhookEvent42")
    [event] = IroncladWebhooks(KeySource()).parse(headers=headers, body=body)

    assert isinstance(event, ContractExecuted)
    assert event.clm_workflow_id == "611fbd699f4a33b41d9f8295" and event.clm_record_id is None
    assert event.source_system == "ironclad" and event.source_event_id == "webhookEvent42"
    assert event.correlation_id == "ironclad-webhookEvent42"
    assert event.occurred_at == datetime(2026, 4, 7, 21, 36, 52, 776000, tzinfo=UTC)


def test_ironclad_webhook_amendment_completion_parses_to_amendment_executed() -> None:
    payload = {"event": "workflow_completed", "templateID": "tmpl-contract-amendment", "workflowID": "w2",
               "recordID": "amd-1", "parentRecordID": "rec-1", "amendmentNumber": 3}
    headers, body = delivery(payload)
    [event] = IroncladWebhooks(KeySource()).parse(headers=headers, body=body)

    assert isinstance(event, AmendmentExecuted)
    assert (event.clm_record_id, event.sequence, event.clm_amendment_id) == ("rec-1", 3, "amd-1")


@pytest.mark.parametrize("event", ["workflow_launched", "workflow_comment_added", "workflow_cancelled"])
def test_ironclad_webhook_other_events_are_ignored(event: str) -> None:
    headers, body = delivery({**COMPLETED, "event": event})
    assert IroncladWebhooks(KeySource()).parse(headers=headers, body=body) == []


@pytest.mark.parametrize(("payload", "field"), [
    (None, "payload"),
    ({"templateID": "t"}, "payload.event"),
    ({"event": "workflow_completed", "templateID": "t"}, "payload.workflowID"),
    ({**COMPLETED, "parentRecordID": "rec-1", "amendmentNumber": "three"}, "payload.amendmentNumber"),
])
def test_ironclad_webhook_malformed_payload_names_the_field(payload: Any, field: str) -> None:
    headers, body = delivery(payload)
    with pytest.raises(PayloadInvalid) as caught:
        IroncladWebhooks(KeySource()).parse(headers=headers, body=body)
    assert caught.value.field == field


def test_ironclad_webhook_bad_timestamp_and_body_name_the_field() -> None:
    headers, body = delivery(COMPLETED)
    receiver = IroncladWebhooks(KeySource())
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers=headers, body=body.replace(b"2026-04-07T21:36:52.776Z", b"yesterday"))
    assert caught.value.field == "timestamp"
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers=headers, body=b"{not json")
    assert caught.value.field == "body"


# -- end to end: the emulator's own deliveries ------------------------------------------------
class Inbox:
    """A tiny receiver app on loopback that keeps every delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> dict[str, str]:
            self.received.append((dict(request.headers), await request.body()))
            return {"status": "ok"}

        self.running: RunningApp = start_in_thread(app)

    @property
    def url(self) -> str:
        return f"{self.running.base_url}/hook"

    async def wait_for(self, predicate: Any, within: float = 10) -> tuple[dict[str, str], bytes]:
        for _ in range(int(within / 0.05)):
            for headers, body in list(self.received):
                if predicate(json.loads(body)):
                    return headers, body
            await asyncio.sleep(0.05)
        raise AssertionError("no matching delivery arrived")


@pytest.fixture(scope="module")
def inbox(ironclad_sandbox: SandboxHandle) -> Iterator[Inbox]:
    box = Inbox()
    ironclad_sandbox.post_control("webhooks", {"url": box.url})
    yield box
    ironclad_sandbox.control.webhooks.targets = [t for t in ironclad_sandbox.control.webhooks.targets
                                                 if t.url != box.url]
    box.running.stop()


@pytest_asyncio.fixture
async def clm(settings: Settings, ironclad_sandbox: SandboxHandle) -> AsyncIterator[IroncladClm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def _payload_is(event: str, **fields: Any) -> Any:
    return lambda body: body["payload"]["event"] == event and all(body["payload"].get(k) == v
                                                                   for k, v in fields.items())


async def test_ironclad_emulator_webhooks_verify_and_parse_end_to_end(
        clm: IroncladClm, settings: Settings, inbox: Inbox, ironclad_sandbox: SandboxHandle) -> None:
    receiver = webhooks_from_settings(settings)  # fetches the key through its own authenticated client
    try:
        launched = await clm.launch_contract(contract_request(settings), idempotency_key=f"e2e-{uuid.uuid4()}")
        record_id = ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign").json()["recordId"]
        amendment = ironclad_sandbox.post_control(f"records/{record_id}/amendments", {
            "sequence": 1, "properties": {"paymentTermsDays": 60}}).json()

        headers, body = await inbox.wait_for(_payload_is("workflow_launched", workflowID=launched.clm_workflow_id))
        await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
        assert receiver.parse(headers=headers, body=body) == []

        headers, body = await inbox.wait_for(_payload_is("workflow_completed", workflowID=launched.clm_workflow_id))
        await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
        [executed] = receiver.parse(headers=headers, body=body)
        assert isinstance(executed, ContractExecuted)
        assert executed.clm_workflow_id == launched.clm_workflow_id
        assert executed.source_event_id == headers["x-ironclad-webhook-event-id"]

        headers, body = await inbox.wait_for(_payload_is("workflow_completed", parentRecordID=record_id))
        await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
        [amended] = receiver.parse(headers=headers, body=body)
        assert isinstance(amended, AmendmentExecuted)
        assert (amended.clm_record_id, amended.sequence) == (record_id, 1)
        assert amended.clm_amendment_id == amendment["recordId"]

        tampered = body.replace(record_id.encode(), str(uuid.uuid4()).encode())
        with pytest.raises(SignatureInvalid):
            await receiver.verify(method="POST", url=inbox.url, headers=headers, body=tampered)
    finally:
        await receiver.aclose()


async def test_ironclad_emulator_key_rotation_is_followed(
        clm: IroncladClm, settings: Settings, inbox: Inbox, ironclad_sandbox: SandboxHandle) -> None:
    receiver = IroncladWebhooks(clm.webhook_verification_key, refetch_after_seconds=0)
    first = await clm.launch_contract(contract_request(settings), idempotency_key=f"rot1-{uuid.uuid4()}")
    headers, body = await inbox.wait_for(_payload_is("workflow_launched", workflowID=first.clm_workflow_id))
    await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)

    ironclad_sandbox.post_control("verification-key/rotate")
    second = await clm.launch_contract(contract_request(settings), idempotency_key=f"rot2-{uuid.uuid4()}")
    headers, body = await inbox.wait_for(_payload_is("workflow_launched", workflowID=second.clm_workflow_id))

    await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
    assert json.loads(body)["payload"]["workflowID"] == second.clm_workflow_id
    assert receiver.parse(headers=headers, body=body) == []  # a launch is no event the flows act on
