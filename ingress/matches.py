"""Customer matches in the finance inbox: a deal waiting in a ``customer_match`` exception (the ERP or billing
holds records like its customer, none certainly it) is shown with its candidates; a person signed in to the inbox
picks one, or says the customer is new, and the inbox sends the same ``choose_customer_match`` update that
``starter.py match --pick`` sends, as that person. The workflow's validator has the last word (a pending match,
one of its candidates)."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from canonical.exceptions import ExceptionKind
from canonical.keys import approval_subject_of
from canonical.matching import CustomerCandidate
from ingress.approvals import ApprovalsService, DecisionRefused
from ingress.identity import Identity
from intake import ClientProvider
from workflows.models import CustomerMatchChoice, CustomerMatchChosen, QuoteToCashStatus

log = logging.getLogger("revops.inbox.matches")

_WAITING_QUERY = (f'ExecutionStatus = "Running" AND ExceptionKind = "{ExceptionKind.CUSTOMER_MATCH.value}" AND '
                  'WorkflowType = "QuoteToCashWorkflow"')


class WaitingMatch(BaseModel):
    """One deal's ambiguous customer match in one legal entity's ERP (or billing), as the inbox shows it."""

    workflow_id: str
    deal: str = ""
    company: str = ""
    legal_entity: str
    system: str = "erp"
    system_label: str = ""
    rule: str = ""
    candidates: list[CustomerCandidate] = Field(default_factory=list)


class CustomerMatches:
    """Lists the deals waiting for a customer match and settles one as the signed-in person."""

    def __init__(self, approvals: ApprovalsService, clients: ClientProvider) -> None:
        self.approvals = approvals
        self.clients = clients

    async def waiting(self, identity: Identity) -> list[WaitingMatch]:
        if not self.approvals.is_approver(identity):
            return []
        client = await self.clients.get()
        found: list[WaitingMatch] = []
        async for execution in client.list_workflows(_WAITING_QUERY):
            try:
                status = QuoteToCashStatus.model_validate(await client.get_workflow_handle(execution.id).query(
                    "status"))
            except RPCError as exc:  # finished between the listing and the query
                log.info("match %s not readable: %s", execution.id, exc.message)
                continue
            found += [WaitingMatch(workflow_id=execution.id, deal=status.deal_name, company=status.company,
                                   legal_entity=p.legal_entity, system=p.system, system_label=p.erp,
                                   rule=p.match.rule.value if p.match.rule else "",
                                   candidates=list(p.match.candidates))
                      for p in status.customer_matches]
        return sorted(found, key=lambda m: (m.workflow_id, m.legal_entity, m.system))

    async def choose(self, identity: Identity, workflow_id: str, *, legal_entity: str, system: str,
                     record_id: str | None) -> CustomerMatchChosen:
        """Pick ``record_id`` (None: a new customer) for the match of ``workflow_id`` in ``legal_entity``."""
        if approval_subject_of(workflow_id) != "deal":
            raise DecisionRefused(404, "not a deal's workflow: the workflow ID is not one of ours")
        if not self.approvals.is_approver(identity):
            raise DecisionRefused(403, f"{identity.subject!r} is not a registered approver")
        if system not in ("erp", "billing"):
            raise DecisionRefused(400, "the system is the ERP or billing")
        client = await self.clients.get()
        handle = client.get_workflow_handle(workflow_id)
        try:
            await handle.query("status")
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
                raise DecisionRefused(404, f"no running workflow {workflow_id}") from exc
            raise
        choice: dict[str, Any] = {"legal_entity": legal_entity, "system": system, "record_id": record_id or None,
                                  "new_customer": not record_id, "chosen_by": identity.subject}
        try:
            request = CustomerMatchChoice.model_validate(choice)
        except ValidationError as exc:
            raise DecisionRefused(400, "the choice is not complete (legal entity, record)") from exc
        try:
            chosen: CustomerMatchChosen = await handle.execute_update(
                "choose_customer_match", request, result_type=CustomerMatchChosen)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise DecisionRefused(409, getattr(cause, "message", None) or str(cause or exc)) from exc
        return chosen


__all__ = ["CustomerMatches", "WaitingMatch"]
