"""One rounding rule per line: the contract, the ERP project and invoice, billing and the CRM receive the
same totals to the minor unit, whatever the quantity, price, discount and currency (issue 11, defect 5)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.billing import BillingScheduleKind
from canonical.books import PostingLine
from canonical.deal import BillingInterval, BillingModel, Deal, DealLine
from canonical.money import Money, line_amount, minor_unit
from canonical.parties import Account, Contact, LegalEntity
from canonical.provisioning import plan_engagements, proposed_terms
from connectors.stripe import mapping as stripe_mapping
from connectors.xero import mapping as xero_mapping

CURRENCIES = ["EUR", "USD", "JPY", "KWD"]
#: the currencies Xero keeps to the minor unit (it stores two decimals: a KWD fils is out of its reach)
XERO_EXACT = {"EUR", "USD", "JPY"}
MODELS = [BillingModel.SUBSCRIPTION, BillingModel.RETAINER, BillingModel.MILESTONE, BillingModel.FIXED_FEE]


def entity(currency: str) -> LegalEntity:
    return LegalEntity(code="E1", name="Revops", region="NA", currency=currency, erp_tenant_id="t-1",
                       countries=["US"])


def make_deal(currency: str, lines: list[DealLine]) -> Deal:
    return Deal(crm_id="D-1", name="Deal", currency=currency, region="NA", start_date=date(2027, 1, 1),
                end_date=date(2027, 12, 31), account=Account(name="Acme", country="US"),
                contacts=[Contact(email="a@acme.example")], lines=lines)


@st.composite
def deals(draw: st.DrawFn) -> Deal:
    currency = draw(st.sampled_from(CURRENCIES))
    places = minor_unit(currency)
    lines = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        model = draw(st.sampled_from(MODELS))
        price = Decimal(draw(st.integers(min_value=0, max_value=10**9))).scaleb(-places)
        discount = Decimal(draw(st.integers(min_value=0, max_value=5000))).scaleb(-2)
        quantity = Decimal(draw(st.integers(min_value=1, max_value=500)))
        if model in (BillingModel.MILESTONE, BillingModel.FIXED_FEE) and draw(st.booleans()):
            quantity = Decimal(draw(st.integers(min_value=1, max_value=4000))).scaleb(-2)  # fractional quantity
        lines.append(DealLine(product_code=f"P{index}", name=f"line {index}", quantity=quantity, unit_price=price,
                              discount_percent=discount, billing_model=model,
                              interval=BillingInterval.MONTH if model in (BillingModel.SUBSCRIPTION,
                                                                          BillingModel.RETAINER) else None))
    return make_deal(currency, lines)


def stripe_totals(schedules: list) -> Money:
    """What Stripe bills: integer unit_amount x integer quantity per price or invoice item (as the emulator)."""
    currency = schedules[0].currency
    units = 0
    for schedule in schedules:
        assert schedule.kind is not BillingScheduleKind.TIME_AND_MATERIALS
        for charge in schedule.charges:
            unit, quantity = stripe_mapping.unit_and_quantity(charge)
            units += unit * quantity
    return Money.from_minor(units, currency)


def xero_invoice_total(schedules: list) -> Decimal:
    """The Stripe invoice lines of those charges, mapped to Xero, totalled the way Xero does (2 dp per line)."""
    total = Decimal(0)
    for schedule in schedules:
        for charge in schedule.charges:
            unit, quantity = stripe_mapping.unit_and_quantity(charge)
            line = stripe_mapping.invoice_line({"amount": unit * quantity, "quantity": quantity,
                                                "price": {"unit_amount": unit}}, schedule.currency)
            posting = PostingLine(description="x", net=line.amount, tax=Money.of("0", line.amount.currency),
                                  account="200", tax_code="NONE", quantity=line.quantity, unit_amount=line.unit_amount)
            body = xero_mapping.line_to_xero(posting)
            total += (Decimal(body["Quantity"]) * Decimal(body["UnitAmount"])).quantize(Decimal("0.01"),
                                                                                        rounding=ROUND_HALF_UP)
    return total


def test_line_amount_rounds_once_per_line_not_the_unit_price() -> None:
    """37 x 987.65 at 5 % is 34,715.90 (34,715.8975), never 34,715.99 (938.27 x 37)."""
    line = DealLine(product_code="X", name="x", quantity=Decimal(37), unit_price=Decimal("987.65"),
                    discount_percent=Decimal(5), billing_model=BillingModel.SUBSCRIPTION,
                    interval=BillingInterval.MONTH)
    deal = make_deal("EUR", [line])
    terms = proposed_terms(deal)
    [plan] = plan_engagements(deal, terms, [entity("EUR")])
    assert line_amount(Decimal(37), Decimal("987.65"), Decimal(5), "EUR") == Money.of("34715.90", "EUR")
    # a month bills 34,715.90; the 12-month contract is worth 416,590.80 (issue 24), seats kept as seats
    assert deal.total() == terms.total_value == Money.of("416590.80", "EUR")
    assert plan.project.budget == Money.of("416590.80", "EUR")
    [charge] = terms.recurring
    assert (charge.quantity, charge.per_period()) == (Decimal(37), Money.of("34715.90", "EUR"))
    assert stripe_totals(plan.schedules) == Money.of("34715.90", "EUR")


@settings(max_examples=300, deadline=None)
@given(deals())
def test_every_system_receives_the_same_totals(deal: Deal) -> None:
    assert deal.currency is not None
    terms = proposed_terms(deal)
    [plan] = plan_engagements(deal, terms, [entity(deal.currency)])
    crm_amount = deal.total()  # DealAmount and the CRM's deal amount: the value over the term
    assert crm_amount == sum((line.net(deal.currency).times(deal.line_periods(line)) for line in deal.lines),
                             Money.zero(deal.currency))
    assert terms.total_value == crm_amount  # the contract
    assert plan.project.budget == crm_amount  # the ERP project budget
    billed_once = sum((line.net(deal.currency) for line in deal.lines), Money.zero(deal.currency))
    # each task is one billing of its element; billing and the ERP invoices bill each charge once per period
    assert sum((t.rate.amount for t in plan.project.tasks), Decimal(0)) == billed_once.amount
    assert stripe_totals(plan.schedules) == billed_once  # billing
    if deal.currency in XERO_EXACT:
        assert xero_invoice_total(plan.schedules) == billed_once.amount  # the ERP invoices of those charges
