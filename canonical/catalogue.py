"""The product catalogue: one place that says what a SKU is in every system.

A SKU (the CRM line item's SKU, ``DealLine.product_code``) maps to

* its billing prices, one per currency and billing interval (``interval`` empty: a one-off price);
* its ERP item code (the item finance books the line against);
* for time-and-materials roles, its rate card: an hourly rate per currency.

The billing adapter finds or creates each catalogue price once, under a stable lookup key
(:func:`price_key`), and every deal at that price reuses it. The catalogue comes from settings
(``CATALOGUE`` as JSON, or ``CATALOGUE_FILE``) keyed by SKU::

    {"SEATS": {"name": "Platform seat", "erp_item_code": "SEAT",
               "prices": [{"currency": "EUR", "interval": "month", "unit_amount": "20.00"}]},
     "ENG":   {"name": "Engineer", "hourly_rates": {"EUR": "150.00"}}}

:func:`load_catalogue` refuses a bad one with every problem named by its SKU.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from canonical.deal import BillingInterval
from canonical.money import DecimalAmount, Money, minor_unit, normalise_currency

#: what a SKU may look like: it travels in lookup keys, metadata and item codes
SKU = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}")
#: the longest ERP item code (Xero's ``ItemCode`` limit, the tightest of our ERPs)
ERP_ITEM_CODE_MAX = 30
ONE_OFF = "one_off"
HOURLY = "hour"


class CataloguePrice(BaseModel):
    """A SKU's list price in one currency and billing interval (``interval`` None: one-off)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str
    interval: BillingInterval | None = None
    unit_amount: DecimalAmount = Field(ge=0)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        return normalise_currency(value)

    def money(self) -> Money:
        return Money(amount=self.unit_amount, currency=self.currency)


class CatalogueItem(BaseModel):
    """One SKU: its name, ERP item code, prices and (time-and-materials roles) hourly rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str
    name: str = Field(min_length=1)
    erp_item_code: str | None = Field(default=None, min_length=1, max_length=ERP_ITEM_CODE_MAX)
    prices: list[CataloguePrice] = Field(default_factory=list)
    hourly_rates: dict[str, DecimalAmount] = Field(default_factory=dict, description="currency -> hourly rate")

    def hourly_rate(self, currency: str) -> Money | None:
        for code, rate in self.hourly_rates.items():
            if code.upper() == currency.upper():
                return Money(amount=rate, currency=code.upper())
        return None


class CatalogueEntry(BaseModel):
    """One price the billing system should hold for the catalogue (what ``catalogue sync`` reconciles)."""

    model_config = ConfigDict(frozen=True)

    sku: str
    name: str
    key: str = Field(description="the price's lookup key (:func:`price_key`)")
    unit_amount: Money
    interval: BillingInterval | None = None
    hourly: bool = False


class Catalogue(BaseModel):
    """Every SKU the business sells, keyed by SKU."""

    model_config = ConfigDict(frozen=True)

    items: dict[str, CatalogueItem] = Field(default_factory=dict)

    def item(self, sku: str) -> CatalogueItem | None:
        return self.items.get(sku)

    def price(self, sku: str, currency: str, interval: BillingInterval | None) -> CataloguePrice | None:
        """The list price of ``sku`` in ``currency`` and ``interval`` (None: one-off), if catalogued."""
        item = self.items.get(sku)
        for price in item.prices if item else []:
            if price.currency == currency.upper() and price.interval == interval:
                return price
        return None

    def hourly_rate(self, sku: str, currency: str) -> Money | None:
        """The rate card's hourly rate of a time-and-materials role, if catalogued."""
        item = self.items.get(sku)
        return item.hourly_rate(currency) if item else None

    def erp_item_code(self, sku: str) -> str | None:
        item = self.items.get(sku)
        return item.erp_item_code if item else None

    def entries(self) -> list[CatalogueEntry]:
        """Every price the billing system should hold: list prices and hourly rates, in SKU order."""
        found: list[CatalogueEntry] = []
        for sku in sorted(self.items):
            item = self.items[sku]
            found += [CatalogueEntry(sku=sku, name=item.name, key=price_key(sku, p.currency, p.interval),
                                     unit_amount=p.money(), interval=p.interval) for p in item.prices]
            found += [CatalogueEntry(sku=sku, name=item.name, key=price_key(sku, code, None, hourly=True),
                                     unit_amount=Money(amount=rate, currency=code), hourly=True)
                      for code, rate in sorted(item.hourly_rates.items())]
        return found


