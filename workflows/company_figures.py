"""A CRM company's billing figures, written by one owner (``figures-<crm>-<companyId>``).

A customer billed from several legal entities has one billing customer, and so one ledger, per entity. Were
each ledger to write the company's (and a split deal's) figures, the last one would overwrite the others.
Instead each ledger reports its part (``canonical.company_figures.FiguresReport``) to this workflow: by
signal when it runs, else by starting it with the report as its input (a child left running when the ledger
moves on). It keeps the newest report of each ledger and writes the sum over all of them, per currency, after
each batch of reports; a CRM refusal shows as ``write_back_failed`` and is tried again hourly or at the next
report. It never completes: it continues as new carrying the reports.

Next to the ledgers' figures it writes each deal's **unbilled** balance: before each write it reads the
deals' executed contract values from the CLM (``read_contract_values``) and sets unbilled = contract value
- (billed - credited), per deal in the contract currency and summed per currency for the company
(``canonical.company_figures.with_unbilled``). A CLM that cannot answer leaves unbilled unwritten that time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.amendments import ContractContextActivities
    from activities.config import ConfigActivities
    from activities.crm import CrmActivities
    from activities.ledger import CrmFiguresInput
    from activities.models import ContractValuesRequest, FlowConfigRequest, LedgerConfig
    from canonical.company_figures import FiguresReport, combined_figures, keep_newest, with_unbilled
    from canonical.exceptions import ExceptionKind
    from canonical.money import Money
    from workflows.models import (
        FIGURES_SIGNAL,
        CompanyFiguresInput,
        CompanyFiguresStatus,
        FiguresStage,
    )
    from workflows.status import WorkflowStatus
    from workflows.steps import STEP_FAILED, failure_reason

Cfg = ConfigActivities
Crm = CrmActivities
Contracts = ContractContextActivities
#: a write the CRM refused is tried again after this long (or at the next report)
RETRY_REFUSED_AFTER = timedelta(hours=1)
_SECOND = timedelta(seconds=1)


@workflow.defn(name="CompanyFiguresWorkflow")
class CompanyFiguresWorkflow:
    """The one writer of a CRM company's (and its deals') billing figures; never completes."""

    @workflow.init
    def __init__(self, request: CompanyFiguresInput) -> None:
        self._company_id = request.company_id
        self._reports: dict[str, FiguresReport] = {}
        for report in request.reports:
            keep_newest(self._reports, report)
        self._fresh = bool(self._reports) and not request.written  # reports not written yet
        self._received = 0
        self._writes = 0
        self._runs = request.runs
        self._retry_at: datetime | None = None
        self._status = WorkflowStatus(FiguresStage.PENDING if self._fresh else FiguresStage.CURRENT)
        self._config: LedgerConfig | None = None
        self._contracts: dict[str, Money] = {}  # deal ID -> executed contract value, as last read

    @workflow.run
    async def run(self, request: CompanyFiguresInput) -> None:
        self._status.started_with(workflow.info())
        self._config = (await self._status.step(Cfg.load_flow_config, FlowConfigRequest(flow="account_ledger"),
                                                "Read ledger settings", local=True)).for_ledger()
        self._status.use(retry_max_seconds=self._config.activity_retry_max_seconds)
        self._status.add_keys(self._config.systems.crm.ref("company", self._company_id))
        while True:
            retry_due = self._retry_at is not None and workflow.now() >= self._retry_at
            if self._fresh or retry_due:
                await self._write()
            if self._should_continue():
                break
            wait = max(self._retry_at - workflow.now(), _SECOND) if self._retry_at else None
            try:
                await workflow.wait_condition(lambda: self._fresh, timeout=wait,
                                              timeout_summary="retry of the figures the CRM refused")
            except TimeoutError:
                pass
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._status.flush()
        workflow.continue_as_new(CompanyFiguresInput(
            company_id=self._company_id, reports=list(self._reports.values()), runs=self._runs + 1,
            written=not self._fresh and self._retry_at is None))

    # -- messages --------------------------------------------------------------------------------
    @workflow.signal(name=FIGURES_SIGNAL)
    def ledger_figures(self, report: FiguresReport) -> None:
        """A ledger's part of the company's figures; an older one than held (a late delivery) changes nothing."""
        if report.company_id != self._company_id:
            return
        self._received += 1
        if keep_newest(self._reports, report):
            self._fresh = True

    @workflow.query
    def figures(self) -> CompanyFiguresStatus:
        """What the company shows once the reports held are written, and who reported."""
        company, deals = with_unbilled(*combined_figures(self._reports.values()), self._contracts)
        return CompanyFiguresStatus(
            company_id=self._company_id, stage=self._status.stage, exception_kind=self._status.exception,
            company=company, deals=deals, customers=sorted(self._reports), writes=self._writes, runs=self._runs,
            timeline=self._status.timeline[-50:])

    # -- plumbing --------------------------------------------------------------------------------
    async def _write(self) -> None:
        assert self._config is not None
        self._fresh = False
        company, deals = combined_figures(self._reports.values())
        if deals:
            await self._read_contract_values(sorted(deals))
            company, deals = with_unbilled(company, deals, self._contracts)
        request = CrmFiguresInput(company_id=self._company_id, company=company, deals=deals)
        ledgers = len(self._reports)
        try:
            await self._status.step(Crm.write_crm_figures, request,
                                    f"Write billing figures of {ledgers} ledger(s) to "
                                    f"{self._config.systems.crm.label} ({len(deals)} deal(s))")
        except STEP_FAILED as err:
            self._retry_at = workflow.now() + RETRY_REFUSED_AFTER
            self._status.exception = ExceptionKind.WRITE_BACK_FAILED
            self._status.enter(FiguresStage.PENDING, f"the CRM refused the figures: {failure_reason(err)} "
                               f"(tried again in {RETRY_REFUSED_AFTER} or at the next report)",
                               waiting_for="a ledger's report, or the retry")
            return
        self._writes += 1
        self._retry_at = None
        self._status.exception = ExceptionKind.NONE
        self._status.enter(FiguresStage.CURRENT, f"wrote the sum of {ledgers} ledger(s)",
                           waiting_for="a ledger's report")

    async def _read_contract_values(self, deal_ids: list[str]) -> None:
        try:
            read = await self._status.step(Contracts.read_contract_values, ContractValuesRequest(deal_ids=deal_ids),
                                           f"Read the contract value of {len(deal_ids)} deal(s)")
        except STEP_FAILED as err:
            self._status.note(f"contract values not read ({failure_reason(err)}): unbilled not written this time")
            return
        if read.unavailable:
            self._status.note(f"the CLM did not answer ({read.unavailable}): unbilled not written this time")
            return
        self._contracts = dict(read.values)

    def _should_continue(self) -> bool:
        assert self._config is not None
        return (self._received >= self._config.continue_after_events
                or workflow.info().is_continue_as_new_suggested())
