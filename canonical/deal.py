"""A CRM deal in canonical form, with its lines and the commercial checks before approval."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from canonical.money import DecimalAmount, Money, normalise_currency, round_amount
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
        """Quantity × unit price less discount, rounded once."""
        gross = self.quantity * self.unit_price
        return Money(amount=round_amount(gross * (1 - self.discount_percent / 100), currency), currency=currency)


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
    owner_id: str | None = Field(default=None, description="the CRM user who owns the deal (hubspot_owner_id)")
    account: Account | None = None
    contacts: list[Contact] = Field(default_factory=list)
    lines: list[DealLine] = Field(default_factory=list)
    external_ids: dict[str, str] = Field(default_factory=dict, description="write-backs already on the deal")

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
        """Sum of the lines' net amounts (requires a currency)."""
        if not self.currency:
            raise ValueError("deal has no currency")
        total = Money.zero(self.currency)
        for line in self.lines:
            total = total + line.net(self.currency)
        return total

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


