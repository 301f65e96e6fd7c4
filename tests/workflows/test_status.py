"""The workflow status component (workflows/status.py) in a small probe workflow on the time-skipping server:
bounded timeline and keys, one upsert per workflow task and none that changes nothing, attributes held
during a local step, the exception kind chosen by precedence, the current details."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from canonical.exceptions import LEDGER_EXCEPTION_KINDS, ExceptionKind, most_urgent
from tests.helpers.upserts import audit_upserts
from workflows.attributes import LEGAL_ENTITY
from workflows.status import WorkflowStatus


class ProbeStage(StrEnum):
    STARTING = "starting"
    WORKING = "working"
    DONE = "done"


class Text(BaseModel):
    text: str


class ProbeResult(BaseModel):
    notes: list[str]
    keys: list[str]
    echoed: list[str]
    exception: ExceptionKind


class ProbeActivities:
    @activity.defn(name="status_probe_echo")
    async def echo(self, request: Text) -> Text:
        return Text(text=request.text.upper())


@workflow.defn(name="StatusProbeWorkflow", sandboxed=False)
class StatusProbeWorkflow:
    def __init__(self) -> None:
        self._status = WorkflowStatus(ProbeStage.STARTING, details=lambda: ["**Probe:** details from the workflow"],
                                      timeline_kept=3, keys_kept=2)

    @workflow.run
    async def run(self, request: Text) -> ProbeResult:
        status = self._status
        status.started_with(workflow.info())
        status.enter(ProbeStage.STARTING, "started", waiting_for="the first echo")
        status.add_keys("probe:thing:1", "probe:thing:", "probe:thing:1", "probe:thing:2", "probe:thing:3")
        status.set(LEGAL_ENTITY.value_set("US01"))
        first = await status.step(ProbeActivities.echo, Text(text=request.text), "Echo locally", local=True)
        status.enter(ProbeStage.WORKING, "echoed once", waiting_for="the second echo")
        status.enter(ProbeStage.WORKING, "still working", waiting_for="the second echo")  # no change to publish
        status.exception = most_urgent([ExceptionKind.PAYMENT_FAILED, ExceptionKind.CUSTOMER_NOT_FOUND],
                                       LEDGER_EXCEPTION_KINDS)
        status.note("two problems at once")
        second = await status.step(ProbeActivities.echo, Text(text=first.text + "!"), "Echo")
        status.enter(ProbeStage.DONE, "done", waiting_for="")
        status.flush()
        return ProbeResult(notes=[t.note for t in status.timeline], keys=status.keys,
                           echoed=[first.text, second.text], exception=status.exception)


class LedgerLikeStage(StrEnum):
    OPEN_ITEMS = "open_items"
    SETTLED = "settled"


@workflow.defn(name="DerivedStatusProbeWorkflow", sandboxed=False)
class DerivedStatusProbeWorkflow:
    """As the ledger would use it: stage and exception kind follow from open problems, never set by hand."""

    def __init__(self) -> None:
        self._problems: dict[str, ExceptionKind] = {}
        self._status = WorkflowStatus(LedgerLikeStage.SETTLED, derive=self._derive)

    def _derive(self) -> tuple[LedgerLikeStage, ExceptionKind]:
        stage = LedgerLikeStage.OPEN_ITEMS if self._problems else LedgerLikeStage.SETTLED
        return stage, most_urgent(self._problems.values(), LEDGER_EXCEPTION_KINDS)

    @workflow.run
    async def run(self, request: Text) -> ProbeResult:
        status = self._status
        status.started_with(workflow.info())
        self._problems["in_1"] = ExceptionKind.PAYMENT_FAILED
        self._problems["in_2"] = ExceptionKind.ERP_REJECTED
        status.note("two problems")
        seen = [f"{status.stage.value}/{status.exception.value}"]
        await status.step(ProbeActivities.echo, request, "Echo")
        del self._problems["in_2"]
        status.note("one settled")
        seen.append(f"{status.stage.value}/{status.exception.value}")
        await status.step(ProbeActivities.echo, request, "Echo")
        self._problems.clear()
        status.note("all settled")
        seen.append(f"{status.stage.value}/{status.exception.value}")
        status.flush()
        return ProbeResult(notes=[f"{t.stage}: {t.note}" for t in status.timeline], keys=[], echoed=seen,
                           exception=status.exception)


def test_most_urgent_takes_the_first_kind_of_the_precedence() -> None:
    assert most_urgent([ExceptionKind.INVOICE_OVERDUE, ExceptionKind.ERP_REJECTED],
                       LEDGER_EXCEPTION_KINDS) is ExceptionKind.ERP_REJECTED
    assert most_urgent([], LEDGER_EXCEPTION_KINDS) is ExceptionKind.NONE
    assert most_urgent([ExceptionKind.MISSING_DATA], LEDGER_EXCEPTION_KINDS) is ExceptionKind.NONE


async def test_status_batches_attributes_and_bounds_timeline_and_keys(time_skipping_env: WorkflowEnvironment) -> None:
    client = time_skipping_env.client
    task_queue = f"status-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[StatusProbeWorkflow],
                      activities=[ProbeActivities().echo]):
        handle = await client.start_workflow(StatusProbeWorkflow.run, Text(text="hi"), id=f"status-{uuid.uuid4()}",
                                             task_queue=task_queue)
        result = await handle.result()
        audit = await audit_upserts(handle)
        state, stages = audit.state, audit.stages
        metadata = await handle.query("__temporal_workflow_metadata")

    assert result.echoed == ["HI", "HI!"]
    assert result.notes == ["still working", "two problems at once", "done"], "the newest three notes are kept"
    assert result.keys == ["probe:thing:1", "probe:thing:2"], "blank IDs and repeats skipped, two keys kept"
    assert result.exception is ExceptionKind.CUSTOMER_NOT_FOUND
    # "starting" never reached the server: the local step ran inside the first workflow task, the attributes
    # were held, and the task ended in "working" (the latest value of a batch wins)
    assert stages == ["working", "done"], stages
    assert state == {"Stage": "done", "ExceptionKind": "customer_not_found", "LegalEntity": "US01",
                     "BusinessKeys": ["probe:thing:1", "probe:thing:2"]}
    details = metadata.current_details
    assert details.startswith("**Stage:** done  \n**Exception:** customer_not_found\n\n**Waiting for:** nothing")
    assert "**Probe:** details from the workflow" in details and details.endswith("done"), details


async def test_status_derived_from_the_runs_state(time_skipping_env: WorkflowEnvironment) -> None:
    client = time_skipping_env.client
    task_queue = f"status-{uuid.uuid4()}"
    async with Worker(client, task_queue=task_queue, workflows=[DerivedStatusProbeWorkflow],
                      activities=[ProbeActivities().echo]):
        handle = await client.start_workflow(DerivedStatusProbeWorkflow.run, Text(text="hi"),
                                             id=f"status-{uuid.uuid4()}", task_queue=task_queue)
        result = await handle.result()
        attributes = {k.name: v for k, v in (await handle.describe()).typed_search_attributes}

    assert result.echoed == ["open_items/erp_rejected", "open_items/payment_failed", "settled/"]
    assert result.notes == ["open_items: two problems", "open_items: one settled", "settled: all settled"]
    assert (attributes["Stage"], attributes["ExceptionKind"]) == ("settled", "")
