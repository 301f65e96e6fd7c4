"""StripeBilling against the Stripe emulator over real HTTP: every port method, idempotency, errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
import stripe

from canonical import (
    Account,
    Address,
    BillingInterval,
    BillingSchedule,
    BillingScheduleKind,
    Contact,
    CreditNote,
    InvoiceStatus,
    Money,
    ScheduledCharge,
)
from canonical.billing import TaxStatus
from connectors.errors import AuthFailed, Conflict, NotFound, RateLimited, Rejected, Unavailable
from connectors.ports import BillingPort
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings, with_vendor


def uid() -> str:
    return uuid.uuid4().hex[:10]


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest_asyncio.fixture
async def billing(settings: Settings, stripe_sandbox: SandboxHandle) -> AsyncIterator[StripeBilling]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def new_customer(billing: StripeBilling, ref: str | None = None) -> str:
    ref = ref or f"hubspot:company:{uid()}"
    return await billing.ensure_customer(
        Account(name=f"Acme {ref}", crm_id=ref.rsplit(":", 1)[-1], country="DE",
                address=Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE")),
        contact=Contact(first_name="Ada", last_name="Lovelace", email=f"{uid()}@example.com", crm_id="c-1"),
        reference=ref, legal_entity="EU01", idempotency_key=f"cust-{ref}")


def subscription(customer_id: str, **update: object) -> BillingSchedule:
    schedule = BillingSchedule(
        kind=BillingScheduleKind.SUBSCRIPTION, customer_id=customer_id, currency="EUR", start_date=date.today(),
        days_until_due=14,
        charges=[ScheduledCharge(product_code="PLATFORM", description="Platform licence", unit_amount=eur("120.00"),
                                 quantity=Decimal(3), interval=BillingInterval.MONTH)],
        metadata={"revops_deal_id": f"deal-{uid()}", "legal_entity": "EU01"})
    return schedule.model_copy(update=update)


def milestones(customer_id: str) -> BillingSchedule:
    return BillingSchedule(
        kind=BillingScheduleKind.MILESTONE, customer_id=customer_id, currency="EUR", start_date=date.today(),
        days_until_due=30,
        charges=[ScheduledCharge(product_code="M1", description="Kick-off", unit_amount=eur("1000.00"),
                                 bill_on=date.today() + timedelta(days=5)),
                 ScheduledCharge(product_code="M2", description="Go-live", unit_amount=eur("2500.50"),
                                 bill_on=date.today() + timedelta(days=60))],
        metadata={"revops_deal_id": "deal-ms", "legal_entity": "EU01"})


def live(sandbox: SandboxHandle, kind: str, where: object = None) -> list[dict]:
    return [o for o in sandbox.store.list(kind) if not o.get("deleted") and (where is None or where(o))]  # type: ignore[operator]


# -- port conformance --------------------------------------------------------------------------------
def test_stripe_adapter_implements_billing_port(billing: StripeBilling) -> None:
    assert isinstance(billing, BillingPort)


# -- customers ---------------------------------------------------------------------------------------
async def test_stripe_ensure_customer_creates_with_reference_metadata(billing: StripeBilling,
                                                                      stripe_sandbox: SandboxHandle) -> None:
    ref = f"hubspot:company:{uid()}"
    customer_id = await new_customer(billing, ref)
    stored = stripe_sandbox.store.get("customer", customer_id)
    assert stored is not None
    assert stored["metadata"]["revops_ref"] == ref
    assert stored["metadata"]["legal_entity"] == "EU01"
    assert stored["address"]["city"] == "Berlin" and stored["address"]["country"] == "DE"
    assert stored["email"].endswith("@example.com")


async def test_stripe_ensure_customer_finds_existing_by_reference(billing: StripeBilling,
                                                                  stripe_sandbox: SandboxHandle) -> None:
    ref = f"hubspot:company:{uid()}"
    first = await new_customer(billing, ref)
    again = await billing.ensure_customer(Account(name="Renamed"), contact=None, reference=ref,
                                          legal_entity="EU01", idempotency_key=f"other-key-{uid()}")
    assert again == first
    assert len(live(stripe_sandbox, "customer", lambda o: o["metadata"].get("revops_ref") == ref)) == 1


async def test_stripe_ensure_customer_same_key_creates_one_record(billing: StripeBilling,
                                                                  stripe_sandbox: SandboxHandle) -> None:
    ref, key = f"it's-{uid()}", f"key-{uid()}"  # a quote in the reference must survive the search syntax
    account = Account(name="Quote Co")
    ids = [await billing.ensure_customer(account, contact=None, reference=ref, legal_entity="UK01",
                                         idempotency_key=key) for _ in range(2)]
    assert ids[0] == ids[1]
    assert len(live(stripe_sandbox, "customer", lambda o: o["metadata"].get("revops_ref") == ref)) == 1


async def test_stripe_delete_customer_is_idempotent(billing: StripeBilling, stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    await billing.delete_customer(customer_id)
    await billing.delete_customer(customer_id)  # already gone: still fine
    assert stripe_sandbox.store.get("customer", customer_id) == {"id": customer_id, "object": "customer",
                                                                "deleted": True}


# -- schedules ---------------------------------------------------------------------------------------
async def test_stripe_create_schedule_subscription_bills_first_period(billing: StripeBilling,
                                                                      stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    schedule = subscription(customer_id)
    created = await billing.create_schedule(schedule, idempotency_key=f"sched-{uid()}")
    assert created.billing_id is not None and created.billing_id.startswith("sub_")
    assert [i.split("_")[0] for i in created.item_ids] == ["prod", "price"]
    sub = stripe_sandbox.store.get("subscription", created.billing_id)
    assert sub is not None
    assert sub["collection_method"] == "send_invoice" and sub["days_until_due"] == 14
    assert sub["metadata"]["revops_deal_id"] == schedule.metadata["revops_deal_id"]
    assert sub["items"]["data"][0]["quantity"] == 3
    invoices = [i async for i in billing.list_invoices(customer_id=customer_id)]
    assert len(invoices) == 1
    invoice = invoices[0]
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.total == eur("360.00") and invoice.amount_due == eur("360.00")
    assert invoice.crm_deal_id == schedule.metadata["revops_deal_id"] and invoice.legal_entity == "EU01"
    assert invoice.lines[0].product_code == "PLATFORM" and invoice.lines[0].unit_amount == eur("120.00")


async def test_stripe_create_schedule_future_start_uses_trial(billing: StripeBilling,
                                                              stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    start = date.today() + timedelta(days=120)
    created = await billing.create_schedule(subscription(customer_id, start_date=start,
                                                         end_date=start + timedelta(days=365)),
                                            idempotency_key=f"sched-{uid()}")
    sub = stripe_sandbox.store.get("subscription", created.billing_id or "")
    assert sub is not None and sub["status"] == "trialing"
    assert datetime.fromtimestamp(sub["trial_end"], tz=UTC).date() == start
    assert sub["cancel_at"] is not None
    assert [i async for i in billing.list_invoices(customer_id=customer_id)] == []


async def test_stripe_create_schedule_same_key_creates_nothing_twice(billing: StripeBilling,
                                                                     stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    key = f"sched-{uid()}"
    first = await billing.create_schedule(subscription(customer_id), idempotency_key=key)
    second = await billing.create_schedule(subscription(customer_id, metadata=first.metadata),
                                           idempotency_key=key)
    assert second.billing_id == first.billing_id and second.item_ids == first.item_ids
    assert len(live(stripe_sandbox, "subscription", lambda o: o["customer"] == customer_id)) == 1
    assert len(live(stripe_sandbox, "invoice", lambda o: o.get("customer") == customer_id)) == 1


async def test_stripe_create_schedule_milestones_are_draft_invoices(billing: StripeBilling,
                                                                    stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    created = await billing.create_schedule(milestones(customer_id), idempotency_key=f"ms-{uid()}")
    assert created.billing_id is None
    assert [i.split("_")[0] for i in created.item_ids] == ["in", "ii", "in", "ii"]
    invoice = await billing.get_invoice(created.item_ids[2])
    assert invoice.status is InvoiceStatus.DRAFT
    assert invoice.total == eur("2500.50")
    assert invoice.metadata["revops_milestone"] == "M2"
    assert invoice.metadata["revops_bill_on"] == (date.today() + timedelta(days=60)).isoformat()
    assert invoice.due_on == date.today() + timedelta(days=90)
    stored = stripe_sandbox.store.get("invoice", created.item_ids[0])
    assert stored is not None and stored["auto_advance"] is False
    # the drafts and their billing dates, for the flow that finalizes them when due
    assert [(d.invoice_id, d.charge_code) for d in created.drafts] == [(created.item_ids[0], "M1"),
                                                                       (created.item_ids[2], "M2")]
    assert created.drafts[1].bill_on == date.today() + timedelta(days=60)
    finalized = await billing.finalize_invoice(created.drafts[1].invoice_id, idempotency_key=f"fin-{uid()}")
    again = await billing.finalize_invoice(created.drafts[1].invoice_id, idempotency_key=f"fin-{uid()}")
    assert finalized.status is InvoiceStatus.OPEN and again.status is InvoiceStatus.OPEN


async def test_stripe_create_schedule_time_and_materials_prices_only(billing: StripeBilling,
                                                                     stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    schedule = BillingSchedule(
        kind=BillingScheduleKind.TIME_AND_MATERIALS, customer_id=customer_id, currency="EUR",
        start_date=date.today(),
        charges=[ScheduledCharge(product_code="ENG", description="Engineer", unit_amount=eur("150.00")),
                 ScheduledCharge(product_code="PM", description="Project manager", unit_amount=eur("130.00"))])
    created = await billing.create_schedule(schedule, idempotency_key=f"tm-{uid()}")
    assert created.billing_id is None and len(created.item_ids) == 4
    price = stripe_sandbox.store.get("price", created.item_ids[3])
    assert price is not None
    assert price["type"] == "one_time" and price["unit_amount"] == 13000 and price["currency"] == "eur"
    assert price["metadata"]["revops_product_code"] == "PM"
    assert [i async for i in billing.list_invoices(customer_id=customer_id)] == []


async def test_stripe_cancel_schedule_undoes_and_repeats_safely(billing: StripeBilling,
                                                               stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    sub = await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    ms = await billing.create_schedule(milestones(customer_id), idempotency_key=f"m-{uid()}")
    finalized = await billing.finalize_invoice(ms.item_ids[0])
    assert finalized.status is InvoiceStatus.OPEN
    for _ in range(2):
        await billing.cancel_schedule(sub, idempotency_key=f"undo-{sub.billing_id}")
        await billing.cancel_schedule(ms, idempotency_key=f"undo-{ms.item_ids[0]}")
    store = stripe_sandbox.store
    assert store.get("subscription", sub.billing_id or "")["status"] == "canceled"  # type: ignore[index]
    assert store.get("price", sub.item_ids[1])["active"] is False  # type: ignore[index]
    assert store.get("product", sub.item_ids[0])["active"] is False  # type: ignore[index]
    assert store.get("invoice", ms.item_ids[0])["status"] == "void"  # type: ignore[index]
    assert store.get("invoice", ms.item_ids[2]) == {"id": ms.item_ids[2], "object": "invoice", "deleted": True}
    assert store.get("invoiceitem", ms.item_ids[3]) is None


# -- invoices ----------------------------------------------------------------------------------------
async def test_stripe_list_invoices_follows_cursor(settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    adapter = from_settings(settings)
    adapter.page_size = 2  # six invoices take three pages
    try:
        customer_id = await new_customer(adapter)
        schedule = milestones(customer_id)
        schedule = schedule.model_copy(update={"charges": schedule.charges * 3})
        created = await adapter.create_schedule(schedule, idempotency_key=f"many-{uid()}")
        expected = {i for i in created.item_ids if i.startswith("in_")}
        seen = [i.billing_id async for i in adapter.list_invoices(customer_id=customer_id)]
        assert len(seen) == 6 and set(seen) == expected
        later = [i async for i in adapter.list_invoices(customer_id=customer_id,
                                                        created_after=datetime.now(UTC) + timedelta(days=1))]
        assert later == []
    finally:
        await adapter.aclose()


async def test_stripe_get_invoice_unknown_is_not_found(billing: StripeBilling) -> None:
    with pytest.raises(NotFound) as caught:
        await billing.get_invoice(f"in_missing{uid()}")
    assert "No such invoice" in caught.value.message


async def test_stripe_create_credit_note_reduces_amount_due(billing: StripeBilling) -> None:
    customer_id = await new_customer(billing)
    await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    invoice = [i async for i in billing.list_invoices(customer_id=customer_id)][0]
    key = f"cn-{uid()}"
    note = CreditNote(billing_id=f"ref-{uid()}", invoice_billing_id=invoice.billing_id, amount=eur("60.00"),
                      reason="order_change")
    issued = await billing.create_credit_note(note, idempotency_key=key)
    again = await billing.create_credit_note(note, idempotency_key=key)
    assert issued.billing_id.startswith("cn_") and again.billing_id == issued.billing_id
    assert issued.amount == eur("60.00") and issued.reason == "order_change"
    after = await billing.get_invoice(invoice.billing_id)
    assert after.amount_due == eur("300.00")


async def test_stripe_credit_note_free_text_reason_goes_to_memo(billing: StripeBilling,
                                                                stripe_sandbox: SandboxHandle) -> None:
    customer_id = await new_customer(billing)
    await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    invoice = [i async for i in billing.list_invoices(customer_id=customer_id)][0]
    issued = await billing.create_credit_note(
        CreditNote(billing_id="x", invoice_billing_id=invoice.billing_id, amount=eur("10.00"),
                   reason="goodwill gesture"), idempotency_key=f"cn-{uid()}")
    stored = stripe_sandbox.store.get("credit_note", issued.billing_id)
    assert stored is not None and stored["reason"] is None and stored["memo"] == "goodwill gesture"
    assert issued.reason == "goodwill gesture"


# -- errors --------------------------------------------------------------------------------------------
async def test_stripe_rejected_carries_vendor_message(billing: StripeBilling) -> None:
    customer_id = await new_customer(billing)
    await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    invoice = [i async for i in billing.list_invoices(customer_id=customer_id)][0]
    with pytest.raises(Rejected) as caught:
        await billing.create_credit_note(
            CreditNote(billing_id="x", invoice_billing_id=invoice.billing_id, amount=eur("9999.00")),
            idempotency_key=f"cn-{uid()}")
    assert "must be no greater than the amount that can be credited" in caught.value.message
    assert caught.value.status == 400


async def test_stripe_unknown_customer_in_param_is_rejected(billing: StripeBilling) -> None:
    with pytest.raises(Rejected) as caught:
        await billing.create_schedule(subscription(f"cus_missing{uid()}"), idempotency_key=f"s-{uid()}")
    assert "No such customer" in caught.value.message


async def test_stripe_idempotency_key_reuse_is_conflict(billing: StripeBilling) -> None:
    customer_id = await new_customer(billing)
    await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    invoice = [i async for i in billing.list_invoices(customer_id=customer_id)][0]
    key = f"cn-{uid()}"
    await billing.create_credit_note(CreditNote(billing_id="a", invoice_billing_id=invoice.billing_id,
                                                amount=eur("1.00")), idempotency_key=key)
    with pytest.raises(Conflict) as caught:
        await billing.create_credit_note(CreditNote(billing_id="a", invoice_billing_id=invoice.billing_id,
                                                    amount=eur("2.00")), idempotency_key=key)
    assert "same parameters" in caught.value.message


async def test_stripe_5xx_is_unavailable(billing: StripeBilling, stripe_sandbox: SandboxHandle) -> None:
    with stripe_sandbox.faults(error_rate=1, status=503), pytest.raises(Unavailable) as caught:
        await billing.get_invoice("in_whatever")
    assert caught.value.status == 503


async def test_stripe_429_is_rate_limited_with_retry_after(billing: StripeBilling,
                                                           stripe_sandbox: SandboxHandle) -> None:
    with stripe_sandbox.faults(rate_limit_per_second=0.25, rate_limit_burst=1), pytest.raises(RateLimited) as caught:
        for _ in range(3):
            await billing.delete_customer(f"cus_gone{uid()}")
    assert caught.value.retry_after is not None and 1 <= caught.value.retry_after <= 4
    assert "rate limit" in caught.value.message.lower()


async def test_stripe_timeout_is_unavailable(settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    adapter = from_settings(settings, timeout=0.3)
    try:
        with stripe_sandbox.faults(latency_ms=1500), pytest.raises(Unavailable) as caught:
            await adapter.get_invoice("in_slow")
        assert "timeout" in caught.value.message
    finally:
        await adapter.aclose()


async def test_stripe_wrong_key_is_auth_failed(settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    adapter = from_settings(with_vendor(settings, "stripe", api_key="sk_test_not_the_key"))
    try:
        with pytest.raises(AuthFailed) as caught:
            await adapter.get_invoice("in_any")
        assert "Invalid API Key" in caught.value.message
    finally:
        await adapter.aclose()


async def test_stripe_429_without_retry_after_has_no_wait() -> None:
    """Real Stripe sends no Retry-After; the adapter then leaves the wait to the caller (MockTransport)."""
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Stripe-Should-Retry": "false"}, json={"error": {
            "type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."}})

    adapter = from_settings(Settings(_env_file=None), transport=httpx.MockTransport(handler))  # type: ignore[call-arg]
    try:
        with pytest.raises(RateLimited) as caught:
            await adapter.get_invoice("in_x")
        assert caught.value.retry_after is None
        assert caught.value.message == "Request rate limit exceeded."
    finally:
        await adapter.aclose()


@pytest.mark.parametrize(("days_before", "terms"), [(10, 0), (10, 5), (0, 0), (40, 30)])
async def test_stripe_one_off_invoices_of_a_started_contract_get_a_valid_due_date(
        billing: StripeBilling, days_before: int, terms: int) -> None:
    """A contract signed after its start (or on net-0 terms) is billed now, due ``terms`` days later."""
    customer_id = await new_customer(billing)
    today = datetime.now(UTC).date()
    schedule = BillingSchedule(
        kind=BillingScheduleKind.FIXED_FEE, customer_id=customer_id, currency="EUR",
        start_date=today - timedelta(days=days_before), days_until_due=terms,
        charges=[ScheduledCharge(product_code="FF", description="Fixed fee", unit_amount=eur("900.00"),
                                 bill_on=today - timedelta(days=days_before))])

    created = await billing.create_schedule(schedule, idempotency_key=uid())
    [invoice_id] = [i for i in created.item_ids if i.startswith("in_")]
    invoice = await billing.get_invoice(invoice_id)

    assert invoice.due_on is not None and invoice.due_on >= today + timedelta(days=terms)
    assert invoice.total == eur("900.00")


async def test_stripe_one_off_invoice_keeps_the_contract_due_date_while_ahead(billing: StripeBilling) -> None:
    customer_id = await new_customer(billing)
    today = datetime.now(UTC).date()
    schedule = BillingSchedule(
        kind=BillingScheduleKind.MILESTONE, customer_id=customer_id, currency="EUR", start_date=today,
        days_until_due=30, charges=[ScheduledCharge(product_code="MS", description="Phase", unit_amount=eur("5.00"),
                                                    bill_on=today - timedelta(days=10))])
    created = await billing.create_schedule(schedule, idempotency_key=uid())
    [invoice_id] = [i for i in created.item_ids if i.startswith("in_")]
    assert (await billing.get_invoice(invoice_id)).due_on == today + timedelta(days=20)


@pytest.mark.parametrize(("tax_exempt", "country", "status"), [
    ("exempt", "US", TaxStatus.EXEMPT), ("reverse", "DE", TaxStatus.REVERSE_CHARGE), ("none", "GB", TaxStatus.TAXABLE)])
async def test_stripe_invoice_carries_the_customers_tax_status_and_country(
        billing: StripeBilling, settings: Settings, stripe_sandbox: SandboxHandle, tax_exempt: str, country: str,
        status: TaxStatus) -> None:
    """What the books mapping picks a tax code by: billing's ``customer_tax_exempt`` and the customer's country,
    on a customer and invoice made with Stripe's own SDK."""
    sdk = stripe.StripeClient(vendor_settings(settings, "stripe").api_key, max_network_retries=0,
                              base_addresses={"api": stripe_sandbox.base_url})
    customer = sdk.customers.create(params={"name": f"Tax {uid()}", "tax_exempt": tax_exempt,  # type: ignore[typeddict-item]
                                            "address": {"line1": "1 High St", "country": country}})
    made = sdk.invoices.create(params={"customer": customer.id, "collection_method": "send_invoice",
                                       "days_until_due": 30, "currency": "usd"})
    assert made.id is not None
    read = await billing.get_invoice(made.id)
    assert (read.customer_tax_status, read.customer_country) == (status, country)
