"""Small models that cross the ports: contract launch requests, CRM write-backs, pages."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from canonical.contract import ContractTerms
from canonical.deal import Deal
from canonical.parties import Account, Contact


class ContractRequest(BaseModel):
    """What we ask the CLM to draft and send for signature."""

    deal_crm_id: str
    title: str
    template_id: str
    legal_entity: str
    counterparty: Account
    signer: Contact
    terms: ContractTerms


class DealWriteBack(BaseModel):
    """Fields the integration writes back to a CRM deal. ``None`` means "leave as is".

    Each adapter maps these to its own property names (HubSpot: ``revops_*`` custom properties).
    """

    revops_status: str | None = None
    revops_exception: str | None = Field(default=None, description="empty string clears it")
    revops_workflow_id: str | None = None
    clm_workflow_id: str | None = None
    clm_record_id: str | None = None
    erp_contact_ids: str | None = Field(default=None, description="comma-separated, one per entity")
    erp_project_ids: str | None = None
    project_codes: str | None = None
    billing_customer_ids: str | None = None
    billing_schedule_ids: str | None = None
    contract_value: str | None = Field(default=None, description="decimal string in the deal currency")
    approval_status: str | None = None
    approval_note: str | None = None
    forecast_amount: str | None = Field(default=None, description="revenue forecast: contract value as amended")
    forecast_monthly_recurring: str | None = Field(default=None, description="recurring revenue per month")
    forecast_end_date: str | None = Field(default=None, description="ISO date the forecast runs to")
    amendment_sequence: str | None = Field(default=None, description="last amendment propagated")
    amendment_status: str | None = Field(default=None, description="outcome of the last amendment")

    def properties(self) -> dict[str, str]:
        """Only the fields that are set."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class AccountFigures(BaseModel):
    """Billing roll-ups written to the CRM company and deal, per currency."""

    currency: str
    billed: str
    paid: str
    outstanding: str
    overdue: str
    credited: str
    last_payment_date: date | None = None
    dso_days: str | None = None


class DealPage(BaseModel):
    """One page of deals modified since a checkpoint."""

    deals: list[Deal] = Field(default_factory=list)
    next_after: str | None = None
    checkpoint: datetime | None = Field(default=None, description="latest modification time seen")


class UpsertResult(BaseModel):
    """IDs of a batch upsert, in input order."""

    ids: list[str] = Field(default_factory=list)
    created: int = 0
    updated: int = 0


__all__ = ["AccountFigures", "ContractRequest", "DealPage", "DealWriteBack", "UpsertResult"]
