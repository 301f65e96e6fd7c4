"""A CRM company's billing figures over every ledger that bills it.

A customer billed from several legal entities has one billing customer, and so one ledger, per entity; the CRM
company (and a deal split across entities) has one set of figures per currency. Each ledger reports its part
(:class:`FiguresReport`, unrounded sums) to the company's one figures owner, which keeps the newest report of
each ledger and writes their sum (:func:`combined_figures`), so no ledger overwrites another's figures.

Pure functions and models only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from canonical.ledger import CurrencySums, add_by_currency, figures_of
from canonical.money import Money, round_amount
from canonical.requests import AccountFigures


class FiguresReport(BaseModel):
    """One ledger's part of a CRM company's figures: its invoices' sums for the company and per deal."""

    customer_id: str = Field(min_length=1, description="the ledger's billing customer")
    company_id: str = Field(min_length=1)
    as_of: datetime = Field(description="when the ledger made it (a later report of the same ledger replaces it)")
    dso_window_days: int
    company: list[CurrencySums] = Field(default_factory=list)
    deals: dict[str, list[CurrencySums]] = Field(default_factory=dict)


def keep_newest(held: dict[str, FiguresReport], report: FiguresReport) -> bool:
    """Keep ``report`` as its ledger's part unless a newer one is held (a late or repeated delivery);
    whether it was kept."""
    current = held.get(report.customer_id)
    if current is not None and current.as_of > report.as_of:
        return False
    held[report.customer_id] = report
    return True


def combined_figures(reports: Iterable[FiguresReport]
                     ) -> tuple[list[AccountFigures], dict[str, list[AccountFigures]]]:
    """The company's figures and each deal's, summed over every ledger's report per currency, then rounded
    to the currency's minor unit (sums first, so the rounding happens once)."""
    reports = sorted(reports, key=lambda r: r.customer_id)
    window = max((r.dso_window_days for r in reports), default=0)
    company = figures_of(add_by_currency(*(r.company for r in reports)), dso_window_days=window)
    deal_ids = sorted({d for r in reports for d in r.deals})
    deals = {d: figures_of(add_by_currency(*(r.deals.get(d, []) for r in reports)), dso_window_days=window)
             for d in deal_ids}
    return company, deals


def unbilled_figures(figures: list[AccountFigures], contract: Money | None) -> list[AccountFigures]:
    """A deal's figures with ``unbilled`` in its contract currency: the contract value (as amended) less what
    was invoiced net of credit notes (``billed`` - ``credited``; a voided invoice is billed no more), never below
    zero. Other currencies' figures keep ``unbilled`` unset; a contract with nothing invoiced yet gets a row of
    its own."""
    if contract is None:
        return figures
    result = list(figures)
    held = next((i for i, f in enumerate(result) if f.currency.upper() == contract.currency.upper()), None)
    zero = _text(Decimal(0), contract.currency)
    if held is None:
        result.append(AccountFigures(currency=contract.currency, billed=zero, paid=zero, outstanding=zero,
                                     overdue=zero, credited=zero))
        held = len(result) - 1
    row = result[held]
    net = Decimal(row.billed) - Decimal(row.credited)
    result[held] = row.model_copy(update={"unbilled": _text(max(contract.amount - net, Decimal(0)),
                                                            contract.currency)})
    return sorted(result, key=lambda f: f.currency)


def with_unbilled(company: list[AccountFigures], deals: dict[str, list[AccountFigures]],
                  contracts: dict[str, Money]) -> tuple[list[AccountFigures], dict[str, list[AccountFigures]]]:
    """Each deal's figures with its unbilled balance (:func:`unbilled_figures`); the company's unbilled per
    currency is the sum of its deals' (set only in currencies where one of its deals has a contract)."""
    deals = {d: unbilled_figures(f, contracts.get(d)) for d, f in deals.items()}
    totals: dict[str, Decimal] = {}
    for figures in deals.values():
        for f in figures:
            if f.unbilled is not None:
                totals[f.currency] = totals.get(f.currency, Decimal(0)) + Decimal(f.unbilled)
    company = list(company)
    for currency, total in totals.items():
        held = next((i for i, f in enumerate(company) if f.currency == currency), None)
        if held is None:
            zero = _text(Decimal(0), currency)
            company.append(AccountFigures(currency=currency, billed=zero, paid=zero, outstanding=zero,
                                          overdue=zero, credited=zero, unbilled=_text(total, currency)))
        else:
            company[held] = company[held].model_copy(update={"unbilled": _text(total, currency)})
    return sorted(company, key=lambda f: f.currency), deals


def _text(amount: Decimal, currency: str) -> str:
    return str(round_amount(amount, currency))


__all__ = ["FiguresReport", "combined_figures", "keep_newest", "unbilled_figures", "with_unbilled"]
