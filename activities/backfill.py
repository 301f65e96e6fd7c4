"""Activities of the company backfill: page CRM companies, create the missing ERP contacts in batches,
paced below the vendors' rate limits by a token bucket per vendor and tenant in this worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field
from temporalio import activity

from activities.retrying import business_step
from canonical import Account
from canonical.backfill import CompanyPage, ErpCustomerDraft
from canonical.keys import erp_contact_reference
from connectors.pacing import Pacer
from connectors.ports import CrmPort, ErpPort
from settings import Settings


class FetchCompaniesInput(BaseModel):
    after: str | None = None
    limit: int = 100
    requests_per_second: float | None = None


class ErpContactsResult(BaseModel):
    created: int = 0
    existing: int = 0
    requests: int = 0


class FindErpContactsInput(BaseModel):
    tenant_id: str
    entity_code: str
    accounts: list[Account] = Field(default_factory=list)
    batch_size: int = 50
    requests_per_second: float | None = None


class ErpContactsPlan(BaseModel):
    """What a page needs: the drafts missing from the ERP, and how many contacts were there already."""

    missing: list[ErpCustomerDraft] = Field(default_factory=list)
    existing: int = 0
    requests: int = 0


class CreateErpContactsInput(BaseModel):
    tenant_id: str
    drafts: list[ErpCustomerDraft] = Field(default_factory=list)
    batch_size: int = 50
    requests_per_second: float | None = None
    idempotency_key: str


def backfill_reference(account: Account, entity_code: str) -> str:
    """The ERP contact number of a CRM company in an entity: the one quote-to-cash uses."""
    return erp_contact_reference(account.crm_id or "", entity_code)


def _drafts(accounts: list[Account], entity_code: str) -> list[ErpCustomerDraft]:
    return [ErpCustomerDraft(account=a, reference=backfill_reference(a, entity_code)) for a in accounts if a.crm_id]


class BackfillActivities:
    def __init__(self, *, settings: Settings, crm: CrmPort, erp: ErpPort) -> None:
        self.settings = settings
        self.crm = crm
        self.erp = erp
        self._pacers: dict[tuple[str, str, float], Pacer] = {}

    async def _pace(self, vendor: str, scope: str, rate: float | None) -> None:
        if rate:
            pacer = self._pacers.setdefault((vendor, scope, rate), Pacer(rate))
            await pacer.take()

    @activity.defn(name="fetch_company_page")
    @business_step
    async def fetch_company_page(self, request: FetchCompaniesInput) -> CompanyPage:
        await self._pace("hubspot", "", request.requests_per_second)
        return await self.crm.list_companies(after=request.after, limit=request.limit)

    async def _missing(self, tenant_id: str, batch: list[ErpCustomerDraft], rate: float | None
                       ) -> list[ErpCustomerDraft]:
        """The drafts of ``batch`` with no ERP contact under their reference (one paced request)."""
        await self._pace("xero", tenant_id, rate)
        existing = await self.erp.find_customers(tenant_id, [d.reference for d in batch])
        return [d for d in batch if d.reference not in existing]

    @activity.defn(name="find_erp_contacts")
    @business_step
    async def find_erp_contacts(self, request: FindErpContactsInput) -> ErpContactsPlan:
        """Which accounts of a page have no ERP contact yet (read only, ``batch_size`` references a request)."""
        plan = ErpContactsPlan()
        drafts = _drafts(request.accounts, request.entity_code)
        for start in range(0, len(drafts), request.batch_size):
            batch = drafts[start:start + request.batch_size]
            missing = await self._missing(request.tenant_id, batch, request.requests_per_second)
            plan.requests += 1
            plan.missing += missing
            plan.existing += len(batch) - len(missing)
        return plan

    @activity.defn(name="create_erp_contacts")
    @business_step
    async def create_erp_contacts(self, request: CreateErpContactsInput) -> ErpContactsResult:
        """Create exactly ``drafts``, ``batch_size`` a request. The drafts and keys are the same on every
        attempt, so a retry after a lost answer gets the ERP's replay of the first create, not a second
        contact, and the count stays true."""
        result = ErpContactsResult()
        for start in range(0, len(request.drafts), request.batch_size):
            batch = request.drafts[start:start + request.batch_size]
            await self._pace("xero", request.tenant_id, request.requests_per_second)
            await self.erp.create_customers(request.tenant_id, batch,
                                            idempotency_key=f"{request.idempotency_key}:{start}")
            result.requests += 1
            result.created += len(batch)
        return result

    def all(self) -> list[Callable[..., Any]]:
        return [self.fetch_company_page, self.find_erp_contacts, self.create_erp_contacts]
