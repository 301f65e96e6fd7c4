"""StripeWebhooks: signature verification (signatures computed here, independently) and event parsing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from canonical import (
    Account,
    BillingSchedule,
    BillingScheduleKind,
    CreditNoteIssued,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceStatus,
    InvoiceVoided,
    Money,
    ScheduledCharge,
)
from canonical.ledger import LedgerInvoice, unrecorded_payment
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.ports import WebhookReceiver
from connectors.stripe import StripeWebhooks, from_settings, webhooks_from_settings
from sandbox.kit import WebhookTarget
from sandbox.serve import RunningApp, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle

SECRET = "whsec_test_secret"
URL = "https://ingress.example.com/webhooks/stripe"


def sign(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def invoice_obj(**update: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": "in_1", "object": "invoice", "customer": "cus_1", "currency": "eur", "status": "open",
        "number": "ABC-0001", "amount_due": 10000, "amount_paid": 0, "amount_remaining": 10000, "subtotal": 10000,
        "total": 10000, "tax": None, "total_tax_amounts": [], "due_date": 1767225600, "charge": None,
        "paid_out_of_band": False, "attempt_count": 0,
        "status_transitions": {"finalized_at": 1764547200, "paid_at": None, "voided_at": None,
                               "marked_uncollectible_at": None},
        "metadata": {"revops_deal_id": "deal-9"}, "subscription_details": {"metadata": {"legal_entity": "EU01"}},
        "lines": {"object": "list", "has_more": False, "url": "/v1/invoices/in_1/lines", "data": [{
            "id": "il_1", "object": "line_item", "amount": 10000, "currency": "eur", "description": "Licence",
            "quantity": 2, "metadata": {"revops_product_code": "LIC"}, "tax_amounts": [],
            "price": {"id": "price_1", "unit_amount": 5000, "product": "prod_1", "metadata": {}}}]},
    }
    obj.update(update)
    return obj


def event(type_: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> bytes:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return json.dumps({"id": f"evt_{uuid.uuid4().hex[:12]}", "object": "event", "api_version": "2023-08-16",
                       "created": 1764547300, "type": type_, "data": data, "livemode": False,
                       "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}).encode()


@pytest.fixture
def receiver() -> StripeWebhooks:
    return StripeWebhooks(SECRET)


def test_stripe_webhooks_implements_receiver(receiver: StripeWebhooks) -> None:
    assert isinstance(receiver, WebhookReceiver) and receiver.vendor == "stripe"


# -- verification ----------------------------------------------------------------------------------
async def test_stripe_verify_accepts_valid_signature(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": sign(body)}, body=body)
    [finalized] = receiver.parse(headers={}, body=body)
    assert isinstance(finalized, InvoiceFinalized)
    assert (finalized.source_event_id, finalized.invoice.billing_id) == (json.loads(body)["id"], "in_1")


async def test_stripe_verify_accepts_any_matching_v1_and_ignores_v0(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    good = sign(body)
    t, v1 = good.split(",")
    header = f"{t},v1={'0' * 64},{v1},v0={'f' * 64}"  # rolled secret: the second v1 is the current one
    await receiver.verify(method="POST", url=URL, headers={"stripe-signature": header}, body=body)
    assert [e.source_event_id for e in receiver.parse(headers={}, body=body)] == [json.loads(body)["id"]]
    with pytest.raises(SignatureInvalid):  # the v0 scheme alone is never enough
        await receiver.verify(method="POST", url=URL, body=body,
                              headers={"stripe-signature": f"{t},v0={v1.removeprefix('v1=')}"})


async def test_stripe_verify_rejects_tampered_body(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    header = sign(body)
    with pytest.raises(SignatureInvalid, match="no v1 signature matches"):
        await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": header},
                              body=body.replace(b"10000", b"1"))


async def test_stripe_verify_rejects_wrong_secret(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    with pytest.raises(SignatureInvalid, match="no v1 signature matches"):
        await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": sign(body, secret="whsec_other")},
                              body=body)


async def test_stripe_verify_rejects_stale_timestamp(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    stale = sign(body, timestamp=int(time.time()) - 301)
    with pytest.raises(SignatureInvalid, match="tolerance"):
        await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": stale}, body=body)
    fresh_enough = sign(body, timestamp=int(time.time()) - 250)
    await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": fresh_enough}, body=body)


async def test_stripe_verify_rejects_missing_or_malformed_header(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    with pytest.raises(SignatureInvalid, match="missing"):
        await receiver.verify(method="POST", url=URL, headers={}, body=body)
    with pytest.raises(SignatureInvalid, match="no v1"):
        await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": f"t={int(time.time())}"},
                              body=body)
    with pytest.raises(SignatureInvalid, match="timestamp"):
        await receiver.verify(method="POST", url=URL, headers={"Stripe-Signature": "v1=abc"}, body=body)


# -- parsing ---------------------------------------------------------------------------------------
def test_stripe_parse_invoice_finalized(receiver: StripeWebhooks) -> None:
    body = event("invoice.finalized", invoice_obj())
    [parsed] = receiver.parse(headers={}, body=body)
    assert isinstance(parsed, InvoiceFinalized)
    event_id = json.loads(body)["id"]
    assert parsed.source_event_id == event_id and parsed.correlation_id == f"stripe-{event_id}"
    invoice = parsed.invoice
    assert invoice.billing_id == "in_1" and invoice.currency == "EUR" and invoice.status is InvoiceStatus.OPEN
    assert invoice.total == Money.of("100.00", "EUR") and invoice.amount_due == Money.of("100.00", "EUR")
    assert invoice.crm_deal_id == "deal-9" and invoice.legal_entity == "EU01"
    assert invoice.issued_on == date(2025, 12, 1) and invoice.due_on == date(2026, 1, 1)
    assert invoice.lines[0].product_code == "LIC" and invoice.lines[0].unit_amount == Money.of("50", "EUR")


def test_stripe_parse_partial_payment_then_full(receiver: StripeWebhooks) -> None:
    """Stripe's shapes: no previous_attributes on payment events; each payment is amount_paid less what the
    ledger recorded, so partial, repeated and out-of-order events post each cent once."""
    partial = invoice_obj(amount_paid=3000, amount_remaining=7000, charge="ch_1")
    [first] = receiver.parse(headers={}, body=event("invoice.payment_succeeded", partial))
    assert isinstance(first, InvoicePaid) and first.payment is not None
    assert first.payment.billing_id == "ch_1" and first.invoice.amount_paid == Money.of("30.00", "EUR")
    assert first.invoice.amount_due == Money.of("70.00", "EUR")
    paid = invoice_obj(amount_paid=10000, amount_remaining=0, status="paid", charge="ch_2",
                       status_transitions={"finalized_at": 1764547200, "paid_at": 1764550000})
    [succeeded] = receiver.parse(headers={}, body=event("invoice.payment_succeeded", paid))
    [second] = receiver.parse(headers={}, body=event("invoice.paid", paid))
    assert isinstance(second, InvoicePaid) and second.payment is not None
    assert second.payment.billing_id == "ch_2" and second.invoice.status is InvoiceStatus.PAID

    entry = LedgerInvoice(invoice_id="in_1", currency="EUR", total=Decimal("100.00"))
    posted = []
    for parsed in (first, second, succeeded, first):  # the last two: the same payment again, and a late one
        assert isinstance(parsed, InvoicePaid)
        payment = unrecorded_payment(entry, parsed.invoice, parsed.payment)
        if payment is not None:
            entry.payment_ids.append(payment.billing_id)
            entry.paid += payment.amount.amount
            posted.append((payment.billing_id, payment.amount))
    assert posted == [("ch_1", Money.of("30.00", "EUR")), ("ch_2", Money.of("70.00", "EUR"))]


def test_stripe_payment_arriving_before_an_earlier_one_posts_both_amounts_once() -> None:
    receiver = StripeWebhooks(SECRET)
    [late] = receiver.parse(headers={}, body=event("invoice.payment_succeeded", invoice_obj(
        amount_paid=3000, amount_remaining=7000, charge="ch_1")))
    [early] = receiver.parse(headers={}, body=event("invoice.paid", invoice_obj(
        amount_paid=10000, amount_remaining=0, status="paid", charge="ch_2")))
    entry = LedgerInvoice(invoice_id="in_1", currency="EUR", total=Decimal("100.00"))
    assert isinstance(early, InvoicePaid) and isinstance(late, InvoicePaid)
    first = unrecorded_payment(entry, early.invoice, early.payment)
    assert first is not None and first.amount == Money.of("100.00", "EUR")
    entry.paid += first.amount.amount
    entry.payment_ids.append(first.billing_id)
    assert unrecorded_payment(entry, late.invoice, late.payment) is None


def test_stripe_parse_paid_without_previous_is_whole_amount(receiver: StripeWebhooks) -> None:
    paid = invoice_obj(amount_paid=10000, amount_remaining=0, status="paid", paid_out_of_band=True)
    [parsed] = receiver.parse(headers={}, body=event("invoice.paid", paid))
    assert isinstance(parsed, InvoicePaid) and parsed.payment is not None
    assert parsed.payment.amount == Money.of("100.00", "EUR") and parsed.payment.method == "out_of_band"
    assert parsed.payment.billing_id == parsed.source_event_id  # no charge: the event names the payment


def test_stripe_parse_failure_void_uncollectible_credit_note(receiver: StripeWebhooks) -> None:
    [failed] = receiver.parse(headers={}, body=event("invoice.payment_failed", invoice_obj(attempt_count=2)))
    assert isinstance(failed, InvoicePaymentFailed) and "attempt 2" in (failed.failure_reason or "")
    [voided] = receiver.parse(headers={}, body=event("invoice.voided", invoice_obj(status="void")))
    assert isinstance(voided, InvoiceVoided) and voided.uncollectible is False
    [bad_debt] = receiver.parse(headers={}, body=event("invoice.marked_uncollectible",
                                                       invoice_obj(status="uncollectible")))
    assert isinstance(bad_debt, InvoiceVoided) and bad_debt.uncollectible is True
    note = {"id": "cn_1", "object": "credit_note", "invoice": "in_1", "customer": "cus_1", "currency": "eur",
            "amount": 2500, "total": 2500, "reason": "order_change", "created": 1764547300, "effective_at": None}
    [issued] = receiver.parse(headers={}, body=event("credit_note.created", note))
    assert isinstance(issued, CreditNoteIssued) and issued.customer_id == "cus_1"
    assert issued.credit_note.amount == Money.of("25.00", "EUR") and issued.credit_note.invoice_billing_id == "in_1"


def test_stripe_parse_ignores_other_events(receiver: StripeWebhooks) -> None:
    assert receiver.parse(headers={}, body=event("customer.created", {"id": "cus_1", "object": "customer"})) == []
    assert receiver.parse(headers={}, body=event("invoice.created", invoice_obj(status="draft"))) == []


def test_stripe_parse_malformed_names_the_field(receiver: StripeWebhooks) -> None:
    with pytest.raises(PayloadInvalid) as not_json:
        receiver.parse(headers={}, body=b"{nope")
    assert not_json.value.field == "body"
    no_type = json.loads(event("invoice.paid", invoice_obj()))
    del no_type["type"]
    with pytest.raises(PayloadInvalid) as missing_type:
        receiver.parse(headers={}, body=json.dumps(no_type).encode())
    assert missing_type.value.field == "type"
    broken = invoice_obj()
    del broken["currency"]
    with pytest.raises(PayloadInvalid) as missing_currency:
        receiver.parse(headers={}, body=event("invoice.finalized", broken))
    assert missing_currency.value.field == "data.object.currency"
    no_object = json.loads(event("invoice.paid", invoice_obj()))
    no_object["data"] = {}
    with pytest.raises(PayloadInvalid) as missing_object:
        receiver.parse(headers={}, body=json.dumps(no_object).encode())
    assert missing_object.value.field == "data.object"


# -- end to end: the emulator's own deliveries verify and parse ---------------------------------------
@pytest.fixture
def webhook_sink(stripe_sandbox: SandboxHandle) -> Iterator[tuple[RunningApp, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    sink = FastAPI()

    @sink.post("/webhooks/stripe")
    async def hook(request: Request) -> dict[str, bool]:
        received.append((dict(request.headers), await request.body()))
        return {"received": True}

    running = start_in_thread(sink)
    target = WebhookTarget(url=f"{running.base_url}/webhooks/stripe")
    stripe_sandbox.post_control("webhooks", target.model_dump())
    yield running, received
    webhooks = stripe_sandbox.control.webhooks
    webhooks.targets = [t for t in webhooks.targets if t.url != target.url]
    running.stop()


async def test_stripe_emulator_webhooks_verify_and_parse(
        settings: Settings, stripe_sandbox: SandboxHandle,
        webhook_sink: tuple[RunningApp, list[tuple[dict[str, str], bytes]]]) -> None:
    _running, received = webhook_sink
    billing = from_settings(settings)
    try:
        customer_id = await billing.ensure_customer(
            Account(name="Hook Co"), contact=None, reference=f"hook-{uuid.uuid4().hex}",
            legal_entity="US01", idempotency_key=f"hook-{uuid.uuid4().hex}")
        schedule = BillingSchedule(kind=BillingScheduleKind.FIXED_FEE, customer_id=customer_id, currency="USD",
                                   start_date=date.today(), charges=[ScheduledCharge(
                                       product_code="FEE", description="Setup", unit_amount=Money.of("400", "USD"),
                                       bill_on=date.today())])
        created = await billing.create_schedule(schedule, idempotency_key=f"hook-{uuid.uuid4().hex}")
        invoice_id = created.item_ids[0]
        await billing.finalize_invoice(invoice_id)
    finally:
        await billing.aclose()
    async with httpx.AsyncClient(base_url=stripe_sandbox.base_url) as control:
        (await control.post(f"/_sandbox/invoices/{invoice_id}/payments", json={"amount": 15000})).raise_for_status()
        (await control.post(f"/_sandbox/invoices/{invoice_id}/payments", json={})).raise_for_status()
    receiver = webhooks_from_settings(settings)
    events: list[Any] = []
    for _ in range(100):  # deliveries run in the emulator's loop; wait for the four we expect
        events = []
        for headers, body in list(received):
            if json.loads(body)["data"]["object"].get("id") != invoice_id:
                continue
            await receiver.verify(method="POST", url=URL, headers=headers, body=body)
            events += receiver.parse(headers=headers, body=body)
        if len(events) >= 4:
            break
        await asyncio.sleep(0.05)
    kinds = [e.kind for e in events]
    assert kinds.count("invoice.finalized") == 1 and kinds.count("invoice.paid") == 3, kinds
    assert all(json.loads(body)["data"].get("previous_attributes") is None for _h, body in received
               if not json.loads(body)["type"].endswith(".updated")), "Stripe: previous_attributes on *.updated only"
    entry = LedgerInvoice(invoice_id=invoice_id, currency="USD", total=Decimal("400"))
    payments = []
    for parsed in sorted((e for e in events if isinstance(e, InvoicePaid)), key=lambda e: e.source_event_id):
        payment = unrecorded_payment(entry, parsed.invoice, parsed.payment)
        if payment is not None:
            entry.paid += payment.amount.amount
            entry.payment_ids.append(payment.billing_id)
            payments.append(payment.amount)
    assert payments == [Money.of("150.00", "USD"), Money.of("250.00", "USD")]


def test_stripe_parse_refuses_an_event_of_another_api_version(receiver: StripeWebhooks) -> None:
    body = json.loads(event("invoice.finalized", invoice_obj()))
    for version in ("2024-06-20", None):
        body["api_version"] = version
        with pytest.raises(PayloadInvalid) as caught:
            receiver.parse(headers={}, body=json.dumps(body).encode())
        assert caught.value.field == "api_version" and "2023-08-16" in str(caught.value)


def test_stripe_parse_refuses_an_invoice_without_amount_remaining(receiver: StripeWebhooks) -> None:
    obj = invoice_obj()
    del obj["amount_remaining"]
    with pytest.raises(PayloadInvalid) as caught:
        receiver.parse(headers={}, body=event("invoice.finalized", obj))
    assert caught.value.field == "data.object.amount_remaining"

