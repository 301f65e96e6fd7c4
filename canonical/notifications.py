"""What people are told, and when: one notice per business event, keyed so that it is sent once.

A workflow attaches a :class:`Notice` to the CRM write-back that records the same event (approval requested,
reminder, expiry, a business exception); the activity tells the people named in settings (the approvers with
the authority for the approval, or operations for an exception) through every configured channel, and keeps
a record per ``event_key`` and channel so that a retry or a worker restart never sends it twice.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.authority import ApprovalFacts


class NoticeKind(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_REMINDER = "approval_reminder"
    APPROVAL_EXPIRED = "approval_expired"
    DATA_EXCEPTION = "data_exception"
    PROVISIONING_FAILED = "provisioning_failed"
    AMENDMENT_GAP = "amendment_gap"
    PROPAGATION_FAILED = "propagation_failed"
    ERP_REJECTED = "erp_rejected"


APPROVAL_KINDS = frozenset({NoticeKind.APPROVAL_REQUESTED, NoticeKind.APPROVAL_REMINDER,
                            NoticeKind.APPROVAL_EXPIRED})


class Notice(BaseModel):
    """One business event to tell people about. No prices or personal data beyond what the reader needs."""

    event_key: str = Field(min_length=1, description="<workflowId>:<run>:<event>: the same event, the same key")
    kind: NoticeKind
    workflow_id: str
    title: str = Field(min_length=1, description="one line")
    text: str = ""
    facts: ApprovalFacts | None = Field(default=None, description="approvals: who has the authority to decide")


class Message(BaseModel):
    """A notice as sent: to whom, with the link to act on it."""

    event_key: str
    kind: NoticeKind
    subject: str
    text: str
    link: str
    recipients: list[str] = Field(default_factory=list, description="email addresses")
