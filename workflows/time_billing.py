"""Time billing: one flow per time-and-materials project (``time-<billing>-<projectCode>``, started by
quote-to-cash once the project and the billing customer exist) that bills the project's approved time at the
contract's rate card once per calendar month.

The design is the simplest durable one: a per-project entity workflow with a timer to each month's end (UTC),
then one activity that bills every approved entry billing does not hold yet (keyed by the entry's ID in the
project system) on one invoice, with hours, rate and period on each line. A retried or repeated period run
finds its entries already billed and bills nothing again; time logged late for an earlier month goes on the
next invoice. The flow ends after the month of the contract's end date and continues as new every year.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.models import ProjectTimeInput
    from activities.time_billing import TimeBillingActivities
    from canonical.exceptions import ExceptionKind
    from canonical.time_billing import BillingPeriod, ProjectTimeBilled
    from workflows.models import TimeBillingInput, TimeBillingStage, TimeBillingStatus
    from workflows.status import WorkflowStatus, idempotency_key
    from workflows.steps import STEP_FAILED, failure_reason

Time = TimeBillingActivities
#: periods per run before continuing as new (a year of months keeps the history small)
PERIODS_PER_RUN = 12
#: a period billing refused is tried again after this long (the cause may have been fixed)
RETRY_REFUSED_AFTER = timedelta(days=1)


@workflow.defn
class TimeBillingWorkflow:
    """Bill a time-and-materials project's approved time once per month at the contract's rate card."""

    @workflow.init
    def __init__(self, request: TimeBillingInput) -> None:
        self._request = request
        self._period: BillingPeriod | None = request.next_period
        self._invoices = list(request.invoices)
        self._billed_entries = request.billed_entries
        self._periods: list[ProjectTimeBilled] = []
        self._status = WorkflowStatus(TimeBillingStage.WAITING)

    @workflow.run
    async def run(self, request: TimeBillingInput) -> TimeBillingStatus:
        self._status.started_with(workflow.info())
        self._status.add_keys(*request.keys)
        period = self._period or BillingPeriod.month_of(request.start_date)
        for _ in range(PERIODS_PER_RUN):
            self._period = period
            await self._wait_for_end_of(period)
            await self._bill(period)
            if request.end_date is not None and period.end > request.end_date:
                self._status.enter(TimeBillingStage.DONE, f"the contract's last period {period.label} is billed",
                                   waiting_for="")
                self._status.flush()
                return self.status()
            period = period.following()
        workflow.continue_as_new(request.model_copy(update={
            "next_period": period, "invoices": self._invoices[-100:], "billed_entries": self._billed_entries}))

    @workflow.query
    def status(self) -> TimeBillingStatus:
        last = self._periods[-1] if self._periods else None
        return TimeBillingStatus(stage=self._status.stage, exception_kind=self._status.exception,
                                 period=self._period, invoices=list(self._invoices),
                                 billed_entries=self._billed_entries,
                                 billed_to_date=last.billed_to_date if last else None,
                                 hours_to_date=last.hours_to_date if last else Decimal(0),
                                 budget=last.budget if last else None, periods=list(self._periods[-12:]),
                                 timeline=self._status.timeline[-50:])

    # -- plumbing --------------------------------------------------------------------------------
    async def _wait_for_end_of(self, period: BillingPeriod) -> None:
        end = datetime(period.end.year, period.end.month, period.end.day, tzinfo=UTC)
        self._status.enter(TimeBillingStage.WAITING, f"period {period.label} runs",
                           waiting_for=f"the end of period {period.label} ({period.end.isoformat()})")
        if end > workflow.now():
            await workflow.sleep(end - workflow.now())

    async def _bill(self, period: BillingPeriod) -> None:
        request = self._request
        self._status.enter(TimeBillingStage.BILLING, f"billing the approved time through {period.label}",
                           waiting_for="")
        while True:
            try:
                billed = await self._status.step(Time.bill_project_time, ProjectTimeInput(
                    project_code=request.project_code, legal_entity=request.legal_entity,
                    tenant_id=request.tenant_id, project_id=request.project_id, customer_id=request.customer_id,
                    deal_id=request.deal_id, currency=request.currency, rates=request.rates, period=period,
                    days_until_due=request.days_until_due,
                    idempotency_key=idempotency_key(f"time-{period.label}", scope=request.project_code)),
                    f"Bill the approved time of {request.project_code} through {period.label}")
            except STEP_FAILED as err:
                self._status.exception = ExceptionKind.PROVISIONING_FAILED
                self._status.note(f"billing the time of {period.label} was refused: {failure_reason(err)} "
                                  f"(tried again in {RETRY_REFUSED_AFTER})")
                await workflow.sleep(RETRY_REFUSED_AFTER)
                continue
            break
        self._status.exception = ExceptionKind.NONE
        self._periods.append(billed)
        self._billed_entries += len(billed.billed)
        if billed.invoice_id:
            self._invoices.append(billed.invoice_id)
        hours = sum((b.hours for b in billed.billed), Decimal(0))
        budget = f" of a {billed.budget} budget" if billed.budget else ""
        self._status.note(f"{period.label}: {len(billed.billed)} time entr(ies), {hours} h billed on "
                          f"{billed.invoice_id or 'no invoice (nothing new)'}; {billed.billed_to_date}{budget} "
                          f"billed to date")
