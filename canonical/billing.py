"""Billing: schedules, invoices, payments and credit notes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.deal import BillingInterval
from canonical.money import DecimalAmount, Money


class BillingScheduleKind(StrEnum):
    SUBSCRIPTION = "subscription"
    MILESTONE = "milestone"
    TIME_AND_MATERIALS = "time_and_materials"
    RETAINER = "retainer"
    FIXED_FEE = "fixed_fee"


class ScheduledCharge(BaseModel):
    """One charge of a schedule: a recurring price or a one-off item on a date."""

    product_code: str
    description: str
    unit_amount: Money
    quantity: DecimalAmount = Field(default=Decimal(1), gt=0)
    interval: BillingInterval | None = Field(default=None, description="set for recurring charges")
    bill_on: date | None = Field(default=None, description="set for one-off charges")
    amount: Money | None = Field(default=None, description="what one period bills (the line total, rounded "
                                 "once); None: unit amount x quantity")

    def total(self) -> Money:
        """What the charge bills each time: ``amount``, else unit amount x quantity."""
        return self.amount if self.amount is not None else self.unit_amount.times(self.quantity)


class OneOffInvoice(BaseModel):
    """A one-off (fixed-fee or milestone) invoice the billing system holds as a draft until it is due: it is
    finalized on ``bill_on``, or earlier when its milestone is accepted (no ``bill_on``: acceptance only)."""

    invoice_id: str
    charge_code: str = Field(description="the charge's product code (the milestone's code)")
    bill_on: date | None = None


class BillingSchedule(BaseModel):
    """What the billing system should charge and when."""

    kind: BillingScheduleKind
    customer_id: str
    currency: str
    start_date: date
    end_date: date | None = None
    charges: list[ScheduledCharge] = Field(default_factory=list)
    days_until_due: int = Field(default=30, ge=0)
    billing_id: str | None = Field(default=None, description="subscription or schedule ID once created")
    item_ids: list[str] = Field(default_factory=list, description="invoice item IDs once created")
    drafts: list[OneOffInvoice] = Field(default_factory=list, description="one-off invoices created as drafts "
                                        "(milestone, fixed fee), each to be finalized when due")
    refs: list[str] = Field(default_factory=list,
                            description="``system:object:id`` of every record the billing system created for it")
    metadata: dict[str, str] = Field(default_factory=dict)


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


class TaxStatus(StrEnum):
    """The customer's tax treatment as billing records it (a registered or unregistered customer charged
    tax is ``taxable``; billing's "reverse" is ``reverse_charge``)."""

    TAXABLE = "taxable"
    EXEMPT = "exempt"
    REVERSE_CHARGE = "reverse_charge"


class TaxLine(BaseModel):
    name: str
    rate_percent: DecimalAmount
    amount: Money


class InvoiceLine(BaseModel):
    description: str
    quantity: DecimalAmount = Decimal(1)
    unit_amount: Money
    amount: Money
    product_code: str | None = None
    taxes: list[TaxLine] = Field(default_factory=list)
    ledger_account: str | None = Field(default=None, description="the account the ERP booked it to (ERP reads)")
    tax_code: str | None = Field(default=None, description="the tax code the ERP booked it with (ERP reads)")


class Invoice(BaseModel):
    """An invoice as the billing system issued it."""

    billing_id: str
    number: str | None = None
    customer_id: str
    currency: str
    status: InvoiceStatus
    issued_on: date | None = None
    due_on: date | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)
    lines_complete: bool = Field(default=True, description="False when the billing system sent only the first "
                                 "lines (read the invoice again before posting it anywhere)")
    subtotal: Money
    tax: Money
    total: Money
    amount_paid: Money
    amount_due: Money
    crm_deal_id: str | None = None
    legal_entity: str | None = None
    customer_tax_status: TaxStatus = Field(default=TaxStatus.TAXABLE, description="billing's tax treatment of "
                                           "the customer (billing's own default: taxable)")
    customer_country: str | None = Field(default=None, description="the customer's country (ISO 3166-1 "
                                         "alpha-2) as billing holds it: the region of its tax code")
    metadata: dict[str, str] = Field(default_factory=dict)
    payment_ids: list[str] = Field(default_factory=list, description="billing payments (charges) received")


class Payment(BaseModel):
    """Money received against an invoice; may be partial."""

    billing_id: str
    invoice_billing_id: str
    amount: Money
    paid_at: datetime
    method: str | None = None


class CreditNote(BaseModel):
    billing_id: str
    invoice_billing_id: str
    amount: Money
    reason: str | None = None
    issued_at: datetime | None = None
    before_payment: bool | None = Field(default=None, description="True: it lowered what the invoice asks for "
                                        "(billing issued it while unpaid); False: issued after payment (a refund "
                                        "or credit balance); None: billing did not say")
