"""Money: a Decimal amount in an ISO 4217 currency, rounded by the currency's minor unit.

Floats are refused at the boundary: ``Money(amount=0.1, ...)`` is an error, because a float
has already lost the cents it was meant to carry.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

# Minor-unit exponents that differ from the usual 2 (ISO 4217 table, the currencies we meet).
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
# Currencies we accept. ISO 4217 active codes that billing and ERP vendors commonly support.
ISO_CURRENCIES: frozenset[str] = frozenset(
    """AED AUD BGN BHD BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JOD JPY
    KES KRW KWD MAD MXN MYR NGN NOK NZD OMR PEN PHP PKR PLN QAR RON RSD SAR SEK SGD THB TND TRY TWD
    UAH USD UYU VND ZAR BIF DJF GNF KMF PYG RWF UGX UYI VUV XAF XOF XPF IQD LYD""".split()
)


def minor_unit(currency: str) -> int:
    """Number of decimal places of ``currency`` (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money amounts must be Decimal, int or a decimal string, never float")
    return value


DecimalAmount = Annotated[Decimal, BeforeValidator(_refuse_float)]


def normalise_currency(value: str) -> str:
    """Upper-case and check an ISO 4217 code; raises ``ValueError`` naming the code."""
    code = (value or "").strip().upper()
    if code not in ISO_CURRENCIES:
        raise ValueError(f"{value!r} is not a supported ISO 4217 currency code")
    return code


class Money(BaseModel):
    """An amount of one currency. Rounded to the currency's minor unit on construction."""

    model_config = ConfigDict(frozen=True)

    amount: DecimalAmount
    currency: str

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return normalise_currency(value)

    def model_post_init(self, __context: Any) -> None:
        object.__setattr__(self, "amount", round_amount(self.amount, self.currency))

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def of(cls, amount: Decimal | int | str, currency: str) -> Money:
        """``Money.of("12.50", "EUR")``. A float is refused, as by the constructor."""
        # ``Decimal(str(0.1))`` would quietly accept the float the model exists to keep out
        _refuse_float(amount)
        return cls(amount=Decimal(str(amount)) if not isinstance(amount, Decimal) else amount, currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """From integer minor units (Stripe's ``amount`` fields): ``from_minor(1250, "EUR")`` is 12.50."""
        exp = minor_unit(currency)
        return cls(amount=Decimal(units).scaleb(-exp), currency=currency)

    def to_minor(self) -> int:
        """Integer minor units, as Stripe wants them."""
        return int(self.amount.scaleb(minor_unit(self.currency)).to_integral_value(ROUND_HALF_UP))

    # -- arithmetic (same currency only) --------------------------------------------------------
    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def times(self, factor: Decimal | int) -> Money:
        """Multiply by a quantity or a rate (rounded once, at the end). A float factor is refused."""
        _refuse_float(factor)
        return Money(amount=self.amount * Decimal(factor), currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def round_amount(amount: Decimal, currency: str, *, bankers: bool = False) -> Decimal:
    """Round ``amount`` to ``currency``'s minor unit (half-up by default, half-even on request)."""
    exp = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(exp, rounding=ROUND_HALF_EVEN if bankers else ROUND_HALF_UP)


class PricedLine(BaseModel):
    """A line as every system receives it: ``quantity`` x ``unit`` is exactly ``total``."""

    model_config = ConfigDict(frozen=True)

    quantity: DecimalAmount
    unit: Money
    total: Money


def line_amount(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal, currency: str) -> Money:
    """The one rounding rule for a priced line: quantity x unit price x (1 - discount), rounded once
    (half-up, to the currency's minor unit). Never round the unit price before multiplying."""
    _refuse_float(quantity)
    _refuse_float(unit_price)
    _refuse_float(discount_percent)
    exact = Decimal(quantity) * Decimal(unit_price) * (1 - Decimal(discount_percent) / 100)
    return Money(amount=round_amount(exact, currency), currency=currency)


def price_line(quantity: Decimal, unit_price: Decimal, discount_percent: Decimal, currency: str) -> PricedLine:
    """The line every system (contract, ERP, billing, CRM) is sent, so that all their totals agree.

    The total is ``line_amount``. Billing and ERP multiply a unit price held in minor units by the
    quantity, so the quantity and the net unit price travel as they are only when that product is the
    total to the minor unit; otherwise (a discount leaving a fraction of a minor unit per unit, or a
    fractional quantity) the line travels as one unit of its total, and the total wins.
    """
    total = line_amount(quantity, unit_price, discount_percent, currency)
    unit = Money(amount=Decimal(unit_price) * (1 - Decimal(discount_percent) / 100), currency=currency)
    if quantity == quantity.to_integral_value() and unit.amount * quantity == total.amount:
        return PricedLine(quantity=quantity, unit=unit, total=total)
    return PricedLine(quantity=Decimal(1), unit=total, total=total)


def sum_money(items: list[Money], currency: str) -> Money:
    """Sum of ``items`` in ``currency`` (zero when empty); mixed currencies are an error."""
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total
