"""Quote-to-cash with a product catalogue: the real worker, the dev server and the emulators over HTTP. Two deals
selling the same SKU at its list price are billed at one Stripe price, made once; a discounted deal gets its own
price under the same product."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from settings import Settings
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.workflows.test_quote_to_cash import run_to_end, stripe_objects
from workflows.models import Stage

SKU = f"CAT-SEAT-{uuid.uuid4().hex[:6].upper()}"


@pytest.fixture
def flow_settings(flow_settings: Settings) -> Settings:
    """The test's settings with a catalogue listing the SKU at 45.00 USD a month."""
    return flow_settings.model_copy(update={"catalogue": {SKU: {
        "name": "Catalogue seat", "erp_item_code": "SEAT",
        "prices": [{"currency": "USD", "interval": "month", "unit_amount": "45.00"}]}}})


def seats(quantity: str, discount: str = "0") -> DealSpec:
    return DealSpec(model="subscription", lines=[Line(SKU, "Catalogue seats", quantity=quantity, price="45.00",
                                                      discount=discount, model="subscription", frequency="monthly")])


def subscription_price(stripe: SandboxHandle, customer_id: str) -> dict[str, Any]:
    [subscription] = stripe_objects(stripe, "subscription", customer_id)
    [item] = subscription["items"]["data"]
    return dict(item["price"])


async def test_quote_to_cash_second_deal_with_a_sku_reuses_the_catalogue_price(
        client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    hubspot, ironclad, stripe = sandboxes["hubspot"], sandboxes["ironclad"], sandboxes["stripe"]

    results = [await run_to_end(client, flow_settings, seed_deal(hubspot, spec), ironclad)
               for spec in (seats("20"), seats("5"), seats("10", discount="10"))]

    assert [r.outcome for r in results] == [Stage.PROVISIONED] * 3, [r.reason for r in results]
    customers = [r.engagements[0].billing_customer_id or "" for r in results]
    first, second, discounted = (subscription_price(stripe, c) for c in customers)
    products = stripe.store.list("product", where=lambda p: p["metadata"].get("revops_sku") == SKU)
    assert len(products) == 1
    prices = stripe.store.list("price", where=lambda p: p["product"] == products[0]["id"])
    assert len([p for p in prices if p["lookup_key"]]) == 1 and len(prices) == 2
    assert first["id"] == second["id"] and first["lookup_key"] == f"{SKU}:usd:month"
    assert first["unit_amount"] == 4500
    assert discounted["id"] != first["id"] and discounted["product"] == products[0]["id"]
    assert discounted["unit_amount"] == 4050 and discounted["metadata"]["revops_list_price"] == f"{SKU}:usd:month"
    # the shared price is no deal's own record: not in what the deals provisioned (or would compensate)
    assert all(first["id"] not in r.engagements[0].billing_schedule_ids for r in results)
