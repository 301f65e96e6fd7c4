"""Inputs, results, signals, updates and queries of the workflows (one model each)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from canonical import Contract, Deal, Engagement, MissingField


class Stage(StrEnum):
    """The ``Stage`` search attribute of a quote-to-cash run."""

    LOADING = "loading"
    DATA_EXCEPTION = "data_exception"
    AWAITING_APPROVAL = "awaiting_approval"
    CONTRACTING = "contracting"
    AWAITING_SIGNATURE = "awaiting_signature"
    PROVISIONING = "provisioning"
    COMPENSATING = "compensating"
    PROVISIONED = "provisioned"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"
    SKIPPED = "skipped"


class ExceptionKind(StrEnum):
    """The ``ExceptionKind`` search attribute: empty when healthy."""

    NONE = ""
    MISSING_DATA = "missing_data"
    APPROVAL_OVERDUE = "approval_overdue"
    CONTRACT_STALLED = "contract_stalled"
    CONTRACT_CANCELLED = "contract_cancelled"
    PROVISIONING_FAILED = "provisioning_failed"
    DEAL_NOT_FOUND = "deal_not_found"
    WRITE_BACK_FAILED = "write_back_failed"


class QuoteToCashInput(BaseModel):
    deal_id: str = Field(min_length=1)
    trigger: str = Field(default="manual", description="manual, webhook, poll")
    source_event_id: str | None = None


class ApprovalDecision(BaseModel):
    """The ``decide_approval`` update's argument."""

    approver: str
    approved: bool
    note: str = ""

    @field_validator("approver")
    @classmethod
    def _approver(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("approver is required")
        return value.strip()


class ApprovalOutcome(BaseModel):
    """What ``decide_approval`` answers at once."""

    accepted: bool
    status: str
    approver: str
    note: str = ""


class ApprovalState(BaseModel):
    reasons: list[str]
    requested_at: datetime
    expires_at: datetime
    reminders_sent: int = 0
    status: str = "pending"
    decision: ApprovalDecision | None = None
    decided_at: datetime | None = None


class DealCorrection(BaseModel):
    """The ``deal_corrected`` signal: the corrected deal, or nothing to make the workflow re-read it."""

    deal: Deal | None = None
    source_event_id: str | None = None
    changed_properties: list[str] = Field(default_factory=list)


class RecheckRequest(BaseModel):
    requested_by: str = "operator"


class RecheckResult(BaseModel):
    complete: bool
    missing: list[MissingField] = Field(default_factory=list)


class ContractExecutedSignal(BaseModel):
    """The ``contract_executed`` signal (from the CLM webhook via ingress)."""

    clm_workflow_id: str
    clm_record_id: str | None = None
    source_event_id: str | None = None


class TimelineEntry(BaseModel):
    at: datetime
    stage: str
    note: str


class QuoteToCashStatus(BaseModel):
    """The ``status`` query: everything an operator needs to know about the deal's run."""

    deal_id: str
    stage: Stage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    waiting_for: str = ""
    legal_entity: str = ""
    deal_name: str = ""
    company: str = ""
    amount: str = ""
    missing: list[MissingField] = Field(default_factory=list)
    approval: ApprovalState | None = None
    contract: Contract | None = None
    engagements: list[Engagement] = Field(default_factory=list)
    business_keys: list[str] = Field(default_factory=list)
    failure: str = ""
    timeline: list[TimelineEntry] = Field(default_factory=list)


class QuoteToCashResult(BaseModel):
    deal_id: str
    outcome: Stage
    reason: str = ""
    contract: Contract | None = None
    engagements: list[Engagement] = Field(default_factory=list)
    business_keys: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Amendment propagation (one workflow per contract: contract-ironclad-<recordId>)
# ---------------------------------------------------------------------------------------------
class ContractAmendmentsInput(BaseModel):
    """Start (or continue-as-new) input of ``ContractAmendmentsWorkflow``."""

    record_id: str = Field(min_length=1, description="the Ironclad record of the executed contract")
    deal_id: str | None = None
    carried: dict[str, object] | None = Field(default=None, description="state carried across continue-as-new")


class AmendmentSignal(BaseModel):
    """The ``amendment_executed`` signal (signal-with-start from ingress and ``starter.py amend``)."""

    record_id: str
    sequence: int | None = Field(default=None, description="None: read it from the CLM")
    clm_amendment_id: str | None = None
    source_event_id: str | None = None


# ---------------------------------------------------------------------------------------------
# Invoice feedback (one workflow per billing customer: ledger-stripe-<customerId>)
# ---------------------------------------------------------------------------------------------
class AccountLedgerInput(BaseModel):
    """Start (or continue-as-new) input of ``AccountLedgerWorkflow``."""

    customer_id: str = Field(min_length=1)
    carried: dict[str, object] | None = Field(default=None, description="state carried across continue-as-new")


# The ledger's signal is ``billing_event`` carrying ``canonical.EventEnvelope``.

AMENDMENTS_WORKFLOW = "ContractAmendmentsWorkflow"
AMENDMENT_SIGNAL = "amendment_executed"
LEDGER_WORKFLOW = "AccountLedgerWorkflow"
LEDGER_SIGNAL = "billing_event"


def amendments_workflow_id(record_id: str) -> str:
    return f"contract-ironclad-{record_id}"


def ledger_workflow_id(customer_id: str) -> str:
    return f"ledger-stripe-{customer_id}"
