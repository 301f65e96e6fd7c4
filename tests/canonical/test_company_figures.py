"""A CRM company's figures over every ledger: sums per currency, rounded once, newest report per ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from canonical.company_figures import FiguresReport, combined_figures, keep_newest
from canonical.ledger import CurrencySums
from canonical.requests import AccountFigures

AT = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _report(customer: str, sums: list[CurrencySums], *, deal: str = "D1", at: datetime = AT) -> FiguresReport:
    return FiguresReport(customer_id=customer, company_id="C1", as_of=at, dso_window_days=90, company=sums,
                         deals={deal: sums})


def test_company_figures_sum_every_ledger_per_currency_and_round_once() -> None:
    us = _report("cus_us", [CurrencySums(currency="USD", billed=Decimal("7777.77"), paid=Decimal("7777.77"),
                                         billed_in_window=Decimal("7777.77"), last_payment_on=date(2026, 11, 2))])
    eu = _report("cus_eu", [
        CurrencySums(currency="USD", billed=Decimal("3333.33"), paid=Decimal("333.33"),
                     outstanding=Decimal("3000.00"), billed_in_window=Decimal("3333.33"),
                     last_payment_on=date(2026, 11, 20)),
        CurrencySums(currency="KWD", billed=Decimal("3703.7005"), outstanding=Decimal("3703.7005"),
                     billed_in_window=Decimal("3703.7005"))])
    jp = _report("cus_jp", [CurrencySums(currency="JPY", billed=Decimal("120000.4"), paid=Decimal("0.4"),
                                         outstanding=Decimal("120000"), billed_in_window=Decimal("120000.4"))],
                 deal="D2")

    company, deals = combined_figures([eu, jp, us])

    by = {f.currency: f for f in company}
    assert sorted(by) == ["JPY", "KWD", "USD"]
    usd = by["USD"]
    assert (usd.billed, usd.paid, usd.outstanding, usd.overdue, usd.credited) == (
        "11111.10", "8111.10", "3000.00", "0.00", "0.00")
    assert usd.last_payment_date == date(2026, 11, 20)
    assert usd.dso_days == "24.3"  # 3000.00 / 11111.10 x 90 = 24.299...
    assert (by["KWD"].billed, by["KWD"].outstanding) == ("3703.701", "3703.701")  # 3 decimals, half-up
    assert (by["JPY"].billed, by["JPY"].paid, by["JPY"].outstanding) == ("120000", "0", "120000")
    assert sorted(deals) == ["D1", "D2"]
    assert [f.currency for f in deals["D1"]] == ["KWD", "USD"] and deals["D1"][1].billed == "11111.10"
    assert [(f.currency, f.billed) for f in deals["D2"]] == [("JPY", "120000")]


def test_company_figures_keep_the_newest_report_of_each_ledger() -> None:
    held: dict[str, FiguresReport] = {}
    newer = _report("cus_us", [CurrencySums(currency="USD", billed=Decimal("10.00"))], at=AT)
    older = _report("cus_us", [CurrencySums(currency="USD", billed=Decimal("5.00"))],
                    at=datetime(2026, 11, 29, tzinfo=UTC))

    assert keep_newest(held, newer) is True
    assert keep_newest(held, older) is False  # a late delivery changes nothing
    assert keep_newest(held, newer) is True  # the same one again: harmless
    [usd] = combined_figures(held.values())[0]
    assert usd.billed == "10.00"


def test_company_figures_refuse_to_add_two_currencies() -> None:
    try:
        CurrencySums(currency="USD") + CurrencySums(currency="EUR")
    except ValueError as err:
        assert "EUR" in str(err)
    else:
        raise AssertionError("USD + EUR must be refused")


def test_unbilled_is_the_contract_value_less_what_was_invoiced_net_of_credit_notes() -> None:
    """By hand: a 30,000.00 contract with one 12,000.00 invoice leaves 18,000.00 unbilled; a 2,000.00 credit note
    on it gives 2,000.00 back (20,000.00); voided, the invoice is billed no more (30,000.00). Nothing invoiced
    yet: the whole contract. The company sums its deals per currency; a currency without a contract stays unset."""
    from canonical.company_figures import unbilled_figures, with_unbilled
    from canonical.ledger import figures_of
    from canonical.money import Money

    contract = Money.of("30000.00", "USD")

    def deal(billed: str, credited: str = "0") -> list[AccountFigures]:
        return figures_of([CurrencySums(currency="USD", billed=Decimal(billed), credited=Decimal(credited),
                                        outstanding=Decimal(billed))], dso_window_days=90)

    assert [f.unbilled for f in unbilled_figures(deal("12000.00"), contract)] == ["18000.00"]
    assert [f.unbilled for f in unbilled_figures(deal("12000.00", "2000.00"), contract)] == ["20000.00"]
    assert [f.unbilled for f in unbilled_figures(deal("0"), contract)] == ["30000.00"]  # the invoice voided
    assert [(f.currency, f.billed, f.unbilled) for f in unbilled_figures([], contract)] == [("USD", "0.00",
                                                                                            "30000.00")]
    assert [f.unbilled for f in unbilled_figures(deal("31000.00"), contract)] == ["0.00"], "never below zero"
    assert [f.unbilled for f in unbilled_figures(deal("12000.00"), None)] == [None], "no contract: not written"

    eur = figures_of([CurrencySums(currency="EUR", billed=Decimal("500.00"))], dso_window_days=90)
    company, deals = with_unbilled(eur + deal("12000.00"), {"D1": deal("12000.00"), "D2": [], "D3": eur},
                                   {"D1": contract, "D2": Money.of("5000.00", "USD")})
    assert {f.currency: f.unbilled for f in company} == {"EUR": None, "USD": "23000.00"}  # 18,000 + 5,000
    assert [f.unbilled for f in deals["D3"]] == [None]
