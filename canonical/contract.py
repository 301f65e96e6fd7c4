"""Executed contract terms (the CLM owns them) and amendments to them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.deal import BillingInterval, BillingModel, billing_periods
from canonical.money import DecimalAmount, Money, line_amount


class ContractStatus(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    SIGNING = "signing"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


class Milestone(BaseModel):
    """A deliverable billed on acceptance."""

    code: str = Field(min_length=1)
    name: str
    amount: Money
    due_date: date | None = None
    requires_acceptance: bool = True
    accepted: bool = False
    billed: bool = False


class RateCardEntry(BaseModel):
    """A time-and-materials rate for one role."""

    role: str = Field(min_length=1)
    hourly_rate: Money


class BillingTrigger(StrEnum):
    ON_SIGNATURE = "on_signature"
    ON_START = "on_start"
    ON_MILESTONE_ACCEPTANCE = "on_milestone_acceptance"
    MONTHLY_IN_ARREARS = "monthly_in_arrears"
    PERIODIC_IN_ADVANCE = "periodic_in_advance"


class RecurringCharge(BaseModel):
    """A subscription or retainer charge: seats stay seats (``quantity`` x ``unit_price`` less
    ``discount_percent``), rounded once on the period's total (:meth:`per_period`), never folded into
    "1 x the total" (a later seat change would then price seats at a whole period's amount)."""

    kind: BillingModel = Field(default=BillingModel.SUBSCRIPTION, description="subscription or retainer")
    product_code: str
    name: str
    quantity: DecimalAmount = Field(gt=0)
    unit_price: Money = Field(description="per unit and period, before discount")
    discount_percent: DecimalAmount = Field(default=Decimal(0), ge=0, le=100)
    interval: BillingInterval = BillingInterval.MONTH

    def per_period(self) -> Money:
        """What one period bills: quantity x unit price less discount, rounded once (``line_amount``)."""
        return line_amount(self.quantity, self.unit_price.amount, self.discount_percent, self.unit_price.currency)

    def net_unit_price(self) -> Money:
        """The discounted unit price to the minor unit (a sub-minor-unit remainder goes to the total only)."""
        return Money(amount=self.unit_price.amount * (1 - self.discount_percent / 100),
                     currency=self.unit_price.currency)

    def over_term(self, start: date, end: date | None) -> Money:
        """What the charge bills over the term: one period's total times the periods of the term."""
        return self.per_period().times(billing_periods(start, end, self.interval))


class ContractTerms(BaseModel):
    """What was signed. The source of truth for billing and projects once executed."""

    start_date: date
    end_date: date | None = None
    total_value: Money
    billing_model: BillingModel
    payment_terms_days: int = Field(default=30, ge=0)
    milestones: list[Milestone] = Field(default_factory=list)
    rate_card: list[RateCardEntry] = Field(default_factory=list)
    recurring: list[RecurringCharge] = Field(default_factory=list)
    fixed_fee: Money | None = None
    billing_triggers: list[BillingTrigger] = Field(default_factory=list)
    budget_hours: DecimalAmount | None = None


class Contract(BaseModel):
    """A contract in the CLM: the launched workflow and, once executed, its record."""

    clm_workflow_id: str | None = None
    clm_record_id: str | None = None
    title: str
    counterparty: str
    status: ContractStatus = ContractStatus.DRAFT
    terms: ContractTerms | None = None
    executed_on: date | None = None
    amendments: list[Amendment] = Field(default_factory=list)
    deal_crm_id: str | None = None
    legal_entity: str | None = Field(default=None, description="the entity that signed (contracting party)")


class AmendmentChange(BaseModel):
    """One change an amendment makes to the terms."""

    field: str = Field(description="e.g. total_value, end_date, rate_card, milestones, recurring")
    old: str | None = None
    new: str | None = None


class Amendment(BaseModel):
    """A numbered amendment executed in the CLM; applied strictly in sequence."""

    contract_record_id: str
    sequence: int = Field(ge=1)
    executed_on: date | None = None
    terms: ContractTerms | None = Field(default=None, description="the terms as amended, when known")
    changes: list[AmendmentChange] = Field(default_factory=list)
    clm_amendment_id: str | None = None



def value_decreases(old: ContractTerms, new: ContractTerms) -> bool:
    """True when an amendment lowers contract value or any rate: these need finance approval."""
    if new.total_value.amount < old.total_value.amount:
        return True
    old_rates = {r.role: r.hourly_rate.amount for r in old.rate_card}
    return any(r.hourly_rate.amount < old_rates.get(r.role, Decimal(0)) for r in new.rate_card
               if r.role in old_rates)


Contract.model_rebuild()
