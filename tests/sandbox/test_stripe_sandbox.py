"""The Stripe emulator over HTTP: auth, idempotency, faults, 429s, pagination, search, webhooks, human acts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request

from sandbox.kit import WebhookTarget
from sandbox.serve import start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest_asyncio.fixture
async def api(settings: Settings, stripe_sandbox: SandboxHandle) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {vendor_settings(settings, 'stripe').api_key}", "Stripe-Version": "2023-08-16"}
    async with httpx.AsyncClient(base_url=stripe_sandbox.base_url, headers=headers, timeout=10) as client:
        yield client


async def customer(api: httpx.AsyncClient, **fields: str) -> dict[str, Any]:
    response = await api.post("/v1/customers", data={"name": f"Cust {uid()}", **fields})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def open_invoice(api: httpx.AsyncClient, amount: int = 10000) -> dict[str, Any]:
    cus = await customer(api)
    draft = (await api.post("/v1/invoices", data={"customer": cus["id"], "currency": "usd",
                                                  "collection_method": "send_invoice", "days_until_due": "30",
                                                  "auto_advance": "false"})).json()
    item = await api.post("/v1/invoiceitems", data={"customer": cus["id"], "invoice": draft["id"],
                                                    "currency": "usd", "amount": str(amount)})
    assert item.status_code == 200, item.text
    finalized = await api.post(f"/v1/invoices/{draft['id']}/finalize")
    assert finalized.status_code == 200, finalized.text
    return finalized.json()  # type: ignore[no-any-return]


# -- auth ------------------------------------------------------------------------------------------
async def test_stripe_sandbox_refuses_missing_and_wrong_keys(stripe_sandbox: SandboxHandle,
                                                             settings: Settings) -> None:
    async with httpx.AsyncClient(base_url=stripe_sandbox.base_url) as raw:
        missing = await raw.get("/v1/customers")
        wrong = await raw.get("/v1/customers", headers={"Authorization": "Bearer sk_test_000000000000wxyz"})
        basic = await raw.get("/v1/customers", auth=(vendor_settings(settings, "stripe").api_key, ""))
    assert missing.status_code == 401 and "did not provide an API key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"message": "Invalid API Key provided: sk_test_************wxyz",
                                     "type": "invalid_request_error"}
    assert basic.status_code == 200 and basic.json()["object"] == "list"


async def test_stripe_sandbox_refuses_unknown_parameter_and_route(api: httpx.AsyncClient) -> None:
    unknown = await api.post("/v1/customers", data={"name": "X", "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown" and unknown.json()["error"]["param"] == "colour"
    route = await api.get("/v1/widgets")
    assert route.status_code == 404 and "Unrecognized request URL" in route.json()["error"]["message"]
    missing = await api.get(f"/v1/customers/cus_nope{uid()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"


# -- idempotency -------------------------------------------------------------------------------------
async def test_stripe_sandbox_idempotent_replay_returns_first_response(api: httpx.AsyncClient,
                                                                       stripe_sandbox: SandboxHandle) -> None:
    key = f"idem-{uid()}"
    ref = uid()
    first = await api.post("/v1/customers", data={"name": "Once", "metadata[ref]": ref},
                           headers={"Idempotency-Key": key})
    second = await api.post("/v1/customers", data={"name": "Once", "metadata[ref]": ref},
                            headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(stripe_sandbox.store.list("customer", where=lambda c: c.get("metadata", {}).get("ref") == ref)) == 1


async def test_stripe_sandbox_idempotency_key_reuse_refused(api: httpx.AsyncClient) -> None:
    key = f"idem-{uid()}"
    await api.post("/v1/customers", data={"name": "A"}, headers={"Idempotency-Key": key})
    other_params = await api.post("/v1/customers", data={"name": "B"}, headers={"Idempotency-Key": key})
    other_endpoint = await api.post("/v1/products", data={"name": "A"}, headers={"Idempotency-Key": key})
    for response in (other_params, other_endpoint):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["type"] == "idempotency_error"
        assert error["message"].startswith("Keys for idempotent requests can only be used with the same parameters "
                                           "they were first used with.")


async def test_stripe_sandbox_validation_error_is_not_remembered(api: httpx.AsyncClient) -> None:
    key = f"idem-{uid()}"
    failed = await api.post("/v1/prices", data={"currency": "usd", "unit_amount": "abc", "product": "prod_x"},
                            headers={"Idempotency-Key": key})
    assert failed.status_code == 400 and failed.json()["error"]["param"] == "unit_amount"
    product = (await api.post("/v1/products", data={"name": "P"})).json()
    fixed = await api.post("/v1/prices", data={"currency": "usd", "unit_amount": "500", "product": product["id"]},
                           headers={"Idempotency-Key": key})
    assert fixed.status_code == 200 and fixed.json()["unit_amount"] == 500


# -- faults ------------------------------------------------------------------------------------------
async def test_stripe_sandbox_fault_error_rate_and_latency(api: httpx.AsyncClient,
                                                           stripe_sandbox: SandboxHandle) -> None:
    with stripe_sandbox.faults(error_rate=1, status=500):
        failed = await api.get("/v1/customers")
    assert failed.status_code == 500 and failed.json()["error"]["type"] == "api_error"
    with stripe_sandbox.faults(latency_ms=300):
        started = time.monotonic()
        slow = await api.get("/v1/customers", params={"limit": 1})
        elapsed = time.monotonic() - started
    assert slow.status_code == 200 and elapsed >= 0.29
    assert (await api.get("/v1/customers", params={"limit": 1})).status_code == 200  # cleared


async def test_stripe_sandbox_rate_limit_answers_like_stripe(api: httpx.AsyncClient,
                                                             stripe_sandbox: SandboxHandle) -> None:
    with stripe_sandbox.faults(rate_limit_per_second=0.5, rate_limit_burst=1):
        statuses = [await api.get("/v1/customers", params={"limit": 1}) for _ in range(3)]
    limited = statuses[-1]
    assert statuses[0].status_code == 200 and limited.status_code == 429
    assert limited.json()["error"]["type"] == "invalid_request_error"
    assert limited.json()["error"]["code"] == "rate_limit"
    assert limited.headers["Stripe-Should-Retry"] == "false"
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert limited.headers["Request-Id"].startswith("req_")


# -- lists and search ----------------------------------------------------------------------------------
async def test_stripe_sandbox_pagination_cursors(api: httpx.AsyncClient) -> None:
    email = f"{uid()}@page.example"
    created = [(await customer(api, email=email))["id"] for _ in range(5)]
    newest_first = list(reversed(created))
    first = (await api.get("/v1/customers", params={"email": email, "limit": 2})).json()
    assert [c["id"] for c in first["data"]] == newest_first[:2] and first["has_more"] is True
    assert first["url"] == "/v1/customers" and first["object"] == "list"
    second = (await api.get("/v1/customers", params={"email": email, "limit": 2,
                                                     "starting_after": first["data"][-1]["id"]})).json()
    third = (await api.get("/v1/customers", params={"email": email, "limit": 2,
                                                    "starting_after": second["data"][-1]["id"]})).json()
    assert [c["id"] for c in second["data"]] == newest_first[2:4] and second["has_more"] is True
    assert [c["id"] for c in third["data"]] == newest_first[4:] and third["has_more"] is False
    back = (await api.get("/v1/customers", params={"email": email, "limit": 2,
                                                   "ending_before": newest_first[3]})).json()
    assert [c["id"] for c in back["data"]] == newest_first[1:3] and back["has_more"] is True
    both = await api.get("/v1/customers", params={"starting_after": "a", "ending_before": "b"})
    assert both.status_code == 400
    gone = await api.get("/v1/customers", params={"email": email, "starting_after": "cus_never"})
    assert gone.status_code == 400 and gone.json()["error"]["param"] == "starting_after"  # as Stripe: no such object


async def test_stripe_sandbox_customer_search_syntax(api: httpx.AsyncClient) -> None:
    tag = uid()
    a = await customer(api, **{"metadata[revops_ref]": f"{tag}-a", "email": f"a-{tag}@x.example"})
    b = await customer(api, **{"metadata[revops_ref]": f"{tag}-b", "metadata[legal_entity]": "EU01"})

    async def search(query: str) -> list[str]:
        response = await api.get("/v1/customers/search", params={"query": query})
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "search_result"
        return [c["id"] for c in response.json()["data"]]

    assert await search(f"metadata['revops_ref']:'{tag}-a'") == [a["id"]]
    assert set(await search(f"metadata['revops_ref']:'{tag}-a' OR metadata['revops_ref']:'{tag}-b'")) == {
        a["id"], b["id"]}
    assert await search(f"metadata['revops_ref']:'{tag}-b' AND metadata['legal_entity']:'EU01'") == [b["id"]]
    assert await search(f"email~'{tag}'") == [a["id"]]
    bad = await api.get("/v1/customers/search", params={"query": "metadata['x'] = 1"})
    assert bad.status_code == 400


# -- webhooks ----------------------------------------------------------------------------------------
@pytest.fixture
def sink(stripe_sandbox: SandboxHandle) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        received.append((dict(request.headers), await request.body()))
        return {}

    running = start_in_thread(app)
    url = f"{running.base_url}/hook"
    stripe_sandbox.post_control("webhooks", WebhookTarget(url=url).model_dump())
    yield received
    stripe_sandbox.control.webhooks.targets = [t for t in stripe_sandbox.control.webhooks.targets if t.url != url]
    running.stop()


async def wait_for(received: list[tuple[dict[str, str], bytes]], invoice_id: str,
                   count: int) -> list[tuple[dict[str, str], dict[str, Any]]]:
    found: list[tuple[dict[str, str], dict[str, Any]]] = []
    for _ in range(100):
        found = [(h, json.loads(b)) for h, b in list(received) if json.loads(b)["data"]["object"]["id"] == invoice_id]
        if len(found) >= count:
            break
        await asyncio.sleep(0.05)
    return found


async def test_stripe_sandbox_webhooks_are_signed_events(api: httpx.AsyncClient, settings: Settings,
                                                         sink: list[tuple[dict[str, str], bytes]]) -> None:
    invoice = await open_invoice(api)
    await wait_for(sink, invoice["id"], 2)  # invoice.created and invoice.finalized
    [(headers, body)] = [(h, b) for h, b in list(sink) if json.loads(b)["type"] == "invoice.finalized"
                         and json.loads(b)["data"]["object"]["id"] == invoice["id"]]
    header = headers["stripe-signature"]
    parts = dict(p.split("=", 1) for p in header.split(",") if not p.startswith("v0"))
    expected = hmac.new(vendor_settings(settings, "stripe").webhook_secret.encode(), f"{parts['t']}.".encode() + body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 30
    event = json.loads(body)
    assert event["object"] == "event" and event["api_version"] == "2023-08-16" and event["id"].startswith("evt_")
    assert event["data"]["object"]["status"] == "open" and event["livemode"] is False
    listed = (await api.get(f"/v1/events/{event['id']}")).json()
    assert listed["type"] == "invoice.finalized"


# -- human acts ----------------------------------------------------------------------------------------
async def test_stripe_sandbox_partial_then_full_payment(api: httpx.AsyncClient,
                                                        sink: list[tuple[dict[str, str], bytes]]) -> None:
    invoice = await open_invoice(api, 10000)
    partial = await api.post(f"/_sandbox/invoices/{invoice['id']}/payments", json={"amount": 2500})
    assert partial.status_code == 200
    assert partial.json()["invoice"]["amount_paid"] == 2500 and partial.json()["invoice"]["status"] == "open"
    assert partial.json()["charge"].startswith("ch_")
    too_much = await api.post(f"/_sandbox/invoices/{invoice['id']}/payments", json={"amount": 99999})
    assert too_much.status_code == 400
    rest = await api.post(f"/_sandbox/invoices/{invoice['id']}/payments")
    assert rest.json()["amount"] == 7500 and rest.json()["invoice"]["status"] == "paid"
    events = [e for _h, e in await wait_for(sink, invoice["id"], 7)]
    # deliveries run concurrently, so order by the event IDs (assigned in emission order)
    events.sort(key=lambda e: e["id"])
    assert [e["type"] for e in events] == ["invoice.created", "invoice.finalized", "invoice.payment_succeeded",
                                           "invoice.updated", "invoice.payment_succeeded", "invoice.paid",
                                           "invoice.updated"]
    # as Stripe: previous_attributes only on *.updated events
    assert [e["data"].get("previous_attributes") is not None for e in events] == [
        False, False, False, True, False, False, True]
    assert events[3]["data"]["previous_attributes"] == {"amount_paid": 0, "amount_remaining": 10000}
    assert events[6]["data"]["previous_attributes"]["amount_paid"] == 2500
    assert events[5]["data"]["object"]["amount_paid"] == 10000


async def test_stripe_sandbox_payment_failure_and_void(api: httpx.AsyncClient) -> None:
    invoice = await open_invoice(api)
    failed = await api.post(f"/_sandbox/invoices/{invoice['id']}/payment_failure", json={"reason": "insufficient"})
    assert failed.status_code == 200 and failed.json()["invoice"]["attempt_count"] == 1
    event = (await api.get(f"/v1/events/{failed.json()['events'][0]}")).json()
    assert event["type"] == "invoice.payment_failed"
    voided = await api.post(f"/v1/invoices/{invoice['id']}/void")
    assert voided.json()["status"] == "void"
    again = await api.post(f"/_sandbox/invoices/{invoice['id']}/payments")
    assert again.status_code == 400


async def test_stripe_sandbox_pay_out_of_band(api: httpx.AsyncClient) -> None:
    invoice = await open_invoice(api, 4200)
    refused = await api.post(f"/v1/invoices/{invoice['id']}/pay")
    assert refused.status_code == 402 and refused.json()["error"]["type"] == "card_error"
    paid = await api.post(f"/v1/invoices/{invoice['id']}/pay", data={"paid_out_of_band": "true"})
    assert paid.json()["status"] == "paid" and paid.json()["paid_out_of_band"] is True
    assert paid.json()["amount_paid"] == 4200 and paid.json()["amount_remaining"] == 0


async def test_stripe_sandbox_subscription_cycle_bills_next_period(api: httpx.AsyncClient) -> None:
    cus = await customer(api)
    product = (await api.post("/v1/products", data={"name": "Plan"})).json()
    price = (await api.post("/v1/prices", data={"product": product["id"], "currency": "usd", "unit_amount": "3000",
                                                "recurring[interval]": "month",
                                                "recurring[interval_count]": "3"})).json()
    created = await api.post("/v1/subscriptions", data={
        "customer": cus["id"], "items[0][price]": price["id"], "items[0][quantity]": "2",
        "collection_method": "send_invoice", "days_until_due": "15"})
    sub = created.json()
    assert created.status_code == 200 and sub["status"] == "active" and sub["latest_invoice"]
    first = (await api.get(f"/v1/invoices/{sub['latest_invoice']}")).json()
    assert first["status"] == "open" and first["total"] == 6000 and first["billing_reason"] == "subscription_create"
    cycled = await api.post(f"/_sandbox/subscriptions/{sub['id']}/cycle")
    body = cycled.json()
    assert body["subscription"]["current_period_start"] == sub["current_period_end"]
    assert body["invoice"]["billing_reason"] == "subscription_cycle" and body["invoice"]["status"] == "open"
    assert body["invoice"]["subscription"] == sub["id"] and body["invoice"]["id"] != first["id"]
    listed = (await api.get("/v1/invoices", params={"subscription": sub["id"]})).json()
    assert len(listed["data"]) == 2
    cancelled = await api.delete(f"/v1/subscriptions/{sub['id']}")
    assert cancelled.json()["status"] == "canceled"
    assert (await api.delete(f"/v1/subscriptions/{sub['id']}")).status_code == 404
    assert (await api.post(f"/_sandbox/subscriptions/{sub['id']}/cycle")).status_code == 400


async def test_stripe_sandbox_trialing_subscription_bills_on_cycle(api: httpx.AsyncClient) -> None:
    cus = await customer(api)
    product = (await api.post("/v1/products", data={"name": "Later"})).json()
    start = int(time.time()) + 30 * 86400
    sub = (await api.post("/v1/subscriptions", data={
        "customer": cus["id"], "items[0][price_data][currency]": "eur",
        "items[0][price_data][product]": product["id"], "items[0][price_data][unit_amount]": "1000",
        "items[0][price_data][recurring][interval]": "year", "collection_method": "send_invoice",
        "days_until_due": "30", "trial_end": str(start), "proration_behavior": "none"})).json()
    assert sub["status"] == "trialing" and sub["latest_invoice"] is None
    body = (await api.post(f"/_sandbox/subscriptions/{sub['id']}/cycle")).json()
    assert body["subscription"]["status"] == "active"
    assert body["subscription"]["current_period_start"] == start
    assert body["invoice"]["total"] == 1000 and body["invoice"]["currency"] == "eur"


async def test_stripe_sandbox_credit_note_settles_open_invoice(api: httpx.AsyncClient) -> None:
    invoice = await open_invoice(api, 5000)
    partial = await api.post("/v1/credit_notes", data={"invoice": invoice["id"], "amount": "2000",
                                                       "reason": "order_change"})
    note = partial.json()
    assert partial.status_code == 200 and note["type"] == "pre_payment" and note["number"].endswith("-CN-01")
    after = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert after["amount_due"] == 3000 and after["amount_remaining"] == 3000 and after["total"] == 5000
    rest = await api.post("/v1/credit_notes", data={"invoice": invoice["id"], "amount": "3000"})
    assert rest.status_code == 200
    settled = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert settled["status"] == "paid" and settled["amount_paid"] == 0
    bad_reason = await api.post("/v1/credit_notes", data={"invoice": invoice["id"], "amount": "1",
                                                          "reason": "because"})
    assert bad_reason.status_code == 400


# -- invoice lines ---------------------------------------------------------------------------------
async def test_stripe_sandbox_embeds_ten_lines_and_pages_the_rest(api: httpx.AsyncClient) -> None:
    cus = await customer(api)
    draft = (await api.post("/v1/invoices", data={"customer": cus["id"], "currency": "usd",
                                                  "collection_method": "send_invoice", "days_until_due": "30"})).json()
    for i in range(23):
        item = await api.post("/v1/invoiceitems", data={"customer": cus["id"], "invoice": draft["id"],
                                                        "currency": "usd", "amount": str(100 + i)})
        assert item.status_code == 200, item.text

    shown = (await api.get(f"/v1/invoices/{draft['id']}")).json()
    first = (await api.get(f"/v1/invoices/{draft['id']}/lines", params={"limit": "20"})).json()
    rest = (await api.get(f"/v1/invoices/{draft['id']}/lines",
                          params={"limit": "20", "starting_after": first["data"][-1]["id"]})).json()
    listed = (await api.get("/v1/invoices", params={"customer": cus["id"]})).json()["data"][0]

    assert len(shown["lines"]["data"]) == 10 and shown["lines"]["has_more"] is True
    assert shown["total"] == sum(100 + i for i in range(23)), "totals count every line, embedded or not"
    assert len(listed["lines"]["data"]) == 10 and listed["lines"]["has_more"] is True
    assert len(first["data"]) == 20 and first["has_more"] is True
    assert len(rest["data"]) == 3 and rest["has_more"] is False
    assert [line["amount"] for line in first["data"] + rest["data"]] == [100 + i for i in range(23)]
    assert shown["lines"]["data"] == first["data"][:10]


async def test_stripe_sandbox_refuses_a_past_due_date(api: httpx.AsyncClient) -> None:
    cus = await customer(api)
    past = int(time.time()) - 86400
    created = await api.post("/v1/invoices", data={"customer": cus["id"], "collection_method": "send_invoice",
                                                   "due_date": str(past)})
    draft = (await api.post("/v1/invoices", data={"customer": cus["id"], "collection_method": "send_invoice",
                                                  "days_until_due": "0"})).json()
    updated = await api.post(f"/v1/invoices/{draft['id']}", data={"due_date": str(past)})

    assert created.status_code == 400 and created.json()["error"]["param"] == "due_date"
    assert updated.status_code == 400 and updated.json()["error"]["param"] == "due_date"
    assert draft["due_date"] >= int(time.time()) - 5
