"""The business steps of amendment propagation. Each activity is one step against one system.

Where to propagate is read from the systems of record, not from the quote-to-cash run: the Ironclad
record (terms, amendments, ``revopsDealId``) and the provisioning record quote-to-cash wrote back on the
HubSpot deal (``revops_provisioned``: per legal entity the project, contact, billing customer and the
budget last written, and the billing records).
A finished, archived or reset quote-to-cash run therefore never stops an amendment.

Writes that create reuse quote-to-cash's activities (``create_billing_schedule``,
``cancel_billing_schedule``, ``write_back_deal``), registered on the same worker.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.models import (
    Ack,
    AmendmentPlanInput,
    AmendmentRef,
    AmendmentsConfig,
    AmendmentsFetch,
    ContractContext,
    ContractContextRequest,
    FlowConfigRequest,
    GuardedProjectInput,
    SubscriptionChangeInput,
    SubscriptionEndInput,
)
from activities.retrying import business_step
from canonical import Amendment, Contract, ContractTerms, Project
from canonical.amendments import AmendmentPlan, BillingRecord, plan_amendment
from canonical.ownership import OwnershipViolation, owner_of
from connectors.ports import BillingPort, ClmPort, CrmPort, ErpPort
from settings import Settings

#: business outcomes the workflow shows and waits on: no SDK warning with a traceback for them
BENIGN = ApplicationErrorCategory.BENIGN
NOT_PROVISIONED = "ContractNotProvisioned"
AMENDMENT_NOT_FOUND = "AmendmentNotFound"


class ContractAmendmentsActivities:
    """Activities of the amendments flow, holding the connectors they call (built in worker.py)."""

    def __init__(self, *, settings: Settings, crm: CrmPort, clm: ClmPort, billing: BillingPort, erp: ErpPort) -> None:
        self.settings = settings
        self.crm = crm
        self.clm = clm
        self.billing = billing
        self.erp = erp

    # -- configuration ---------------------------------------------------------------------------
    @activity.defn(name="load_amendments_config")
    async def load_amendments_config(self, request: FlowConfigRequest) -> AmendmentsConfig:
        s = self.settings
        return AmendmentsConfig(entities=s.legal_entities, gap_timeout_seconds=s.amendment_gap_timeout_seconds,
                                continue_as_new_after=s.amendments_continue_as_new_after,
                                proration_behavior=s.stripe_proration_behavior,
                                activity_retry_max_seconds=s.activity_retry_max_seconds,
                                authority=s.approval_authority(),
                                approval_reminder_hours=s.amendment_approval_reminder_hours,
                                approval_expiry_days=s.amendment_approval_expiry_days)

    # -- CLM + CRM: the contract and where it was provisioned ---------------------------------------
    @activity.defn(name="load_contract_context")
    @business_step
    async def load_contract_context(self, request: ContractContextRequest) -> ContractContext:
        """The contract as first signed, its deal, and the provisioned projects and billing customers."""
        record = await self.clm.get_record(request.record_id)
        deal_id = request.deal_id or record.deal_crm_id
        if not deal_id:
            raise ApplicationError(f"Ironclad record {request.record_id} names no deal (revopsDealId)",
                                   type=NOT_PROVISIONED, non_retryable=True, category=BENIGN)
        signed = await self._signed_terms(record)
        deal = await self.crm.get_deal(deal_id)
        provisioned = deal.write_backs.provisioned
        if provisioned is None or not provisioned.entities:
            raise ApplicationError(f"deal {deal_id} has no provisioning record yet (revops_provisioned empty)",
                                   type=NOT_PROVISIONED, non_retryable=True, category=BENIGN)
        unknown = [e.legal_entity for e in provisioned.entities
                   if e.legal_entity not in {known.code for known in self.settings.legal_entities}]
        if unknown:
            raise ApplicationError(f"deal {deal_id} was provisioned in unknown legal entities {unknown}",
                                   type=NOT_PROVISIONED, non_retryable=True, category=BENIGN)
        return ContractContext(record_id=request.record_id, deal_id=deal_id, title=record.title,
                               counterparty=record.counterparty, signed_terms=signed,
                               provisioned=provisioned.entities,
                               budgets={e.project_code: e.budget for e in provisioned.entities if e.budget},
                               billing_ids=provisioned.billing_ids, deal_owner_id=deal.owner_id)

    async def _signed_terms(self, record: Contract) -> ContractTerms:
        """The terms before any amendment (the record's rolled-up properties already hold them)."""
        if not record.amendments and record.terms is not None:
            return record.terms
        return await self.clm.get_signed_terms(record.clm_record_id or "")

    @activity.defn(name="fetch_amendments")
    @business_step
    async def fetch_amendments(self, request: ContractContextRequest) -> AmendmentsFetch:
        """Every amendment the CLM holds for the record (an operator resolving a gap, an unnumbered signal)."""
        record = await self.clm.get_record(request.record_id)
        return AmendmentsFetch(record_id=request.record_id,
                               amendments=[(a.sequence, a.clm_amendment_id) for a in record.amendments])

    @activity.defn(name="load_amendment")
    @business_step
    async def load_amendment(self, ref: AmendmentRef) -> Amendment:
        """Amendment ``sequence`` with the terms as amended (requires every predecessor in the CLM)."""
        record = await self.clm.get_record(ref.record_id)
        held = {a.sequence: a for a in record.amendments}
        missing = [n for n in range(1, ref.sequence + 1) if n not in held]
        if missing:
            raise ApplicationError(f"Ironclad record {ref.record_id} has no amendment(s) {missing}",
                                   type=AMENDMENT_NOT_FOUND, non_retryable=True, category=BENIGN)
        amendment = held[ref.sequence]
        if amendment.terms is None:
            raise ApplicationError(f"amendment {ref.sequence} of {ref.record_id} carries no terms",
                                   type=AMENDMENT_NOT_FOUND, non_retryable=True, category=BENIGN)
        return amendment

    # -- plan ----------------------------------------------------------------------------------------
    @activity.defn(name="plan_amendment")
    @business_step
    async def plan_amendment(self, request: AmendmentPlanInput) -> AmendmentPlan:
        """The change against the current terms per entity, with what billing holds now."""
        deal = await self.crm.get_deal(request.deal_id)
        records: dict[str, list[BillingRecord]] = {}
        for target in request.provisioned:
            if target.billing_customer_id:
                records[target.legal_entity] = await self.billing.billing_records(
                    target.billing_customer_id, known_ids=request.billing_ids, project_code=target.project_code)
        return plan_amendment(sequence=request.sequence, deal=deal, before=request.before, after=request.after,
                              entities=request.entities, provisioned=request.provisioned, records=records)

    # -- ERP -----------------------------------------------------------------------------------------
    @activity.defn(name="update_erp_project")
    @business_step
    async def update_erp_project(self, request: GuardedProjectInput) -> Project:
        """Budget, deadline and tasks of the project, under the ownership rule of its budget.

        The budget is ERP-owned (``FIELD_OWNERSHIP``). The CLM may move it only while the ERP still holds
        the value we last wrote: a different value means someone changed it in the ERP, and the write is
        refused as an ``OwnershipViolation`` for an operator to decide (keep the ERP's value or overwrite).
        """
        project = request.project
        assert project.erp_id
        current = await self.erp.get_project(request.tenant_id, project.erp_id)
        if request.keep_erp_budget:
            project = project.model_copy(update={"budget": current.budget})
        elif not request.force and request.expected_budget is not None:
            expected = Decimal(request.expected_budget)
            if current.budget.amount not in (expected, project.budget.amount):
                violation = OwnershipViolation("project", "budget", owner_of("project", "budget"), "ironclad")
                raise ApplicationError(
                    f"{violation}: Xero holds {current.budget} for {project.code}, we last wrote "
                    f"{expected} {current.budget.currency}; the amendment wants {project.budget}",
                    type="OwnershipViolation", non_retryable=True, category=BENIGN) from violation
        return await self.erp.update_project(request.tenant_id, project, idempotency_key=request.idempotency_key)

    # -- billing -------------------------------------------------------------------------------------
    @activity.defn(name="change_subscription_item")
    @business_step
    async def change_subscription_item(self, request: SubscriptionChangeInput) -> BillingRecord:
        return await self.billing.change_subscription_item(request.change,
                                                           proration_behavior=request.proration_behavior,
                                                           idempotency_key=request.idempotency_key)

    @activity.defn(name="set_subscription_end")
    @business_step
    async def set_subscription_end(self, request: SubscriptionEndInput) -> Ack:
        await self.billing.set_subscription_end(request.subscription_id, request.end_date,
                                                idempotency_key=request.idempotency_key)
        return Ack()

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.load_amendments_config, self.load_contract_context, self.fetch_amendments,
                self.load_amendment, self.plan_amendment, self.update_erp_project, self.change_subscription_item,
                self.set_subscription_end]
