"""``starter.py catalogue sync`` against a Stripe emulator of its own (so nothing else's prices count): drift
reported with exit 1, ``--apply`` creating the missing prices once, a price finance edited by hand (with Stripe's
own SDK) and an archived one reported, and a deal priced without the catalogue named by its SKU."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import stripe

import starter
from bootstrap import for_cli
from canonical import Account, BillingInterval, BillingSchedule, BillingScheduleKind, Money, ScheduledCharge
from connectors.stripe import from_settings
from sandbox.serve import free_port, start_in_thread
from settings import Settings
from tests.helpers.servers import build_app, vendor_settings, with_vendor

CATALOGUE = {
    "PLAT-PRO": {"name": "Platform Pro seat", "erp_item_code": "PLAT-PRO",
                 "prices": [{"currency": "EUR", "interval": "month", "unit_amount": "45.00"},
                            {"currency": "EUR", "interval": "year", "unit_amount": "480.00"}]},
    "ENG": {"name": "Engineer", "hourly_rates": {"EUR": "150.00"}},
}


@pytest.fixture
def own_stripe(settings: Settings) -> Iterator[Settings]:
    """Settings whose Stripe is an emulator started for this test, with the catalogue above."""
    running = start_in_thread(build_app("stripe", settings), port=free_port())
    try:
        own = with_vendor(settings, "stripe", base_url=f"http://127.0.0.1:{running.port}")
        yield own.model_copy(update={"catalogue": CATALOGUE})
    finally:
        running.stop()


async def sync(settings: Settings, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, dict[str, Any]]:
    parts = for_cli(settings)
    try:
        code = await starter.run(["catalogue", "sync", "--json", *flags], parts=parts)
    finally:
        await parts.aclose()
    return code, json.loads(capsys.readouterr().out)


def kinds(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(d["kind"], d["key"] or d["sku"]) for d in report["drift"]]


async def test_catalogue_sync_reports_drift_applies_missing_once_and_names_hand_edits(
        own_stripe: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = await sync(own_stripe, capsys)
    assert code == 1 and report["in_step"] is False
    assert kinds(report) == [("missing", "ENG:eur:hour"), ("missing", "PLAT-PRO:eur:month"),
                             ("missing", "PLAT-PRO:eur:year")]

    code, applied = await sync(own_stripe, capsys, "--apply")
    assert code == 0 and applied["drift"] == [] and len(applied["created"]) == 3
    code, again = await sync(own_stripe, capsys, "--apply")
    assert code == 0 and again["created"] == [] and again["drift"] == []

    config = vendor_settings(own_stripe, "stripe")
    sdk = stripe.StripeClient(config.api_key, stripe_version="2023-08-16", max_network_retries=0,
                              base_addresses={"api": config.base_url})
    [monthly] = sdk.prices.list(params={"lookup_keys": ["PLAT-PRO:eur:month"]}).data
    [yearly] = sdk.prices.list(params={"lookup_keys": ["PLAT-PRO:eur:year"]}).data
    assert monthly.unit_amount == 4500 and yearly.unit_amount == 48000 and monthly.product == yearly.product
    # finance moves the monthly key to a price of 49.00 by hand, and archives the yearly price
    sdk.prices.create(params={"product": str(monthly.product), "currency": "eur", "unit_amount": 4900,
                              "recurring": {"interval": "month"}, "lookup_key": "PLAT-PRO:eur:month",
                              "transfer_lookup_key": True})
    sdk.prices.update(yearly.id, params={"active": False})
    # and a deal sells a SKU nobody put in the catalogue
    billing = from_settings(own_stripe)
    try:
        customer_id = await billing.ensure_customer(Account(name="Stray Co", country="DE"), contact=None,
                                                    reference="crm:company:1", legal_entity="EU01",
                                                    idempotency_key=f"cus-{uuid.uuid4().hex}")
        await billing.create_schedule(BillingSchedule(
            kind=BillingScheduleKind.SUBSCRIPTION, customer_id=customer_id, currency="EUR", start_date=date.today(),
            metadata={"revops_deal_id": "D-77"},
            charges=[ScheduledCharge(product_code="ADDON-X", description="Add-on", quantity=Decimal(1),
                                     unit_amount=Money.of("9.00", "EUR"), interval=BillingInterval.MONTH)]),
            idempotency_key=f"q2c-{uuid.uuid4().hex}")
    finally:
        await billing.aclose()

    code, report = await sync(own_stripe, capsys, "--apply")
    assert code == 1 and report["created"] == []
    assert kinds(report) == [("price_differs", "PLAT-PRO:eur:month"), ("archived", "PLAT-PRO:eur:year"),
                             ("unknown", "ADDON-X")]
    differs, _archived, unknown = report["drift"]
    assert differs["detail"] == "billing has 49.00 EUR per month, the catalogue 45.00 EUR per month"
    assert "deal D-77" in unknown["detail"]

    parts = for_cli(own_stripe)
    try:
        assert await starter.run(["catalogue", "sync"], parts=parts) == 1
    finally:
        await parts.aclose()
    text = capsys.readouterr().out
    assert "price_differs  PLAT-PRO:eur:month" in text and "3 drift" in text
