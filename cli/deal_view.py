"""Where a deal's quote-to-cash stands, read the way an operator needs it: the latest *meaningful* run (a
re-run that only found the deal already provisioned does not hide the run that provisioned it), its outcome
and reason, and every ID. Used by ``starter.py status`` and ``start-deal``.

A running run answers the ``status`` query (the worker must be up); a closed run is read from its history
(result, or the failure with the result as its details), so no worker is needed for finished deals.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError, TerminatedError
from temporalio.exceptions import TimeoutError as TemporalTimeout
from temporalio.service import RPCError, RPCStatusCode

from canonical.keys import is_workflow_of
from cli.process import USAGE, CliError, UnknownId, visibility_literal
from runtime.attributes import EXCEPTION_KIND, STAGE
from runtime.launch import quote_to_cash_id
from settings import Settings
from workflows.models import QuoteToCashResult, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow

QUERY_TIMEOUT = timedelta(seconds=10)
WORKFLOW_TYPE = "QuoteToCashWorkflow"


class OtherRun(BaseModel):
    """A later run the view looked past (a re-run that was skipped)."""

    run_id: str
    stage: str
    started_at: datetime | None = None


class DealRunView(BaseModel):
    """One quote-to-cash run as ``starter.py status`` shows it."""

    workflow_id: str
    run_id: str
    execution_status: str = Field(description="Temporal's: RUNNING, COMPLETED, FAILED, TERMINATED, ...")
    stage: str = ""
    exception_kind: str = ""
    reason: str = ""
    started_at: datetime | None = None
    closed_at: datetime | None = None
    status: QuoteToCashStatus | None = Field(default=None, description="the status query (running runs)")
    result: QuoteToCashResult | None = Field(default=None, description="the outcome (closed runs)")
    business_keys: list[str] = Field(default_factory=list)
    later_runs: list[OtherRun] = Field(default_factory=list)
    note: str = ""

    @property
    def running(self) -> bool:
        return self.execution_status == WorkflowExecutionStatus.RUNNING.name


def deal_workflow_id(settings: Settings, text: str) -> str:
    """The quote-to-cash workflow ID for one of ours (kept as it is) or a bare deal ID of the configured CRM
    (``q2c-<crm>-<dealId>``; IDs are opaque, so anything that is not one of our workflow IDs is a deal ID).
    A blank or multi-line ID is a usage error."""
    text = text.strip()
    if is_workflow_of(text, "deal"):
        return text
    try:
        return quote_to_cash_id(settings, text)
    except ValueError as exc:
        raise CliError(f"not a deal ID: {text!r} ({exc})", USAGE) from exc


def _attr(execution: WorkflowExecution, key: Any) -> str:
    value = execution.typed_search_attributes.get(key)
    return str(value) if value is not None else ""


async def _describe(client: Client, workflow_id: str) -> WorkflowExecution:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise UnknownId(f"no workflow {workflow_id!r} (give a quote-to-cash workflow ID, or a deal ID)"
                            ) from exc
        raise


async def _meaningful(client: Client, latest: WorkflowExecution) -> tuple[WorkflowExecution, list[OtherRun]]:
    """The latest run that did something: skipped re-runs are looked past (and listed)."""
    if _attr(latest, STAGE) != Stage.SKIPPED.value:
        return latest, []
    runs = [run async for run in client.list_workflows(f"WorkflowId = {visibility_literal(latest.id)}")]
    runs.sort(key=lambda r: r.start_time, reverse=True)
    skipped: list[OtherRun] = []
    for run in runs:
        if _attr(run, STAGE) == Stage.SKIPPED.value:
            skipped.append(OtherRun(run_id=run.run_id, stage=Stage.SKIPPED.value, started_at=run.start_time))
            continue
        return run, skipped
    return latest, []


async def deal_run_view(client: Client, text: str, settings: Settings) -> DealRunView:
    """The view of a deal's run; :class:`~cli.process.UnknownId` when there is none."""
    workflow_id = deal_workflow_id(settings, text)
    latest = await _describe(client, workflow_id)
    if latest.workflow_type != WORKFLOW_TYPE:
        hint = " (try `starter.py amendments`)" if latest.workflow_type == "ContractAmendmentsWorkflow" else ""
        raise UnknownId(f"{workflow_id} is a {latest.workflow_type} run, not a deal's quote-to-cash{hint}")
    chosen, later = await _meaningful(client, latest)
    view = DealRunView(workflow_id=workflow_id, run_id=chosen.run_id,
                       execution_status=chosen.status.name if chosen.status else "UNKNOWN",
                       stage=_attr(chosen, STAGE), exception_kind=_attr(chosen, EXCEPTION_KIND),
                       started_at=chosen.start_time, closed_at=chosen.close_time, later_runs=later)
    handle = client.get_workflow_handle_for(QuoteToCashWorkflow.run, workflow_id, run_id=chosen.run_id)
    if chosen.status is WorkflowExecutionStatus.RUNNING:
        try:
            view.status = await handle.query(QuoteToCashWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError) as exc:
            view.note = f"the worker did not answer the status query ({exc}); showing the search attributes"
        else:
            view.stage, view.exception_kind = view.status.stage.value, view.status.exception_kind.value
            view.reason = view.status.failure or view.status.waiting_for
            view.business_keys = list(view.status.business_keys)
        return view
    try:
        view.result = await handle.result(follow_runs=False, rpc_timeout=QUERY_TIMEOUT)
    except WorkflowFailureError as err:
        cause = err.cause
        view.reason = cause.message if isinstance(cause, ApplicationError | TerminatedError | TemporalTimeout) else str(
            cause)
        details = cause.details if isinstance(cause, ApplicationError) else ()
        if details and isinstance(details[0], dict):
            view.result = QuoteToCashResult.model_validate(details[0])
        elif isinstance(cause, TerminatedError):
            view.stage = view.stage or "terminated"
    if view.result is not None:
        view.stage, view.reason = view.result.outcome.value, view.result.reason
        view.business_keys = list(view.result.business_keys)
    return view


__all__ = ["DealRunView", "OtherRun", "deal_run_view", "deal_workflow_id"]
