"""From a deal to proposed terms, and from executed terms to per-entity engagement plans."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from canonical.billing import BillingScheduleKind
from canonical.contract import Milestone, RateCardEntry
from canonical.deal import BillingInterval, BillingModel, Deal, DealLine
from canonical.money import Money
from canonical.parties import Account, Contact, LegalEntity
from canonical.policy import RoutingError
from canonical.project import TaskChargeType
from canonical.provisioning import EngagementPlan, plan_engagements, proposed_terms

US01 = LegalEntity(code="US01", name="Revops Inc", region="NA", currency="USD", erp_tenant_id="t-us",
                   countries=["US"])
CA01 = LegalEntity(code="CA01", name="Revops Canada", region="NA", currency="CAD", erp_tenant_id="t-ca",
                   countries=["CA"], currencies=["CAD", "USD"])  # a split deal's lines bill in the deal currency
ENTITIES = [US01, CA01]


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def line(code: str, model: BillingModel, quantity: str, price: str, **extra: Any) -> DealLine:
    return DealLine(product_code=code, name=f"{code} line", quantity=Decimal(quantity), unit_price=Decimal(price),
                    billing_model=model, **extra)


def deal(lines: list[DealLine], **overrides: Any) -> Deal:
    values: dict[str, Any] = {
        "crm_id": "D-9", "name": "Acme rollout", "currency": "USD", "region": "NA",
        "start_date": date(2027, 1, 1), "end_date": date(2027, 12, 31),
        "account": Account(name="Acme", country="US"), "contacts": [Contact(email="a@acme.example")],
        "lines": lines,
    }
    values.update(overrides)
    return Deal(**values)


def split_deal() -> Deal:
    """Most lines in US01; the fixed fee and the PM's time delivered by CA01."""
    return deal([
        line("PLAT", BillingModel.SUBSCRIPTION, "10", "50"),
        line("SUP", BillingModel.RETAINER, "1", "2000", interval=BillingInterval.QUARTER),
        line("MS-1", BillingModel.MILESTONE, "1", "12000"),
        line("FF", BillingModel.FIXED_FEE, "1", "5000", legal_entity="CA01"),
        line("DEV", BillingModel.TIME_AND_MATERIALS, "100", "150"),
        line("PM", BillingModel.TIME_AND_MATERIALS, "10", "200", legal_entity="CA01"),
    ])


def plans_by_entity(plans: list[EngagementPlan]) -> dict[str, EngagementPlan]:
    return {p.entity.code: p for p in plans}


# -- proposed_terms ------------------------------------------------------------------------------
def test_provisioning_proposed_terms_maps_each_billing_model() -> None:
    terms = proposed_terms(split_deal())
    assert [(r.product_code, r.kind, r.interval, r.unit_price) for r in terms.recurring] == [
        ("PLAT", BillingModel.SUBSCRIPTION, BillingInterval.MONTH, usd("50")),
        ("SUP", BillingModel.RETAINER, BillingInterval.QUARTER, usd("2000")),
    ]
    assert [(r.role, r.hourly_rate) for r in terms.rate_card] == [("DEV", usd("150")), ("PM", usd("200"))]
    assert terms.budget_hours == Decimal(110)
    assert [(m.code, m.amount, m.requires_acceptance, m.due_date) for m in terms.milestones] == [
        ("MS-1", usd("12000"), True, None),
        ("FF", usd("5000"), False, date(2027, 1, 1)),
    ]
    assert terms.fixed_fee == usd("5000")
    # over the term: 12 x 500 monthly + 4 x 2,000 quarterly + 12,000 + 5,000 + 100 h x 150 + 10 h x 200
    assert terms.total_value == usd("48000")
    assert (terms.start_date, terms.end_date, terms.payment_terms_days) == (date(2027, 1, 1), date(2027, 12, 31), 30)


def test_provisioning_proposed_terms_applies_discounts_to_unit_prices() -> None:
    terms = proposed_terms(deal([line("PLAT", BillingModel.SUBSCRIPTION, "3", "45.00",
                                      discount_percent=Decimal(10))]))
    [charge] = terms.recurring
    assert (charge.quantity, charge.unit_price, charge.discount_percent) == (Decimal(3), usd("45.00"), Decimal(10))
    assert charge.net_unit_price() == usd("40.50") and charge.per_period() == usd("121.50")
    assert terms.total_value == usd("1458.00")  # 12 months


