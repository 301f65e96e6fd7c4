"""Stripe's own Python SDK judges the Stripe emulator: configured for the emulator's base URL and pinned to
API version 2023-08-16, used the way an integrator uses it. Where the SDK and the emulator disagree, the
emulator is wrong (see sandbox/README.md for the places where it knowingly differs from Stripe)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from fastapi import FastAPI, Request

from connectors.errors import PayloadInvalid
from connectors.stripe import webhooks_from_settings
from sandbox.kit import WebhookTarget
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings


def _stripe(settings: Settings) -> Any:
    return vendor_settings(settings, "stripe")

API_VERSION = "2023-08-16"


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def sdk(settings: Settings, stripe_sandbox: SandboxHandle) -> stripe.StripeClient:
    return stripe.StripeClient(_stripe(settings).api_key, stripe_version=API_VERSION,
                               max_network_retries=0,
                               base_addresses={"api": stripe_sandbox.base_url})


def draft_invoice(sdk: stripe.StripeClient, lines: int, *, unit: int = 1000) -> tuple[stripe.Customer, str]:
    customer = sdk.customers.create(params={"name": f"SDK {uid()}", "metadata": {"revops_ref": uid()}})
    invoice = sdk.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice",
                                          "days_until_due": 30, "currency": "usd"})
    assert invoice.id is not None
    for i in range(lines):
        sdk.invoice_items.create(params={"customer": customer.id, "invoice": invoice.id, "currency": "usd",
                                         "unit_amount": unit + i, "quantity": 1, "description": f"line {i}"})
    return customer, invoice.id


def test_stripe_sdk_customer_idempotent_replay_and_key_reuse_refused(sdk: stripe.StripeClient) -> None:
    key = f"sdk-{uid()}"
    params: dict[str, Any] = {"name": "Idem Co", "email": "billing@idem.example", "metadata": {"crm": "1"}}
    first = sdk.customers.create(params=params, options={"idempotency_key": key})
    replay = sdk.customers.create(params=params, options={"idempotency_key": key})
    with pytest.raises(stripe.IdempotencyError):
        sdk.customers.create(params={**params, "name": "Other Co"}, options={"idempotency_key": key})

    assert first.id == replay.id and first.id.startswith("cus_")
    assert replay.last_response is not None and replay.last_response.headers.get("Idempotent-Replayed") == "true"
    fetched = sdk.customers.retrieve(first.id)
    assert fetched.name == "Idem Co" and fetched.metadata["crm"] == "1"
    updated = sdk.customers.update(first.id, params={"metadata": {"crm": "2"}})
    assert updated.metadata["crm"] == "2"
    deleted = sdk.customers.delete(first.id)
    assert deleted.deleted is True
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sdk.customers.retrieve("cus_doesnotexist")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"


def test_stripe_sdk_products_prices_subscription_and_item_change(sdk: stripe.StripeClient) -> None:
    customer = sdk.customers.create(params={"name": f"Sub {uid()}"})
    product = sdk.products.create(params={"name": "Seats", "metadata": {"revops_product_code": "SEATS"}})
    price = sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 4900,
                                      "recurring": {"interval": "month"}})
    assert price.recurring is not None and price.recurring.interval == "month" and price.type == "recurring"

    subscription = sdk.subscriptions.create(params={
        "customer": customer.id, "collection_method": "send_invoice", "days_until_due": 30,
        "items": [{"price": price.id, "quantity": 3}], "metadata": {"revops_deal_id": "D-1"}})
    [item] = subscription["items"].data
    assert subscription.status == "active" and item.quantity == 3 and item.price.id == price.id
    first = sdk.invoices.retrieve(str(subscription.latest_invoice))
    assert first.total == 3 * 4900 and first.status == "open"

    changed = sdk.subscription_items.update(item.id, params={"quantity": 5, "proration_behavior": "none"})
    assert changed.quantity == 5
    again = sdk.subscriptions.retrieve(subscription.id)
    assert again["items"].data[0].quantity == 5
    canceled = sdk.subscriptions.cancel(subscription.id)
    assert canceled.status == "canceled"


def test_stripe_sdk_invoice_lines_are_paged_and_totals_count_them_all(sdk: stripe.StripeClient) -> None:
    _customer, invoice_id = draft_invoice(sdk, 25)
    finalized = sdk.invoices.finalize_invoice(invoice_id)

    lines = list(sdk.invoices.line_items.list(invoice_id, params={"limit": 7}).auto_paging_iter())

    assert finalized.status == "open" and finalized.number
    assert len(finalized.lines.data) == 10 and finalized.lines.has_more is True
    assert [line.amount for line in lines] == [1000 + i for i in range(25)]
    assert finalized.total == sum(line.amount for line in lines)


def test_stripe_sdk_lists_a_customers_invoice_items_with_their_metadata(sdk: stripe.StripeClient) -> None:
    """Invoice items carry ``date``, not ``created``: listing them (and filtering by ``created``, which Stripe
    applies to ``date``) must not fail."""
    customer, invoice_id = draft_invoice(sdk, 2)
    sdk.invoice_items.create(params={"customer": customer.id, "currency": "usd", "amount": 4433,
                                     "metadata": {"revops_time_entry": "t-1"}})
    items = list(sdk.invoice_items.list(params={"customer": customer.id, "limit": 2}).auto_paging_iter())
    assert sorted(i.amount for i in items) == [1000, 1001, 4433]
    assert [i.metadata["revops_time_entry"] for i in items if i.invoice is None] == ["t-1"]
    recent = sdk.invoice_items.list(params={"customer": customer.id, "created": {"gte": int(time.time()) - 600}})
    assert len(recent.data) == 3


def test_stripe_sdk_credit_note_and_payment_out_of_band(sdk: stripe.StripeClient) -> None:
    _customer, invoice_id = draft_invoice(sdk, 2, unit=5000)  # 5000 + 5001
    sdk.invoices.finalize_invoice(invoice_id)

    note = sdk.credit_notes.create(params={"invoice": invoice_id, "amount": 1001, "reason": "order_change"})
    after_note = sdk.invoices.retrieve(invoice_id)
    paid = sdk.invoices.pay(invoice_id, params={"paid_out_of_band": True})

    assert note.amount == 1001 and note.invoice == invoice_id and note.reason == "order_change"
    assert after_note.amount_remaining == 10001 - 1001
    assert paid.status == "paid" and paid.paid_out_of_band is True and paid.amount_paid == 9000
    assert [n.id for n in sdk.credit_notes.list(params={"invoice": invoice_id}).data] == [note.id]
    with pytest.raises(stripe.InvalidRequestError):
        sdk.invoices.pay(invoice_id, params={"paid_out_of_band": True})


def test_stripe_sdk_past_due_date_is_refused(sdk: stripe.StripeClient) -> None:
    customer = sdk.customers.create(params={"name": f"Due {uid()}"})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice",
                                    "due_date": int(time.time()) - 3600})
    assert refused.value.param == "due_date"


def test_stripe_sdk_list_auto_pagination_sees_every_object_once(sdk: stripe.StripeClient) -> None:
    tag = uid()
    made = [sdk.products.create(params={"name": f"P{i}", "metadata": {"tag": tag}}).id for i in range(7)]

    seen = [p.id for p in sdk.products.list(params={"limit": 2}).auto_paging_iter() if p.metadata.get("tag") == tag]

    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    assert seen == list(reversed(made)), "newest first, as Stripe lists"


def test_stripe_sdk_expand_replaces_ids_with_objects(sdk: stripe.StripeClient) -> None:
    customer, invoice_id = draft_invoice(sdk, 1)

    invoice = sdk.invoices.retrieve(invoice_id, params={"expand": ["customer"]})
    listed = sdk.invoices.list(params={"customer": customer.id, "expand": ["data.customer"]})
    updated = sdk.invoices.update(invoice_id, params={"description": "x", "expand": ["customer"]})

    assert isinstance(invoice.customer, stripe.Customer) and invoice.customer.id == customer.id
    assert isinstance(listed.data[0].customer, stripe.Customer) and listed.data[0].customer.name == customer.name
    assert isinstance(updated.customer, stripe.Customer)
    with pytest.raises(stripe.InvalidRequestError):
        sdk.invoices.retrieve(invoice_id, params={"expand": ["description"]})


def test_stripe_sdk_events_list_and_retrieve(sdk: stripe.StripeClient) -> None:
    _customer, invoice_id = draft_invoice(sdk, 1)
    sdk.invoices.finalize_invoice(invoice_id)

    events = [e for e in sdk.events.list(params={"type": "invoice.finalized", "limit": 100}).auto_paging_iter()
              if e.data.object["id"] == invoice_id]
    [event] = events
    fetched = sdk.events.retrieve(event.id)

    assert fetched.type == "invoice.finalized" and fetched.api_version == API_VERSION
    assert fetched.data.object["status"] == "open"
    assert "previous_attributes" not in fetched.data, "only *.updated events carry previous_attributes"


def test_stripe_sdk_events_list_by_types_and_created_pages_newest_first(sdk: stripe.StripeClient) -> None:
    """The billing poll's read: ``types`` (an array) and ``created[gte]``, paged with ``starting_after``."""
    since = int(time.time())
    _customer, invoice_id = draft_invoice(sdk, 1)
    sdk.invoices.finalize_invoice(invoice_id)
    sdk.invoices.pay(invoice_id, params={"paid_out_of_band": True})

    params: dict[str, Any] = {"types": ["invoice.finalized", "invoice.paid"], "created": {"gte": since},
                              "limit": 1}
    first = sdk.events.list(params=params)
    mine = [e for e in sdk.events.list(params=params).auto_paging_iter() if e.data.object["id"] == invoice_id]

    assert len(first.data) == 1 and first.has_more
    assert [e.type for e in mine] == ["invoice.paid", "invoice.finalized"], "newest first, other types left out"
    assert all(e.created >= since for e in mine)
    later = sdk.events.list(params={"types": ["invoice.paid"], "created": {"gte": int(time.time()) + 3600}})
    assert later.data == []
    with pytest.raises(stripe.InvalidRequestError):
        sdk.events.list(params={"types": [f"invoice.t{i}" for i in range(21)]})


