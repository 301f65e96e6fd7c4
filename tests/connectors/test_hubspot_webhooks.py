"""HubSpot webhook verification (v3 signatures computed here independently) and parsing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from hubspot.utils.signature import Signature

from canonical import DealChanged, DealStageReached
from canonical.events import OwnWriteEcho
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.hubspot import HubSpotWebhooks, webhooks_from_settings
from connectors.hubspot.webhooks import signing_uri
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor


def _hubspot(settings: Settings) -> Any:
    return vendor_settings(settings, "hubspot")

URL = "https://ingress.example.com/webhooks/hubspot"
SECRET = "test-client-secret"


def v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{method}{uri}".encode() + body + timestamp.encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def signed(body: bytes, *, secret: str = SECRET, url: str = URL, age_seconds: float = 0) -> dict[str, str]:
    timestamp = str(int((time.time() - age_seconds) * 1000))
    return {"X-HubSpot-Signature-v3": v3(secret, "POST", url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp, "Content-Type": "application/json"}


def event(**fields: Any) -> dict[str, Any]:
    base = {"eventId": 1_000_001, "subscriptionId": 42, "portalId": 62515, "appId": 54321,
            "occurredAt": 1_735_689_600_000, "subscriptionType": "deal.propertyChange", "attemptNumber": 0,
            "objectId": 777, "propertyName": "dealstage", "propertyValue": "closedwon", "changeSource": "CRM_UI"}
    return {**base, **fields}


@pytest.fixture
def receiver() -> HubSpotWebhooks:
    return HubSpotWebhooks(client_secret=SECRET, approval_stage="contractsent", closed_won_stage="closedwon")


async def test_hubspot_webhook_valid_signature_verifies(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    await receiver.verify(method="POST", url=URL, headers=signed(body), body=body)
    [won] = receiver.parse(headers=signed(body), body=body)
    assert isinstance(won, DealStageReached)
    assert (won.deal_id, won.stage, won.source_event_id) == ("777", "closedwon", "1000001")


async def test_hubspot_webhook_headers_are_case_insensitive(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    headers = {k.lower(): v for k, v in signed(body).items()}
    await receiver.verify(method="post", url=URL, headers=headers, body=body)
    assert [e.source_event_id for e in receiver.parse(headers=headers, body=body)] == ["1000001"]


async def test_hubspot_webhook_tampered_body_is_refused(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    headers = signed(body)
    with pytest.raises(SignatureInvalid, match="does not match"):
        await receiver.verify(method="POST", url=URL, headers=headers, body=body.replace(b"777", b"778"))


async def test_hubspot_webhook_other_url_is_refused(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    with pytest.raises(SignatureInvalid, match="does not match"):
        await receiver.verify(method="POST", url=URL + "?x=1", headers=signed(body), body=body)


async def test_hubspot_webhook_wrong_secret_is_refused(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    with pytest.raises(SignatureInvalid, match="does not match"):
        await receiver.verify(method="POST", url=URL, headers=signed(body, secret="someone-else"), body=body)


async def test_hubspot_webhook_stale_timestamp_is_refused(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event()]).encode()
    with pytest.raises(SignatureInvalid, match="stale"):
        await receiver.verify(method="POST", url=URL, headers=signed(body, age_seconds=301), body=body)
    await receiver.verify(method="POST", url=URL, headers=signed(body, age_seconds=290), body=body)


@pytest.mark.parametrize("missing", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
async def test_hubspot_webhook_missing_header_is_refused(receiver: HubSpotWebhooks, missing: str) -> None:
    body = json.dumps([event()]).encode()
    headers = {k: v for k, v in signed(body).items() if k != missing}
    with pytest.raises(SignatureInvalid, match=f"missing {missing}"):
        await receiver.verify(method="POST", url=URL, headers=headers, body=body)


async def test_hubspot_webhook_signature_uses_decoded_uri(receiver: HubSpotWebhooks) -> None:
    called = "https://ingress.example.com/webhooks/hubspot?next=%2Fdeals%3Fid%3D1&who=a%40b"
    as_signed = "https://ingress.example.com/webhooks/hubspot?next=/deals?id%3D1&who=a@b"
    body = json.dumps([event(eventId=5)]).encode()
    await receiver.verify(method="POST", url=called, headers=signed(body, url=as_signed), body=body)
    assert [e.source_event_id for e in receiver.parse(headers={}, body=body)] == ["5"]
    with pytest.raises(SignatureInvalid, match="does not match"):  # signed over the escaped URI: refused
        await receiver.verify(method="POST", url=called, headers=signed(body, url=called), body=body)


def test_hubspot_webhook_parses_closed_won_and_approval_stages(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([event(eventId=11, objectId=501, propertyValue="closedwon"),
                       event(eventId=12, objectId=502, propertyValue="contractsent")]).encode()

    won, approval = receiver.parse(headers={}, body=body)

    assert isinstance(won, DealStageReached) and isinstance(approval, DealStageReached)
    assert (won.deal_id, won.stage, won.is_closed_won) == ("501", "closedwon", True)
    assert (approval.deal_id, approval.stage, approval.is_closed_won) == ("502", "contractsent", False)
    assert (won.source_system, won.source_event_id, won.correlation_id) == ("hubspot", "11", "hubspot-11")
    assert won.occurred_at.timestamp() == 1_735_689_600


def test_hubspot_webhook_parses_other_changes_and_marks_our_echoes(receiver: HubSpotWebhooks) -> None:
    body = json.dumps([
        event(eventId=21, propertyName="revops_region", propertyValue="EMEA"),
        event(eventId=22, propertyName="dealstage", propertyValue="qualifiedtobuy"),
        event(eventId=23, propertyName="revops_status", propertyValue="provisioned", changeSource="INTEGRATION"),
        event(eventId=24, propertyName="revops_clm_workflow_id", propertyValue="wf-1", changeSource="INTEGRATION"),
        event(eventId=25, propertyName="amount", propertyValue=None),
        event(eventId=26, subscriptionType="deal.creation", propertyName=None, propertyValue=None),
        event(eventId=27, subscriptionType="contact.propertyChange", propertyName="email", propertyValue="x@y.z"),
    ]).encode()

    events = receiver.parse(headers={}, body=body)

    assert [(e.source_event_id, e.properties) for e in events if isinstance(e, DealChanged)] == [
        ("21", {"revops_region": "EMEA"}), ("22", {"dealstage": "qualifiedtobuy"}), ("25", {"amount": None})]
    # our own write-backs come back as one echo per deal: names only, never routed as a change
    [echo] = [e for e in events if isinstance(e, OwnWriteEcho)]
    assert (echo.source_event_id, echo.properties, echo.change_source) == (
        "23", ["revops_status", "revops_clm_workflow_id"], "INTEGRATION")
    assert len(events) == 4


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b'{"eventId": 1}', "body"),
    (b"[42]", "[0]"),
    (json.dumps([event(), {k: v for k, v in event().items() if k != "eventId"}]).encode(), "[1].eventId"),
    (json.dumps([event(objectId=None)]).encode(), "[0].objectId"),
    (json.dumps([event(occurredAt="yesterday")]).encode(), "[0].occurredAt"),
    (json.dumps([event(propertyName=None)]).encode(), "[0].propertyName"),
])
def test_hubspot_webhook_malformed_body_names_the_field(receiver: HubSpotWebhooks, body: bytes, field: str) -> None:
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers={}, body=body)
    assert caught.value.field == field


# -- end to end: the emulator's own deliveries verify -------------------------------------------------
@pytest.fixture(scope="module")
def capture() -> Iterator[tuple[RunningApp, list[dict[str, Any]]]]:
    """A tiny receiver that records every delivery it gets."""
    received: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/webhooks/hubspot")
    async def hook(request: Request) -> dict[str, str]:
        received.append({"method": request.method, "url": str(request.url), "headers": dict(request.headers),
                         "body": await request.body()})
        return {"ok": "yes"}

    running = start_in_thread(app)
    yield running, received
    running.stop()


async def test_hubspot_emulator_webhook_verifies_and_parses(
        settings: Settings, hubspot_sandbox: SandboxHandle, capture: tuple[RunningApp, list[dict[str, Any]]]) -> None:
    running, received = capture
    # escapes HubSpot decodes before signing (%3A, %40) and one it keeps (%20)
    target = f"{running.base_url}/webhooks/hubspot?source=sandbox%3A{uuid.uuid4().hex[:6]}%40hub%20x"
    hubspot_sandbox.post_control("webhooks", {"url": target})
    control = httpx.AsyncClient(base_url=f"{hubspot_sandbox.base_url}/_sandbox", timeout=10)
    try:
        seeded = (await control.post("/seed/deal", json={
            "deal": {"dealname": "Webhook deal", "dealstage": "qualifiedtobuy"}})).json()
        moved = (await control.post(f"/deals/{seeded['dealId']}/stage",
                                    json={"stage": _hubspot(settings).closed_won_stage})).json()
        delivery = None
        for _ in range(100):
            delivery = next((d for d in received if d["url"] == target
                             and str(moved["eventIds"][0]).encode() in d["body"]), None)
            if delivery:
                break
            await asyncio.sleep(0.05)
    finally:
        await control.delete("/webhooks")
        await control.aclose()
    assert delivery is not None, "the emulator did not deliver the stage change"
    receiver = webhooks_from_settings(settings)

    await receiver.verify(method=delivery["method"], url=delivery["url"], headers=delivery["headers"],
                          body=delivery["body"])
    events = receiver.parse(headers=delivery["headers"], body=delivery["body"])

    assert "%3A" in delivery["url"], "the target URL reached the receiver with its escapes"
    # HubSpot's own SDK verifies the emulator's signature over the decoded URI, as HubSpot documents
    headers = {k.lower(): v for k, v in delivery["headers"].items()}
    secret = _hubspot(settings).client_secret
    assert Signature.is_valid(signature=headers["x-hubspot-signature-v3"], client_secret=secret,
                              request_body=delivery["body"].decode(), http_uri=signing_uri(delivery["url"]),
                              http_method="POST", signature_version="v3",
                              timestamp=headers["x-hubspot-request-timestamp"])
    assert len(events) == 1 and isinstance(events[0], DealStageReached)
    assert events[0].deal_id == seeded["dealId"] and events[0].is_closed_won
    assert events[0].source_event_id == str(moved["eventIds"][0])
    other = webhooks_from_settings(with_vendor(settings, "hubspot", client_secret="not-the-secret"))
    with pytest.raises(SignatureInvalid):
        await other.verify(method=delivery["method"], url=delivery["url"], headers=delivery["headers"],
                           body=delivery["body"])