def test_provisioning_proposed_terms_subscription_only_has_no_fixed_fee_or_hours() -> None:
    terms = proposed_terms(deal([line("PLAT", BillingModel.SUBSCRIPTION, "20", "45")], payment_terms_days=45))
    assert terms.billing_model is BillingModel.SUBSCRIPTION
    assert terms.fixed_fee is None and terms.budget_hours is None and terms.milestones == []
    assert terms.payment_terms_days == 45


def test_provisioning_proposed_terms_uses_the_deal_billing_model_for_bare_lines() -> None:
    bare = DealLine(product_code="T", name="Time", quantity=Decimal(8), unit_price=Decimal(100))
    terms = proposed_terms(deal([bare], billing_model=BillingModel.TIME_AND_MATERIALS))
    assert terms.billing_model is BillingModel.TIME_AND_MATERIALS
    assert [r.role for r in terms.rate_card] == ["T"] and terms.budget_hours == Decimal(8)


# -- plan_engagements ----------------------------------------------------------------------------
def test_provisioning_plan_one_entity_holds_everything() -> None:
    d = deal([line("PLAT", BillingModel.SUBSCRIPTION, "20", "45"), line("MS-1", BillingModel.MILESTONE, "1", "9000")])
    plans = plan_engagements(d, proposed_terms(d), ENTITIES)
    assert len(plans) == 1
    plan = plans[0]
    assert plan.entity is US01 and plan.product_codes == ["MS-1", "PLAT"]
    assert plan.project.code == "P-D-9-US01" and plan.project.erp_tenant_id == "t-us"
    assert plan.project.deadline == date(2027, 12, 31)
    assert plan.project.budget == usd("19800")  # 12 x 900 monthly + 9,000
    assert [s.kind for s in plan.schedules] == [BillingScheduleKind.SUBSCRIPTION, BillingScheduleKind.MILESTONE]


def test_provisioning_plan_split_deal_gives_one_plan_per_entity() -> None:
    d = split_deal()
    plans = plan_engagements(d, proposed_terms(d), ENTITIES)
    assert [p.entity.code for p in plans] == ["US01", "CA01"]  # the deal's own entity first
    by = plans_by_entity(plans)
    assert by["US01"].product_codes == ["DEV", "MS-1", "PLAT", "SUP"]
    assert by["CA01"].product_codes == ["FF", "PM"]
    assert by["CA01"].project.code == "P-D-9-CA01" and by["CA01"].project.erp_tenant_id == "t-ca"


def test_provisioning_plan_split_deal_has_the_right_tasks() -> None:
    d = split_deal()
    by = plans_by_entity(plan_engagements(d, proposed_terms(d), ENTITIES))
    assert [(t.name, t.charge_type, t.rate, t.estimate_minutes) for t in by["US01"].project.tasks] == [
        ("MS-1 MS-1 line", TaskChargeType.FIXED, usd("12000"), None),
        ("DEV time", TaskChargeType.TIME, usd("150"), 100 * 60),
        ("PLAT PLAT line (monthly)", TaskChargeType.FIXED, usd("500"), None),
        ("SUP SUP line (quarterly)", TaskChargeType.FIXED, usd("2000"), None),
    ]
    assert [(t.name, t.charge_type, t.rate, t.estimate_minutes) for t in by["CA01"].project.tasks] == [
        ("FF FF line", TaskChargeType.FIXED, usd("5000"), None),
        ("PM time", TaskChargeType.TIME, usd("200"), 10 * 60),
    ]


def test_provisioning_plan_split_deal_budgets_follow_each_roles_hours() -> None:
    d = split_deal()
    terms = proposed_terms(d)
    by = plans_by_entity(plan_engagements(d, terms, ENTITIES))
    # US01: 12,000 milestone + 100 h × 150 + 12 × 500 monthly + 4 × 2,000 quarterly; CA01: 5,000 fee + 10 h × 200
    assert by["US01"].project.budget == usd("41000")
    assert by["CA01"].project.budget == usd("7000")
    assert by["US01"].project.budget + by["CA01"].project.budget == terms.total_value


