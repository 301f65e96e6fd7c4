"""Billable time: which logged time entries a period bills, at what rate, and how billing and the project
system are reconciled. Pure functions; the time billing flow and its activity carry them out.

*Approved* means: logged on the project's time task of a rate-card role (a task charged by time), still
``active`` in the project system (not locked or invoiced there) and dated before the period's end. Each entry
is billed once, keyed by its project-system ID: billing carries the ID on the invoice line, so an entry
already billed (by an earlier period, or a retried run) is never billed again. Entries logged late for an
earlier month are billed by the next period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from canonical.keys import role_of_time_task
from canonical.money import DecimalAmount, Money
from canonical.project import ProjectTask, TaskChargeType, TimeEntry, TimeEntryStatus
from canonical.reconciliation import Finding, FindingKind, finding

MINUTES_PER_HOUR = Decimal(60)


class BillingPeriod(BaseModel):
    """A calendar month, UTC: ``start`` included, ``end`` (the next month's first day) excluded."""

    start: date
    end: date

    @classmethod
    def month_of(cls, day: date) -> BillingPeriod:
        first = day.replace(day=1)
        return cls(start=first, end=_next_month(first))

    def following(self) -> BillingPeriod:
        return BillingPeriod(start=self.end, end=_next_month(self.end))

    @property
    def label(self) -> str:
        """``2026-01``."""
        return f"{self.start.year:04d}-{self.start.month:02d}"


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


class TimeCharge(BaseModel):
    """One approved time entry priced at the contract's rate for its role: one invoice line."""

    entry_id: str
    role: str
    minutes: int = Field(gt=0)
    hourly_rate: Money
    worked_on: date
    period: BillingPeriod

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / MINUTES_PER_HOUR).quantize(Decimal("0.01"))

    @property
    def amount(self) -> Money:
        """Rate x exact hours, rounded once to the currency's minor unit."""
        return self.hourly_rate.times(Decimal(self.minutes) / MINUTES_PER_HOUR)

    def description(self) -> str:
        """The invoice line: role, hours, rate, period and the entry (the customer sees what it pays for)."""
        return (f"{self.role}: {self.hours} h x {self.hourly_rate} per hour, {self.worked_on.isoformat()} "
                f"(period {self.period.label}, time entry {self.entry_id})")


class BilledTime(BaseModel):
    """A time entry as billing holds it: the invoice line (item) that billed it."""

    entry_id: str
    item_id: str
    invoice_id: str | None = None
    amount: Money
    hours: DecimalAmount = Decimal(0)


def approved_entries(entries: Iterable[TimeEntry], tasks: Iterable[ProjectTask], rates: Mapping[str, Money], *,
                     before: date) -> list[tuple[TimeEntry, str]]:
    """The approved entries dated before ``before`` with their rate-card role (see the module docstring)."""
    roles = {t.erp_id: role for t in tasks
             if t.erp_id and t.charge_type is TaskChargeType.TIME
             and (role := role_of_time_task(t.name)) is not None and role in rates}
    return [(e, roles[e.task_erp_id]) for e in entries
            if e.erp_id and e.status is TimeEntryStatus.ACTIVE and e.task_erp_id in roles and e.date < before]


def time_charges(entries: Iterable[TimeEntry], tasks: Iterable[ProjectTask], rates: Mapping[str, Money], *,
                 billed: Iterable[str], period: BillingPeriod) -> list[TimeCharge]:
    """What ``period`` bills: every approved entry dated before its end that billing does not hold yet."""
    done = set(billed)
    return [TimeCharge(entry_id=e.erp_id or "", role=role, minutes=e.minutes, hourly_rate=rates[role],
                       worked_on=e.date, period=period)
            for e, role in approved_entries(entries, tasks, rates, before=period.end) if e.erp_id not in done]


def time_findings(entity: str, project_code: str, approved: Iterable[str], billed: Iterable[BilledTime], *,
                  billed_through: date | None = None, approved_dates: Mapping[str, date] | None = None
                  ) -> list[Finding]:
    """An approved entry billing does not hold (``time_not_billed``; only entries dated before
    ``billed_through``, the end of the last period billed, when given) and an entry billed more than once
    (``time_billed_twice``)."""
    by_entry: dict[str, list[BilledTime]] = {}
    for line in billed:
        by_entry.setdefault(line.entry_id, []).append(line)
    findings: list[Finding] = []
    dates = approved_dates or {}
    for entry_id in approved:
        worked = dates.get(entry_id)
        if entry_id in by_entry or (billed_through is not None and worked is not None and worked >= billed_through):
            continue
        findings.append(finding(FindingKind.TIME_NOT_BILLED, entity, entry_id, erp_id=entry_id,
                                detail=f"approved time entry {entry_id} of project {project_code} was never billed"
                                       + (f" (worked {worked.isoformat()})" if worked else ""),
                                repair=f"the time billing flow of {project_code} bills it next period"))
    for entry_id, lines in sorted(by_entry.items()):
        if len(lines) > 1:
            total = sum((line.amount.amount for line in lines), Decimal(0))
            findings.append(finding(FindingKind.TIME_BILLED_TWICE, entity, entry_id, erp_id=entry_id,
                                    currency=lines[0].amount.currency, billing_amount=str(total),
                                    billing_id=",".join(line.item_id for line in lines),
                                    detail=f"time entry {entry_id} of project {project_code} is billed "
                                           f"{len(lines)} times",
                                    repair="credit all but one of the invoice lines"))
    return findings




class TimeBill(BaseModel):
    """One period's time charges of one project, to bill a customer on one invoice."""

    customer_id: str
    project_code: str
    legal_entity: str
    deal_id: str = ""
    currency: str
    period: BillingPeriod
    charges: list[TimeCharge] = Field(default_factory=list)
    days_until_due: int = Field(default=30, ge=0)


class TimeInvoice(BaseModel):
    """What billing made of a :class:`TimeBill`: the finalized invoice (``None`` when nothing was new) and the
    lines billed, those already billed left out."""

    invoice_id: str | None = None
    billed: list[BilledTime] = Field(default_factory=list)
    already_billed: list[str] = Field(default_factory=list, description="entry IDs billing held before")



class ProjectTimeBilled(BaseModel):
    """What one period billed, and the project's time billed so far against its budget."""

    period: BillingPeriod
    invoice_id: str | None = None
    billed: list[BilledTime] = Field(default_factory=list)
    already_billed: list[str] = Field(default_factory=list, description="entry IDs billed before (a retry)")
    billed_to_date: Money
    hours_to_date: DecimalAmount = Decimal(0)
    budget: Money | None = Field(default=None, description="the ERP project's budget")


__all__ = ["BilledTime", "BillingPeriod", "ProjectTimeBilled", "TimeBill", "TimeCharge", "TimeInvoice",
           "approved_entries", "time_charges", "time_findings"]
