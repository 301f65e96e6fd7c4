"""Contract: every request StripeBilling sends and every emulator answer validate against Stripe's spec3.yaml.

Prism cannot load Stripe's spec (see shared/vendor-specs/SOURCES.md), so ``tests/helpers/stripe_spec.py``
validates with JSON Schema in a transport between the adapter and the emulator.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from canonical import (
    Account,
    Address,
    BillingInterval,
    BillingSchedule,
    BillingScheduleKind,
    Contact,
    CreditNote,
    Money,
    ScheduledCharge,
)
from connectors.errors import NotFound, Rejected
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, stripe_auth, vendor_settings
from tests.helpers.stripe_spec import SpecCheckingTransport, StripeSpec, stripe_spec


def uid() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def spec() -> StripeSpec:
    return stripe_spec()


@pytest_asyncio.fixture(scope="module")
async def checked(settings: Settings, stripe_sandbox: SandboxHandle,
                  spec: StripeSpec) -> AsyncIterator[tuple[StripeBilling, SpecCheckingTransport]]:
    transport = SpecCheckingTransport(spec)
    adapter = from_settings(settings, transport=transport)
    yield adapter, transport
    await adapter.aclose()


def schedule(kind: BillingScheduleKind, customer_id: str, charges: list[ScheduledCharge],
             start: date | None = None) -> BillingSchedule:
    return BillingSchedule(kind=kind, customer_id=customer_id, currency="GBP", start_date=start or date.today(),
                           end_date=date.today() + timedelta(days=400), charges=charges,
                           metadata={"revops_deal_id": f"deal-{uid()}", "legal_entity": "UK01"})


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")


async def test_stripe_contract_every_adapter_operation(
        checked: tuple[StripeBilling, SpecCheckingTransport], stripe_sandbox: SandboxHandle) -> None:
    billing, transport = checked
    start = len(transport.checked)
    ref = f"hubspot:company:{uid()}"
    account = Account(name="Contract Ltd", crm_id="77", country="GB",
                      address=Address(line1="1 High St", city="London", postal_code="EC1A 1AA", country="GB"))
    customer_id = await billing.ensure_customer(account, contact=Contact(email="ap@contract.example", phone="+44 20"),
                                                reference=ref, legal_entity="UK01", idempotency_key=f"c-{uid()}")
    assert await billing.ensure_customer(account, contact=None, reference=ref, legal_entity="UK01",
                                         idempotency_key=f"c-{uid()}") == customer_id
    recurring = [ScheduledCharge(product_code="SEAT", description="Seats", unit_amount=gbp("25.00"),
                                 quantity=Decimal(10), interval=BillingInterval.QUARTER),
                 ScheduledCharge(product_code="SUPPORT", description="Support", unit_amount=gbp("99.99"),
                                 quantity=Decimal("1.5"), interval=BillingInterval.QUARTER)]
    sub = await billing.create_schedule(schedule(BillingScheduleKind.SUBSCRIPTION, customer_id, recurring),
                                        idempotency_key=f"s-{uid()}")
    backdated = await billing.create_schedule(
        schedule(BillingScheduleKind.RETAINER, customer_id, recurring[:1], start=date.today() - timedelta(days=10)),
        idempotency_key=f"r-{uid()}")
    future = await billing.create_schedule(
        schedule(BillingScheduleKind.SUBSCRIPTION, customer_id, recurring[:1], start=date.today() + timedelta(days=45)),
        idempotency_key=f"f-{uid()}")
    one_off = [ScheduledCharge(product_code="M1", description="Design", unit_amount=gbp("1500.00"),
                               bill_on=date.today() + timedelta(days=3)),
               ScheduledCharge(product_code="FEE", description="Setup", unit_amount=gbp("250.00"))]
    ms = await billing.create_schedule(schedule(BillingScheduleKind.MILESTONE, customer_id, one_off),
                                       idempotency_key=f"m-{uid()}")
    tm = await billing.create_schedule(schedule(BillingScheduleKind.TIME_AND_MATERIALS, customer_id, [
        ScheduledCharge(product_code="ENG", description="Engineer", unit_amount=gbp("120.00"))]),
        idempotency_key=f"t-{uid()}")
    finalized = await billing.finalize_invoice(ms.item_ids[0])
    invoices = [i async for i in billing.list_invoices(customer_id=customer_id,
                                                       created_after=datetime.now(UTC) - timedelta(hours=1))]
    assert {finalized.billing_id} < {i.billing_id for i in invoices}
    fetched = await billing.get_invoice(finalized.billing_id)
    assert fetched.total == gbp("1500.00")
    note = await billing.create_credit_note(CreditNote(billing_id="ref", invoice_billing_id=finalized.billing_id,
                                                       amount=gbp("100.00"), reason="duplicate"),
                                            idempotency_key=f"cn-{uid()}")
    assert note.amount == gbp("100.00")
    sub_invoice = next(i for i in invoices if i.billing_id != finalized.billing_id and i.status.value == "open")
    await billing.void_invoice(sub_invoice.billing_id)
    for created in (sub, backdated, future, ms, tm):
        await billing.cancel_schedule(created, idempotency_key=f"undo-{uid()}")
    await billing.delete_customer(customer_id)
    with pytest.raises(NotFound):
        await billing.get_invoice("in_does_not_exist")

    assert transport.violations == []
    seen = {(c.method, _template(transport.spec, c.method, c.path)) for c in transport.checked[start:]}
    for operation in [("GET", "/v1/customers/search"), ("POST", "/v1/customers"), ("POST", "/v1/products"),
                      ("POST", "/v1/prices"), ("POST", "/v1/subscriptions"), ("POST", "/v1/invoices"),
                      ("POST", "/v1/invoiceitems"), ("POST", "/v1/invoices/{invoice}/finalize"),
                      ("GET", "/v1/invoices"), ("GET", "/v1/invoices/{invoice}"), ("POST", "/v1/credit_notes"),
                      ("POST", "/v1/invoices/{invoice}/void"),
                      ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"),
                      ("DELETE", "/v1/invoices/{invoice}"), ("DELETE", "/v1/invoiceitems/{invoiceitem}"),
                      ("POST", "/v1/prices/{price}"), ("POST", "/v1/products/{id}"),
                      ("DELETE", "/v1/customers/{customer}")]:
        assert operation in seen, f"{operation} was not exercised through the validator"


def _template(spec: StripeSpec, method: str, path: str) -> str:
    op = spec.operation(method, path)
    return op.template if op else path


async def test_stripe_contract_events_and_webhook_objects_match_spec(
        checked: tuple[StripeBilling, SpecCheckingTransport], spec: StripeSpec,
        stripe_sandbox: SandboxHandle) -> None:
    billing, transport = checked
    customer_id = await billing.ensure_customer(Account(name="Events Ltd"), contact=None, reference=f"ev-{uid()}",
                                                legal_entity="UK01", idempotency_key=f"ev-{uid()}")
    created = await billing.create_schedule(schedule(BillingScheduleKind.FIXED_FEE, customer_id, [
        ScheduledCharge(product_code="FEE", description="Fee", unit_amount=gbp("80.00"))]),
        idempotency_key=f"ev-{uid()}")
    invoice_id = created.item_ids[0]
    await billing.finalize_invoice(invoice_id)
    async with httpx.AsyncClient(base_url=stripe_sandbox.base_url) as control:
        (await control.post(f"/_sandbox/invoices/{invoice_id}/payment_failure")).raise_for_status()
        (await control.post(f"/_sandbox/invoices/{invoice_id}/payments", json={"amount": 3000})).raise_for_status()
        (await control.post(f"/_sandbox/invoices/{invoice_id}/payments")).raise_for_status()
    async with httpx.AsyncClient(base_url=stripe_sandbox.base_url, transport=transport,
                                 headers={"Authorization": "Bearer sk_test_sandbox"}) as client:
        page = (await client.get("/v1/events", params={"limit": 30})).json()
    assert transport.violations == []
    mine = [e for e in page["data"] if e["data"]["object"].get("id") == invoice_id]
    assert {e["type"] for e in mine} >= {"invoice.finalized", "invoice.payment_failed",
                                         "invoice.payment_succeeded", "invoice.paid"}
    for item in mine:
        assert spec.check_object(item["data"]["object"], "invoice") == [], item["type"]


async def test_stripe_contract_validator_rejects_malformed_requests(
        checked: tuple[StripeBilling, SpecCheckingTransport], settings: Settings) -> None:
    _billing, transport = checked
    before = len(transport.violations)
    async with httpx.AsyncClient(base_url=vendor_settings(settings, "stripe").base_url, transport=transport,
                                 headers=stripe_auth(settings)) as client:
        unknown = await client.post("/v1/customers", data={"name": "X", "favourite_colour": "blue"})
        not_integer = await client.post("/v1/prices", data={"currency": "gbp", "unit_amount": "12.50",
                                                            "product": "prod_x"})
        wrong_enum = await client.post("/v1/invoices", data={"customer": "cus_x", "collection_method": "by_post"})
        missing = await client.post("/v1/invoiceitems", data={"amount": "100", "currency": "gbp"})
        bad_query = await client.get("/v1/invoices", params={"limit": "ten", "colour": "red"})
    for response in (unknown, not_integer, wrong_enum, missing, bad_query):
        assert response.status_code == 422, response.text
    found = "\n".join(transport.violations[before:])
    assert "favourite_colour" in found
    assert "unit_amount" in found and "collection_method" in found and "customer" in found
    assert "colour" in found and "limit" in found
    del transport.violations[before:]  # these were meant to fail


def test_stripe_contract_validator_rejects_malformed_response(spec: StripeSpec) -> None:
    broken_invoice = {"id": "in_1", "object": "invoice", "amount_due": "ten"}
    problems = spec.check_response("GET", "/v1/invoices/in_1", 200, json.dumps(broken_invoice).encode())
    assert any("amount_due" in p for p in problems)
    assert any("required" in p for p in problems)
    assert spec.check_response("GET", "/v1/invoices/in_1", 404,
                               b'{"error": {"type": "invalid_request_error", "message": "No such invoice"}}') == []
    assert spec.check_response("GET", "/v1/invoices/in_1", 404, b'{"error": {"type": "teapot_error"}}') != []


async def test_stripe_contract_adapter_surfaces_spec_rejection_as_rejected(settings: Settings,
                                                                          spec: StripeSpec) -> None:
    """If the adapter ever sent something the spec forbids, the validator's 422 would surface as Rejected."""
    transport = SpecCheckingTransport(spec, httpx.MockTransport(lambda r: httpx.Response(500)))
    adapter = from_settings(settings, transport=transport)
    try:
        with pytest.raises(Rejected):
            await adapter._call("POST", "/v1/customers", form={"name": "X", "nonsense": "1"})  # noqa: SLF001
    finally:
        await adapter.aclose()
    assert any("nonsense" in v for v in transport.violations)
