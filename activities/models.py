"""The one-model-in, one-model-out envelopes of activities (beside the canonical types they carry)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from canonical import Account, BillingSchedule, Contact, ContractTerms, LegalEntity, Project
from canonical.amendments import SubscriptionItemChange
from canonical.authority import ApprovalAuthority
from canonical.deal import ProvisionedEntity
from canonical.notifications import Notice
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
    activity_timeout_seconds: float = 120
    authority: ApprovalAuthority = Field(default_factory=ApprovalAuthority)


class DealRef(BaseModel):
    deal_id: str


class WriteBackInput(BaseModel):
    deal_id: str
    update: DealWriteBack
    notice: Notice | None = Field(default=None, description="the people to tell about the event this write-back "
                                                            "records (sent once per event key and channel)")


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


# -- amendment propagation -----------------------------------------------------------------------
class AmendmentsConfig(BaseModel):
    """Worker settings the amendments workflow needs, read once per run through an activity."""

    entities: list[LegalEntity]
    gap_timeout_seconds: float
    continue_as_new_after: int
    proration_behavior: str
    activity_retry_max_seconds: float = 300
    authority: ApprovalAuthority = Field(default_factory=ApprovalAuthority)
    approval_reminder_hours: float = 48
    approval_expiry_days: float = 14


class ContractContextRequest(BaseModel):
    record_id: str
    deal_id: str | None = None


class ContractContext(BaseModel):
    """What the amendments workflow needs at its first start: the contract as first signed, the deal,
    and where quote-to-cash provisioned it (read back from the CRM write-backs)."""

    record_id: str
    deal_id: str
    title: str = ""
    counterparty: str = ""
    signed_terms: ContractTerms
    provisioned: list[ProvisionedEntity] = Field(default_factory=list)
    budgets: dict[str, str] = Field(default_factory=dict, description="project code -> budget provisioned")
    billing_ids: list[str] = Field(default_factory=list, description="billing IDs written back on the deal")
    deal_owner_id: str | None = Field(default=None, description="the deal's CRM owner (segregation of duties)")


class AmendmentRef(BaseModel):
    record_id: str
    sequence: int = Field(ge=1)


class AmendmentsFetch(BaseModel):
    """The amendments the CLM holds for a record (sequence, Ironclad ID), for gaps and unnumbered signals."""

    record_id: str
    amendments: list[tuple[int, str | None]] = Field(default_factory=list)


class AmendmentPlanInput(BaseModel):
    """Plan one amendment: the deal (for the entity split), terms before and after, and the targets."""

    sequence: int
    deal_id: str
    before: ContractTerms
    after: ContractTerms
    entities: list[LegalEntity]
    provisioned: list[ProvisionedEntity]
    billing_ids: list[str] = Field(default_factory=list)


class GuardedProjectInput(BaseModel):
    """Update an ERP project whose budget is ERP-owned: refused when the ERP's budget is no longer the
    value we last wrote (``expected_budget``), unless an operator said to overwrite (``force``)."""

    tenant_id: str
    project: Project
    expected_budget: str | None = None
    force: bool = False
    keep_erp_budget: bool = False
    idempotency_key: str = Field(min_length=1)


class SubscriptionChangeInput(BaseModel):
    change: SubscriptionItemChange
    proration_behavior: str
    idempotency_key: str = Field(min_length=1)


class SubscriptionEndInput(BaseModel):
    subscription_id: str
    end_date: date | None
    idempotency_key: str = Field(min_length=1)