def price_key(sku: str, currency: str, interval: BillingInterval | None, *, hourly: bool = False) -> str:
    """The stable key of a catalogue price (a Stripe price's ``lookup_key``): ``<sku>:<currency>:<interval>``,
    the interval ``one_off`` or ``hour`` (rate card). Also the root of the idempotency keys that create it."""
    period = HOURLY if hourly else (interval.value if interval is not None else ONE_OFF)
    return f"{sku}:{currency.lower()}:{period}"


def parse_price_key(key: str) -> tuple[str, str, BillingInterval | None, bool] | None:
    """The inverse of :func:`price_key`: ``(sku, CURRENCY, interval, hourly)``, None when not one of ours."""
    parts = key.rsplit(":", 2)
    if len(parts) != 3 or not SKU.fullmatch(parts[0]):
        return None
    sku, currency, period = parts
    try:
        code = normalise_currency(currency)
    except ValueError:
        return None
    if period in (ONE_OFF, HOURLY):
        return sku, code, None, period == HOURLY
    try:
        return sku, code, BillingInterval(period), False
    except ValueError:
        return None


class BillingPrice(BaseModel):
    """A price the billing system holds that the catalogue may care about: one under a catalogue lookup key,
    or one a deal made for a SKU the catalogue does not list (``uncatalogued``)."""

    price_id: str
    product_id: str
    key: str | None = Field(default=None, description="its lookup key (:func:`price_key`), if any")
    sku: str | None = None
    unit_amount: Money
    interval: BillingInterval | None = None
    active: bool = True
    product_active: bool = True
    uncatalogued: bool = Field(default=False, description="made per deal for a SKU missing from the catalogue")
    deal_id: str | None = None


class DriftKind(StrEnum):
    MISSING = "missing"  # the catalogue lists a price the billing system does not hold
    PRICE_DIFFERS = "price_differs"  # the price under its lookup key is not the catalogue's amount or interval
    ARCHIVED = "archived"  # the price (or its product) is archived in the billing system
    UNKNOWN = "unknown"  # billing holds a catalogue-style price or a deal's product the catalogue does not list


class CatalogueDrift(BaseModel):
    """One difference between the catalogue and the billing system, for a person to act on."""

    kind: DriftKind
    sku: str
    key: str | None = None
    price_id: str | None = None
    detail: str


def catalogue_drift(catalogue: Catalogue, held: list[BillingPrice]) -> list[CatalogueDrift]:
    """What differs between the catalogue and what billing ``held``: pure, in catalogue order, then unknowns."""
    by_key = {p.key: p for p in held if p.key}
    drift: list[CatalogueDrift] = []
    for entry in catalogue.entries():
        price = by_key.get(entry.key)
        if price is None:
            drift.append(CatalogueDrift(kind=DriftKind.MISSING, sku=entry.sku, key=entry.key,
                                        detail=f"no price {entry.key} ({entry.unit_amount})"))
            continue
        if price.unit_amount != entry.unit_amount or price.interval != entry.interval:
            drift.append(CatalogueDrift(
                kind=DriftKind.PRICE_DIFFERS, sku=entry.sku, key=entry.key, price_id=price.price_id,
                detail=f"billing has {price.unit_amount} {_period(price.interval)}, the catalogue "
                       f"{entry.unit_amount} {_period(entry.interval)}"))
        if not (price.active and price.product_active):
            drift.append(CatalogueDrift(kind=DriftKind.ARCHIVED, sku=entry.sku, key=entry.key,
                                        price_id=price.price_id,
                                        detail="the price is archived" if not price.active
                                        else "its product is archived"))
    stray: dict[str, list[BillingPrice]] = {}
    for price in held:
        parsed = parse_price_key(price.key) if price.key else None
        if parsed is not None and catalogue.item(parsed[0]) is None:
            drift.append(CatalogueDrift(kind=DriftKind.UNKNOWN, sku=parsed[0], key=price.key,
                                        price_id=price.price_id, detail="a catalogue price for a SKU the "
                                        "catalogue does not list"))
        elif price.uncatalogued and price.active and price.sku and catalogue.item(price.sku) is None:
            stray.setdefault(price.sku, []).append(price)
    for sku, prices in sorted(stray.items()):  # one line per SKU: a person adds it once
        deals = ", ".join(sorted({p.deal_id or "?" for p in prices}))
        drift.append(CatalogueDrift(kind=DriftKind.UNKNOWN, sku=sku, price_id=prices[0].price_id,
                                    detail=f"priced without the catalogue in deal {deals}: add the SKU"))
    return drift


