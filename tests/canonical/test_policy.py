"""Approval policy and legal-entity routing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from canonical.deal import BillingModel, Deal, DealLine
from canonical.parties import Account, Contact, LegalEntity
from canonical.policy import ApprovalPolicy, RoutingError, approval_reasons, choose_entity, deal_entity, line_entity
from canonical.systems import System

US01 = LegalEntity(code="US01", name="Revops Inc", region="NA", currency="USD", erp_tenant_id="t-us",
                   countries=["US"])
CA01 = LegalEntity(code="CA01", name="Revops Canada", region="NA", currency="CAD", erp_tenant_id="t-ca",
                   countries=["CA"])
DE01 = LegalEntity(code="DE01", name="Revops GmbH", region="EMEA", currency="EUR", erp_tenant_id="t-de",
                   countries=["DE", "AT"])
NL01 = LegalEntity(code="NL01", name="Revops BV", region="EMEA", currency="EUR", erp_tenant_id="t-nl",
                   countries=["NL", "BE"])
JP01 = LegalEntity(code="JP01", name="Revops KK", region="APAC", currency="JPY", erp_tenant_id="t-jp")
ENTITIES = [US01, CA01, DE01, NL01, JP01]


def deal(**overrides: Any) -> Deal:
    values: dict[str, Any] = {
        "crm_id": "D-1", "name": "Deal", "currency": "USD", "region": "NA", "start_date": date(2027, 1, 1),
        "billing_model": BillingModel.FIXED_FEE, "payment_terms_days": 30,
        "account": Account(name="Acme", country="US"), "contacts": [Contact(email="a@acme.example")],
        "lines": [DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal(50000))],
    }
    values.update(overrides)
    return Deal(**values)


def test_policy_standard_deal_needs_no_approval() -> None:
    assert approval_reasons(deal(), ApprovalPolicy()) == []


def test_policy_discount_above_threshold_needs_approval() -> None:
    lines = [DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal(1000),
                      discount_percent=Decimal(20))]
    assert approval_reasons(deal(lines=lines), ApprovalPolicy()) == ["discount 20% exceeds 15%"]


def test_policy_discount_at_threshold_needs_no_approval() -> None:
    lines = [DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal(1000),
                      discount_percent=Decimal(15))]
    assert approval_reasons(deal(lines=lines), ApprovalPolicy()) == []


def test_policy_amount_above_threshold_needs_approval() -> None:
    lines = [DealLine(product_code="FF", name="Setup", quantity=Decimal(3), unit_price=Decimal(50000))]
    assert approval_reasons(deal(lines=lines), ApprovalPolicy()) == ["amount 150000.00 USD exceeds 100000 USD"]


def test_policy_amount_is_net_of_discount() -> None:
    # 110,000 gross, 99,000 net after 10 %: under the 100,000 threshold
    lines = [DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal(110000),
                      discount_percent=Decimal(10))]
    assert approval_reasons(deal(lines=lines), ApprovalPolicy()) == []


def test_policy_long_payment_terms_need_approval() -> None:
    assert approval_reasons(deal(payment_terms_days=60), ApprovalPolicy()) == [
        "payment terms 60 days exceed the standard 30"
    ]


def test_policy_non_standard_terms_need_approval() -> None:
    assert approval_reasons(deal(non_standard_terms=True), ApprovalPolicy()) == [
        "non-standard terms flagged on the deal"
    ]


def test_policy_reports_every_reason_at_once() -> None:
    lines = [DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal(200000),
                      discount_percent=Decimal(25))]
    reasons = approval_reasons(deal(lines=lines, payment_terms_days=90, non_standard_terms=True),
                               ApprovalPolicy(max_amount=Decimal(100000)))
    assert len(reasons) == 4
    assert [r.split()[0] for r in reasons] == ["discount", "amount", "payment", "non-standard"]


def test_policy_thresholds_are_configurable() -> None:
    policy = ApprovalPolicy(max_amount=Decimal(10000), standard_payment_terms_days=60)
    assert approval_reasons(deal(payment_terms_days=60), policy) == ["amount 50000.00 USD exceeds 10000 USD"]


def test_policy_choose_entity_by_explicit_code() -> None:
    assert choose_entity(ENTITIES, code="CA01", region="EMEA", currency="CAD") is CA01


def test_policy_choose_entity_unknown_code_names_legal_entity() -> None:
    with pytest.raises(RoutingError) as info:
        choose_entity(ENTITIES, code="XX99")
    assert info.value.field == "legal_entity" and "XX99" in info.value.reason


def test_policy_choose_entity_by_region_and_currency() -> None:
    assert choose_entity(ENTITIES, region="NA", currency="CAD", country="US") is CA01
    assert choose_entity(ENTITIES, region="na", currency="USD") is US01


def test_policy_choose_entity_by_region_and_country_when_currency_is_shared() -> None:
    assert choose_entity(ENTITIES, region="EMEA", currency="EUR", country="nl") is NL01
    assert choose_entity(ENTITIES, region="EMEA", currency="EUR", country="AT") is DE01


def test_policy_choose_entity_single_entity_region() -> None:
    assert choose_entity(ENTITIES, region="APAC", currency="JPY") is JP01


def test_policy_choose_entity_ambiguity_names_the_field() -> None:
    with pytest.raises(RoutingError) as info:
        choose_entity(ENTITIES, region="EMEA", currency="EUR", country="FR")
    assert info.value.field == "legal_entity"
    assert "DE01" in info.value.reason and "NL01" in info.value.reason
    assert str(info.value).startswith("legal_entity: ")


def test_policy_choose_entity_without_region_names_region() -> None:
    with pytest.raises(RoutingError) as info:
        choose_entity(ENTITIES, currency="USD")
    assert info.value.field == "region"


def test_policy_choose_entity_unknown_region_names_region() -> None:
    with pytest.raises(RoutingError) as info:
        choose_entity(ENTITIES, region="LATAM", currency="USD")
    assert info.value.field == "region" and "LATAM" in info.value.reason


def test_policy_deal_entity_uses_the_account_country() -> None:
    emea = deal(region="EMEA", currency="EUR", account=Account(name="Acme BV", country="NL"))
    assert deal_entity(emea, ENTITIES) is NL01


def test_policy_line_entity_prefers_the_line_code_over_the_default() -> None:
    d = deal()
    de_usd = DE01.model_copy(update={"currencies": ["EUR", "USD"]})  # the split entity bills the deal currency
    assert line_entity(DealLine(product_code="X", name="X", quantity=Decimal(1), unit_price=Decimal(1),
                                legal_entity="DE01"), d, [US01, de_usd], US01) is de_usd
    assert line_entity(d.lines[0], d, ENTITIES, US01) is US01


# -- issue 24: an entity bills only its currencies, in an ERP that holds them to the minor unit ------------
KW01 = LegalEntity(code="KW01", name="Revops Kuwait", region="MEA", currency="KWD", erp_tenant_id="t-kw")
US_ONLY = LegalEntity(code="US02", name="Revops Gulf desk", region="MEA", currency="USD", erp_tenant_id="t-us2")


def test_policy_entity_bills_its_own_currency_by_default() -> None:
    assert US01.currencies == ["USD"]
    assert US01.bills("usd") and not US01.bills("KWD")
    multi = LegalEntity(code="US03", name="Revops Intl", region="NA", currency="USD", erp_tenant_id="t-3",
                        currencies=["usd", "eur"])
    assert multi.currencies == ["USD", "EUR"] and multi.bills("EUR")


def test_policy_kwd_deal_is_not_routed_to_an_entity_that_bills_usd() -> None:
    # the controller's case: the region's only entity bills USD; a KWD deal must wait, not post rounded
    with pytest.raises(RoutingError) as info:
        choose_entity([US_ONLY], region="MEA", currency="KWD")
    assert info.value.field == "currency"
    assert "KWD" in info.value.reason and "US02" in info.value.reason
    with pytest.raises(RoutingError) as named:
        choose_entity([US_ONLY], code="US02", currency="KWD")
    assert named.value.field == "currency"


def test_policy_entity_whose_erp_keeps_two_decimals_cannot_hold_kwd() -> None:
    two = System(role="erp", name="twodp", display="Two", money_decimals=2)
    exact = System(role="erp", name="anydp", display="Any")
    with pytest.raises(RoutingError) as info:
        choose_entity([KW01], region="MEA", currency="KWD", erps={"KW01": two})
    assert info.value.field == "currency" and "3 decimals" in info.value.reason
    assert choose_entity([KW01], region="MEA", currency="KWD", erps={"KW01": exact}) is KW01
    # two decimals hold JPY (0) and USD (2)
    assert choose_entity([JP01], region="APAC", currency="JPY", erps={"JP01": two}) is JP01


def test_policy_deal_entity_checks_every_line_entity_for_the_currency() -> None:
    kwd = deal(currency="KWD", region="MEA", legal_entity="KW01", lines=[
        DealLine(product_code="FF", name="Setup", quantity=Decimal(1), unit_price=Decimal("3703.701")),
        DealLine(product_code="SVC", name="Service", quantity=Decimal(1), unit_price=Decimal(1),
                 legal_entity="US02")])
    with pytest.raises(RoutingError) as info:
        deal_entity(kwd, [KW01, US_ONLY])
    assert info.value.field == "line_items[SVC].legal_entity" and "KWD" in info.value.reason
