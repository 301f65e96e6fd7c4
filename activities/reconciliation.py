"""The business steps of reconciliation: read billing, ERP and CLM, compare, store the findings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from activities.retrying import business_step
from canonical import Invoice, LegalEntity, Project
from canonical.keys import parse_project_code, project_code_prefix
from canonical.ledger import EntityTotals, Finding, FindingKind, compare_receivables
from connectors.ports import BillingPort, ClmPort, ErpPort
from settings import Settings
from stores.findings import RunOutcome, record_run


class ReconciliationConfigRequest(BaseModel):
    legal_entities: list[str] = Field(default_factory=list, description="empty: every entity")


class ReconciliationConfig(BaseModel):
    entities: list[LegalEntity]
    rounding_tolerance: Decimal
    activity_retry_max_seconds: float = 300


class ReceivablesRequest(BaseModel):
    entity: LegalEntity
    customer_ids: list[str] = Field(default_factory=list, description="empty: every billing customer")
    rounding_tolerance: Decimal


class ReceivablesResult(BaseModel):
    findings: list[Finding] = Field(default_factory=list)
    totals: list[EntityTotals] = Field(default_factory=list)


class DeliveryRequest(BaseModel):
    entities: list[LegalEntity]
    deal_ids: list[str] = Field(default_factory=list, description="empty: every deal")


class DeliveryResult(BaseModel):
    findings: list[Finding] = Field(default_factory=list)


class FindingsBatch(BaseModel):
    scope: str
    run_id: str
    findings: list[Finding] = Field(default_factory=list)


class ReconciliationActivities:
    """Activities of the reconciliation flow (built in worker.py with their connectors)."""

    def __init__(self, *, settings: Settings, clm: ClmPort, billing: BillingPort, erp: ErpPort,
                 findings: Engine) -> None:
        self.settings = settings
        self.clm = clm
        self.billing = billing
        self.erp = erp
        self.findings = findings

    @activity.defn(name="load_reconciliation_config")
    async def load_reconciliation_config(self, request: ReconciliationConfigRequest) -> ReconciliationConfig:
        wanted = set(request.legal_entities)
        entities = [e for e in self.settings.legal_entities if not wanted or e.code in wanted]
        return ReconciliationConfig(entities=entities,
                                    rounding_tolerance=self.settings.reconciliation_rounding_tolerance,
                                    activity_retry_max_seconds=self.settings.activity_retry_max_seconds)

    @activity.defn(name="reconcile_receivables")
    @business_step
    async def reconcile_receivables(self, request: ReceivablesRequest) -> ReceivablesResult:
        """One entity: billing invoices vs the tenant's receivables vs payments; invoices without a CRM deal."""
        entity = request.entity
        billing: list[Invoice] = []
        customers: list[str | None] = list(request.customer_ids) or [None]
        for customer_id in customers:
            async for invoice in self.billing.list_invoices(customer_id=customer_id):
                if invoice.legal_entity == entity.code:
                    billing.append(invoice)
        erp = await self.erp.list_invoices(entity.erp_tenant_id)
        if request.customer_ids:  # a scoped run looks only at the ERP documents of its billing invoices
            refs = {i.billing_id for i in billing}
            erp = [doc for doc in erp if doc.billing_id in refs]
        findings, totals = compare_receivables(entity.code, billing, erp, tolerance=request.rounding_tolerance)
        return ReceivablesResult(findings=findings, totals=totals)

    @activity.defn(name="reconcile_delivery")
    @business_step
    async def reconcile_delivery(self, request: DeliveryRequest) -> DeliveryResult:
        """Executed contracts without an ERP project; open projects without a billing schedule."""
        deal_ids = request.deal_ids or None
        contracts = await self.clm.list_executed_records(deal_ids=deal_ids)
        projects: list[tuple[LegalEntity, Project]] = []
        for entity in request.entities:
            projects += [(entity, p) for p in await self.erp.list_projects(entity.erp_tenant_id)
                         if parse_project_code(p.code)]
        if deal_ids:
            prefixes = tuple(project_code_prefix(d) for d in deal_ids)
            projects = [(e, p) for e, p in projects if p.code.startswith(prefixes)]
        schedules = await self.billing.billing_schedules_by_project()
        findings: list[Finding] = []
        for contract in contracts:
            deal_id = contract.deal_crm_id
            if deal_id and any(p.code.startswith(project_code_prefix(deal_id)) for _, p in projects):
                continue
            record_id = contract.clm_record_id or ""
            findings.append(Finding(
                kind=FindingKind.CONTRACT_WITHOUT_PROJECT, key=f"{FindingKind.CONTRACT_WITHOUT_PROJECT}:{record_id}",
                clm_id=record_id, crm_id=deal_id or "",
                billing_amount=str(contract.terms.total_value) if contract.terms else "",
                detail=f"executed contract '{contract.title}' has no ERP project"
                       + ("" if deal_id else " (and no CRM deal ID to find one by)")))
        for entity, project in projects:
            if schedules.get(project.code):
                continue
            findings.append(Finding(
                kind=FindingKind.PROJECT_WITHOUT_BILLING, key=f"{FindingKind.PROJECT_WITHOUT_BILLING}:{project.erp_id}",
                legal_entity=entity.code, currency=project.budget.currency, erp_id=project.erp_id or "",
                crm_id=parsed.crm_id if (parsed := parse_project_code(project.code)) else "",
                erp_amount=str(project.budget),
                detail=f"project {project.code} has no billing schedule"))
        return DeliveryResult(findings=findings)

    @activity.defn(name="record_findings")
    async def record_findings(self, batch: FindingsBatch) -> RunOutcome:
        """Store the run's findings: open the new, close the ones no longer seen (same scope)."""
        def write() -> RunOutcome:
            with Session(self.findings) as session:
                return record_run(session=session, scope=batch.scope, run_id=batch.run_id,
                                  findings=batch.findings, now=datetime.now(UTC))
        return await asyncio.to_thread(write)

    def all(self) -> list[Callable[..., Any]]:
        return [self.load_reconciliation_config, self.reconcile_receivables, self.reconcile_delivery,
                self.record_findings]
