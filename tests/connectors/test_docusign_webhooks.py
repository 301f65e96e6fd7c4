"""DocuSign Connect: HMAC-SHA256 (base64) over the raw body in ``X-DocuSign-Signature-n``, valid when any header
matches any key held (rotation both ways); the JSON (SIM) body parsed into canonical events. Signatures here are
computed in the test, independently of the connector; the end-to-end cases take the emulator's own deliveries."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, Request

from canonical import AmendmentExecuted, ContractExecuted
from connectors.docusign import DocuSignClm, DocuSignConnect, from_settings, webhooks_from_settings
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.ports import WebhookReceiver
from connectors.registry import default_registry
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.connectors.test_docusign_adapter import contract_request
from tests.helpers.prism import spec_path
from tests.helpers.servers import SandboxHandle, vendor_settings

OLD, NEW = "connect-key-old", "connect-key-new"
URL = "https://revops.example/webhooks/docusign"


def hmac_b64(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def connect_body(event: str = "envelope-completed", *, envelope_id: str | None = None,
                 fields: dict[str, str] | None = None, generated: str = "2026-12-06T05:08:24.1234567Z") -> bytes:
    envelope_id = envelope_id or str(uuid.uuid4())
    texts = [{"fieldId": str(n), "name": k, "value": v, "show": "false", "required": "false"}
             for n, (k, v) in enumerate((fields or {"revopsKey": "k1", "revopsDealId": "42"}).items())]
    return json.dumps({
        "event": event, "apiVersion": "v2.1", "uri": f"/restapi/v2.1/accounts/a/envelopes/{envelope_id}",
        "retryCount": 0, "configurationId": 1, "generatedDateTime": generated,
        "data": {"accountId": "a", "userId": "u", "envelopeId": envelope_id,
                 "envelopeSummary": {"status": event.removeprefix("envelope-"), "envelopeId": envelope_id,
                                     "customFields": {"textCustomFields": texts}}}}).encode()


async def test_docusign_connect_is_a_receiver_on_its_ingress_path(settings: Settings) -> None:
    spec = next(s for s in default_registry(settings).all() if s.name == "docusign")
    receiver = spec.build_receiver(settings)
    assert isinstance(receiver, WebhookReceiver) and receiver.vendor == "docusign"
    assert spec.webhook_path == "/webhooks/docusign"


async def test_docusign_connect_valid_signature_verifies() -> None:
    body = connect_body()
    receiver = DocuSignConnect([OLD])
    await receiver.verify(method="POST", url=URL, headers={"X-DocuSign-Signature-1": hmac_b64(OLD, body)}, body=body)
    assert [type(e).__name__ for e in receiver.parse(headers={}, body=body)] == ["ContractExecuted"]


async def test_docusign_connect_tampered_body_is_refused() -> None:
    body = connect_body()
    headers = {"X-DocuSign-Signature-1": hmac_b64(OLD, body)}
    with pytest.raises(SignatureInvalid):
        await DocuSignConnect([OLD]).verify(method="POST", url=URL, headers=headers, body=body.replace(b"42", b"43"))


async def test_docusign_connect_wrong_key_is_refused() -> None:
    body = connect_body()
    with pytest.raises(SignatureInvalid):
        await DocuSignConnect([OLD]).verify(method="POST", url=URL,
                                            headers={"X-DocuSign-Signature-1": hmac_b64("someone-else", body)},
                                            body=body)


async def test_docusign_connect_rotation_new_key_at_docusign_first() -> None:
    """DocuSign signs with old and new keys (two headers); we still hold only the old one, or only the new one."""
    body = connect_body()
    headers = {"X-DocuSign-Signature-1": hmac_b64(OLD, body), "X-DocuSign-Signature-2": hmac_b64(NEW, body)}
    await DocuSignConnect([OLD]).verify(method="POST", url=URL, headers=headers, body=body)
    await DocuSignConnect([NEW]).verify(method="POST", url=URL, headers=headers, body=body)
    with pytest.raises(SignatureInvalid):  # neither key of the pair: refused, so the two above were matches
        await DocuSignConnect(["unrelated"]).verify(method="POST", url=URL, headers=headers, body=body)


async def test_docusign_connect_rotation_new_key_here_first() -> None:
    """We hold old and new keys; DocuSign still signs with the old one only, later with the new one only."""
    body = connect_body()
    receiver = DocuSignConnect([NEW, OLD])
    await receiver.verify(method="POST", url=URL, headers={"X-DocuSign-Signature-1": hmac_b64(OLD, body)}, body=body)
    await receiver.verify(method="POST", url=URL, headers={"x-docusign-signature-1": hmac_b64(NEW, body)}, body=body)
    with pytest.raises(SignatureInvalid):  # the old key dropped here after the rotation: refused
        await DocuSignConnect([NEW]).verify(method="POST", url=URL,
                                            headers={"X-DocuSign-Signature-1": hmac_b64(OLD, body)}, body=body)


@pytest.mark.parametrize("headers", [{}, {"X-DocuSign-Signature-1": "not base64!"},
                                     {"X-DocuSign-Signature-1": ""}, {"X-Other": "x"}])
async def test_docusign_connect_missing_or_malformed_signature_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureInvalid):
        await DocuSignConnect([OLD]).verify(method="POST", url=URL, headers=headers, body=connect_body())


async def test_docusign_connect_without_keys_refuses_everything() -> None:
    body = connect_body()
    with pytest.raises(SignatureInvalid):
        await DocuSignConnect([]).verify(method="POST", url=URL, headers={"X-DocuSign-Signature-1": hmac_b64("", body)},
                                         body=body)


def test_docusign_connect_completed_envelope_is_contract_executed() -> None:
    envelope_id = str(uuid.uuid4())
    [event] = DocuSignConnect([OLD]).parse(headers={}, body=connect_body(envelope_id=envelope_id))
    assert isinstance(event, ContractExecuted)
    assert (event.clm_workflow_id, event.clm_record_id) == (envelope_id, envelope_id)
    assert event.source_system == "docusign" and event.source_event_id == f"{envelope_id}.envelope-completed"
    assert event.occurred_at.isoformat() == "2026-12-06T05:08:24.123456+00:00"


def test_docusign_connect_completed_amendment_is_amendment_executed() -> None:
    parent, envelope_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = connect_body(envelope_id=envelope_id, fields={"revopsKey": "k:amendment:2", "revopsParentEnvelopeId": parent,
                                                         "revopsAmendmentNumber": "2"})
    [event] = DocuSignConnect([OLD]).parse(headers={}, body=body)
    assert isinstance(event, AmendmentExecuted)
    assert (event.clm_record_id, event.sequence, event.clm_amendment_id) == (parent, 2, envelope_id)


@pytest.mark.parametrize("event", ["envelope-sent", "envelope-delivered", "envelope-declined", "envelope-voided",
                                   "recipient-completed"])
def test_docusign_connect_other_events_are_ignored(event: str) -> None:
    assert DocuSignConnect([OLD]).parse(headers={}, body=connect_body(event)) == []


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"), (b"[]", "body"), (json.dumps({"data": {}}).encode(), "event"),
    (json.dumps({"event": "envelope-completed"}).encode(), "data"),
    (json.dumps({"event": "envelope-completed", "data": {"envelopeId": "../x"}}).encode(), "data.envelopeId"),
    (connect_body(generated="yesterday"), "generatedDateTime"),
    (connect_body(fields={"revopsParentEnvelopeId": str(uuid.uuid4()), "revopsAmendmentNumber": "two"}),
     "customFields.revopsAmendmentNumber"),
])
def test_docusign_connect_malformed_payload_names_the_field(body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        DocuSignConnect([OLD]).parse(headers={}, body=body)
    assert caught.value.field == field


# -- end to end: the emulator's own deliveries ------------------------------------------------------------
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
def inbox(docusign_sandbox: SandboxHandle) -> Iterator[Inbox]:
    box = Inbox()
    docusign_sandbox.post_control("webhooks", {"url": box.url})
    yield box
    docusign_sandbox.control.webhooks.targets = [t for t in docusign_sandbox.control.webhooks.targets
                                                 if t.url != box.url]
    box.running.stop()


@pytest_asyncio.fixture
async def clm(settings: Settings, docusign_sandbox: SandboxHandle) -> AsyncIterator[DocuSignClm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def _is(event: str, envelope_id: str | None) -> Any:
    return lambda body: body["event"] == event and body["data"]["envelopeId"] == envelope_id


async def test_docusign_emulator_connect_verifies_and_parses_end_to_end(
        clm: DocuSignClm, settings: Settings, inbox: Inbox, docusign_sandbox: SandboxHandle) -> None:
    receiver = webhooks_from_settings(settings)
    launched = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    docusign_sandbox.post_control(f"envelopes/{launched.clm_workflow_id}/sign")
    amendment = docusign_sandbox.post_control(f"envelopes/{launched.clm_workflow_id}/amendments",
                                              {"sequence": 1, "tabs": {"paymentTermsDays": "60"}}).json()

    headers, body = await inbox.wait_for(_is("envelope-completed", launched.clm_workflow_id))
    await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
    [executed] = receiver.parse(headers=headers, body=body)
    assert isinstance(executed, ContractExecuted) and executed.clm_workflow_id == launched.clm_workflow_id

    headers, body = await inbox.wait_for(_is("envelope-completed", amendment["envelopeId"]))
    await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body)
    [amended] = receiver.parse(headers=headers, body=body)
    assert isinstance(amended, AmendmentExecuted)
    assert (amended.clm_record_id, amended.sequence) == (launched.clm_workflow_id, 1)

    with pytest.raises(SignatureInvalid):
        await receiver.verify(method="POST", url=inbox.url, headers=headers, body=body.replace(b"60", b"90"))


def unknown_keys(sent: Any, sample: Any, at: str = "") -> list[str]:
    """Paths of the fields in ``sent`` that DocuSign's sample message does not have."""
    if isinstance(sent, dict) and isinstance(sample, dict):
        return [p for k, v in sent.items()
                for p in ([f"{at}{k}"] if k not in sample else unknown_keys(v, sample[k], f"{at}{k}."))]
    if isinstance(sent, list) and isinstance(sample, list) and sample:
        return [p for item in sent for p in unknown_keys(item, sample[0], f"{at}[].")]
    return []


