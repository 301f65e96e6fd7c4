"""The product catalogue in Stripe, over real HTTP against the emulator: one product per SKU, one price per
catalogue key reused by every deal at the list price, a deal's own price only for a discount, and the SKUs the
catalogue lacks marked for a person."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest_asyncio
import stripe

from canonical import (
    Account,
    BillingInterval,
    BillingSchedule,
    BillingScheduleKind,
    Money,
    ScheduledCharge,
)
from canonical.amendments import SubscriptionItemChange
from canonical.catalogue import DriftKind, catalogue_drift
from connectors.ports import BillingCatalogue
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings


def uid() -> str:
    return uuid.uuid4().hex[:8].upper()


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


AdapterOf = Callable[[dict[str, Any]], StripeBilling]


@pytest_asyncio.fixture
async def adapter_of(settings: Settings, stripe_sandbox: SandboxHandle) -> AsyncIterator[AdapterOf]:
    made: list[StripeBilling] = []

    def make(catalogue: dict[str, Any]) -> StripeBilling:
        made.append(from_settings(settings.model_copy(update={"catalogue": catalogue})))
        return made[-1]
    yield make
    for adapter in made:
        await adapter.aclose()


def seats(sku: str, monthly: str = "45.00") -> dict[str, Any]:
    return {sku: {"name": f"Seat {sku}", "erp_item_code": sku[:30],
                  "prices": [{"currency": "EUR", "interval": "month", "unit_amount": monthly}],
                  "hourly_rates": {"EUR": "150.00"}}}


async def customer(billing: StripeBilling) -> str:
    ref = f"hubspot:company:{uid()}"
    return await billing.ensure_customer(Account(name=f"Acme {ref}", crm_id=ref, country="DE"), contact=None,
                                         reference=ref, legal_entity="EU01", idempotency_key=f"cust-{ref}")


def deal(customer_id: str, sku: str, quantity: int, unit: str, deal_id: str,
         kind: BillingScheduleKind = BillingScheduleKind.SUBSCRIPTION) -> BillingSchedule:
    recurring = kind is not BillingScheduleKind.TIME_AND_MATERIALS
    return BillingSchedule(
        kind=kind, customer_id=customer_id, currency="EUR", start_date=date.today(),
        metadata={"revops_deal_id": deal_id, "revops_project": f"P-{deal_id}"},
        charges=[ScheduledCharge(product_code=sku, description=f"{sku} seats", unit_amount=eur(unit),
                                 quantity=Decimal(quantity),
                                 interval=BillingInterval.MONTH if recurring else None)])


def prices_of(sandbox: SandboxHandle, product_id: str) -> list[dict[str, Any]]:
    return sandbox.store.list("price", where=lambda p: p["product"] == product_id)


def item_price(sandbox: SandboxHandle, subscription_id: str | None) -> str:
    sub = sandbox.store.get("subscription", subscription_id or "")
    assert sub is not None
    [item] = sub["items"]["data"]
    return str(item["price"]["id"])


async def test_stripe_second_deal_with_the_same_sku_reuses_the_first_deals_price(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle) -> None:
    sku = f"SEAT-{uid()}"
    billing = adapter_of(seats(sku))
    first = await billing.create_schedule(deal(await customer(billing), sku, 10, "45.00", "D1"),
                                          idempotency_key=f"q2c-{uid()}")
    second = await billing.create_schedule(deal(await customer(billing), sku, 3, "45.00", "D2"),
                                           idempotency_key=f"q2c-{uid()}")

    products = stripe_sandbox.store.list("product", where=lambda p: p["metadata"].get("revops_sku") == sku)
    assert len(products) == 1 and products[0]["metadata"].get("revops_deal_id") is None
    [price] = prices_of(stripe_sandbox, products[0]["id"])
    assert price["lookup_key"] == f"{sku}:eur:month" and price["unit_amount"] == 4500
    assert item_price(stripe_sandbox, first.billing_id) == item_price(stripe_sandbox, second.billing_id) == price["id"]
    # the shared price and product are not the deal's: not in what its compensation undoes
    assert price["id"] not in first.item_ids + second.item_ids
    assert products[0]["id"] not in first.item_ids + second.item_ids
    await billing.cancel_schedule(first, idempotency_key=f"undo-{uid()}")
    assert stripe_sandbox.store.get("price", price["id"])["active"] is True  # type: ignore[index]


async def test_stripe_deals_racing_for_a_new_sku_make_one_price(adapter_of: AdapterOf,
                                                               stripe_sandbox: SandboxHandle) -> None:
    sku = f"RACE-{uid()}"
    one, other = adapter_of(seats(sku)), adapter_of(seats(sku))
    customers = [await customer(one), await customer(other)]
    made = await asyncio.gather(*(b.create_schedule(deal(c, sku, 2, "45.00", f"R{i}"),
                                                    idempotency_key=f"q2c-{uid()}")
                                  for i, (b, c) in enumerate(zip((one, other), customers, strict=True))))

    products = stripe_sandbox.store.list("product", where=lambda p: p["metadata"].get("revops_sku") == sku)
    assert len(products) == 1 and len(prices_of(stripe_sandbox, products[0]["id"])) == 1
    assert len({item_price(stripe_sandbox, m.billing_id) for m in made}) == 1


async def test_stripe_discounted_deal_gets_its_own_price_under_the_catalogue_product(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle) -> None:
    sku = f"DISC-{uid()}"
    billing = adapter_of(seats(sku))
    listed = await billing.create_schedule(deal(await customer(billing), sku, 5, "45.00", "L1"),
                                           idempotency_key=f"q2c-{uid()}")
    discounted = await billing.create_schedule(deal(await customer(billing), sku, 5, "40.50", "L2"),
                                               idempotency_key=f"q2c-{uid()}")

    [product] = stripe_sandbox.store.list("product", where=lambda p: p["metadata"].get("revops_sku") == sku)
    own = stripe_sandbox.store.get("price", item_price(stripe_sandbox, discounted.billing_id))
    assert own is not None and own["product"] == product["id"] and own["unit_amount"] == 4050
    assert own["lookup_key"] is None and own["metadata"]["revops_list_price"] == f"{sku}:eur:month"
    assert discounted.item_ids == [own["id"]]
    await billing.cancel_schedule(discounted, idempotency_key=f"undo-{uid()}")
    assert stripe_sandbox.store.get("price", own["id"])["active"] is False  # type: ignore[index]
    shared = stripe_sandbox.store.get("price", item_price(stripe_sandbox, listed.billing_id))
    assert shared is not None and shared["active"] is True and product["active"] is True


async def test_stripe_rate_card_prices_stay_per_project_under_the_catalogue_product(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle) -> None:
    sku = f"ENG-{uid()}"
    billing = adapter_of(seats(sku))
    made = await billing.create_schedule(deal(await customer(billing), sku, 1, "150.00", "T1",
                                              BillingScheduleKind.TIME_AND_MATERIALS), idempotency_key=f"tm-{uid()}")
    [price_id] = made.item_ids
    price = stripe_sandbox.store.get("price", price_id)
    assert price is not None and price["product"].startswith("prod_sku_") and price["type"] == "one_time"
    assert price["metadata"]["revops_project"] == "P-T1"
    records = await billing.billing_records_by_project()
    assert [r.unit_amount for r in records["P-T1"]] == [eur("150.00")]


async def test_stripe_sku_missing_from_the_catalogue_is_priced_per_deal_and_reported(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle) -> None:
    known, stray = f"KNOWN-{uid()}", f"STRAY-{uid()}"
    billing = adapter_of(seats(known))
    made = await billing.create_schedule(deal(await customer(billing), stray, 2, "19.99", "U1"),
                                         idempotency_key=f"q2c-{uid()}")

    product_id, price_id = made.item_ids
    product = stripe_sandbox.store.get("product", product_id)
    assert product is not None and product["metadata"]["revops_uncatalogued"] == stray
    assert isinstance(billing, BillingCatalogue)
    drift = catalogue_drift(billing.catalogue, await billing.catalogue_prices())
    mine = [d for d in drift if d.sku in (known, stray)]
    assert [(d.kind, d.sku, d.price_id) for d in mine] == [
        (DriftKind.MISSING, known, None), (DriftKind.MISSING, known, None), (DriftKind.UNKNOWN, stray, price_id)]
    assert "deal U1" in mine[2].detail


async def test_stripe_amendment_moving_a_deal_off_the_list_price_keeps_the_catalogue_price(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle) -> None:
    sku = f"AMD-{uid()}"
    billing = adapter_of(seats(sku))
    made = await billing.create_schedule(deal(await customer(billing), sku, 4, "45.00", "A1"),
                                         idempotency_key=f"q2c-{uid()}")
    [item] = await billing.billing_records(made.customer_id, known_ids=[], project_code="P-A1")

    changed = await billing.change_subscription_item(
        SubscriptionItemChange(item_id=item.billing_id, subscription_id=made.billing_id or "", product_code=sku,
                               quantity=Decimal(4), unit_amount=eur("42.00"), interval=BillingInterval.MONTH,
                               old_price_id=item.price_id),
        prorate=False, idempotency_key=f"amend-{uid()}")

    listed = stripe_sandbox.store.get("price", item.price_id or "")
    assert changed.price_id != item.price_id and changed.unit_amount == eur("42.00")
    assert listed is not None and listed["lookup_key"] == f"{sku}:eur:month" and listed["active"] is True


async def test_stripe_deal_is_never_billed_at_a_catalogue_price_changed_or_archived_by_hand(
        adapter_of: AdapterOf, stripe_sandbox: SandboxHandle, settings: Settings) -> None:
    sku = f"EDIT-{uid()}"
    billing = adapter_of(seats(sku))
    await billing.create_schedule(deal(await customer(billing), sku, 1, "45.00", "E1"), idempotency_key=f"q-{uid()}")
    [product] = catalogue_products(stripe_sandbox, sku)
    # finance moves the key to 49.00 by hand (Stripe's own SDK)
    config = vendor_settings(settings, "stripe")
    sdk = stripe.StripeClient(config.api_key, stripe_version="2023-08-16", max_network_retries=0,
                              base_addresses={"api": stripe_sandbox.base_url})
    edited = sdk.prices.create(params={"product": product["id"], "currency": "eur", "unit_amount": 4900,
                                       "recurring": {"interval": "month"}, "lookup_key": f"{sku}:eur:month",
                                       "transfer_lookup_key": True})

    made = await billing.create_schedule(deal(await customer(billing), sku, 2, "45.00", "E2"),
                                         idempotency_key=f"q-{uid()}")
    billed = stripe_sandbox.store.get("price", item_price(stripe_sandbox, made.billing_id))
    assert billed is not None and billed["id"] != edited.id and billed["unit_amount"] == 4500
    assert billed["metadata"]["revops_list_price"] == f"{sku}:eur:month" and made.item_ids == [billed["id"]]

    sdk.prices.update(edited.id, params={"active": False})
    archived = await billing.create_schedule(deal(await customer(billing), sku, 2, "49.00", "E3"),
                                             idempotency_key=f"q-{uid()}")
    assert item_price(stripe_sandbox, archived.billing_id) != edited.id


def catalogue_products(sandbox: SandboxHandle, sku: str) -> list[dict[str, Any]]:
    return sandbox.store.list("product", where=lambda p: p["metadata"].get("revops_sku") == sku)
