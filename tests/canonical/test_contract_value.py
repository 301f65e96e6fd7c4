"""Contract value over the term, and seats kept as seats (issue 24).

The controller's book, by hand: 37 seats at 999.99 USD a month less 7 %. A seat nets 929.9907 (a fraction of
a cent), so a month is 37 x 929.9907 = 34,409.6559 -> 34,409.66, rounded once on the line total. The contract
runs 2027-01-01 to 2027-12-31: 12 monthly periods, 12 x 34,409.66 = 412,915.92. Forty seats later price
40 x 929.9907 = 37,199.628 -> 37,199.63, never 40 x 34,409.66.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from canonical.amendments import BillingRecord, BillingRecordKind, monthly_recurring, plan_amendment
from canonical.bands import deal_size_band
from canonical.billing import ScheduledCharge
from canonical.deal import BillingInterval, BillingModel, Deal, DealLine, ProvisionedEntity, billing_periods
from canonical.money import Money
from canonical.parties import Account, Contact, LegalEntity
from canonical.provisioning import plan_engagements, proposed_terms
from connectors.stripe import mapping as stripe_mapping

US01 = LegalEntity(code="US01", name="Revops Inc", region="NA", currency="USD", erp_tenant_id="t-us")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def seats_deal(**overrides: Any) -> Deal:
    values: dict[str, Any] = {
        "crm_id": "D-24", "name": "Seats", "currency": "USD", "region": "NA",
        "start_date": date(2027, 1, 1), "end_date": date(2027, 12, 31),
        "account": Account(name="Acme", country="US"), "contacts": [Contact(email="a@acme.example")],
        "lines": [DealLine(product_code="SEAT", name="Seats", quantity=Decimal(37), unit_price=Decimal("999.99"),
                           discount_percent=Decimal(7), billing_model=BillingModel.SUBSCRIPTION,
                           interval=BillingInterval.MONTH)],
    }
    values.update(overrides)
    return Deal(**values)


def test_contract_value_billing_periods_of_a_term() -> None:
    year = (date(2027, 1, 1), date(2027, 12, 31))
    assert billing_periods(*year, BillingInterval.MONTH) == 12
    assert billing_periods(*year, BillingInterval.QUARTER) == 4
    assert billing_periods(*year, BillingInterval.YEAR) == 1
    # as reconciliation counts them: the periods starting within the term, its end date included
    assert billing_periods(date(2027, 1, 1), date(2027, 12, 1), BillingInterval.MONTH) == 12
    # the day is clamped to the month's end, never drifts (31 Jan, 28 Feb, 31 Mar)
    assert billing_periods(date(2027, 1, 31), date(2027, 3, 30), BillingInterval.MONTH) == 2
    assert billing_periods(date(2027, 1, 1), date(2029, 12, 31), BillingInterval.YEAR) == 3
    assert billing_periods(date(2027, 1, 1), None, BillingInterval.MONTH) == 12, "open-ended: one year"


def test_contract_value_of_a_twelve_month_subscription_is_the_term() -> None:
    assert seats_deal().total() == usd("412915.92")


def test_contract_value_mixes_one_off_and_recurring_lines() -> None:
    d = seats_deal(lines=[*seats_deal().lines,
                          DealLine(product_code="IMPL", name="Setup", quantity=Decimal(1), unit_price=Decimal(5000),
                                   billing_model=BillingModel.FIXED_FEE),
                          DealLine(product_code="SUP", name="Support", quantity=Decimal(1), unit_price=Decimal(3000),
                                   billing_model=BillingModel.RETAINER, interval=BillingInterval.QUARTER)])
    assert d.total() == usd("412915.92") + usd("5000") + usd("12000")


def test_contract_value_terms_keep_seats_as_seats() -> None:
    terms = proposed_terms(seats_deal())
    [charge] = terms.recurring
    assert (charge.quantity, charge.unit_price, charge.discount_percent) == (Decimal(37), usd("999.99"), Decimal(7))
    assert charge.per_period() == usd("34409.66")
    assert terms.total_value == usd("412915.92")
    # a later amendment to 40 seats prices seats, not periods
    forty = charge.model_copy(update={"quantity": Decimal(40)})
    assert forty.per_period() == usd("37199.63")
    assert monthly_recurring(terms) == usd("34409.66")


def test_contract_value_project_budget_and_schedule_follow_the_term() -> None:
    d = seats_deal()
    [plan] = plan_engagements(d, proposed_terms(d), [US01])
    assert plan.project.budget == usd("412915.92")
    [task] = plan.project.tasks
    assert task.rate == usd("34409.66"), "the task is one period's charge"
    [schedule] = plan.schedules
    [charge] = schedule.charges
    assert charge.quantity == Decimal(37) and charge.amount == usd("34409.66")


def test_contract_value_band_is_the_term_not_one_period() -> None:
    assert deal_size_band(seats_deal().total().amount) == "100k-1m"


def test_contract_value_seat_amendment_bills_forty_seats_not_forty_periods() -> None:
    d = seats_deal()
    before = proposed_terms(d)
    [charge] = before.recurring
    forty = charge.model_copy(update={"quantity": Decimal(40)})
    after = before.model_copy(update={"recurring": [forty], "total_value": forty.over_term(date(2027, 1, 1),
                                                                                           date(2027, 12, 31))})
    assert after.total_value == usd("446395.56")  # 12 x 37,199.63
    provisioned = ProvisionedEntity(legal_entity="US01", tenant_id="t-us", project_code="P-D-24-US01",
                                    project_id="p-1", budget="412915.92")
    # billing holds one unit of the period's total (Stripe keeps whole minor units per seat)
    item = BillingRecord(kind=BillingRecordKind.SUBSCRIPTION_ITEM, billing_id="si_1", product_code="SEAT",
                         subscription_id="sub_1", price_id="price_1", unit_amount=usd("34409.66"),
                         quantity=Decimal(1), interval=BillingInterval.MONTH)
    plan = plan_amendment(sequence=1, deal=d, before=before, after=after, entities=[US01], provisioned=[provisioned],
                          records={"US01": [item]})
    [entity] = plan.entities
    assert entity.project is not None and entity.project.budget == usd("446395.56")
    [change] = entity.subscription_changes
    assert change.quantity == Decimal(40) and change.amount == usd("37199.63")
    unit, quantity = stripe_mapping.unit_and_quantity(ScheduledCharge(
        product_code="SEAT", description="Seats", unit_amount=change.unit_amount, quantity=change.quantity,
        amount=change.amount))
    assert unit * quantity == 3719963, "billing bills 37,199.63 a month, never 40 x 34,409.66"