# -- webhooks: each side's signatures accepted by the other ------------------------------------------
def sdk_signed_header(payload: str, secret: str) -> str:
    """The header as Stripe's SDK computes it (its WebhookSignature, which its own test helpers use)."""
    timestamp = int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload}", secret)  # noqa: SLF001
    return f"t={timestamp},v1={signature}"


async def test_stripe_sdk_signed_event_is_accepted_by_our_receiver(settings: Settings) -> None:
    payload = json.dumps({"id": f"evt_{uid()}", "object": "event", "api_version": API_VERSION,
                          "created": int(time.time()), "type": "customer.created",
                          "data": {"object": {"id": "cus_1", "object": "customer"}}})
    receiver = webhooks_from_settings(settings)

    await receiver.verify(method="POST", url="http://ingress/webhooks/stripe", body=payload.encode(),
                          headers={"Stripe-Signature": sdk_signed_header(payload, _stripe(settings).webhook_secret)})

    assert receiver.parse(headers={}, body=payload.encode()) == []
    with pytest.raises(PayloadInvalid):  # an endpoint on another API version is refused with the reason
        receiver.parse(headers={}, body=payload.replace(API_VERSION, "2024-06-20").encode())


@pytest.fixture
def delivered(stripe_sandbox: SandboxHandle) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((dict(request.headers), await request.body()))
        return {"ok": True}

    running: RunningApp = start_in_thread(app)
    target = WebhookTarget(url=f"{running.base_url}/hook")
    stripe_sandbox.post_control("webhooks", target.model_dump())
    yield received
    hooks = stripe_sandbox.control.webhooks
    hooks.targets = [t for t in hooks.targets if t.url != target.url]
    running.stop()


