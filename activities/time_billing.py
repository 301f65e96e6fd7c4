"""Billable time: one period of a time-and-materials project billed from the ERP's logged time
(``ErpTimesheets``) into billing (``BillingTime``), whichever vendors play the roles."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.models import ProjectTimeInput
from activities.retrying import business_step
from canonical.money import Money
from canonical.time_billing import ProjectTimeBilled, TimeBill, time_charges
from connectors.ports import BillingTime, ErpProjects, ErpTimesheets


class TimesheetErp(ErpProjects, ErpTimesheets, Protocol):
    """An ERP with projects whose logged time can be read."""


class TimeBillingActivities:
    """The step that bills a period's approved time. The ports are checked for the capability when the step
    runs (a configuration whose ERP or billing cannot do it fails that step for good, not the worker)."""

    def __init__(self, *, erp: ErpProjects, billing: object) -> None:
        self._erp = erp
        self._billing = billing

    @property
    def erp(self) -> TimesheetErp:
        if not isinstance(self._erp, ErpTimesheets):
            raise ApplicationError(f"the ERP adapter ({type(self._erp).__name__}) cannot read logged time",
                                   type="Unsupported", non_retryable=True)
        return self._erp  # type: ignore[return-value]

    @property
    def billing(self) -> BillingTime:
        if not isinstance(self._billing, BillingTime):
            raise ApplicationError(f"the billing adapter ({type(self._billing).__name__}) cannot bill time",
                                   type="Unsupported", non_retryable=True)
        return self._billing

    @activity.defn(name="bill_project_time")
    @business_step
    async def bill_project_time(self, request: ProjectTimeInput) -> ProjectTimeBilled:
        """Read the project's tasks and time entries, leave out what billing already holds (by entry ID), bill
        the rest on one invoice. Safe to retry and to run twice for one period: nothing is billed twice."""
        project = await self.erp.get_project(request.tenant_id, request.project_id)
        entries = await self.erp.time_entries(request.tenant_id, request.project_id)
        held = await self.billing.billed_time(request.customer_id, request.project_code)
        charges = time_charges(entries, project.tasks, request.rates, billed=[b.entry_id for b in held],
                               period=request.period)
        made = await self.billing.bill_time(TimeBill(
            customer_id=request.customer_id, project_code=request.project_code, legal_entity=request.legal_entity,
            deal_id=request.deal_id, currency=request.currency, period=request.period, charges=charges,
            days_until_due=request.days_until_due), idempotency_key=request.idempotency_key) if charges else None
        lines = [*held, *(made.billed if made else [])]
        return ProjectTimeBilled(
            period=request.period, invoice_id=made.invoice_id if made else None,
            billed=made.billed if made else [], already_billed=made.already_billed if made else [],
            billed_to_date=sum((b.amount for b in lines), Money.zero(request.currency)),
            hours_to_date=sum((b.hours for b in lines), Decimal(0)), budget=project.budget)

    def all(self) -> list[Callable[..., Any]]:
        return [self.bill_project_time]


__all__ = ["TimeBillingActivities", "TimesheetErp"]
