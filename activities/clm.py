"""The CLM's activities (executed legal terms, obligations, amendments): one step each against the
``ClmPort``, whichever vendor plays the role (``CLM_ADAPTER``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.models import (
    Ack,
    AmendmentRef,
    AmendmentsFetch,
    ContractContextRequest,
    ContractRef,
    LaunchContractInput,
)
from activities.retrying import business_step
from canonical import Amendment, Contract
from connectors.ports import ClmPort

#: business outcomes the workflow shows and waits on: no SDK warning with a traceback for them
BENIGN = ApplicationErrorCategory.BENIGN
AMENDMENT_NOT_FOUND = "AmendmentNotFound"


class ClmActivities:
    """The CLM port's steps."""

    def __init__(self, *, clm: ClmPort) -> None:
        self.clm = clm

    @activity.defn(name="launch_contract")
    @business_step
    async def launch_contract(self, request: LaunchContractInput) -> Contract:
        return await self.clm.launch_contract(request.request, idempotency_key=request.idempotency_key)

    @activity.defn(name="check_contract")
    @business_step
    async def check_contract(self, ref: ContractRef) -> Contract:
        """The contract's status; once executed, with the executed terms from its record."""
        contract = await self.clm.get_contract(ref.clm_workflow_id)
        if contract.clm_record_id and contract.terms is None:
            record = await self.clm.get_record(contract.clm_record_id)
            contract = contract.model_copy(update={"terms": record.terms, "executed_on": record.executed_on})
        return contract

    @activity.defn(name="cancel_contract")
    @business_step
    async def cancel_contract(self, ref: ContractRef) -> Ack:
        await self.clm.cancel_contract(ref.clm_workflow_id, reason=ref.reason)
        return Ack()

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
            raise ApplicationError(f"CLM record {ref.record_id} has no amendment(s) {missing}",
                                   type=AMENDMENT_NOT_FOUND, non_retryable=True, category=BENIGN)
        amendment = held[ref.sequence]
        if amendment.terms is None:
            raise ApplicationError(f"amendment {ref.sequence} of {ref.record_id} carries no terms",
                                   type=AMENDMENT_NOT_FOUND, non_retryable=True, category=BENIGN)
        return amendment

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.launch_contract, self.check_contract, self.cancel_contract, self.fetch_amendments,
                self.load_amendment]


__all__ = ["AMENDMENT_NOT_FOUND", "ClmActivities"]
