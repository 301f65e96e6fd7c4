"""Billable time rules: which entries a period bills (approved = a rate-card role's time task, active, dated before
the period's end, not billed yet), priced by hand, and reconciliation of the project system against billing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from canonical import Money, ProjectTask, TaskChargeType, TimeEntry
from canonical.keys import role_of_time_task, time_task_name
from canonical.project import TimeEntryStatus
from canonical.reconciliation import FindingKind
from canonical.time_billing import BilledTime, BillingPeriod, time_charges, time_findings


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


TASKS = [ProjectTask(erp_id="t-dev", name=time_task_name("DEV"), charge_type=TaskChargeType.TIME, rate=usd("1")),
         ProjectTask(erp_id="t-pm", name=time_task_name("PM"), charge_type=TaskChargeType.TIME, rate=usd("1")),
         ProjectTask(erp_id="t-m1", name="M1 Design", charge_type=TaskChargeType.FIXED, rate=usd("9000")),
         ProjectTask(erp_id="t-x", name=time_task_name("GONE"), charge_type=TaskChargeType.TIME, rate=usd("1"))]
RATES = {"DEV": usd("140.00"), "PM": usd("99.99")}


def entry(id_: str, task: str, minutes: int, day: date, status: TimeEntryStatus = TimeEntryStatus.ACTIVE
          ) -> TimeEntry:
    return TimeEntry(erp_id=id_, task_erp_id=task, user_id="u", minutes=minutes, date=day, status=status)


def test_time_task_names_round_trip() -> None:
    assert role_of_time_task(time_task_name("SR-DEV")) == "SR-DEV"
    assert role_of_time_task("M1 Design") is None and role_of_time_task("time") is None


def test_a_period_bills_approved_unbilled_entries_at_the_rate_card() -> None:
    period = BillingPeriod.month_of(date(2026, 12, 17))
    assert (period.start, period.end, period.label) == (date(2026, 12, 1), date(2027, 1, 1), "2026-12")
    assert period.following().label == "2027-01"
    entries = [entry("a", "t-dev", 50, date(2026, 12, 3)),                     # 50 min x 140.00 = 116.666.. -> 116.67
               entry("b", "t-pm", 7, date(2026, 11, 30)),                      # late, last month: 11.6655 -> 11.67
               entry("c", "t-dev", 60, date(2027, 1, 1)),                      # next period
               entry("d", "t-m1", 600, date(2026, 12, 3)),                     # fixed task: not by the hour
               entry("e", "t-dev", 60, date(2026, 12, 3), TimeEntryStatus.INVOICED),  # invoiced in the ERP itself
               entry("f", "t-dev", 60, date(2026, 12, 4), TimeEntryStatus.LOCKED),
               entry("g", "t-x", 60, date(2026, 12, 4)),                       # no rate for that role
               entry("h", "t-dev", 30, date(2026, 12, 5))]                     # billed already
    charges = time_charges(entries, TASKS, RATES, billed=["h"], period=period)
    assert [(c.entry_id, c.role, c.hours, c.amount) for c in charges] == [
        ("a", "DEV", Decimal("0.83"), usd("116.67")), ("b", "PM", Decimal("0.12"), usd("11.67"))]
    assert charges[0].description() == ("DEV: 0.83 h x 140.00 USD per hour, 2026-12-03 (period 2026-12, "
                                         "time entry a)")


def test_reconciliation_finds_an_unbilled_approved_entry_and_an_entry_billed_twice() -> None:
    billed = [BilledTime(entry_id="a", item_id="ii_1", amount=usd("116.67")),
              BilledTime(entry_id="b", item_id="ii_2", amount=usd("11.67")),
              BilledTime(entry_id="b", item_id="ii_3", amount=usd("11.67"))]
    findings = time_findings("US01", "P-1-US01", ["a", "b", "c", "n"], billed, billed_through=date(2027, 1, 1),
                             approved_dates={"c": date(2026, 12, 9), "n": date(2027, 1, 2)})
    assert [(f.kind, f.key, f.billing_amount) for f in findings] == [
        (FindingKind.TIME_NOT_BILLED, "time_not_billed:US01:c", ""),
        (FindingKind.TIME_BILLED_TWICE, "time_billed_twice:US01:b", "23.34")]
    assert findings[1].billing_id == "ii_2,ii_3" and "2 times" in findings[1].detail
