"""The one-model-in, one-model-out envelopes of activities (beside the canonical types they carry)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from canonical import Account, BillingSchedule, Contact, ContractTerms, LegalEntity, Project
from canonical.amendments import SubscriptionItemChange
from canonical.authority import ApprovalAuthority
from canonical.backfill import ErpCustomerDraft
from canonical.deal import ProvisionedEntity
from canonical.money import Money
from canonical.notifications import Notice
from canonical.policy import ApprovalPolicy
from canonical.requests import ContractRequest, DealWriteBack
from canonical.systems import Systems
from canonical.time_billing import BillingPeriod


class Ack(BaseModel):
    """An activity that only does something answers with this."""

    ok: bool = True
    detail: str = ""


# -- configuration: one loader (``load_flow_config``) for every flow ---------------------------------
FlowName = Literal["quote_to_cash", "amendments", "account_ledger", "reconciliation"]


class FlowConfigRequest(BaseModel):
    """Which flow's settings to read; ``legal_entities`` scopes reconciliation (empty: every entity)."""

    flow: FlowName = "quote_to_cash"
    legal_entities: list[str] = Field(default_factory=list, description="reconciliation only: the entities "
                                                                        "in scope (an unknown code fails)")


class QuoteToCashConfig(BaseModel):
    """Worker settings quote-to-cash needs, read once through an activity so replay stays deterministic."""

    policy: ApprovalPolicy
    entities: list[LegalEntity]
    systems: Systems
    approval_reminder_hours: float
    approval_expiry_days: float
    contract_poll_interval_seconds: float
    contract_max_wait_days: float
    activity_retry_max_seconds: float = 300
    milestone_poll_interval_seconds: float = 3600
    temporal_ui_url: str = ""
    activity_timeout_seconds: float = 120
    authority: ApprovalAuthority = Field(default_factory=ApprovalAuthority)


class AmendmentsConfig(BaseModel):
    """Worker settings the amendments workflow needs, read once per run through an activity."""

    entities: list[LegalEntity]
    systems: Systems
    gap_timeout_seconds: float
    continue_as_new_after: int
    prorate: bool = True  # a changed subscription item is charged or credited for the rest of its period
    activity_retry_max_seconds: float = 300
    authority: ApprovalAuthority = Field(default_factory=ApprovalAuthority)
    approval_reminder_hours: float = 48
    approval_expiry_days: float = 14


class LedgerConfig(BaseModel):
    """Worker settings the ledger needs, read through an activity so replay stays deterministic."""

    entities: list[LegalEntity]
    systems: Systems
    continue_after_events: int
    dedupe_window: int
    dso_window_days: int
    activity_retry_max_seconds: float = 300


class ReconciliationConfig(BaseModel):
    """The entities in scope of one reconciliation run, every entity, and the rounding tolerance."""

    entities: list[LegalEntity]
    systems: Systems
    all_entities: list[LegalEntity] = Field(default_factory=list)
    rounding_tolerance: Decimal
    read_timeout_seconds: float = Field(default=7200, description="a full read of one source at its pace")
    activity_retry_max_seconds: float = 300


class FlowConfig(BaseModel):
    """The answer of ``load_flow_config``: the requested flow's section filled, the others empty."""

    flow: FlowName
    quote_to_cash: QuoteToCashConfig | None = None
    amendments: AmendmentsConfig | None = None
    account_ledger: LedgerConfig | None = None
    reconciliation: ReconciliationConfig | None = None

    def _missing(self, flow: FlowName) -> ValueError:
        return ValueError(f"the configuration read was for {self.flow!r}, not {flow!r}")

    def for_quote_to_cash(self) -> QuoteToCashConfig:
        if self.quote_to_cash is None:
            raise self._missing("quote_to_cash")
        return self.quote_to_cash

    def for_amendments(self) -> AmendmentsConfig:
        if self.amendments is None:
            raise self._missing("amendments")
        return self.amendments

    def for_ledger(self) -> LedgerConfig:
        if self.account_ledger is None:
            raise self._missing("account_ledger")
        return self.account_ledger

    def for_reconciliation(self) -> ReconciliationConfig:
        if self.reconciliation is None:
            raise self._missing("reconciliation")
        return self.reconciliation


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


# -- ERP contacts: one find-or-create for every flow (look up, then create exactly what was missing) ------
class FindErpContactsInput(BaseModel):
    """Look ``drafts`` up in the tenant by their reference, ``batch_size`` references a request."""

    tenant_id: str
    drafts: list[ErpCustomerDraft] = Field(default_factory=list)
    batch_size: int = Field(default=50, ge=1)
    requests_per_second: float | None = None


