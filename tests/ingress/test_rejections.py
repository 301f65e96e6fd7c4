"""Tampered, unsigned, stale, malformed, oversized and misaddressed deliveries: refused with their codes,
recorded, and nothing started or signalled."""

from __future__ import annotations

import json
import time
import uuid

import httpx
from temporalio.client import Client

from sandbox.serve import free_port
from settings import Settings
from tests.helpers.ids import ledger_id, quote_to_cash_id
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor
from tests.helpers.webhooks import (
    Signed,
    hubspot_delivery,
    hubspot_property_change,
    hubspot_sign,
    stripe_delivery,
    stripe_invoice,
    unique_deal_id,
    xero_delivery,
    xero_event,
)
from tests.ingress.conftest import MakeIngress, RunningIngress, post, workflow_exists


async def assert_absent(client: Client, workflow_id: str) -> None:
    assert not await workflow_exists(client, workflow_id), f"{workflow_id} exists"


def closed_won(ingress: RunningIngress, deal_id: str, **kwargs: int) -> Signed:
    return hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                            [hubspot_property_change(deal_id, "dealstage", "closedwon")], **kwargs)


async def test_rejection_tampered_hubspot_body_is_401_and_starts_nothing(ingress: RunningIngress,
                                                                        client: Client) -> None:
    deal_id, other = unique_deal_id(), unique_deal_id()
    delivery = closed_won(ingress, deal_id)
    tampered = delivery.body.replace(deal_id.encode(), other.encode())

    response = await post(ingress.url("hubspot"), tampered, delivery.headers)

    assert response.status_code == 401
    assert response.json()["reason"] == "signature does not match"
    await assert_absent(client, quote_to_cash_id(other))
    [row] = ingress.deliveries()
    assert (row.outcome, row.signature, row.status_code, row.vendor_event_id) == ("rejected", "invalid", 401, None)


async def test_rejection_unsigned_stripe_delivery_is_401(ingress: RunningIngress, client: Client) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    delivery = stripe_delivery(ingress.settings, "invoice.finalized", stripe_invoice(customer))

    response = await post(ingress.url("stripe"), delivery.body, {"Content-Type": "application/json"})

    assert response.status_code == 401 and "missing Stripe-Signature" in response.json()["reason"]
    await assert_absent(client, ledger_id(customer))
    assert ingress.outcomes() == {"rejected": 1}


async def test_rejection_stale_hubspot_timestamp_is_401_with_the_reason(ingress: RunningIngress,
                                                                       client: Client) -> None:
    deal_id = unique_deal_id()
    delivery = closed_won(ingress, deal_id, timestamp_ms=int((time.time() - 600) * 1000))

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 401 and response.json()["reason"].startswith("stale timestamp")
    await assert_absent(client, quote_to_cash_id(deal_id))
    assert ingress.deliveries()[0].reason.startswith("stale timestamp")


async def test_rejection_stale_stripe_timestamp_is_401_with_the_reason(ingress: RunningIngress,
                                                                      client: Client) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    delivery = stripe_delivery(ingress.settings, "invoice.finalized", stripe_invoice(customer),
                               timestamp=int(time.time()) - 301)

    response = await post(ingress.url("stripe"), delivery.body, delivery.headers)

    assert response.status_code == 401 and "tolerance" in response.json()["reason"]
    await assert_absent(client, ledger_id(customer))


async def test_rejection_wrongly_signed_xero_delivery_is_401_with_no_body(ingress: RunningIngress) -> None:
    delivery = xero_delivery(ingress.settings, [xero_event()], key="not-the-webhook-key")

    response = await post(ingress.url("xero"), delivery.body, delivery.headers)

    assert response.status_code == 401 and response.content == b""
    assert ingress.outcomes() == {"rejected": 1}


async def test_rejection_forged_ironclad_delivery_is_401(ingress: RunningIngress,
                                                        ironclad_sandbox: SandboxHandle) -> None:
    body = json.dumps({"companyID": "c", "webhookID": "w", "timestamp": "2026-01-05T10:00:00Z",
                       "payload": {"event": "workflow_completed", "workflowID": "wf-1"}},
                      separators=(",", ":"))
    headers = ironclad_sandbox.running.app.state.ironclad.signer.headers("webhookEvent1", body)

    response = await post(ingress.url("ironclad"), body.replace("wf-1", "wf-2").encode(), headers)

    assert response.status_code == 401 and "does not match" in response.json()["reason"]


