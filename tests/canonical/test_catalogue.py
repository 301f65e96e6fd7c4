"""The product catalogue: loading, look-ups and the lookup key with its inverse."""

from __future__ import annotations

from decimal import Decimal

import pytest

from canonical import BillingInterval, Money
from canonical.catalogue import CatalogueRefused, load_catalogue, parse_price_key, price_key

RAW = {
    "PLAT-PRO": {"name": "Platform Pro seat", "erp_item_code": "PLAT-PRO",
                 "prices": [{"currency": "usd", "interval": "month", "unit_amount": "45.00"},
                            {"currency": "EUR", "interval": "year", "unit_amount": "480"}]},
    "ENG": {"name": "Engineer", "hourly_rates": {"usd": "150.00", "JPY": "20000"}},
}


def test_catalogue_finds_prices_rates_and_item_codes_by_sku() -> None:
    catalogue = load_catalogue(RAW)
    monthly = catalogue.price("PLAT-PRO", "USD", BillingInterval.MONTH)
    assert monthly is not None and monthly.money() == Money.of("45.00", "USD")
    assert catalogue.price("PLAT-PRO", "USD", BillingInterval.YEAR) is None
    assert catalogue.price("PLAT-PRO", "eur", BillingInterval.YEAR) is not None
    assert catalogue.price("NOPE", "USD", BillingInterval.MONTH) is None
    assert catalogue.hourly_rate("ENG", "USD") == Money.of("150.00", "USD")
    assert catalogue.hourly_rate("ENG", "EUR") is None
    assert (catalogue.erp_item_code("PLAT-PRO"), catalogue.erp_item_code("ENG")) == ("PLAT-PRO", None)
    assert [(e.key, e.unit_amount.amount) for e in catalogue.entries()] == [
        ("ENG:jpy:hour", Decimal(20000)), ("ENG:usd:hour", Decimal("150.00")),
        ("PLAT-PRO:usd:month", Decimal("45.00")), ("PLAT-PRO:eur:year", Decimal(480))]


def test_price_key_and_its_inverse() -> None:
    assert price_key("PLAT-PRO", "USD", BillingInterval.QUARTER) == "PLAT-PRO:usd:quarter"
    assert price_key("FEE", "EUR", None) == "FEE:eur:one_off"
    assert price_key("ENG", "GBP", None, hourly=True) == "ENG:gbp:hour"
    for sku, currency, interval, hourly in [("PLAT-PRO", "USD", BillingInterval.QUARTER, False),
                                            ("FEE", "EUR", None, False), ("ENG", "GBP", None, True)]:
        assert parse_price_key(price_key(sku, currency, interval, hourly=hourly)) == (sku, currency, interval, hourly)
    for foreign in ("", "standard", "a:b", "X:usd:fortnight", "X:zzz:month", "bad sku:usd:month"):
        assert parse_price_key(foreign) is None, foreign


@pytest.mark.parametrize(("raw", "problem"), [
    ({"A B": {"name": "x", "prices": [{"currency": "USD", "unit_amount": "1"}]}}, "SKU 'A B': not a SKU"),
    ({"JP": {"name": "x", "prices": [{"currency": "JPY", "unit_amount": "1.5"}]}},
     "SKU 'JP': 1.5 JPY has more than 0 decimal places"),
    ({"D": {"name": "x", "prices": [{"currency": "USD", "interval": "month", "unit_amount": "1"},
                                    {"currency": "usd", "interval": "month", "unit_amount": "2"}]}},
     "SKU 'D': two prices in USD month"),
    ({"N": {"name": "x", "prices": [{"currency": "USD", "unit_amount": "-1"}]}}, "SKU 'N': prices.0.unit_amount"),
    ({"F": {"name": "x", "prices": [{"currency": "USD", "unit_amount": 1.5}]}}, "SKU 'F': prices.0.unit_amount"),
    ({"R": {"name": "x", "hourly_rates": {"USD": "0"}}}, "SKU 'R': hourly rate in USD must be positive"),
    ({"C": {"name": "x", "hourly_rates": {"usd": "1"}, "erp_item_code": "X" * 31}}, "SKU 'C': erp_item_code"),
    ({"U": {"name": "x", "hourly_rates": {"USD": "1"}, "colour": "red"}}, "SKU 'U': colour"),
    ({"L": "not an object"}, "SKU 'L': expected an object"),
])
def test_bad_catalogue_is_refused_naming_the_sku(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(CatalogueRefused) as refused:
        load_catalogue(raw)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems
