"""Inputs, results, signals, updates and queries of the workflows (one model each)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from canonical import Contract, ContractTerms, Deal, Engagement, EventEnvelope, MissingField
from canonical.authority import ApprovalFacts, ApprovalProof, normalise_identity
from canonical.billing import OneOffInvoice
from canonical.company_figures import FiguresReport
from canonical.deal import ProvisionedEntity
from canonical.exceptions import ExceptionKind
from canonical.ledger import LedgerInvoice
from canonical.matching import CustomerMatch
from canonical.money import DecimalAmount, Money
from canonical.reconciliation import EntityTotals, Finding, SourceRead
from canonical.requests import AccountFigures
from canonical.settlement import LedgerBook
from canonical.time_billing import BillingPeriod, ProjectTimeBilled


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


class QuoteToCashInput(BaseModel):
    deal_id: str = Field(min_length=1)
    trigger: str = Field(default="manual", description="manual, webhook, poll")
    source_event_id: str | None = None


class ApprovalDecision(BaseModel):
    """The ``decide_approval`` update's argument. ``proof`` is the approvals API's signature: without a valid
    one the validator refuses the decision (see ``canonical.authority``)."""

    approver: str
    approved: bool
    note: str = ""
    proof: ApprovalProof | None = None

    @field_validator("approver")
    @classmethod
    def _approver(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("approver is required")
        return normalise_identity(value)


class ApprovalOutcome(BaseModel):
    """What ``decide_approval`` answers at once (``pending`` when a second approver must still decide)."""

    accepted: bool
    status: str
    approver: str
    note: str = ""
    approvals: int = 1
    required: int = 1


class RecordedDecision(BaseModel):
    """Who decided, when, by which channel, and the subject of the token that authenticated them."""

    approver: str
    approved: bool
    note: str = ""
    channel: str = ""
    subject: str = ""
    at: datetime


class ApprovalState(BaseModel):
    """One approval request as the status query shows it: what is approved, who decided and when; never a
    proof. ``request_id``, ``run_id`` and ``terms_digest`` are what a proof must name to decide it."""

    reasons: list[str]
    requested_at: datetime
    expires_at: datetime
    reminders_sent: int = 0
    status: str = "pending"
    decision: ApprovalDecision | None = Field(default=None, description="the final decision (the last approver's), "
                                                                        "kept without its proof")
    decided_at: datetime | None = None
    facts: ApprovalFacts | None = Field(default=None, description="what the approvers' authority is judged on")
    required: int = Field(default=1, description="distinct approvers needed (2 above the dual threshold)")
    decisions: list[RecordedDecision] = Field(default_factory=list)
    title: str = Field(default="", description="what is approved: the deal, or the contract and amendment")
    company: str = ""
    terms: str = Field(default="", description="the commercial terms, for people deciding")
    request_id: int = Field(default=0, description="minted by the approval gate when the request opened")
    run_id: str = Field(default="", description="the run the request belongs to")
    amendment_sequence: int | None = None
    terms_digest: str = Field(default="", description="canonical.authority.terms_digest of facts and sequence")


class ApprovalGateMemory(BaseModel):
    """What the approval gate carries across continue-as-new: the last request ID it minted and the nonces
    of proofs already used (each until the proof's expiry)."""

    last_request_id: int = 0
    used_nonces: dict[str, datetime] = Field(default_factory=dict)


class DealCorrection(BaseModel):
    """The ``deal_corrected`` signal: the corrected deal, or nothing to make the workflow re-read it."""

    deal: Deal | None = None
    source_event_id: str | None = None
    changed_properties: list[str] = Field(default_factory=list)


class RecheckRequest(BaseModel):
    requested_by: str = "operator"


class CustomerMatchChoice(BaseModel):
    """The ``choose_customer_match`` update: a person settles an ambiguous match of the deal's customer in one
    legal entity's ERP — one of the candidates shown (``record_id``), or a new customer (``new_customer``)."""

    legal_entity: str = Field(min_length=1)
    system: Literal["erp", "billing"] = Field(default="erp", description="whose customer: the entity's ERP "
                                              "contact or its billing customer")
    record_id: str | None = None
    new_customer: bool = False
    chosen_by: str = Field(min_length=1, max_length=200)


class CustomerMatchChosen(BaseModel):
    legal_entity: str
    system: str = "erp"
    record_id: str | None = None
    new_customer: bool = False


class PendingCustomerMatch(BaseModel):
    """An ambiguous match waiting for a person (the ``status`` query and the finance inbox show it)."""

    legal_entity: str
    system: str = Field(default="erp", description="erp or billing")
    erp: str = Field(description="the label of the entity's ERP, as operators read it")
    match: CustomerMatch


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


class Milestone(BaseModel):
    """A business moment of a run, for the KPIs: ``started``, ``data_exception``, ``contract_signed``,
    ``project_created``, ``billing_live`` (per entity), ``customer_created`` / ``customer_reused``."""

    name: str
    at: datetime
    legal_entity: str = ""


class QuoteToCashStatus(BaseModel):
    """The ``status`` query: everything an operator needs to know about the deal's run."""

    deal_id: str
    stage: Stage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    exception_since: datetime | None = Field(default=None, description="when the exception kind began (its SLA "
                                             "runs from here)")
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
    milestones: list[Milestone] = Field(default_factory=list)
    customer_matches: list[PendingCustomerMatch] = Field(default_factory=list, description="ambiguous matches "
                                                         "waiting for a person (``customer_match`` exception)")


class QuoteToCashResult(BaseModel):
    deal_id: str
    outcome: Stage
    reason: str = ""
    contract: Contract | None = None
    engagements: list[Engagement] = Field(default_factory=list)
    business_keys: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Amendment propagation (one workflow per contract: contract-<clm>-<recordId>)
# ---------------------------------------------------------------------------------------------
class AmendmentStage(StrEnum):
    """The ``Stage`` search attribute of a contract's amendment propagation run."""

    LOADING = "loading"
    WAITING = "waiting"
    AMENDMENT_GAP = "amendment_gap"
    APPLYING = "applying"
    AWAITING_APPROVAL = "awaiting_approval"
    OWNERSHIP_CONFLICT = "ownership_conflict"
    PROPAGATION_FAILED = "propagation_failed"
    NOT_PROVISIONED = "not_provisioned"


class AmendmentRecord(BaseModel):
    """One amendment as this workflow handled it, with its propagation cycle time."""

    sequence: int
    clm_amendment_id: str | None = None
    received_at: datetime | None = None
    executed_at: datetime | None = Field(default=None, description="when the CLM executed it (signal), else "
                                                                    "when the signal arrived")
    applied_at: datetime | None = None
    cycle_time_seconds: float | None = Field(default=None, description="executed -> last system updated")
    outcome: str = Field(default="pending", description="pending, applied, rejected")
    summary: str = ""
    approval: ApprovalState | None = None
    deliveries: int = 1


class AmendmentsCarried(BaseModel):
    """What one run hands to the next at continue-as-new: current terms, sequence and targets."""

    deal_id: str
    title: str = ""
    counterparty: str = ""
    terms: ContractTerms
    next_sequence: int = 1
    provisioned: list[ProvisionedEntity] = Field(default_factory=list)
    budgets: dict[str, str] = Field(default_factory=dict, description="project code -> last budget we wrote")
    billing_ids: list[str] = Field(default_factory=list, description="billing IDs of the contract (prices...)")
    exception_kind: ExceptionKind = ExceptionKind.NONE
    exception_since: datetime | None = Field(default=None, description="when the exception kind began (its SLA "
                                             "runs from here)")
    pending: list[AmendmentRecord] = Field(default_factory=list, description="received, not yet applied")
    history: list[AmendmentRecord] = Field(default_factory=list, description="the most recent applied ones")
    business_keys: list[str] = Field(default_factory=list)
    gap_since: datetime | None = None
    duplicates_ignored: int = 0
    runs: int = 1
    deal_owner_id: str | None = None
    approval_gate: ApprovalGateMemory = Field(default_factory=ApprovalGateMemory)


class ContractAmendmentsInput(BaseModel):
    """Start (or continue-as-new) input of ``ContractAmendmentsWorkflow``."""

    record_id: str = Field(min_length=1, description="the CLM record of the executed contract")
    deal_id: str | None = None
    carried: AmendmentsCarried | None = Field(default=None, description="state carried across continue-as-new")


class AmendmentSignal(BaseModel):
    """The ``amendment_executed`` signal (signal-with-start from ingress and ``starter.py amend``)."""

    record_id: str
    sequence: int | None = Field(default=None, description="None: read it from the CLM")
    clm_amendment_id: str | None = None
    source_event_id: str | None = None
    executed_at: datetime | None = Field(default=None, description="when the CLM executed it (the webhook's "
                                                                   "time); the signal's arrival if unknown")


class GapResolution(BaseModel):
    """The ``resolve_gap`` update: an operator asks the workflow to fetch missing amendments from the CLM."""

    operator: str = Field(min_length=1)
    note: str = ""


class GapResolutionResult(BaseModel):
    found: list[int] = Field(default_factory=list, description="sequences fetched from the CLM")
    still_missing: list[int] = Field(default_factory=list)


class ConflictResolution(BaseModel):
    """The ``resolve_conflict`` update: keep the ERP's value (skip our write) or overwrite it with ours."""

    operator: str = Field(min_length=1)
    keep_erp_value: bool = True
    note: str = ""


class RetryRequest(BaseModel):
    """The ``retry_propagation`` update: an operator fixed the cause; propagate the amendment again."""

    operator: str = Field(min_length=1)


class ContractAmendmentsStatus(BaseModel):
    """The ``status`` query of a contract's amendment propagation."""

    record_id: str
    deal_id: str = ""
    stage: AmendmentStage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    exception_since: datetime | None = Field(default=None, description="when the exception kind began (its SLA "
                                             "runs from here)")
    waiting_for: str = ""
    next_sequence: int = 1
    pending_sequences: list[int] = Field(default_factory=list)
    missing_sequences: list[int] = Field(default_factory=list)
    terms: ContractTerms | None = None
    provisioned: list[ProvisionedEntity] = Field(default_factory=list)
    current: AmendmentRecord | None = None
    history: list[AmendmentRecord] = Field(default_factory=list)
    duplicates_ignored: int = 0
    conflict: str = ""
    failure: str = ""
    business_keys: list[str] = Field(default_factory=list)
    runs: int = 1
    timeline: list[TimelineEntry] = Field(default_factory=list)


class ReconciliationStage(StrEnum):
    """Where a reconciliation run is (``Stage`` search attribute)."""

    RECONCILING = "reconciling"
    RECONCILED = "reconciled"


class CutoverStage(StrEnum):
    """Where an ERP cut-over is (``Stage`` search attribute)."""

    SURVEYING = "surveying"
    MOVING = "moving"
    MOVED = "moved"
    REFUSED = "refused"


class BackfillStage(StrEnum):
    """Where a company backfill is (``Stage`` search attribute)."""

    BACKFILLING = "backfilling"
    BACKFILLED = "backfilled"


# ---------------------------------------------------------------------------------------------
# Invoice feedback (one workflow per billing customer: ledger-<billing>-<customerId>)
# ---------------------------------------------------------------------------------------------
class LedgerStage(StrEnum):
    """The ``Stage`` search attribute of a billing customer's ledger: is anything still owed?"""

    OPEN_ITEMS = "open_items"
    SETTLED = "settled"  # nothing open: every invoice paid, credited, written off or void (or none yet)


class LedgerCarried(BaseModel):
    """The ledger's state handed from one run to the next at continue-as-new: the folded book
    (``canonical.settlement.fold``) and the events received but not applied yet."""

    book: LedgerBook | None = None
    pending: list[EventEnvelope] = Field(default_factory=list, description="received, not yet applied")
    runs: int = 1
    exception_kind: ExceptionKind = ExceptionKind.NONE
    exception_since: datetime | None = Field(default=None, description="when the exception kind began (its SLA "
                                             "runs from here)")
    figures_owner: bool = Field(default=False, description="the CRM company's figures owner was reached (signal "
                                "it; else start it)")


class AccountLedgerInput(BaseModel):
    """Start (or continue-as-new) input of ``AccountLedgerWorkflow``."""

    customer_id: str = Field(min_length=1)
    carried: LedgerCarried | None = Field(default=None, description="state carried across continue-as-new")


class LedgerStatusRequest(BaseModel):
    include_settled: bool = False


class LedgerStatus(BaseModel):
    """The ledger's ``open_items`` query: open invoices and balances per currency."""

    customer_id: str
    crm_company_id: str | None = None
    exception_kind: ExceptionKind = ExceptionKind.NONE
    exception_since: datetime | None = Field(default=None, description="when the exception kind began (its SLA "
                                             "runs from here)")
    open_items: list[LedgerInvoice] = Field(default_factory=list)
    settled_items: list[LedgerInvoice] = Field(default_factory=list)
    balances: list[AccountFigures] = Field(default_factory=list)
    events_applied: int = 0
    runs: int = 1
    timeline: list[TimelineEntry] = Field(default_factory=list)
    problems: dict[str, ExceptionKind] = Field(default_factory=dict,
                                               description="\"customer\" or \"crm\" -> exception kind")


class RepostRequest(BaseModel):
    """``repost`` update on the ledger: post again the ERP writes still pending (of one invoice, or all)."""

    invoice_id: str | None = Field(default=None, description="billing invoice ID; all invoices when empty")
    by: str = "operator"
    refresh_figures: bool = Field(default=False, description="also report the CRM figures again (the company's "
                                  "owner writes them over a hand edit)")


class RepostResult(BaseModel):
    posted: int = 0
    figures_reported: bool = Field(default=False, description="the CRM figures were reported (or written) again")
    still_pending: list[str] = Field(default_factory=list, description="<invoiceId> <kind>: <reason>")


class ReconciliationScope(BaseModel):
    """What one reconciliation run looks at; empty lists mean everything. Operators narrow a run to some
    customers, deals or entities (``starter.py reconcile --customer ... --deal ... --entity ...``);
    findings are closed only by a later run of the same scope."""

    legal_entities: list[str] = Field(default_factory=list)
    customer_ids: list[str] = Field(default_factory=list, description="billing customers")
    deal_ids: list[str] = Field(default_factory=list, description="CRM deals (contracts and projects)")

    def key(self) -> str:
        """A stable name of the scope ("all" when unrestricted)."""
        parts = [f"{name}={','.join(sorted(values))}" for name, values in
                 (("entity", self.legal_entities), ("customer", self.customer_ids), ("deal", self.deal_ids))
                 if values]
        return ";".join(parts) or "all"


class ReconciliationInput(BaseModel):
    scope: ReconciliationScope = Field(default_factory=ReconciliationScope)
    trigger: str = Field(default="schedule", description="schedule, manual")
    full_pass: bool | None = Field(default=None, description="True: read everything; False: only what changed "
                                   "since the checkpoint; None: full when the last full pass is old enough")


class ReconciliationResult(BaseModel):
    """The run's summary: open findings by kind, what opened and closed, per-entity totals."""

    run_id: str
    scope: str
    counts: dict[str, int] = Field(default_factory=dict, description="open findings by kind")
    opened: int = 0
    closed: int = 0
    still_open: int = 0
    totals: list[EntityTotals] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list, description="the findings seen by this run (at most "
                                    "200 per control; the findings store holds them all)")
    findings_total: int = 0
    reads: list[SourceRead] = Field(default_factory=list, description="how each source was read")


# The ledger's signal is ``billing_event`` carrying ``canonical.EventEnvelope``.

AMENDMENTS_WORKFLOW = "ContractAmendmentsWorkflow"
AMENDMENT_SIGNAL = "amendment_executed"
LEDGER_WORKFLOW = "AccountLedgerWorkflow"
LEDGER_SIGNAL = "billing_event"
RECONCILIATION_WORKFLOW = "ReconciliationWorkflow"




# -- one-off invoicing ------------------------------------------------------------------------------
class InvoicingStage(StrEnum):
    WAITING = "waiting"  # drafts wait for their billing date or their milestone's acceptance
    DONE = "done"  # every draft finalized


class OneOffInvoicingInput(BaseModel):
    """The draft one-off invoices of one project (deal x entity), as quote-to-cash created them."""

    project_code: str
    legal_entity: str
    drafts: list[OneOffInvoice]
    keys: list[str] = Field(default_factory=list, description="``system:object:id`` of the drafts (findable)")
    tenant_id: str = Field(default="", description="the ERP tenant of the project")
    project_id: str = Field(default="", description="the ERP's project ID: when set, the project system is polled "
                            "for milestones a person accepted there")
    acceptance_poll_seconds: float = Field(default=3600, gt=0)
    finalized: list[str] = Field(default_factory=list, description="invoice IDs finalized by earlier runs "
                                 "(continue-as-new)")


class MilestoneAcceptance(BaseModel):
    """A person accepted a milestone: its invoice is finalized now, whatever its billing date."""

    charge_code: str
    accepted_by: str = Field(min_length=1)


class OneOffInvoicingStatus(BaseModel):
    """Which drafts wait (and for what), which were finalized, which billing refused."""

    stage: InvoicingStage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    waiting: list[OneOffInvoice]
    finalized: list[str] = Field(default_factory=list, description="invoice IDs, in the order finalized")
    refused: dict[str, str] = Field(default_factory=dict, description="invoice ID -> why billing refused (tried "
                                    "again daily)")
    timeline: list[TimelineEntry] = Field(default_factory=list)


# -- a CRM company's figures over every ledger ---------------------------------------------------------
#: the signal a ledger sends its company's figures owner (``CompanyFiguresWorkflow``)
FIGURES_SIGNAL = "ledger_figures"


class FiguresStage(StrEnum):
    CURRENT = "current"  # the CRM shows the sum of every ledger's newest report
    PENDING = "pending"  # a report is not written yet (or the CRM refused it: tried again)


class CompanyFiguresInput(BaseModel):
    """Start (or continue-as-new) input of ``CompanyFiguresWorkflow``: the reports held so far (a ledger
    starting it brings its first)."""

    company_id: str = Field(min_length=1)
    reports: list[FiguresReport] = Field(default_factory=list)
    runs: int = 1
    written: bool = Field(default=False, description="the reports held were all written to the CRM")