class ErpContactsPlan(BaseModel):
    """What the look-up found: the drafts missing from the ERP, and the contacts already there."""

    missing: list[ErpCustomerDraft] = Field(default_factory=list)
    found: dict[str, str] = Field(default_factory=dict, description="reference -> ERP contact ID")
    existing: int = 0
    requests: int = 0


class CreateErpContactsInput(BaseModel):
    """Create exactly ``drafts`` (the plan's missing ones, fixed in history, so a retry replays the same
    requests under the same keys); ``refresh`` are found contacts to bring up to date with the CRM's fields
    (and reactivate when archived) without touching what the ERP owns."""

    tenant_id: str
    drafts: list[ErpCustomerDraft] = Field(default_factory=list)
    refresh: list[ErpCustomerDraft] = Field(default_factory=list)
    batch_size: int = Field(default=50, ge=1)
    requests_per_second: float | None = None
    idempotency_key: str = Field(min_length=1)


class MatchErpContactInput(BaseModel):
    """Look for contacts finance keyed by hand that may be ``draft``'s account (read only)."""

    tenant_id: str
    draft: ErpCustomerDraft


class LinkErpContactInput(BaseModel):
    """Write ``reference`` on the existing contact ``contact_id`` (a match chosen by the rules or a person)."""

    tenant_id: str
    contact_id: str = Field(min_length=1)
    reference: str
    idempotency_key: str


class ErpContactsResult(BaseModel):
    created: int = 0
    existing: int = 0
    requests: int = 0
    contact_ids: dict[str, str] = Field(default_factory=dict, description="reference -> ERP contact ID, of the "
                                                                          "contacts created or refreshed")
    ours: list[str] = Field(default_factory=list, description="references whose contact this key's create made "
                                                              "(now, or on an attempt whose answer was lost): "
                                                              "the run's to compensate")


class FetchCompaniesInput(BaseModel):
    after: str | None = None
    limit: int = 100
    requests_per_second: float | None = None


class ErpProjectInput(BaseModel):
    tenant_id: str
    project: Project
    idempotency_key: str


class ErpRecordRef(BaseModel):
    tenant_id: str
    record_id: str


class AcceptedMilestones(BaseModel):
    """The milestone codes a person accepted in a project's project system."""

    codes: list[str] = Field(default_factory=list)


class BillingCustomerInput(BaseModel):
    account: Account
    contact: Contact | None
    reference: str
    legal_entity: str
    idempotency_key: str


class BillingCustomerResult(BaseModel):
    customer_id: str
    created: bool
    matched: bool = Field(default=False, description="a customer keyed by hand, linked to our reference")


class MatchBillingCustomerInput(BaseModel):
    """Look for billing customers keyed by hand that may be ``account`` (read only)."""

    account: Account
    contact: Contact | None = None
    reference: str


class LinkBillingCustomerInput(BaseModel):
    customer_id: str = Field(min_length=1)
    reference: str
    legal_entity: str
    idempotency_key: str


class BillingRecordRef(BaseModel):
    record_id: str


class BillingScheduleInput(BaseModel):
    schedule: BillingSchedule
    idempotency_key: str = Field(min_length=1)


class FinalizeInvoiceInput(BaseModel):
    """Finalize one one-off draft invoice of billing."""

    invoice_id: str
    idempotency_key: str = Field(min_length=1)


# -- contract values (the CRM's unbilled figure) -------------------------------------------------------
class ContractValuesRequest(BaseModel):
    deal_ids: list[str] = Field(default_factory=list)


class ContractValues(BaseModel):
    """Each deal's executed contract value as amended (deals without an executed contract are left out)."""

    values: dict[str, Money] = Field(default_factory=dict)
    unavailable: str = Field(default="", description="why the CLM could not be read (the figures go without)")


# -- amendment propagation -----------------------------------------------------------------------
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
    """The amendments the CLM holds for a record (sequence, the CLM's ID), for gaps and unnumbered signals."""

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
    prorate: bool = True
    idempotency_key: str = Field(min_length=1)


class SubscriptionEndInput(BaseModel):
    subscription_id: str
    end_date: date | None
    idempotency_key: str = Field(min_length=1)


# -- billable time -----------------------------------------------------------------------------------
class ProjectTimeInput(BaseModel):
    """Bill one period of a time-and-materials project's approved time at the contract's rate card."""

    project_code: str
    legal_entity: str
    tenant_id: str
    project_id: str = Field(min_length=1, description="the ERP project")
    customer_id: str = Field(min_length=1, description="the billing customer")
    deal_id: str = ""
    currency: str
    rates: dict[str, Money] = Field(description="rate-card role -> hourly rate (the contract's)")
    period: BillingPeriod
    days_until_due: int = Field(default=30, ge=0)
    idempotency_key: str = Field(min_length=1)
