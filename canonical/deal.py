"""A CRM deal in canonical form, with its lines and the commercial checks before approval."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from canonical.money import DecimalAmount, Money, PricedLine, line_amount, normalise_currency, price_line
from canonical.parties import Account, Contact


class BillingModel(StrEnum):
    """How a deal line is billed."""

    FIXED_FEE = "fixed_fee"
    MILESTONE = "milestone"
    TIME_AND_MATERIALS = "time_and_materials"
    SUBSCRIPTION = "subscription"
    RETAINER = "retainer"


class BillingInterval(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_MONTHS = {BillingInterval.MONTH: 1, BillingInterval.QUARTER: 3, BillingInterval.YEAR: 12}


def add_months(start: date, months: int) -> date:
    """``start`` moved by ``months`` calendar months, the day kept or clamped to the month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def billing_periods(start: date | None, end: date | None, interval: BillingInterval) -> int:
    """How many billing periods of ``interval`` a term holds: those starting within it (its end date
    included, as reconciliation counts them). An open-ended or undated term is valued over one year."""
    months = _MONTHS[interval]
    if start is None or end is None:
        return max(1, 12 // months)
    count = 0
    while add_months(start, count * months) <= end:
        count += 1
    return max(count, 1)


class DealLine(BaseModel):
    """One priced line of a deal (a CRM line item)."""

    crm_id: str | None = None
    product_code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    quantity: DecimalAmount = Field(gt=0)
    unit_price: DecimalAmount = Field(ge=0, description="in the deal currency, before discount")
    discount_percent: DecimalAmount = Field(default=Decimal(0), ge=0, le=100)
    billing_model: BillingModel | None = None
    interval: BillingInterval | None = Field(default=None, description="for subscription and retainer lines")
    legal_entity: str | None = Field(default=None, description="entity code when a line is delivered elsewhere")

    def net(self, currency: str) -> Money:
        """Quantity × unit price less discount, rounded once (``canonical.money.line_amount``)."""
        return line_amount(self.quantity, self.unit_price, self.discount_percent, currency)

    def priced(self, currency: str) -> PricedLine:
        """The quantity and net unit price other systems are sent (``canonical.money.price_line``)."""
        return price_line(self.quantity, self.unit_price, self.discount_percent, currency)


class ProvisionedEntity(BaseModel):
    """Where one legal entity's part of a deal lives, and the figures last written there."""

    legal_entity: str
    tenant_id: str
    project_code: str
    project_id: str
    erp_contact_id: str = ""
    billing_customer_id: str = ""
    budget: str = Field(default="", description="the project budget last written, decimal in its currency")


class ProvisioningRecord(BaseModel):
    """What the integration provisioned for a deal: one entry per legal entity and the billing records.

    Written back to the CRM as one property, so a later flow (amendments) reads it instead of piecing it
    together from position-aligned lists.
    """

    entities: list[ProvisionedEntity] = Field(default_factory=list)
    billing_ids: list[str] = Field(default_factory=list, description="subscriptions, invoices, items, prices")


class DealWriteBack(BaseModel):
    """Fields the integration writes back to a CRM deal. ``None`` means "leave as is".

    Each adapter maps these to its own property names (HubSpot: ``revops_*`` custom properties).
    """

    revops_status: str | None = None
    revops_exception: str | None = Field(default=None, description="empty string clears it")
    revops_workflow_id: str | None = None
    clm_workflow_id: str | None = None
    clm_record_id: str | None = None
    provisioned: ProvisioningRecord | None = Field(default=None, description="what was provisioned, per entity")
    contract_value: str | None = Field(default=None, description="decimal string in the deal currency")
    approval_status: str | None = None
    approval_note: str | None = None
    forecast_amount: str | None = Field(default=None, description="revenue forecast: contract value as amended")
    forecast_monthly_recurring: str | None = Field(default=None, description="recurring revenue per month")
    forecast_end_date: str | None = Field(default=None, description="ISO date the forecast runs to")
    amendment_sequence: str | None = Field(default=None, description="last amendment propagated")
    amendment_status: str | None = Field(default=None, description="outcome of the last amendment")

    def properties(self) -> dict[str, str]:
        """Only the fields that are set, as the CRM stores them (the provisioning record as compact JSON)."""
        values: dict[str, str] = {k: v for k, v in self.model_dump(exclude={"provisioned"}).items() if v is not None}
        if self.provisioned is not None:
            values["provisioned"] = self.provisioned.model_dump_json(exclude_defaults=True)
        return values

    def merged_with(self, later: DealWriteBack) -> DealWriteBack:
        """One write-back carrying both; ``later``'s fields win."""
        return DealWriteBack.model_validate({**self.model_dump(exclude_none=True),
                                             **later.model_dump(exclude_none=True)})



class Deal(BaseModel):
    """A deal as the CRM has it. Fields may be missing; ``missing_commercial_fields`` says which."""

    crm_id: str
    name: str
    stage: str | None = None
    amount: DecimalAmount | None = None
    currency: str | None = None
    region: str | None = None
    legal_entity: str | None = Field(default=None, description="entity code if the CRM names one")
    billing_model: BillingModel | None = None
    start_date: date | None = None
    end_date: date | None = None
    payment_terms_days: int | None = Field(default=None, ge=0)
    non_standard_terms: bool = False
    owner_id: str | None = Field(default=None, description="the CRM user who owns the deal (the CRM's owner ID)")
    account: Account | None = None
    contacts: list[Contact] = Field(default_factory=list)
    lines: list[DealLine] = Field(default_factory=list)
    write_backs: DealWriteBack = Field(default_factory=lambda: DealWriteBack(),
                                       description="what the integration already wrote on the deal")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return normalise_currency(value) if value else None

    @model_validator(mode="after")
    def _dates(self) -> Deal:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    @property
    def billing_contact(self) -> Contact | None:
        for contact in self.contacts:
            if contact.role == "billing" and contact.email:
                return contact
        return next((c for c in self.contacts if c.email), None)

    def line_billing_model(self, line: DealLine) -> BillingModel | None:
        return line.billing_model or self.billing_model

    def total(self) -> Money:
        """The contract value over the term (requires a currency): each one-off line's net amount, and each
        recurring line's net amount per period times the periods of the term (:func:`billing_periods`)."""
        if not self.currency:
            raise ValueError("deal has no currency")
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + line.net(self.currency).times(self.line_periods(line))
        return total

    def line_periods(self, line: DealLine) -> int:
        """How many times ``line`` is billed over the term: 1 for a one-off line."""
        if self.line_billing_model(line) not in (BillingModel.SUBSCRIPTION, BillingModel.RETAINER):
            return 1
        return billing_periods(self.start_date, self.end_date, line.interval or BillingInterval.MONTH)

    def max_discount_percent(self) -> Decimal:
        return max((line.discount_percent for line in self.lines), default=Decimal(0))

    def missing_commercial_fields(self) -> list[MissingField]:
        """Mandatory commercial data that is absent, each with the reason a person can act on."""
        missing: list[MissingField] = []
        if not (self.legal_entity or self.region):
            missing.append(MissingField(field="region", reason="needed to choose the legal entity"))
        if not self.currency:
            missing.append(MissingField(field="currency", reason="needed to price and bill the deal"))
        if not self.start_date:
            missing.append(MissingField(field="start_date", reason="needed to start billing and the project"))
        if not self.account:
            missing.append(MissingField(field="company", reason="the deal has no associated company"))
        priced = [line for line in self.lines if line.unit_price > 0]
        if not priced:
            missing.append(MissingField(field="line_items", reason="at least one priced line item is required"))
        for line in self.lines:
            if self.line_billing_model(line) is None:
                missing.append(
                    MissingField(field=f"line_items[{line.product_code}].billing_model",
                                 reason="no billing model on the line or the deal")
                )
        if self.billing_contact is None:
            missing.append(MissingField(field="billing_contact", reason="no associated contact with an email"))
        return missing


class MissingField(BaseModel):
    """A mandatory field that is absent, and why it matters."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def describe_missing(missing: list[MissingField]) -> str:
    return "; ".join(str(m) for m in missing)


