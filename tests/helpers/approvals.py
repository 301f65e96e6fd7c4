"""Decisions signed as the approvals API signs them (its key from the test's settings)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from canonical.authority import sign_approval
from settings import Settings
from workflows.models import ApprovalDecision

DANA = "dana@revops.example"  # finance manager: up to 25 % and 100,000
SAM = "sam@revops.example"  # sales ops: up to 10 % and 25,000
CHRIS = "chris@revops.example"  # CFO: no limit


def signed_decision(settings: Settings, workflow_id: str, approver: str, *, approved: bool = True, note: str = "",
                    channel: str = "test", now: datetime | None = None,
                    ttl: timedelta = timedelta(minutes=5)) -> ApprovalDecision:
    """A decision as the API would send it for ``approver``; ``now`` for a time-skipping server's clock."""
    key_id, key = next(iter(settings.approval_keys().items()))
    proof = sign_approval(key_id=key_id, key=key, workflow_id=workflow_id, approver=approver, approved=approved,
                          note=note, subject=approver, channel=channel, nonce=uuid.uuid4().hex,
                          now=now or datetime.now(UTC), ttl=ttl)
    return ApprovalDecision(approver=approver, approved=approved, note=note, proof=proof)
