"""The two reads of amendment propagation that join systems of record: where to propagate is read from the
systems of record, not from the quote-to-cash run: the CLM record (terms, amendments, ``revopsDealId``) and
the provisioning record quote-to-cash wrote back on the CRM deal (``revops_provisioned``: per legal entity
the project, contact, billing customer and the budget last written, and the billing records). A finished,
archived or reset quote-to-cash run therefore never stops an amendment.

Every other step of the flow is a role class's (``activities/clm.py``, ``erp.py``, ``billing.py``,
``crm.py``); its settings come from ``load_flow_config``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.models import (
    AmendmentPlanInput,
    ContractContext,
    ContractContextRequest,
    ContractValues,
    ContractValuesRequest,
)
from activities.retrying import business_step
from canonical import Contract, ContractTerms
from canonical.amendments import AmendmentPlan, BillingRecord, plan_amendment
from connectors.errors import ConnectorError
from connectors.ports import BillingPort, ClmPort, CrmPort

#: business outcomes the workflow shows and waits on: no SDK warning with a traceback for them
BENIGN = ApplicationErrorCategory.BENIGN
NOT_PROVISIONED = "ContractNotProvisioned"


class ContractContextActivities:
    """The reads that join the CLM's record, the CRM's deal and billing's records (each through its port)."""

    def __init__(self, *, crm: CrmPort, clm: ClmPort, billing: BillingPort, legal_entities: list[str]) -> None:
        self.crm = crm
        self.clm = clm
        self.billing = billing
        #: the codes of the legal entities this worker knows (a deal provisioned elsewhere is not ours)
        self.legal_entities = list(legal_entities)

    # -- CLM + CRM: the contract and where it was provisioned ---------------------------------------
    @activity.defn(name="load_contract_context")
    @business_step
    async def load_contract_context(self, request: ContractContextRequest) -> ContractContext:
        """The contract as first signed, its deal, and the provisioned projects and billing customers."""
        record = await self.clm.get_record(request.record_id)
        deal_id = request.deal_id or record.deal_crm_id
        if not deal_id:
            raise ApplicationError(f"CLM record {request.record_id} names no deal",
                                   type=NOT_PROVISIONED, non_retryable=True, category=BENIGN)
        signed = await self._signed_terms(record)
        deal = await self.crm.get_deal(deal_id)
        provisioned = deal.write_backs.provisioned
        if provisioned is None or not provisioned.entities:
            raise ApplicationError(f"deal {deal_id} has no provisioning record yet (revops_provisioned empty)",
                                   type=NOT_PROVISIONED, non_retryable=True, category=BENIGN)
        unknown = [e.legal_entity for e in provisioned.entities
                   if e.legal_entity not in set(self.legal_entities)]
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

    # -- contract values -------------------------------------------------------------------------------
    @activity.defn(name="read_contract_values")
    async def read_contract_values(self, request: ContractValuesRequest) -> ContractValues:
        """The executed contract value (as amended: the record's rolled-up terms) of each deal, for the CRM's
        unbilled figure. A read the figures can go without: a CLM that cannot answer is reported, not retried."""
        if not request.deal_ids:
            return ContractValues()
        try:
            records = await self.clm.list_executed_records(deal_ids=request.deal_ids)
        except ConnectorError as exc:
            return ContractValues(unavailable=str(exc.message))
        wanted = set(request.deal_ids)
        return ContractValues(values={r.deal_crm_id: r.terms.total_value for r in records
                                      if r.deal_crm_id in wanted and r.terms is not None})

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.load_contract_context, self.plan_amendment, self.read_contract_values]
