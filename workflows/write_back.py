"""CRM write-backs of a flow, as one component (quote-to-cash and amendment propagation hold one each).

It carries progress the CRM need not see before the next write (``later``), merges it into the next write,
tells people of a ``Notice`` through the write's regular activity (its retries outlive a worker), and applies
the flow's failure policy: a refused write-back is recorded and never undoes the business step, unless the
write is ``required`` (the last one of an amendment's propagation), which then fails like any other step.
Deterministic: activities and workflow info only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.crm import CrmActivities
    from activities.models import WriteBackInput
    from canonical.exceptions import ExceptionKind
    from canonical.notifications import Notice
    from canonical.requests import DealWriteBack
    from workflows.status import WorkflowStatus
    from workflows.steps import STEP_FAILED, failure_reason


def merge_write_backs(earlier: DealWriteBack | None, later: DealWriteBack) -> DealWriteBack:
    """One write-back carrying both; the later one's fields win."""
    return later if earlier is None else earlier.merged_with(later)


class CrmWriteBack:
    """One flow's write-backs to its CRM deal.

    Args:
        status: the flow's status component (its steps, notes and exception kind).
        label: the CRM's label for summaries (``CRM (HubSpot)``), read when a write happens.
        stamp_workflow_id: write this run's workflow ID on the deal (the deal's own flow does; amendments not).
        local_when_quiet: a write with no notice is an idempotent property write: a local activity.
        exception_on_failure: a refused write marks the run ``write_back_failed`` (when healthy otherwise).
    """

    def __init__(self, status: WorkflowStatus[Any], *, label: Callable[[], str], stamp_workflow_id: bool,
                 local_when_quiet: bool, exception_on_failure: bool) -> None:
        self._status = status
        self._label = label
        self._stamp = stamp_workflow_id
        self._local_when_quiet = local_when_quiet
        self._exception_on_failure = exception_on_failure
        self.carried: DealWriteBack | None = None

    def later(self, update: DealWriteBack) -> None:
        """Progress the CRM need not see before the next step: carried by the next write-back."""
        self.carried = merge_write_backs(self.carried, update)

    async def write(self, deal_id: str, update: DealWriteBack, *, notice: Notice | None = None,
                    required: bool = False) -> None:
        """Write ``update`` (with what was carried) to the deal; ``required``: a refusal fails the caller."""
        if not deal_id:
            return
        stamp = workflow.info().workflow_id if self._stamp else None
        update = merge_write_backs(self.carried, update).model_copy(update={"revops_workflow_id": stamp})
        self.carried = None
        try:
            await self._status.step(CrmActivities.write_back_deal,
                                    WriteBackInput(deal_id=deal_id, update=update, notice=notice),
                                    f"Write back to {self._label()}: " + ", ".join(sorted(update.properties())),
                                    local=self._local_when_quiet and notice is None)
        except STEP_FAILED as err:
            if required:
                raise
            if self._exception_on_failure and self._status.exception is ExceptionKind.NONE:
                self._status.exception = ExceptionKind.WRITE_BACK_FAILED
            self._status.note(f"write-back refused by the CRM: {failure_reason(err)}")

__all__ = ["CrmWriteBack", "merge_write_backs"]