async def test_docusign_emulator_connect_message_has_docusigns_shape(
        clm: DocuSignClm, inbox: Inbox, docusign_sandbox: SandboxHandle) -> None:
    """The emulator's Connect body uses only fields of DocuSign's sample JSON (SIM) message
    (``../shared/vendor-specs/docusign/connect.schema-v2.json``)."""
    sample = json.loads(spec_path("docusign/connect.schema-v2.json").read_text(encoding="utf-8"))
    launched = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
    docusign_sandbox.post_control(f"envelopes/{launched.clm_workflow_id}/sign")
    _headers, body = await inbox.wait_for(_is("envelope-completed", launched.clm_workflow_id))
    message = json.loads(body)

    assert unknown_keys(message, sample) == []
    assert message["data"]["envelopeSummary"]["customFields"]["textCustomFields"]
    assert unknown_keys({"extra": 1, "data": {"envelopeSummary": {"templateId": "t"}}}, sample) == [
        "extra", "data.envelopeSummary.templateId"]


async def test_docusign_emulator_connect_rotation_is_accepted_both_ways(
        clm: DocuSignClm, settings: Settings, inbox: Inbox, docusign_sandbox: SandboxHandle) -> None:
    held = vendor_settings(settings, "docusign").connect_hmac_keys[0]
    try:
        # DocuSign adds the new key first: it signs with both, we hold the old one
        docusign_sandbox.post_control("connect/keys", {"keys": [held, NEW]})
        first = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
        docusign_sandbox.post_control(f"envelopes/{first.clm_workflow_id}/sign")
        headers, body = await inbox.wait_for(_is("envelope-completed", first.clm_workflow_id))
        assert "x-docusign-signature-2" in headers
        await DocuSignConnect([held]).verify(method="POST", url=inbox.url, headers=headers, body=body)

        # then DocuSign drops the old key: we hold both while rotating, then only the new one
        docusign_sandbox.post_control("connect/keys", {"keys": [NEW]})
        second = await clm.launch_contract(contract_request(), idempotency_key=uuid.uuid4().hex)
        docusign_sandbox.post_control(f"envelopes/{second.clm_workflow_id}/sign")
        headers, body = await inbox.wait_for(_is("envelope-completed", second.clm_workflow_id))
        await DocuSignConnect([held, NEW]).verify(method="POST", url=inbox.url, headers=headers, body=body)
        await DocuSignConnect([NEW]).verify(method="POST", url=inbox.url, headers=headers, body=body)
        with pytest.raises(SignatureInvalid):
            await DocuSignConnect([held]).verify(method="POST", url=inbox.url, headers=headers, body=body)
    finally:
        docusign_sandbox.post_control("connect/keys", {"keys": [held]})
