"""The Stripe adapter's amendment operations against the emulator: what billing holds for a project,
a subscription item's quantity and price changed with prorations, a subscription's end moved."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from canonical import BillingSchedule, BillingScheduleKind, ScheduledCharge
from canonical.amendments import BillingRecordKind, SubscriptionItemChange
from connectors.stripe import StripeBilling
from connectors.stripe.form import unix_midnight
from tests.connectors.test_stripe_adapter import billing, eur, milestones, new_customer, subscription, uid  # noqa: F401
from tests.helpers.servers import SandboxHandle


def for_project(schedule: BillingSchedule, code: str) -> BillingSchedule:
    return schedule.model_copy(update={"metadata": {**schedule.metadata, "revops_project": code}})


async def test_billing_records_finds_items_invoices_and_rates_of_the_project(
        billing: StripeBilling) -> None:  # noqa: F811
    customer_id = await new_customer(billing)
    code = f"P-{uid()}"
    sub = await billing.create_schedule(for_project(subscription(customer_id), code), idempotency_key=f"s-{code}")
    one_off = await billing.create_schedule(for_project(milestones(customer_id), code), idempotency_key=f"m-{code}")
    rates = await billing.create_schedule(for_project(BillingSchedule(
        kind=BillingScheduleKind.TIME_AND_MATERIALS, customer_id=customer_id, currency="EUR",
        start_date=date.today(), charges=[ScheduledCharge(product_code="TM-DEV", description="Developer",
                                                          unit_amount=eur("95.00"))]), code),
        idempotency_key=f"r-{code}")
    await billing.create_schedule(for_project(subscription(customer_id), "P-other"), idempotency_key=f"o-{code}")

    records = await billing.billing_records(customer_id, known_ids=[*sub.item_ids, *one_off.item_ids,
                                                                    *rates.item_ids], project_code=code)

    by_kind = {(r.kind, r.product_code): r for r in records}
    item = by_kind[(BillingRecordKind.SUBSCRIPTION_ITEM, "PLATFORM")]
    assert item.subscription_id == sub.billing_id and item.quantity == 3 and item.unit_amount == eur("120.00")
    assert by_kind[(BillingRecordKind.MILESTONE_INVOICE, "M1")].status == "draft"
    assert by_kind[(BillingRecordKind.MILESTONE_INVOICE, "M2")].unit_amount == eur("2500.50")
    assert by_kind[(BillingRecordKind.RATE, "TM-DEV")].status == "active"
    assert len(records) == 4, "the other project's subscription is not ours"


async def test_change_subscription_item_prorates_and_replaces_the_price_once(
        billing: StripeBilling, stripe_sandbox: SandboxHandle) -> None:  # noqa: F811
    customer_id = await new_customer(billing)
    code = f"P-{uid()}"
    sub = await billing.create_schedule(for_project(subscription(customer_id), code), idempotency_key=f"s-{code}")
    [item] = await billing.billing_records(customer_id, known_ids=[], project_code=code)
    change = SubscriptionItemChange(item_id=item.billing_id, subscription_id=sub.billing_id or "",
                                    product_code="PLATFORM", quantity=Decimal(5), unit_amount=eur("150.00"),
                                    old_quantity=item.quantity, old_unit_amount=item.unit_amount)

    changed = await billing.change_subscription_item(change, prorate=True,
                                                     idempotency_key=f"amend-{code}")
    again = await billing.change_subscription_item(change, prorate=True,
                                                   idempotency_key=f"amend-{code}")

    assert changed.quantity == 5 and changed.unit_amount == eur("150.00") and changed.price_id != item.price_id
    assert again.price_id == changed.price_id, "a retried call makes no second price"
    old_price = stripe_sandbox.store.get("price", item.price_id or "")
    assert old_price and old_price["active"] is False
    prorations = stripe_sandbox.store.list("invoiceitem", where=lambda i: i.get("subscription") == sub.billing_id
                                           and i.get("proration"))
    assert len(prorations) == 2 and sum(1 for p in prorations if p["amount"] < 0) == 1


async def test_change_subscription_item_to_zero_removes_the_charge_without_prorations_when_asked(
        billing: StripeBilling, stripe_sandbox: SandboxHandle) -> None:  # noqa: F811
    customer_id = await new_customer(billing)
    code = f"P-{uid()}"
    sub = await billing.create_schedule(for_project(subscription(customer_id), code), idempotency_key=f"s-{code}")
    [item] = await billing.billing_records(customer_id, known_ids=[], project_code=code)

    changed = await billing.change_subscription_item(
        SubscriptionItemChange(item_id=item.billing_id, subscription_id=sub.billing_id or "", product_code="PLATFORM",
                               quantity=Decimal(0), unit_amount=eur("120.00")),
        prorate=False, idempotency_key=f"zero-{code}")

    assert changed.quantity == 0 and changed.price_id == item.price_id
    assert not stripe_sandbox.store.list("invoiceitem", where=lambda i: i.get("subscription") == sub.billing_id)


async def test_set_subscription_end_moves_and_clears_cancel_at(
        billing: StripeBilling, stripe_sandbox: SandboxHandle) -> None:  # noqa: F811
    customer_id = await new_customer(billing)
    sub = await billing.create_schedule(subscription(customer_id), idempotency_key=f"s-{uid()}")
    assert sub.billing_id
    end = date.today() + timedelta(days=400)

    await billing.set_subscription_end(sub.billing_id, end, idempotency_key=f"end-{sub.billing_id}")
    assert (stripe_sandbox.store.get("subscription", sub.billing_id) or {})["cancel_at"] == unix_midnight(end)
    await billing.set_subscription_end(sub.billing_id, None, idempotency_key=f"open-{sub.billing_id}")
    assert (stripe_sandbox.store.get("subscription", sub.billing_id) or {})["cancel_at"] is None
