"""Money: Decimal amounts in ISO currencies, rounded by the currency's minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from canonical.money import Money, minor_unit, round_amount, sum_money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12.345", "EUR", Decimal("12.35")),
        ("12.344", "EUR", Decimal("12.34")),
        ("100.5", "JPY", Decimal("101")),
        ("100.4", "JPY", Decimal("100")),
        ("1.2345", "KWD", Decimal("1.235")),
        ("1.2344", "KWD", Decimal("1.234")),
    ],
)
def test_money_rounds_to_the_currency_minor_unit(amount: str, currency: str, expected: Decimal) -> None:
    money = Money.of(amount, currency)
    assert money.amount == expected
    assert money.amount.as_tuple().exponent == -minor_unit(currency)


def test_money_minor_unit_is_two_unless_iso_says_otherwise() -> None:
    assert (minor_unit("USD"), minor_unit("jpy"), minor_unit("KWD")) == (2, 0, 3)


def test_money_refuses_float_in_constructor() -> None:
    with pytest.raises(ValidationError, match="never float"):
        Money(amount=0.1, currency="EUR")  # type: ignore[arg-type]


def test_money_refuses_float_in_of() -> None:
    with pytest.raises(ValueError, match="never float"):
        Money.of(0.1, "EUR")  # type: ignore[arg-type]


def test_money_refuses_float_factor_in_times() -> None:
    with pytest.raises(ValueError, match="never float"):
        Money.of("10", "EUR").times(0.5)  # type: ignore[arg-type]


def test_money_accepts_int_str_and_decimal() -> None:
    assert Money.of(12, "EUR") == Money.of("12.00", "EUR") == Money.of(Decimal("12"), "EUR")


def test_money_refuses_unknown_currency() -> None:
    with pytest.raises(ValidationError, match="XYZ"):
        Money.of("1", "XYZ")


def test_money_normalises_currency_case() -> None:
    assert Money.of("1", "eur").currency == "EUR"


def test_money_refuses_non_finite_amount() -> None:
    with pytest.raises(ValidationError):
        Money(amount=Decimal("NaN"), currency="EUR")


@pytest.mark.parametrize(
    ("units", "currency", "amount"),
    [(1250, "EUR", Decimal("12.50")), (1250, "JPY", Decimal("1250")), (1250, "KWD", Decimal("1.250"))],
)
def test_money_from_minor_uses_the_minor_unit(units: int, currency: str, amount: Decimal) -> None:
    money = Money.from_minor(units, currency)
    assert money.amount == amount
    assert money.to_minor() == units


def test_money_to_minor_is_an_int() -> None:
    minor = Money.of("19.99", "USD").to_minor()
    assert minor == 1999 and isinstance(minor, int)


def test_money_adds_and_subtracts_in_one_currency() -> None:
    a, b = Money.of("10.10", "EUR"), Money.of("0.95", "EUR")
    assert a + b == Money.of("11.05", "EUR")
    assert a - b == Money.of("9.15", "EUR")
    assert -a == Money.of("-10.10", "EUR")


@pytest.mark.parametrize("op", ["add", "sub", "lt", "le"])
def test_money_refuses_arithmetic_across_currencies(op: str) -> None:
    eur, usd = Money.of("1", "EUR"), Money.of("1", "USD")
    with pytest.raises(ValueError, match="cannot combine EUR with USD"):
        {"add": lambda: eur + usd, "sub": lambda: eur - usd, "lt": lambda: eur < usd, "le": lambda: eur <= usd}[op]()


def test_money_times_rounds_once_at_the_end() -> None:
    # 3 × 0.335 = 1.005 -> 1.01; rounding the rate first would give 3 × 0.34 = 1.02
    assert Money.of("3", "EUR").times(Decimal("0.335")) == Money.of("1.01", "EUR")


def test_money_compares_within_a_currency() -> None:
    small, big = Money.of("1", "EUR"), Money.of("2", "EUR")
    assert small < big and small <= small and big > small
    assert sorted([big, small]) == [small, big]


def test_money_is_frozen() -> None:
    money = Money.of("1", "EUR")
    with pytest.raises(ValidationError):
        money.amount = Decimal(2)  # type: ignore[misc]


def test_money_round_trips_through_json() -> None:
    money = Money.of("1.235", "KWD")
    assert Money.model_validate_json(money.model_dump_json()) == money


def test_money_round_amount_bankers_rounds_half_to_even() -> None:
    assert round_amount(Decimal("0.125"), "EUR") == Decimal("0.13")
    assert round_amount(Decimal("0.125"), "EUR", bankers=True) == Decimal("0.12")


def test_money_sum_money_sums_and_refuses_mixed_currencies() -> None:
    assert sum_money([], "EUR") == Money.zero("EUR")
    assert sum_money([Money.of("1.50", "EUR"), Money.of("2.25", "EUR")], "EUR") == Money.of("3.75", "EUR")
    with pytest.raises(ValueError, match="cannot combine"):
        sum_money([Money.of("1", "USD")], "EUR")


def test_money_str_shows_amount_and_currency() -> None:
    assert str(Money.of("5", "EUR")) == "5.00 EUR"
    assert Money.zero("JPY").is_zero()
