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

from pydantic import BaseModel, Field

from canonical.ledger import CurrencySums, add_by_currency, figures_of
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


__all__ = ["FiguresReport", "combined_figures", "keep_newest"]
