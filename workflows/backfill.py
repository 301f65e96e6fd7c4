"""Company backfill: every CRM company becomes an ERP contact in one legal entity's tenant.

Pages through the CRM's companies (the next page is fetched while the current one is written), looks each
page up in the entity's ERP (one activity), then creates exactly the missing contacts (another) in batches paced at
``requests_per_second`` (below the vendor's limit: 429s are the exception, not the pacing), and
continues as new every ``pages_per_run`` pages carrying the cursor and the totals. Idempotency keys
derive from the workflow ID and the page cursor, so they are stable across retries and continue-as-new.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities
    from activities.erp import ErpActivities
    from activities.models import (
        CreateErpContactsInput,
        ErpContactsResult,
        FetchCompaniesInput,
        FindErpContactsInput,
    )
    from canonical.backfill import CompanyPage, ErpCustomerDraft
    from canonical.keys import erp_contact_reference
    from canonical.systems import System
    from workflows.attributes import LEGAL_ENTITY
    from workflows.models import BackfillStage
    from workflows.status import WorkflowStatus

RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=30))
TIMEOUT = timedelta(minutes=5)


class BackfillCarried(BaseModel):
    after: str | None = None
    pages: int = 0
    companies: int = 0
    created: int = 0
    existing: int = 0
    requests: int = 0
    runs: int = 1


class BackfillInput(BaseModel):
    entity_code: str
    tenant_id: str
    page_size: int = 100
    batch_size: int = 50
    crm: System = Field(description="the CRM read from (names its companies' references)")
    erp: System = Field(description="the entity's ERP written to")
    erp_requests_per_second: float | None = None
    crm_requests_per_second: float | None = None
    pages_per_run: int = 50
    parallel_pages: int = 2
    carried: BackfillCarried = Field(default_factory=BackfillCarried)


class BackfillResult(BaseModel):
    totals: BackfillCarried


@workflow.defn(name="CompanyBackfillWorkflow")
class CompanyBackfillWorkflow:
    def __init__(self) -> None:
        self._totals = BackfillCarried()
        self._status = WorkflowStatus(BackfillStage.BACKFILLING, details=self._details)

    @workflow.run
    async def run(self, request: BackfillInput) -> BackfillResult:
        """Up to ``parallel_pages`` pages written at once, so the paced ERP requests of one page go out while
        another waits for its activity to start: the request pipe stays full at the pacer's rate."""
        self._totals = request.carried.model_copy()
        totals = self._totals
        self._status.started_with(workflow.info())
        self._status.set(LEGAL_ENTITY.value_set(request.entity_code))
        self._status.enter(BackfillStage.BACKFILLING, f"run {totals.runs}: {request.crm.label} companies into "
                           f"{request.erp.label} {request.entity_code} from {totals.after or 'the start'}",
                           waiting_for=f"{request.crm.label} company pages")
        fetch = self._fetch(request, totals.after)
        writing: list[asyncio.Task[None]] = []
        pages_this_run = 0
        while True:
            page: CompanyPage = await fetch
            pages_this_run += 1
            last_in_run = pages_this_run >= request.pages_per_run or workflow.info().is_continue_as_new_suggested()
            if page.next_after and not last_in_run:
                fetch = self._fetch(request, page.next_after)  # read ahead while pages are written
            key = f"{workflow.info().workflow_id}:{totals.after or 'start'}"
            totals.after = page.next_after
            writing.append(asyncio.ensure_future(self._write_page(request, page, key=key)))
            if len(writing) >= max(1, request.parallel_pages):
                await writing.pop(0)
            if not page.next_after or last_in_run:
                await asyncio.gather(*writing)
                if not page.next_after:
                    self._status.enter(BackfillStage.BACKFILLED, f"{totals.companies} companies: {totals.created} "
                                       f"created, {totals.existing} existing", waiting_for="nothing")
                    self._status.flush()
                    return BackfillResult(totals=totals)
                await self._continue_as_new(request)

    async def _write_page(self, request: BackfillInput, page: CompanyPage, *, key: str) -> None:
        """Look a page up, then create exactly what was missing: the create's drafts and keys are fixed in
        history, so its retries replay instead of re-deciding (and the created/existing counts stay true)."""
        drafts = [ErpCustomerDraft(account=a, reference=erp_contact_reference(request.crm.name, a.crm_id,
                                                                                request.entity_code))
                  for a in page.accounts if a.crm_id]
        plan = await workflow.execute_activity_method(
            ErpActivities.find_erp_contacts,
            FindErpContactsInput(tenant_id=request.tenant_id, drafts=drafts, batch_size=request.batch_size,
                                 requests_per_second=request.erp_requests_per_second),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY,
            summary=f"look up {len(page.accounts)} companies in {request.erp.label} {request.entity_code}")
        written = ErpContactsResult(existing=plan.existing, requests=plan.requests)
        if plan.missing:
            created = await workflow.execute_activity_method(
                ErpActivities.create_erp_contacts,
                CreateErpContactsInput(tenant_id=request.tenant_id, drafts=plan.missing,
                                       batch_size=request.batch_size,
                                       requests_per_second=request.erp_requests_per_second, idempotency_key=key),
                start_to_close_timeout=TIMEOUT, retry_policy=RETRY,
                summary=f"create {len(plan.missing)} {request.erp.label} contacts in {request.entity_code}")
            written.created, written.requests = created.created, written.requests + created.requests
        self._count(page, written)

    def _count(self, page: CompanyPage, written: ErpContactsResult) -> None:
        totals = self._totals
        totals.pages += 1
        totals.companies += len(page.accounts)
        totals.created += written.created
        totals.existing += written.existing
        totals.requests += written.requests + 1
        self._status.publish()

    def _details(self) -> list[str]:
        totals = self._totals
        return [f"**Pages:** {totals.pages}  \n**Companies:** {totals.companies} "
                f"({totals.created} created, {totals.existing} existing)"]

    async def _continue_as_new(self, request: BackfillInput) -> None:
        """Carry the cursor and totals into a new run (after any handler in progress has finished)."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._status.flush()
        workflow.continue_as_new(request.model_copy(update={
            "carried": self._totals.model_copy(update={"runs": self._totals.runs + 1})}))

    def _fetch(self, request: BackfillInput, after: str | None) -> asyncio.Task[CompanyPage]:
        return asyncio.ensure_future(workflow.execute_activity_method(
            CrmActivities.fetch_company_page,
            FetchCompaniesInput(after=after, limit=request.page_size,
                                requests_per_second=request.crm_requests_per_second),
            start_to_close_timeout=TIMEOUT, retry_policy=RETRY, summary=f"{request.crm.label} companies after {after}"))

    @workflow.query
    def progress(self) -> BackfillCarried:
        return self._totals
