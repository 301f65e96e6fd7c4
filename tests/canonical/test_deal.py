"""A canonical deal: its validation and the commercial checks before approval."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from canonical.deal import BillingModel, Deal, DealLine, MissingField, describe_missing
from canonical.money import Money
from canonical.parties import Account, Contact


def line(**overrides: Any) -> DealLine:
    values: dict[str, Any] = {"product_code": "LIC", "name": "Licence", "quantity": Decimal(2),
                              "unit_price": Decimal("100.00")}
    values.update(overrides)
    return DealLine(**values)


def complete_deal(**overrides: Any) -> Deal:
    values: dict[str, Any] = {
        "crm_id": "D-1", "name": "Acme renewal", "currency": "EUR", "region": "EMEA",
        "billing_model": BillingModel.SUBSCRIPTION, "start_date": date(2027, 1, 1), "end_date": date(2027, 12, 31),
        "account": Account(name="Acme GmbH", country="DE"),
        "contacts": [Contact(first_name="Ada", email="ada@acme.example", role="billing")],
        "lines": [line()],
    }
    values.update(overrides)
    return Deal(**values)


def fields_of(missing: list[MissingField]) -> list[str]:
    return [m.field for m in missing]


def test_deal_complete_has_no_missing_commercial_fields() -> None:
    assert complete_deal().missing_commercial_fields() == []


def test_deal_empty_reports_every_missing_field_with_a_reason() -> None:
    missing = Deal(crm_id="D-2", name="Bare").missing_commercial_fields()
    assert fields_of(missing) == ["region", "currency", "start_date", "company", "line_items", "billing_contact"]
    assert all(m.reason for m in missing)


@pytest.mark.parametrize(
    ("overrides", "field", "reason_part"),
    [
        ({"region": None}, "region", "legal entity"),
        ({"currency": None}, "currency", "bill"),
        ({"start_date": None, "end_date": None}, "start_date", "billing"),
        ({"account": None}, "company", "no associated company"),
        ({"lines": []}, "line_items", "priced line item"),
        ({"lines": [line(unit_price=Decimal(0))]}, "line_items", "priced line item"),
        ({"contacts": [Contact(first_name="No", last_name="Email")]}, "billing_contact", "email"),
        ({"billing_model": None}, "line_items[LIC].billing_model", "no billing model"),
    ],
)
def test_deal_missing_commercial_fields_names_each_field(overrides: dict[str, Any], field: str,
                                                         reason_part: str) -> None:
    missing = complete_deal(**overrides).missing_commercial_fields()
    assert fields_of(missing) == [field]
    assert reason_part in missing[0].reason


def test_deal_legal_entity_stands_in_for_region() -> None:
    assert complete_deal(region=None, legal_entity="EU01").missing_commercial_fields() == []


def test_deal_line_billing_model_falls_back_to_the_deal() -> None:
    deal = complete_deal(billing_model=None, lines=[line(billing_model=BillingModel.MILESTONE)])
    assert deal.missing_commercial_fields() == []
    assert deal.line_billing_model(deal.lines[0]) is BillingModel.MILESTONE


def test_deal_describe_missing_joins_field_and_reason() -> None:
    text = describe_missing(complete_deal(currency=None, account=None).missing_commercial_fields())
    assert text == "currency: needed to price and bill the deal; company: the deal has no associated company"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": Decimal(-1)}, "quantity"),
        ({"quantity": Decimal(0)}, "quantity"),
        ({"unit_price": Decimal("-0.01")}, "unit_price"),
        ({"discount_percent": Decimal(101)}, "discount_percent"),
        ({"product_code": ""}, "product_code"),
        ({"quantity": 1.5}, "quantity"),
    ],
)
def test_deal_line_validation_error_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        line(**overrides)
    assert [e["loc"] for e in info.value.errors()] == [(field,)]


def test_deal_end_before_start_is_refused_naming_both_fields() -> None:
    with pytest.raises(ValidationError, match="end_date 2026-12-31 is before start_date 2027-01-01"):
        complete_deal(end_date=date(2026, 12, 31))


def test_deal_negative_payment_terms_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        complete_deal(payment_terms_days=-1)
    assert info.value.errors()[0]["loc"] == ("payment_terms_days",)


def test_deal_unknown_currency_is_refused_naming_the_code() -> None:
    with pytest.raises(ValidationError, match="'ABC' is not a supported"):
        complete_deal(currency="ABC")


def test_deal_line_net_applies_discount_and_rounds_once() -> None:
    net = line(quantity=Decimal(3), unit_price=Decimal("33.33"), discount_percent=Decimal("12.5")).net("EUR")
    assert net == Money.of("87.49", "EUR")  # 99.99 × 0.875 = 87.49125


def test_deal_total_sums_line_nets_in_the_deal_currency() -> None:
    deal = complete_deal(lines=[line(), line(product_code="SUP", quantity=Decimal(1), unit_price=Decimal("50"),
                                             discount_percent=Decimal(10))])
    # two subscription lines of 200.00 and 45.00 a month, over the 12 months of the term (issue 24)
    assert deal.total() == Money.of("2940.00", "EUR")


def test_deal_total_without_currency_is_an_error() -> None:
    with pytest.raises(ValueError, match="no currency"):
        complete_deal(currency=None).total()


def test_deal_max_discount_percent_is_the_largest_line_discount() -> None:
    deal = complete_deal(lines=[line(discount_percent=Decimal(5)), line(discount_percent=Decimal(20))])
    assert deal.max_discount_percent() == Decimal(20)
    assert complete_deal(lines=[]).max_discount_percent() == Decimal(0)


def test_deal_billing_contact_prefers_the_billing_role() -> None:
    signer = Contact(first_name="Sam", email="sam@acme.example", role="signer")
    billing = Contact(first_name="Bea", email="bea@acme.example", role="billing")
    assert complete_deal(contacts=[signer, billing]).billing_contact == billing
    assert complete_deal(contacts=[Contact(role="billing"), signer]).billing_contact == signer