def test_provisioning_plan_split_deal_has_the_right_schedules_per_kind() -> None:
    d = split_deal()
    by = plans_by_entity(plan_engagements(d, proposed_terms(d), ENTITIES))
    us = {s.kind: s for s in by["US01"].schedules}
    ca = {s.kind: s for s in by["CA01"].schedules}
    assert list(us) == [BillingScheduleKind.SUBSCRIPTION, BillingScheduleKind.RETAINER,
                        BillingScheduleKind.MILESTONE, BillingScheduleKind.TIME_AND_MATERIALS]
    assert list(ca) == [BillingScheduleKind.FIXED_FEE, BillingScheduleKind.TIME_AND_MATERIALS]

    sub = us[BillingScheduleKind.SUBSCRIPTION].charges
    assert [(c.product_code, c.unit_amount, c.quantity, c.interval) for c in sub] == [
        ("PLAT", usd("50"), Decimal(10), BillingInterval.MONTH)]
    ret = us[BillingScheduleKind.RETAINER].charges
    assert [(c.product_code, c.interval) for c in ret] == [("SUP", BillingInterval.QUARTER)]
    ms = us[BillingScheduleKind.MILESTONE].charges
    assert [(c.product_code, c.unit_amount, c.bill_on) for c in ms] == [("MS-1", usd("12000"), date(2027, 12, 31))]
    assert [c.product_code for c in us[BillingScheduleKind.TIME_AND_MATERIALS].charges] == ["DEV"]

    ff = ca[BillingScheduleKind.FIXED_FEE].charges
    assert [(c.product_code, c.unit_amount, c.bill_on) for c in ff] == [("FF", usd("5000"), date(2027, 1, 1))]
    tm = ca[BillingScheduleKind.TIME_AND_MATERIALS].charges
    assert [(c.product_code, c.unit_amount, c.interval, c.bill_on) for c in tm] == [("PM", usd("200"), None, None)]


def test_provisioning_plan_schedules_carry_terms_and_entity_metadata() -> None:
    d = split_deal()
    for plan in plan_engagements(d, proposed_terms(d).model_copy(update={"payment_terms_days": 45}), ENTITIES):
        for schedule in plan.schedules:
            assert schedule.customer_id == "" and schedule.currency == "USD"
            assert (schedule.start_date, schedule.end_date, schedule.days_until_due) == (
                date(2027, 1, 1), date(2027, 12, 31), 45)
            assert schedule.metadata == {"revops_deal_id": "D-9", "revops_legal_entity": plan.entity.code}


def test_provisioning_plan_milestone_without_end_date_bills_after_ninety_days() -> None:
    d = deal([line("MS-1", BillingModel.MILESTONE, "1", "1000")], end_date=None)
    (plan,) = plan_engagements(d, proposed_terms(d), ENTITIES)
    assert plan.schedules[0].charges[0].bill_on == date(2027, 1, 1) + timedelta(days=90)


def test_provisioning_plan_elements_added_in_the_clm_go_to_the_main_entity() -> None:
    d = split_deal()
    terms = proposed_terms(d)
    terms = terms.model_copy(update={"milestones": [*terms.milestones,
                                                    Milestone(code="EXTRA", name="Training", amount=usd("800"))]})
    by = plans_by_entity(plan_engagements(d, terms, ENTITIES))
    assert "EXTRA Training" in [t.name for t in by["US01"].project.tasks]
    assert by["US01"].project.budget == usd("41800")


def test_provisioning_plan_executed_hours_are_shared_by_the_deal_proportions() -> None:
    d = split_deal()
    terms = proposed_terms(d).model_copy(update={"budget_hours": Decimal(220)})  # doubled in negotiation
    by = plans_by_entity(plan_engagements(d, terms, ENTITIES))
    assert [t.estimate_minutes for t in by["US01"].project.tasks if t.charge_type is TaskChargeType.TIME] == [12000]
    assert [t.estimate_minutes for t in by["CA01"].project.tasks if t.charge_type is TaskChargeType.TIME] == [1200]


def test_provisioning_plan_rate_card_unknown_to_the_deal_shares_hours_evenly() -> None:
    d = deal([line("MS-1", BillingModel.MILESTONE, "1", "1000")])
    terms = proposed_terms(d).model_copy(update={
        "rate_card": [RateCardEntry(role="QA", hourly_rate=usd("100")),
                      RateCardEntry(role="OPS", hourly_rate=usd("120"))],
        "budget_hours": Decimal(40)})
    (plan,) = plan_engagements(d, terms, ENTITIES)
    assert [(t.name, t.estimate_minutes) for t in plan.project.tasks if t.charge_type is TaskChargeType.TIME] == [
        ("QA time", 1200), ("OPS time", 1200)]
    assert plan.project.budget == usd("5400")  # 1,000 + 20 h × 100 + 20 h × 120


def test_provisioning_plan_unroutable_line_entity_is_a_routing_error() -> None:
    d = deal([line("FF", BillingModel.FIXED_FEE, "1", "100", legal_entity="ZZ01")])
    with pytest.raises(RoutingError) as info:
        plan_engagements(d, proposed_terms(d), ENTITIES)
    assert info.value.field == "line_items[FF].legal_entity"
