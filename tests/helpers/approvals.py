"""Decisions signed as the approvals API signs them (its key from the test's settings), bound to the pending
request the workflow's ``status`` query shows (run, request ID, terms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from canonical.keys import approval_subject_of
from ingress.approvals import pending_approval
from ingress.approvals import signed_decision as api_signed_decision
from settings import Settings
from workflows.models import ApprovalDecision, ApprovalState

DANA = "dana@revops.example"  # finance manager: up to 25 % and 100,000
SAM = "sam@revops.example"  # sales ops: up to 10 % and 25,000
CHRIS = "chris@revops.example"  # CFO: no limit


async def pending_request(handle: WorkflowHandle[Any, Any]) -> ApprovalState:
    """The approval request waiting in ``handle``'s workflow (fails the test when none is)."""
    approval = pending_approval(approval_subject_of(handle.id), await handle.query("status"))
    assert approval is not None, f"{handle.id} has no pending approval"
    return approval


def sign_request(settings: Settings, workflow_id: str, approval: ApprovalState, approver: str, *,
                 approved: bool = True, note: str = "", channel: str = "test", now: datetime | None = None,
                 ttl: timedelta | None = None) -> ApprovalDecision:
    """A decision on ``approval`` as the API would sign it; ``now`` for a time-skipping server's clock."""
    if ttl is not None:
        settings = settings.model_copy(update={"approval_proof_ttl_seconds": ttl.total_seconds()})
    return api_signed_decision(settings, workflow_id, approval, approver=approver, approved=approved, note=note,
                               channel=channel, now=now or datetime.now(UTC))


async def signed_decision(settings: Settings, handle: WorkflowHandle[Any, Any], approver: str, *,
                          approved: bool = True, note: str = "", channel: str = "test",
                          now: datetime | None = None, ttl: timedelta | None = None) -> ApprovalDecision:
    """``approver``'s signed decision on the request pending in ``handle``'s workflow now."""
    return sign_request(settings, handle.id, await pending_request(handle), approver, approved=approved, note=note,
                        channel=channel, now=now, ttl=ttl)
