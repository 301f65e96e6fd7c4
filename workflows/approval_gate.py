"""The finance approval gate: one component that quote-to-cash and amendments hold (state + handlers).

It opens a request (minting its ID), waits for decisions with reminders until it expires, judges every
``decide_approval`` update in the validator and records it in the handler. A decision is accepted only when
its proof (signature checked by the worker's ``ApprovalSignatureInterceptor``) names this run, this request
and these terms, has not been used before, and the approver has the authority. Used nonces are remembered
for the proof's lifetime, carried across continue-as-new (:meth:`ApprovalGate.memory`). The state the
status query shows never holds a proof.

The ``@workflow.update`` and its ``@validator`` stay on each workflow class (the SDK reads them there) as
thin methods that delegate here. Deterministic: workflow time and info only, no I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from canonical.authority import ApprovalAuthority, ApprovalFacts, authority_refusal, terms_digest
    from workflows.models import (
        ApprovalDecision,
        ApprovalGateMemory,
        ApprovalOutcome,
        ApprovalState,
        RecordedDecision,
    )


class ApprovalGate:
    """The pending approval of a workflow, its request IDs and the nonces already used."""

    def __init__(self) -> None:
        self.pending: ApprovalState | None = None
        self._last_request_id = 0
        self._used_nonces: dict[str, datetime] = {}

    # -- continue-as-new ------------------------------------------------------------------------------
    def memory(self) -> ApprovalGateMemory:
        """What the next run needs: the request counter and the nonces of proofs not yet expired."""
        now = workflow.now()
        return ApprovalGateMemory(last_request_id=self._last_request_id,
                                  used_nonces={n: at for n, at in self._used_nonces.items() if at >= now})

    def restore(self, memory: ApprovalGateMemory) -> None:
        self._last_request_id = memory.last_request_id
        self._used_nonces = dict(memory.used_nonces)

    # -- the request ------------------------------------------------------------------------------------
    def open(self, *, reasons: list[str], facts: ApprovalFacts, required: int, expires_in: timedelta,
             title: str, company: str = "", terms: str = "", amendment_sequence: int | None = None
             ) -> ApprovalState:
        """A new pending request with the next request ID, bound to this run and these terms."""
        self._last_request_id += 1
        now = workflow.now()
        self.pending = ApprovalState(
            reasons=reasons, requested_at=now, expires_at=now + expires_in, facts=facts, required=required,
            title=title, company=company, terms=terms, request_id=self._last_request_id,
            run_id=workflow.info().run_id, amendment_sequence=amendment_sequence,
            terms_digest=terms_digest(facts, amendment_sequence))
        return self.pending

    async def wait(self, *, reminder_every: timedelta, on_reminder: Callable[[ApprovalState], Awaitable[None]],
                   summary: str) -> ApprovalDecision | None:
        """Wait for the final decision, calling ``on_reminder`` at each reminder; ``None`` once the request
        expired (its status is then ``expired``). The request stays readable until :meth:`close`."""
        approval = self.pending
        assert approval is not None
        while approval.decision is None:
            remaining = approval.expires_at - workflow.now()
            if remaining <= timedelta(0):
                approval.status = "expired"
                return None
            try:
                await workflow.wait_condition(lambda: approval.decision is not None,
                                              timeout=min(reminder_every, remaining), timeout_summary=summary)
            except TimeoutError:
                if workflow.now() < approval.expires_at:
                    approval.reminders_sent += 1
                    await on_reminder(approval)
        return approval.decision

    def close(self) -> None:
        """The request is settled (decided or expired): no decision is pending any more."""
        self.pending = None

    # -- decide_approval --------------------------------------------------------------------------------
    def validate(self, decision: ApprovalDecision, *, subject: str, stage: str,
                 authority: ApprovalAuthority | None) -> None:
        """The ``decide_approval`` validator: refuse at once unless a request is pending and the decision's
        proof names this run, this request and these terms, is unused, and the approver has the authority.

        The signature itself is checked before this by the worker's ``ApprovalSignatureInterceptor`` (it
        holds the key, which never enters a workflow's history).
        """
        approval = self.pending
        if approval is None or approval.decision is not None or approval.status != "pending":
            raise ValueError(f"no approval is pending for {subject} (stage {stage})")
        proof = decision.proof
        if proof is None:
            raise ValueError("the decision carries no signed approval: decide through the approvals API "
                             "or the finance inbox")
        if proof.run_id != workflow.info().run_id or proof.run_id != approval.run_id:
            raise ValueError("the signed approval is for another run of this workflow")
        if proof.request_id != approval.request_id:
            raise ValueError(f"the signed approval is for approval request {proof.request_id}, "
                             f"not the pending request {approval.request_id}")
        if proof.terms_digest != approval.terms_digest:
            raise ValueError("the signed approval is for other terms than the pending request's")
        if proof.nonce in self._used_nonces:
            raise ValueError("this signed approval has already been used; decide again")
        if approval.facts is not None and authority is not None:
            refusal = authority_refusal(authority, approval.facts, decision.approver,
                                        [d.approver for d in approval.decisions])
            if refusal:
                raise ValueError(refusal)

    def decide(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """Record one approver's decision (the body of every ``decide_approval`` update): a rejection decides
        at once; an approval once ``required`` distinct approvers approved. The proof's nonce is spent."""
        approval = self.pending
        assert approval is not None
        proof = decision.proof
        if proof is not None:
            self._used_nonces[proof.nonce] = proof.expires_at
        now = workflow.now()
        approval.decisions.append(RecordedDecision(
            approver=decision.approver, approved=decision.approved, note=decision.note, at=now,
            channel=proof.channel if proof else "", subject=proof.subject if proof else ""))
        approvals = sum(1 for d in approval.decisions if d.approved)
        if not decision.approved or approvals >= approval.required:
            approval.decision = decision.model_copy(update={"proof": None})  # the status never shows a proof
            approval.decided_at = now
            approval.status = "approved" if decision.approved else "rejected"
        return ApprovalOutcome(accepted=True, status=approval.status, approver=decision.approver,
                               note=decision.note, approvals=approvals, required=approval.required)

    @staticmethod
    def decision_note(approval: ApprovalState, outcome: ApprovalOutcome) -> str:
        """The timeline note of the decision just recorded: who, by which channel, how far approval has come."""
        recorded = approval.decisions[-1]
        return (f"{'approved' if recorded.approved else 'rejected'} by {recorded.approver} via {recorded.channel} "
                f"(token subject {recorded.subject})"
                + (f"; {outcome.approvals} of {outcome.required} approvals" if outcome.required > 1 else ""))


__all__ = ["ApprovalGate"]