class CompanyFiguresStatus(BaseModel):
    """The ``figures`` query: what the CRM company shows (or will), and each ledger's part."""

    company_id: str
    stage: FiguresStage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    company: list[AccountFigures] = Field(default_factory=list)
    deals: dict[str, list[AccountFigures]] = Field(default_factory=dict)
    customers: list[str] = Field(default_factory=list, description="the billing customers (ledgers) reporting")
    writes: int = Field(default=0, description="figure writes done by this run")
    runs: int = 1
    timeline: list[TimelineEntry] = Field(default_factory=list)


# -- billable time ------------------------------------------------------------------------------------
class TimeBillingStage(StrEnum):
    WAITING = "waiting"  # the current period runs; its time is billed when it ends
    BILLING = "billing"
    DONE = "done"  # the contract's last period is billed


class TimeBillingInput(BaseModel):
    """A time-and-materials project (deal x entity) whose approved time is billed each calendar month at the
    contract's rate card, from the month of ``start_date`` through the month of ``end_date`` (no end: until
    the flow is stopped). ``next_period`` and the totals carry state across continue-as-new."""

    project_code: str
    legal_entity: str
    tenant_id: str
    project_id: str
    customer_id: str
    deal_id: str = ""
    currency: str
    rates: dict[str, Money]
    start_date: date
    end_date: date | None = None
    days_until_due: int = Field(default=30, ge=0)
    keys: list[str] = Field(default_factory=list)
    next_period: BillingPeriod | None = None
    invoices: list[str] = Field(default_factory=list, description="billing invoices made so far (carried)")
    billed_entries: int = 0


class TimeBillingStatus(BaseModel):
    """Which period runs, what each period billed, the time billed so far against the project's budget."""

    stage: TimeBillingStage
    exception_kind: ExceptionKind = ExceptionKind.NONE
    period: BillingPeriod | None = None
    invoices: list[str] = Field(default_factory=list)
    billed_entries: int = 0
    billed_to_date: Money | None = None
    hours_to_date: DecimalAmount = Decimal(0)
    budget: Money | None = None
    periods: list[ProjectTimeBilled] = Field(default_factory=list, description="this run's periods, newest last")
    timeline: list[TimelineEntry] = Field(default_factory=list)