def _period(interval: BillingInterval | None) -> str:
    return f"per {interval.value}" if interval else "one-off"


class CatalogueRefused(ValueError):
    """The catalogue cannot be used; ``problems`` name each SKU and what is wrong with it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _scale_problem(amount: Decimal, currency: str) -> str | None:
    places = minor_unit(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        return f"{amount} {currency} has more than {places} decimal places"
    return None


def _item_problems(sku: str, body: Any) -> tuple[CatalogueItem | None, list[str]]:
    where = f"SKU {sku!r}"
    if not SKU.fullmatch(sku):
        return None, [f"{where}: not a SKU (letters, digits, '.', '_' or '-', at most 64)"]
    if not isinstance(body, Mapping):
        return None, [f"{where}: expected an object with name, prices, hourly_rates, erp_item_code"]
    try:
        item = CatalogueItem.model_validate({**body, "sku": sku})
    except ValidationError as exc:
        return None, [f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    problems: list[str] = []
    seen: set[tuple[str, BillingInterval | None]] = set()
    for price in item.prices:
        if (price.currency, price.interval) in seen:
            problems.append(f"{where}: two prices in {price.currency} "
                            f"{price.interval.value if price.interval else ONE_OFF}")
        seen.add((price.currency, price.interval))
        if scale := _scale_problem(price.unit_amount, price.currency):
            problems.append(f"{where}: {scale}")
    for code, rate in item.hourly_rates.items():
        try:
            currency = normalise_currency(code)
        except ValueError as exc:
            problems.append(f"{where}: hourly rate: {exc}")
            continue
        if rate <= 0:
            problems.append(f"{where}: hourly rate in {currency} must be positive")
        elif scale := _scale_problem(rate, currency):
            problems.append(f"{where}: hourly rate {scale}")
    if not item.prices and not item.hourly_rates:
        problems.append(f"{where}: has neither prices nor hourly rates")
    return (None if problems else item), problems


def load_catalogue(raw: Mapping[str, Any] | None) -> Catalogue:
    """The catalogue from its settings form (SKU -> item); :class:`CatalogueRefused` naming every bad SKU."""
    if raw is None:
        return Catalogue()
    if not isinstance(raw, Mapping):
        raise CatalogueRefused(["the catalogue must be an object keyed by SKU"])
    items: dict[str, CatalogueItem] = {}
    problems: list[str] = []
    for sku, body in raw.items():
        item, found = _item_problems(str(sku), body)
        problems += found
        if item is not None:
            items[item.sku] = item
    if problems:
        raise CatalogueRefused(problems)
    return Catalogue(items=items)


__all__ = ["BillingPrice", "Catalogue", "CatalogueDrift", "CatalogueEntry", "CatalogueItem", "CataloguePrice",
           "CatalogueRefused", "DriftKind", "catalogue_drift", "load_catalogue", "parse_price_key", "price_key"]
