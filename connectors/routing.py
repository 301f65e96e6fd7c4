"""The ERP port every flow sees: each call goes to the adapter of its tenant's legal entity."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from canonical import Account, Contact, CreditNote, Invoice, Payment, Project, TimeEntry
from canonical.backfill import ErpBatchResult, ErpCustomerDraft
from canonical.matching import CustomerCandidate
from canonical.reconciliation import ErpCreditNote, ErpPayment
from connectors.errors import UnknownTenant
from connectors.ports import ErpChangeFeed, ErpPort, ErpTimesheets


class ErpRouter:
    """The ERP port of every flow: each call goes to the adapter of its tenant's legal entity, by an explicit
    map. A tenant no entity names is refused (:class:`UnknownTenant`); there is no default adapter.
    Implements :class:`ErpPort` and :class:`ErpChangeFeed`."""

    def __init__(self, by_tenant: Mapping[str, ErpPort]) -> None:
        self._by_tenant = dict(by_tenant)

    @property
    def tenants(self) -> list[str]:
        """The tenants this router serves (one per configured legal entity)."""
        return sorted(self._by_tenant)

    def adapter_for(self, tenant_id: str) -> ErpPort:
        """The adapter serving ``tenant_id``; :class:`UnknownTenant` when no entity names it."""
        found = self._by_tenant.get(tenant_id)
        if found is None:
            raise UnknownTenant(tenant_id, self.tenants)
        return found

    def _feed(self, tenant_id: str) -> ErpChangeFeed:
        adapter = self.adapter_for(tenant_id)
        if not isinstance(adapter, ErpChangeFeed):
            raise TypeError(f"the ERP adapter of tenant {tenant_id} cannot be read page by page "
                            f"({type(adapter).__name__} has no receivables feed)")
        return adapter

    # -- ErpPort ------------------------------------------------------------------------------------
    async def find_customer(self, tenant_id: str, reference: str) -> Account | None:
        return await self.adapter_for(tenant_id).find_customer(tenant_id, reference)

    async def upsert_customer(self, tenant_id: str, account: Account, *, contact: Contact | None,
                              reference: str, idempotency_key: str) -> Account:
        return await self.adapter_for(tenant_id).upsert_customer(
            tenant_id, account, contact=contact, reference=reference, idempotency_key=idempotency_key)

    async def archive_customer(self, tenant_id: str, contact_id: str) -> None:
        await self.adapter_for(tenant_id).archive_customer(tenant_id, contact_id)

    async def find_customers(self, tenant_id: str, references: list[str]) -> dict[str, str]:
        return await self.adapter_for(tenant_id).find_customers(tenant_id, references)

    async def customer_candidates(self, tenant_id: str, account: Account, *,
                                  email: str | None = None) -> list[CustomerCandidate]:
        return await self.adapter_for(tenant_id).customer_candidates(tenant_id, account, email=email)

    async def link_customer(self, tenant_id: str, contact_id: str, *, reference: str,
                            idempotency_key: str) -> Account:
        return await self.adapter_for(tenant_id).link_customer(tenant_id, contact_id, reference=reference,
                                                               idempotency_key=idempotency_key)

    async def create_customers(self, tenant_id: str, drafts: list[ErpCustomerDraft], *,
                               idempotency_key: str) -> ErpBatchResult:
        return await self.adapter_for(tenant_id).create_customers(
            tenant_id, drafts, idempotency_key=idempotency_key)

    async def create_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        return await self.adapter_for(tenant_id).create_project(
            tenant_id, project, idempotency_key=idempotency_key)

    async def close_project(self, tenant_id: str, project_id: str) -> None:
        await self.adapter_for(tenant_id).close_project(tenant_id, project_id)

    async def get_project(self, tenant_id: str, project_id: str) -> Project:
        return await self.adapter_for(tenant_id).get_project(tenant_id, project_id)

    async def update_project(self, tenant_id: str, project: Project, *, idempotency_key: str) -> Project:
        return await self.adapter_for(tenant_id).update_project(
            tenant_id, project, idempotency_key=idempotency_key)

    async def add_time_entry(self, tenant_id: str, project_id: str, entry: TimeEntry, *,
                             idempotency_key: str) -> TimeEntry:
        return await self.adapter_for(tenant_id).add_time_entry(
            tenant_id, project_id, entry, idempotency_key=idempotency_key)

    async def accepted_milestones(self, tenant_id: str, project_id: str) -> list[str]:
        return await self.adapter_for(tenant_id).accepted_milestones(tenant_id, project_id)

    async def time_entries(self, tenant_id: str, project_id: str) -> list[TimeEntry]:
        adapter = self.adapter_for(tenant_id)
        if not isinstance(adapter, ErpTimesheets):
            raise TypeError(f"the ERP adapter of tenant {tenant_id} cannot read logged time "
                            f"({type(adapter).__name__} has no timesheets)")
        return await adapter.time_entries(tenant_id, project_id)

    async def post_invoice(self, tenant_id: str, invoice: Invoice, *, erp_contact_id: str,
                           idempotency_key: str) -> str:
        return await self.adapter_for(tenant_id).post_invoice(
            tenant_id, invoice, erp_contact_id=erp_contact_id, idempotency_key=idempotency_key)

    async def record_payment(self, tenant_id: str, erp_invoice_id: str, payment: Payment, *,
                             idempotency_key: str) -> str:
        return await self.adapter_for(tenant_id).record_payment(
            tenant_id, erp_invoice_id, payment, idempotency_key=idempotency_key)

    async def post_credit_note(self, tenant_id: str, credit_note: CreditNote, *, erp_contact_id: str,
                               idempotency_key: str) -> str:
        return await self.adapter_for(tenant_id).post_credit_note(
            tenant_id, credit_note, erp_contact_id=erp_contact_id, idempotency_key=idempotency_key)

    async def void_invoice(self, tenant_id: str, erp_invoice_id: str, *, idempotency_key: str) -> None:
        await self.adapter_for(tenant_id).void_invoice(tenant_id, erp_invoice_id, idempotency_key=idempotency_key)

    async def reverse_credit_note(self, tenant_id: str, credit_note: CreditNote, *, idempotency_key: str) -> None:
        await self.adapter_for(tenant_id).reverse_credit_note(tenant_id, credit_note,
                                                              idempotency_key=idempotency_key)

    async def list_invoices(self, tenant_id: str, *, modified_since: datetime | None = None) -> list[Invoice]:
        return await self.adapter_for(tenant_id).list_invoices(
            tenant_id, modified_since=modified_since)

    async def list_projects(self, tenant_id: str, *, include_closed: bool = False) -> list[Project]:
        return await self.adapter_for(tenant_id).list_projects(
            tenant_id, include_closed=include_closed)

    # -- ErpChangeFeed ------------------------------------------------------------------------------
    async def invoices_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[Invoice], str | None]:
        return await self._feed(tenant_id).invoices_page(tenant_id, cursor, modified_since=modified_since)

    async def payments_page(self, tenant_id: str, cursor: str | None = None, *,
                            modified_since: datetime | None = None) -> tuple[list[ErpPayment], str | None]:
        return await self._feed(tenant_id).payments_page(tenant_id, cursor, modified_since=modified_since)

    async def credit_notes_page(self, tenant_id: str, cursor: str | None = None, *,
                                modified_since: datetime | None = None) -> tuple[list[ErpCreditNote], str | None]:
        return await self._feed(tenant_id).credit_notes_page(tenant_id, cursor, modified_since=modified_since)


__all__ = ["ErpRouter"]
