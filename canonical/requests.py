"""Small models that cross the ports: contract launch requests, CRM write-backs, pages."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from canonical.contract import ContractTerms
from canonical.deal import Deal, DealWriteBack, ProvisionedEntity, ProvisioningRecord  # noqa: F401
from canonical.parties import Account, Contact


class ContractRequest(BaseModel):
    """What we ask the CLM to draft and send for signature."""

    deal_crm_id: str
    title: str
    template_id: str | None = None  # the CLM adapter's configured template unless named
    legal_entity: str
    counterparty: Account
    signer: Contact
    terms: ContractTerms


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
    unbilled: str | None = Field(default=None, description="contract value not invoiced yet, net of credit notes "
                                 "(``canonical.company_figures.unbilled_figures``); None: no contract known, not "
                                 "written")


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


__all__ = ["AccountFigures", "ContractRequest", "DealPage", "DealWriteBack", "ProvisionedEntity", "ProvisioningRecord",
           "UpsertResult"]
