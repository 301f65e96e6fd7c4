"""Models of the company backfill (CRM companies -> ERP contacts)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from canonical import Account, Contact


class CompanyPage(BaseModel):
    """One page of CRM companies and the cursor of the next page (``None`` at the end)."""

    accounts: list[Account] = Field(default_factory=list)
    next_after: str | None = None


class ErpCustomerDraft(BaseModel):
    """An account to have in the ERP under ``reference`` (the ERP contact number), with its billing contact
    when the flow knows one (quote-to-cash does, the backfill does not)."""

    account: Account
    reference: str
    contact: Contact | None = None
    marker: str | None = Field(default=None, description="the ownership mark the create writes on the record "
                                                         "(``canonical.refs.ownership_marker``)")


class ErpBatchResult(BaseModel):
    """Contact IDs in draft order, and how many were created (the others existed already)."""

    contact_ids: list[str] = Field(default_factory=list)
    created: int = 0
    existing: int = 0