async def test_rejection_malformed_hubspot_body_is_400_naming_the_field(ingress: RunningIngress) -> None:
    body = json.dumps([{"eventId": 1, "objectId": 2, "occurredAt": 3}]).encode()
    headers = hubspot_sign(vendor_settings(ingress.settings, "hubspot").client_secret, ingress.url("hubspot"), body)

    response = await post(ingress.url("hubspot"), body, headers)

    assert response.status_code == 400 and response.json()["field"] == "[0].subscriptionType"
    [row] = ingress.deliveries()
    assert (row.outcome, row.signature, row.status_code) == ("rejected", "valid", 400)


async def test_rejection_malformed_stripe_event_is_400_naming_the_field(ingress: RunningIngress) -> None:
    delivery = stripe_delivery(ingress.settings, "invoice.finalized", stripe_invoice("cus_1"))
    body = json.dumps({k: v for k, v in json.loads(delivery.body).items() if k != "type"}).encode()
    resigned = stripe_delivery(ingress.settings, "x", {})  # just for a helper-signed header over `body`
    from tests.helpers.webhooks import stripe_sign

    resigned.headers["Stripe-Signature"] = stripe_sign(vendor_settings(ingress.settings, "stripe").webhook_secret, body)

    response = await post(ingress.url("stripe"), body, resigned.headers)

    assert response.status_code == 400 and response.json()["field"] == "type"


async def test_rejection_oversized_body_is_413_and_starts_nothing(ingress: RunningIngress, client: Client) -> None:
    deal_id = unique_deal_id()
    events = [hubspot_property_change(deal_id, "dealstage", "closedwon")]
    events += [hubspot_property_change(deal_id, "description", "x" * 1000) for _ in range(80)]
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"), events)
    assert len(delivery.body) > ingress.settings.ingress_max_body_bytes

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 413
    await assert_absent(client, quote_to_cash_id(deal_id))
    [row] = ingress.deliveries()
    assert (row.outcome, row.status_code, row.body) == ("rejected", 413, "")


async def test_rejection_oversized_chunked_body_is_413(ingress: RunningIngress) -> None:
    limit = ingress.settings.ingress_max_body_bytes

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024

    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(ingress.url("stripe"), content=chunks())

    assert response.status_code == 413
    assert ingress.outcomes() == {"rejected": 1}


async def test_rejection_unknown_vendor_path_is_404_and_recorded(ingress: RunningIngress) -> None:
    response = await post(ingress.url("salesforce"), b"{}", {"Content-Type": "application/json"})

    assert response.status_code == 404
    [row] = ingress.deliveries()
    assert (row.vendor, row.outcome, row.status_code) == ("salesforce", "rejected", 404)


async def test_rejection_ironclad_key_unreachable_is_503_not_a_refusal(make_ingress: MakeIngress,
                                                                       ingress_settings: Settings) -> None:
    unreachable = with_vendor(ingress_settings, "ironclad", base_url=f"http://127.0.0.1:{free_port()}")
    ingress = make_ingress(settings=unreachable)
    body = b'{"payload":{"event":"workflow_completed","workflowID":"wf-1"},"timestamp":"2026-01-05T10:00:00Z"}'
    headers = {"X-Ironclad-Webhook-Event-Id": "webhookEvent2", "X-Ironclad-Webhook-Verification": json.dumps(
        {"nonce": "n", "signAlgorithm": "RSA-SHA256", "signature": "AAAA", "encoding": "base64"})}

    response = await post(ingress.url("ironclad"), body, headers)

    assert response.status_code == 503 and response.json()["reason"] == "try later"  # nothing of our insides
    assert response.headers["retry-after"]
    assert ingress.outcomes() == {"failed": 1}
    [row] = ingress.deliveries()
    assert "verification key" in row.reason and row.body == ""
