"""A CRM company's figures over every ledger: sums per currency, rounded once, newest report per ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from canonical.company_figures import FiguresReport, combined_figures, keep_newest
from canonical.ledger import CurrencySums

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
