"""The CRM's activities (accounts, contacts, deals and pipeline): one step each against the ``CrmPort``,
whichever vendor plays the role (``CRM_ADAPTER``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.ledger import CrmFiguresInput
from activities.models import Ack, DealRef, FetchCompaniesInput, WriteBackInput
from activities.retrying import business_step
from canonical import Deal
from canonical.backfill import CompanyPage
from connectors.notify import Notifications
from connectors.pacing import Pacer
from connectors.ports import CrmPort


class CrmActivities:
    """The CRM port's steps. ``notifications`` ride with the write-back: a write-back that records an event
    people must act on tells them first, in the same step, so a CRM refusal never silences it."""

    def __init__(self, *, crm: CrmPort, notifications: Notifications | None = None) -> None:
        self.crm = crm
        self.notifications = notifications
        self._pacers: dict[float, Pacer] = {}

    @activity.defn(name="load_deal")
    @business_step
    async def load_deal(self, ref: DealRef) -> Deal:
        """Deal, company, contacts and line items from the CRM."""
        return await self.crm.get_deal(ref.deal_id)

    @activity.defn(name="write_back_deal")
    @business_step
    async def write_back_deal(self, request: WriteBackInput) -> Ack:
        """Write our status and the other systems' IDs onto the CRM deal, and tell the people concerned when the
        write-back records an event they must act on (first, so a CRM refusal never silences it; each channel
        once per event, across retries of this activity and restarts of the worker)."""
        told: list[str] = []
        if request.notice is not None and self.notifications is not None:
            told = await self.notifications.tell(request.notice)
        await self.crm.write_back(request.deal_id, request.update)
        return Ack(detail=", ".join(sorted(request.update.properties())) + (f"; told via {', '.join(told)}"
                                                                               if told else ""))

    @activity.defn(name="write_crm_figures")
    @business_step
    async def write_crm_figures(self, request: CrmFiguresInput) -> Ack:
        """Billed, paid, outstanding, overdue, credited, DSO and the last payment date on the company and deals."""
        written = []
        if request.company_id and request.company:
            await self.crm.write_account_figures(request.company_id, request.company)
            written.append(f"company {request.company_id}")
        for deal_id, figures in sorted(request.deals.items()):
            if figures:
                await self.crm.write_deal_figures(deal_id, figures)
                written.append(f"deal {deal_id}")
        return Ack(detail=", ".join(written))

    @activity.defn(name="fetch_company_page")
    @business_step
    async def fetch_company_page(self, request: FetchCompaniesInput) -> CompanyPage:
        """One page of CRM companies (the backfill), paced at ``requests_per_second`` in this worker."""
        if request.requests_per_second:
            await self._pacers.setdefault(request.requests_per_second, Pacer(request.requests_per_second)).take()
        return await self.crm.list_companies(after=request.after, limit=request.limit)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.load_deal, self.write_back_deal, self.write_crm_figures, self.fetch_company_page]


__all__ = ["CrmActivities"]