async def test_stripe_emulator_deliveries_pass_the_sdk_verifier(
        sdk: stripe.StripeClient, settings: Settings, delivered: list[tuple[dict[str, str], bytes]]) -> None:
    _customer, invoice_id = draft_invoice(sdk, 1)
    sdk.invoices.finalize_invoice(invoice_id)
    for _ in range(100):
        mine = [(h, b) for h, b in list(delivered) if json.loads(b)["data"]["object"].get("id") == invoice_id]
        if len(mine) >= 2:
            break
        await asyncio.sleep(0.05)

    events = [sdk.construct_event(body, headers["stripe-signature"], _stripe(settings).webhook_secret)
              for headers, body in mine]

    assert sorted(e.type for e in events) == ["invoice.created", "invoice.finalized"]
    with pytest.raises(stripe.SignatureVerificationError):
        sdk.construct_event(mine[0][1], mine[0][0]["stripe-signature"], "whsec_not_the_secret")



def test_stripe_sdk_reads_the_emulators_errors_as_stripes(settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    wrong = stripe.StripeClient("sk_test_000000000000wxyz", stripe_version=API_VERSION, max_network_retries=0,
                                base_addresses={"api": stripe_sandbox.base_url})
    with pytest.raises(stripe.AuthenticationError) as refused:
        wrong.customers.list()
    assert refused.value.http_status == 401


def test_stripe_sdk_customer_tax_exempt_is_updated_and_carried_by_later_invoices(sdk: stripe.StripeClient) -> None:
    customer = sdk.customers.create(params={"name": f"SDK {uid()}"})
    assert customer.tax_exempt == "none"
    updated = sdk.customers.update(customer.id, params={"tax_exempt": "reverse"})
    assert updated.tax_exempt == "reverse" and sdk.customers.retrieve(customer.id).tax_exempt == "reverse"
    invoice = sdk.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice",
                                          "days_until_due": 30, "currency": "usd"})
    assert invoice.customer_tax_exempt == "reverse"
    with pytest.raises(stripe.InvalidRequestError):
        sdk.customers.update(customer.id, params={"tax_exempt": "sometimes"})  # type: ignore[typeddict-item]
