"""The worker's check of signed approvals: every ``decide_approval`` update must carry the approvals API's HMAC.

The key lives in the worker's settings and in this interceptor only, never in a workflow's state or history
(a history is readable by anyone with namespace read access). The check runs in the update's validation
stage, over this run's workflow ID and run ID; the workflow's approval gate then checks that the proof names
its pending request and terms and is unused, and judges the approver's authority; a refused update leaves no
trace in history. Validators do not run on replay, so a key rotation never breaks a replay.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from canonical.authority import verify_approval

DECIDE_APPROVAL = "decide_approval"


class ApprovalSignatureInterceptor(Interceptor):
    """Refuses ``decide_approval`` updates whose signed approval is missing, forged, stale or misaddressed."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self._keys = dict(keys)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput
                                   ) -> type[WorkflowInboundInterceptor] | None:
        keys = self._keys

        class _Inbound(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if input.update == DECIDE_APPROVAL:
                    _check(keys, input.args)
                super().handle_update_validator(input)

        return _Inbound


def _check(keys: dict[str, bytes], args: Any) -> None:
    decision = args[0] if args else None
    approver = getattr(decision, "approver", None)
    if decision is None or not isinstance(approver, str):
        raise ValueError("decide_approval takes {approver, approved, note, proof}")
    info = workflow.info()
    reason = verify_approval(keys, workflow_id=info.workflow_id, run_id=info.run_id, approver=approver,
                             approved=bool(decision.approved), note=decision.note or "", proof=decision.proof,
                             now=workflow.now())
    if reason:
        raise ValueError(reason)
