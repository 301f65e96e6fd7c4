"""ERP cut-over of one legal entity (``cutover-<entity>-<erp>``, started by ``starter.py erp cutover``).

Reads as the business step: refuse while anything posts in the entity → switch the entity's ERP (writes to
the old tenant are forwarded from here on) → copy its contacts → copy its open projects → copy its open
receivables with their payments → leave a report. Every copy is keyed and recorded (``activities/cutover.py``),
so a rerun under the same workflow ID completes an interrupted one and changes nothing after a complete one.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cutover import CutoverActivities, CutoverReport, CutoverRequest
    from workflows.attributes import LEGAL_ENTITY
    from workflows.models import CutoverStage
    from workflows.status import WorkflowStatus
    from workflows.steps import run_step

C = CutoverActivities
#: a cut-over's steps are long reads and many writes; an hour each, retried like any vendor call
STEP_TIMEOUT_SECONDS = 3600


@workflow.defn(name="CutoverWorkflow")
class CutoverWorkflow:
    """One cut-over; its result is the report."""

    def __init__(self) -> None:
        self._status = WorkflowStatus(CutoverStage.SURVEYING)

    @workflow.run
    async def run(self, request: CutoverRequest) -> CutoverReport:
        self._status.started_with(workflow.info())
        self._status.set(LEGAL_ENTITY.value_set(request.entity))
        cutover_id = workflow.info().workflow_id
        survey = await run_step(C.survey_cutover, request, f"Look for runs posting in {request.entity}",
                                timeout_seconds=STEP_TIMEOUT_SECONDS)
        if survey.busy:
            self._status.enter(CutoverStage.REFUSED, f"refused: {len(survey.busy)} run(s) mid-posting",
                               waiting_for="nothing")
            return await self._report(CutoverReport(cutover_id=cutover_id, entity=request.entity,
                                                    outcome="refused", refused_by=survey.busy))
        plan = await run_step(C.switch_entity_erp, request,
                              f"Switch {request.entity} to ERP {request.to_adapter}")
        if plan is None:
            return await self._report(CutoverReport(cutover_id=cutover_id, entity=request.entity,
                                                    outcome="unchanged", to_adapter=request.to_adapter))
        plan = plan.model_copy(update={"customers": survey.customers})
        self._status.enter(CutoverStage.MOVING, f"{plan.entity} switched from {plan.from_adapter} to "
                           f"{plan.to_adapter}", waiting_for="the copy of contacts, open projects and open receivables")
        contacts = await run_step(C.move_erp_contacts, plan, f"Copy {len(plan.customers)} contact(s) to "
                                  f"{plan.to_adapter}", timeout_seconds=STEP_TIMEOUT_SECONDS)
        projects = await run_step(C.move_open_projects, plan, f"Copy the open projects of {plan.entity} to "
                                  f"{plan.to_adapter}", timeout_seconds=STEP_TIMEOUT_SECONDS)
        receivables = await run_step(C.move_open_receivables, plan, f"Copy the open receivables of "
                                     f"{plan.entity} to {plan.to_adapter}", timeout_seconds=STEP_TIMEOUT_SECONDS)
        moved = [*contacts.items, *projects.items, *receivables.items]
        self._status.enter(CutoverStage.MOVED, f"{sum(i.fresh for i in moved)} record(s) copied",
                           waiting_for="nothing")
        return await self._report(CutoverReport(
            cutover_id=cutover_id, entity=plan.entity,
            outcome="moved" if any(i.fresh for i in moved) else "unchanged",
            from_adapter=plan.from_adapter, from_tenant=plan.from_tenant, to_adapter=plan.to_adapter,
            to_tenant=plan.to_tenant, moved=moved, skipped=[*contacts.skipped, *projects.skipped, *receivables.skipped],
            settings_line=plan.settings_line))

    async def _report(self, report: CutoverReport) -> CutoverReport:
        written = await run_step(C.write_cutover_report, report, f"Write the report of {report.cutover_id}")
        self._status.flush()
        return written