def test_stripe_sdk_price_lookup_keys_find_one_price_and_refuse_a_second_holder(sdk: stripe.StripeClient) -> None:
    product = sdk.products.create(params={"name": "Catalogue seat"})
    key, other = f"SEAT-{uid()}:eur:month", f"SEAT-{uid()}:eur:year"
    first = sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 4500,
                                      "recurring": {"interval": "month"}, "lookup_key": key})
    sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 45000,
                              "recurring": {"interval": "year"}, "lookup_key": other})
    sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 999})

    found = sdk.prices.list(params={"lookup_keys": [key]}).data
    both = sdk.prices.list(params={"lookup_keys": [key, other]}).data
    with pytest.raises(stripe.InvalidRequestError) as taken:
        sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 5000,
                                  "recurring": {"interval": "month"}, "lookup_key": key})
    moved = sdk.prices.create(params={"product": product.id, "currency": "eur", "unit_amount": 5000,
                                      "recurring": {"interval": "month"}, "lookup_key": key,
                                      "transfer_lookup_key": True})
    after = sdk.prices.list(params={"lookup_keys": [key]}).data

    assert [p.id for p in found] == [first.id] and found[0].lookup_key == key
    assert sorted(p.lookup_key for p in both) == sorted([key, other])
    assert taken.value.http_status == 400 and taken.value.param == "lookup_key"
    assert [p.id for p in after] == [moved.id]
    assert sdk.prices.retrieve(first.id).lookup_key is None
    renamed = sdk.prices.update(first.id, params={"lookup_key": f"{key}:old"})
    assert renamed.lookup_key == f"{key}:old"
    assert [p.id for p in sdk.prices.list(params={"lookup_keys": [f"{key}:old"]}).data] == [first.id]
