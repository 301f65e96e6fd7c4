"""DSO as the KPI report and the exported gauge give it, against hand-computed books: outstanding over every
open invoice, billed over the DSO window, times that same window, whatever window the other KPIs cover."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from canonical.billing import InvoiceStatus
from canonical.kpis import KpiReport
from canonical.ledger import LedgerInvoice
from observability.kpis import kpi_report
from observability.metrics import kpi_samples
from settings import Settings
from workflows.models import LedgerStatus

TODAY = date(2026, 11, 30)


def daily_book(days: int = 120) -> list[LedgerInvoice]:
    """100.00 USD billed every day for ``days`` days on net 45, each paid 46 days after its issue: the invoices
    issued 0..45 days ago are unpaid (46 x 100.00 = 4,600.00 outstanding), the older ones are paid."""
    book = []
    for age in range(days):
        issued = TODAY - timedelta(days=age)
        paid = age >= 46
        book.append(LedgerInvoice(
            invoice_id=f"inv-{age}", currency="USD", legal_entity="US01", total=Decimal("100.00"),
            paid=Decimal("100.00") if paid else Decimal(0), issued_on=issued, due_on=issued + timedelta(days=45),
            status=InvoiceStatus.PAID if paid else InvoiceStatus.OPEN, known=True))
    return book


def report_over(book: list[LedgerInvoice], tmp_path: Path) -> KpiReport:
    """The report the worker's KPI refresh makes: runs of the last ``kpi_window_days`` (30), DSO window 90."""
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert (settings.kpi_window_days, settings.ledger_dso_window_days) == (30, 90)
    ledger = LedgerStatus(customer_id="cus-1", open_items=[i for i in book if i.status is InvoiceStatus.OPEN],
                          settled_items=[i for i in book if i.status is not InvoiceStatus.OPEN])
    since = datetime(TODAY.year, TODAY.month, TODAY.day, tzinfo=UTC) - timedelta(days=settings.kpi_window_days)
    return kpi_report(settings, deals=[], amendment_statuses=[], amendments=[], ledgers=[ledger], flagged=set(),
                      deliveries=[], today=TODAY, since=since)


def dso_gauge(report: KpiReport, entity: str) -> float:
    [value] = [s.value for s in kpi_samples(report) if s.name == "revops_kpi_dso_days"
               and s.labels == {"legal_entity": entity, "currency": "USD"}]
    return value


def test_dso_of_a_customer_billed_daily_on_net_45_is_46_days(tmp_path: Path) -> None:
    report = report_over(daily_book(), tmp_path)
    # outstanding 4,600.00; billed in the last 90 days (issued 0..89 days ago) 90 x 100.00 = 9,000.00;
    # DSO = 4,600 / 9,000 x 90 = 46.0
    [usd] = report.entity("US01").dso
    assert (Decimal(usd.outstanding), Decimal(usd.billed_in_window), usd.dso_days) == (Decimal(4600), Decimal(9000),
                                                                                       "46.0")
    assert dso_gauge(report, "US01") == 46.0
    assert dso_gauge(report, "all") == 46.0


def test_dso_keeps_old_overdue_debt(tmp_path: Path) -> None:
    old = LedgerInvoice(invoice_id="inv-old", currency="USD", legal_entity="US01", total=Decimal("900.00"),
                        issued_on=TODAY - timedelta(days=100), due_on=TODAY - timedelta(days=55), overdue=True,
                        known=True)
    report = report_over([*daily_book(), old], tmp_path)
    # the 900.00 issued 100 days ago is still owed but was billed before the window:
    # outstanding 4,600 + 900 = 5,500.00; billed in window 9,000.00; DSO = 5,500 / 9,000 x 90 = 55.0
    [usd] = report.entity("US01").dso
    assert (Decimal(usd.outstanding), Decimal(usd.billed_in_window), usd.dso_days) == (Decimal(5500), Decimal(9000),
                                                                                       "55.0")
    assert dso_gauge(report, "US01") == 55.0
