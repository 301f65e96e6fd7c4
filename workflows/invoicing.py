"""One-off invoicing: the draft invoices of a project's fixed-fee and milestone charges
(``invoicing-<billing>-<projectCode>``, started by quote-to-cash once billing holds them).

Billing keeps each one-off invoice as a draft until it is due; this flow finalizes each once: on its billing
date (a durable timer to the start of that day, UTC) or earlier when its milestone is accepted, whichever comes
first. A milestone is accepted either by the update ``accept_milestone`` or by a person in the project system
(the ERP project's fixed-price task of the milestone): the flow asks the ERP which milestones were accepted at
start and then every ``acceptance_poll_seconds`` (a durable timer) while drafts wait; an acceptance seen again,
or seen after the update already finalized the invoice, does nothing. Finalizing runs under the draft's own
idempotency key and the billing port treats an already finalized invoice as done, so a retry or a second start
changes nothing. A draft billing refuses to finalize shows as ``provisioning_failed`` and is tried again every
day (or at the next acceptance) until billing takes it.
The finalized invoice then reaches the ledger as any other (billing's ``invoice.finalized``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.erp import ErpActivities
    from activities.models import ErpRecordRef, FinalizeInvoiceInput
    from canonical.billing import OneOffInvoice
    from canonical.exceptions import ExceptionKind
    from workflows.models import (
        InvoicingStage,
        MilestoneAcceptance,
        OneOffInvoicingInput,
        OneOffInvoicingStatus,
    )
    from workflows.status import WorkflowStatus, idempotency_key
    from workflows.steps import STEP_FAILED, failure_reason

Bill = BillingActivities
Erp = ErpActivities
#: a draft billing refused to finalize is tried again after this long (the cause may have been fixed)
RETRY_REFUSED_AFTER = timedelta(days=1)
#: polls of the project system per run before continuing as new (keeps a long wait's history small)
POLLS_PER_RUN = 500


@workflow.defn
class OneOffInvoicingWorkflow:
    """Finalize each draft one-off invoice of a project when it falls due or its milestone is accepted."""

    @workflow.init
    def __init__(self, request: OneOffInvoicingInput) -> None:
        self._drafts = list(request.drafts)
        self._accepted: list[str] = []  # invoice IDs whose milestone was accepted, not finalized yet
        self._finalized: list[str] = list(request.finalized)
        self._refused: dict[str, str] = {}  # invoice ID -> why billing refused it (tried again daily)
        self._retry_at: dict[str, datetime] = {}
        self._status = WorkflowStatus(InvoicingStage.WAITING)
        self._request = request
        self._next_poll: datetime | None = None  # when the project system is asked again (None: not polled)
        self._polls = 0

    @workflow.run
    async def run(self, request: OneOffInvoicingInput) -> OneOffInvoicingStatus:
        self._status.started_with(workflow.info())
        self._status.add_keys(*request.keys)
        self._status.note(f"{len(self._drafts)} one-off invoice(s) of project {request.project_code} "
                          f"({request.legal_entity}) to finalize when due")
        if request.project_id:
            self._next_poll = workflow.now()
        while self._waiting():
            if self._next_poll is not None and self._next_poll <= workflow.now():
                if self._polls >= POLLS_PER_RUN:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                    workflow.continue_as_new(request.model_copy(update={
                        "drafts": self._waiting(), "finalized": self._finalized[-100:]}))
                await self._poll_acceptances()
            for draft in self._due():
                await self._finalize(draft)
            waiting = self._waiting()
            if not waiting:
                break
            dated = [d.bill_on for d in waiting if d.bill_on is not None and d.invoice_id not in self._refused]
            moments = [*(datetime(d.year, d.month, d.day, tzinfo=UTC) for d in dated), *self._retry_at.values()]
            if self._next_poll is not None:
                moments.append(self._next_poll)
            timeout: timedelta | None = None
            if moments:
                timeout = max(min(moments) - workflow.now(), timedelta(seconds=1))
            what = f"billing date {min(dated)}" if dated else "milestone acceptance"
            if self._next_poll is not None:
                what += " (or an acceptance in the project system)"
            self._status.enter(InvoicingStage.WAITING, f"{len(waiting)} draft(s) waiting", waiting_for=what)
            try:
                await workflow.wait_condition(lambda: bool(self._accepted), timeout=timeout)
            except TimeoutError:
                pass  # a billing date came
        self._status.enter(InvoicingStage.DONE, "every one-off invoice handled", waiting_for="")
        self._status.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    # -- messages --------------------------------------------------------------------------------
    @workflow.update
    async def accept_milestone(self, request: MilestoneAcceptance) -> OneOffInvoicingStatus:
        """Finalize the milestone's invoice now; answers once it is finalized (or refused)."""
        [draft] = [d for d in self._waiting() if d.charge_code == request.charge_code]
        self._status.record(f"milestone {request.charge_code} accepted by {request.accepted_by}")
        self._refused.pop(draft.invoice_id, None)
        self._accepted.append(draft.invoice_id)
        await workflow.wait_condition(lambda: draft.invoice_id not in self._accepted)
        return self.status()

    @accept_milestone.validator
    def _accept_milestone_valid(self, request: MilestoneAcceptance) -> None:
        if not any(d.charge_code == request.charge_code for d in self._waiting()):
            raise ValueError(f"no draft invoice waits for milestone {request.charge_code!r}")

    @workflow.query
    def status(self) -> OneOffInvoicingStatus:
        return OneOffInvoicingStatus(stage=self._status.stage, exception_kind=self._status.exception,
                                     waiting=self._waiting(), finalized=list(self._finalized),
                                     refused=dict(self._refused), timeline=self._status.timeline[-50:])

    # -- plumbing --------------------------------------------------------------------------------
    def _waiting(self) -> list[OneOffInvoice]:
        return [d for d in self._drafts if d.invoice_id not in self._finalized]

    def _due(self) -> list[OneOffInvoice]:
        now = workflow.now()
        today = now.astimezone(UTC).date()
        due: list[OneOffInvoice] = []
        for draft in self._waiting():
            retry = self._retry_at.get(draft.invoice_id)
            if draft.invoice_id in self._accepted or (retry is not None and retry <= now) or (
                    retry is None and draft.bill_on is not None and draft.bill_on <= today):
                due.append(draft)
        return due

    async def _poll_acceptances(self) -> None:
        """Ask the project system which milestones a person accepted; their waiting drafts are finalized next."""
        request = self._request
        self._next_poll = workflow.now() + timedelta(seconds=request.acceptance_poll_seconds)
        self._polls += 1
        try:
            seen = await self._status.step(Erp.accepted_erp_milestones, ErpRecordRef(
                tenant_id=request.tenant_id, record_id=request.project_id),
                f"Read the milestones of {request.project_code} accepted in the project system")
        except STEP_FAILED as err:
            self._status.note(f"the project system did not say which milestones were accepted: "
                              f"{failure_reason(err)} (asked again in {request.acceptance_poll_seconds:g}s)")
            return
        for draft in self._waiting():
            if draft.charge_code in seen.codes and draft.invoice_id not in self._accepted:
                self._status.record(f"milestone {draft.charge_code} accepted in the project system")
                self._refused.pop(draft.invoice_id, None)
                self._accepted.append(draft.invoice_id)

    async def _finalize(self, draft: OneOffInvoice) -> None:
        why = "milestone accepted" if draft.invoice_id in self._accepted else f"billing date {draft.bill_on}"
        try:
            await self._status.step(Bill.finalize_billing_invoice, FinalizeInvoiceInput(
                invoice_id=draft.invoice_id, idempotency_key=idempotency_key("finalize", scope=draft.invoice_id)),
                f"Finalize one-off invoice {draft.invoice_id} ({draft.charge_code}): {why}")
        except STEP_FAILED as err:
            self._refused[draft.invoice_id] = failure_reason(err)
            self._retry_at[draft.invoice_id] = workflow.now() + RETRY_REFUSED_AFTER
            self._status.exception = ExceptionKind.PROVISIONING_FAILED
            self._status.note(f"billing refused to finalize {draft.invoice_id}: {self._refused[draft.invoice_id]} "
                              f"(tried again in {RETRY_REFUSED_AFTER})")
        else:
            self._finalized.append(draft.invoice_id)
            self._refused.pop(draft.invoice_id, None)
            self._retry_at.pop(draft.invoice_id, None)
            if not self._refused:
                self._status.exception = ExceptionKind.NONE
            self._status.note(f"finalized {draft.invoice_id} ({draft.charge_code}): {why}")
        if draft.invoice_id in self._accepted:
            self._accepted.remove(draft.invoice_id)
