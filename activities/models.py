"""The one-model-in, one-model-out envelopes of activities (beside the canonical types they carry)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from canonical import Account, BillingSchedule, Contact, LegalEntity, Project
from canonical.policy import ApprovalPolicy
from canonical.requests import ContractRequest, DealWriteBack


class Ack(BaseModel):
    """An activity that only does something answers with this."""

    ok: bool = True
    detail: str = ""


class FlowConfigRequest(BaseModel):
    flow: str = "quote_to_cash"


class FlowConfig(BaseModel):
    """Worker settings a workflow needs, read once through an activity so replay stays deterministic."""

    policy: ApprovalPolicy
    entities: list[LegalEntity]
    template_id: str
    approval_reminder_hours: float
    approval_expiry_days: float
    contract_poll_interval_seconds: float
    contract_max_wait_days: float
    activity_retry_max_seconds: float = 300
    temporal_ui_url: str = ""


class DealRef(BaseModel):
    deal_id: str


class WriteBackInput(BaseModel):
    deal_id: str
    update: DealWriteBack


class LaunchContractInput(BaseModel):
    request: ContractRequest
    idempotency_key: str


class ContractRef(BaseModel):
    clm_workflow_id: str
    reason: str = ""


class ErpCustomerInput(BaseModel):
    tenant_id: str
    account: Account
    contact: Contact | None
    reference: str
    idempotency_key: str


class ErpCustomerResult(BaseModel):
    account: Account
    created: bool


class ErpProjectInput(BaseModel):
    tenant_id: str
    project: Project
    idempotency_key: str


class ErpRecordRef(BaseModel):
    tenant_id: str
    record_id: str


class BillingCustomerInput(BaseModel):
    account: Account
    contact: Contact | None
    reference: str
    legal_entity: str
    idempotency_key: str


class BillingCustomerResult(BaseModel):
    customer_id: str
    created: bool


class BillingRecordRef(BaseModel):
    record_id: str


class BillingScheduleInput(BaseModel):
    schedule: BillingSchedule
    idempotency_key: str = Field(min_length=1)
