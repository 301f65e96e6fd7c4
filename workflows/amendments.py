"""Amendment propagation: one long-running workflow per executed contract (``contract-<clm>-<recordId>``).

Amendments arrive by signal-with-start (ingress, ``starter.py amend``) and are applied strictly in
sequence: a duplicate is ignored, an early one waits for its predecessors, and a predecessor missing
longer than ``amendment_gap_timeout_seconds`` becomes a visible ``amendment_gap`` that an operator resolves
with the ``resolve_gap`` update (the workflow fetches the missing amendments from the CLM).

Each amendment is planned against the current executed terms (``canonical.amendments.plan_amendment``)
and propagated: the ERP project's budget and tasks (the budget is ERP-owned: a value changed in the ERP since we
last wrote it stops as ``ownership_conflict`` for ``resolve_conflict``), the billing system's subscription items
with proration, milestone invoices and rate-card prices, then the CRM deal's contract value and forecast.
A value or rate decrease, or a change to a billed milestone, waits for finance on ``decide_approval``
(the quote-to-cash contract). Every write's idempotency key is ``<workflowId>:a<sequence>:<step>``, stable
across retries, replays and continue-as-new.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.amendments import ContractContextActivities
    from activities.billing import BillingActivities
    from activities.clm import ClmActivities
    from activities.config import ConfigActivities
    from activities.crm import CrmActivities
    from activities.erp import ErpActivities
    from activities.models import (
        AmendmentPlanInput,
        AmendmentRef,
        AmendmentsConfig,
        BillingScheduleInput,
        ContractContextRequest,
        FlowConfigRequest,
        GuardedProjectInput,
        SubscriptionChangeInput,
        SubscriptionEndInput,
    )
    from canonical import Amendment, BillingSchedule, BillingScheduleKind, ContractTerms, Project
    from canonical.amendments import AmendmentPlan, EntityChange, monthly_recurring
    from canonical.authority import ApprovalFacts, approvals_required
    from canonical.bands import deal_size_band
    from canonical.deal import ProvisionedEntity, ProvisioningRecord
    from canonical.exceptions import ExceptionKind
    from canonical.money import Money
    from canonical.notifications import Notice, NoticeKind
    from canonical.requests import DealWriteBack
    from canonical.systems import OURS, UNKNOWN_ERP, System
    from workflows.approval_gate import ApprovalGate
    from workflows.attributes import DEAL_SIZE, LEGAL_ENTITY
    from workflows.models import (
        AMENDMENT_SIGNAL,
        AMENDMENTS_WORKFLOW,
        AmendmentRecord,
        AmendmentsCarried,
        AmendmentSignal,
        AmendmentStage,
        ApprovalDecision,
        ApprovalOutcome,
        ApprovalState,
        ConflictResolution,
        ContractAmendmentsInput,
        ContractAmendmentsStatus,
        GapResolution,
        GapResolutionResult,
        RetryRequest,
    )
    from workflows.status import WorkflowStatus, idempotency_key
    from workflows.steps import failure_reason, failure_type
    from workflows.write_back import CrmWriteBack

Ctx = ContractContextActivities
Cfg = ConfigActivities
Crm = CrmActivities
Clm = ClmActivities
Bill = BillingActivities
Erp = ErpActivities
HISTORY_KEPT = 20
TIMELINE_KEPT = 50


@workflow.defn(name=AMENDMENTS_WORKFLOW)
class ContractAmendmentsWorkflow:
    """One run chain per CLM contract record, applying its amendments in sequence."""

    def __init__(self) -> None:
        self._record_id = ""
        self._deal_id = ""
        self._deal_owner_id: str | None = None
        self._counterparty = ""
        self._title = ""
        self._status = WorkflowStatus(AmendmentStage.LOADING, details=self._details, timeline_kept=TIMELINE_KEPT)
        self._crm_writes = CrmWriteBack(self._status, label=lambda: self._crm.label, stamp_workflow_id=False,
                                        local_when_quiet=False, exception_on_failure=False)
        self._step = self._status.step  # the typed step of the status component, under its short name
        self._failure = ""
        self._conflict = ""
        self._config: AmendmentsConfig | None = None
        self._terms: ContractTerms | None = None
        self._next = 1
        self._provisioned: list[ProvisionedEntity] = []
        self._budgets: dict[str, str] = {}
        self._billing_ids: list[str] = []
        self._inbox: list[tuple[AmendmentSignal, datetime]] = []
        self._refresh = False
        self._pending: dict[int, AmendmentRecord] = {}
        self._history: list[AmendmentRecord] = []
        self._current: AmendmentRecord | None = None
        self._gate = ApprovalGate()  # the pending amendment approval, request IDs and used nonces
        self._conflict_choice: ConflictResolution | None = None
        self._retry: RetryRequest | None = None
        self._gap_since: datetime | None = None
        self._duplicates = 0
        self._applied_this_run = 0
        self._failures = 0
        self._runs = 1

    def _system(self, role: str) -> System:
        """The adapter playing ``role`` once the configuration is read (the role alone before)."""
        if self._config is None:
            return System(role=role, name="unread", display=role.upper() if len(role) <= 3 else role)
        return getattr(self._config.systems, role)  # type: ignore[no-any-return]

    @property
    def _crm(self) -> System:
        return self._system("crm")

    @property
    def _clm(self) -> System:
        return self._system("clm")

    @property
    def _billing(self) -> System:
        return self._system("billing")

    def _erp_of(self, entity_code: str) -> System:
        return self._config.systems.erp_or_unknown(entity_code) if self._config else UNKNOWN_ERP

    # ------------------------------------------------------------------------------------------
    # The flow
    # ------------------------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: ContractAmendmentsInput) -> None:
        self._record_id = request.record_id
        self._status.started_with(workflow.info())
        self._config = (await self._step(Cfg.load_flow_config, FlowConfigRequest(flow="amendments"),
                                         "Read amendment settings and legal entities")).for_amendments()
        self._status.add_keys(self._config.systems.clm.ref("record", request.record_id))
        self._status.use(retry_max_seconds=self._config.activity_retry_max_seconds)
        if request.carried is not None:
            self._restore(request.carried)
            self._status.note(f"continued as new (run {self._runs}): next amendment {self._next}")
        else:
            await self._load(request)
        while True:
            self._drain()
            if self._refresh:
                self._refresh = False
                await self._fetch_from_clm("an amendment signal without a sequence")
                continue
            if self._should_continue_as_new():
                # between amendments: what was received and not yet applied travels in the carried state
                await workflow.wait_condition(workflow.all_handlers_finished)
                self._drain()
                if not self._refresh:  # an unnumbered signal is looked up first (the loop comes back here)
                    self._status.enter(self._status.stage, "continuing as new with the current terms and sequence",
                                       waiting_for=self._status.waiting_for)
                    self._status.flush()  # the next run starts with these attributes
                    workflow.continue_as_new(ContractAmendmentsInput(record_id=self._record_id,
                                                                     deal_id=self._deal_id, carried=self._carry()))
                continue
            if self._next in self._pending:
                await self._apply(self._pending[self._next])
                continue
            if self._pending:
                await self._wait_for_gap()
            else:
                self._status.enter(AmendmentStage.WAITING, f"up to date at amendment {self._next - 1}",
                                   waiting_for=f"amendment {self._next} (amendment_executed signal)")
                await workflow.wait_condition(self._woken, timeout_summary="next amendment")

    async def _load(self, request: ContractAmendmentsInput) -> None:
        """Read the contract as signed and where quote-to-cash provisioned it (retried by an operator)."""
        self._status.enter(AmendmentStage.LOADING, "reading the contract and its provisioned records",
                           waiting_for=f"{self._clm.label} record and {self._crm.label} deal")
        while True:
            try:
                context = await self._step(Ctx.load_contract_context,
                                           ContractContextRequest(record_id=request.record_id,
                                                                  deal_id=request.deal_id),
                                           f"Read {self._clm.label} record {request.record_id} and its deal")
                break
            except ActivityError as err:
                self._failure = failure_reason(err)
                self._status.exception = ExceptionKind.CONTRACT_NOT_PROVISIONED
                self._status.enter(AmendmentStage.NOT_PROVISIONED, f"cannot propagate yet: {self._failure}",
                                   waiting_for="the contract to be provisioned (retry_propagation update)")
                await self._until_retried()
        self._failure = ""
        self._status.exception = ExceptionKind.NONE
        self._deal_id = context.deal_id
        self._deal_owner_id = context.deal_owner_id
        self._counterparty = context.counterparty
        self._title = context.title
        self._terms = context.signed_terms
        self._provisioned = context.provisioned
        self._budgets = context.budgets
        self._billing_ids = context.billing_ids
        self._describe_targets()
        self._status.note(f"loaded {context.title or 'contract'} for deal {context.deal_id}: "
                          + ", ".join(p.project_code for p in self._provisioned))

    def _describe_targets(self) -> None:
        self._status.add_keys(self._crm.ref("deal", self._deal_id))
        for target in self._provisioned:
            self._status.add_keys(OURS.ref("project", target.project_code))
            if target.project_id:
                self._status.add_keys(self._erp_of(target.legal_entity).ref("project", target.project_id))
            if target.billing_customer_id:
                self._status.add_keys(self._billing.ref("customer", target.billing_customer_id))
        if self._provisioned:
            self._status.set(LEGAL_ENTITY.value_set(self._provisioned[0].legal_entity))
        if self._terms is not None:
            self._status.set(DEAL_SIZE.value_set(deal_size_band(self._terms.total_value.amount)))

    # -- sequencing -------------------------------------------------------------------------------
    def _woken(self) -> bool:
        return bool(self._inbox) or self._refresh or self._next in self._pending

    def _drain(self) -> None:
        """Take received signals into the pending set: older or known sequences are duplicates."""
        inbox, self._inbox = self._inbox, []
        for signal, received in inbox:
            if signal.record_id != self._record_id:
                self._status.note(f"ignored a signal for record {signal.record_id}")
            elif signal.sequence is None:
                self._refresh = True
            else:
                self._receive(signal.sequence, signal.clm_amendment_id, received=received,
                              executed=signal.executed_at or received)

    def _receive(self, sequence: int, clm_id: str | None, *, received: datetime, executed: datetime) -> bool:
        known = self._pending.get(sequence) or next((h for h in self._history if h.sequence == sequence), None)
        if sequence < self._next or known is not None:
            self._duplicates += 1
            if known is not None:
                known.deliveries += 1
            self._status.note(f"amendment {sequence} delivered again: ignored (next is {self._next})")
            return False
        self._pending[sequence] = AmendmentRecord(sequence=sequence, clm_amendment_id=clm_id, received_at=received,
                                                  executed_at=executed)
        if clm_id:
            self._status.add_keys(self._clm.ref("record", clm_id))
        self._status.note(f"amendment {sequence} received" + ("" if sequence == self._next else
                                                              f", waiting for {self._missing()}"))
        return True

    def _missing(self) -> list[int]:
        if not self._pending:
            return []
        return [n for n in range(self._next, max(self._pending)) if n not in self._pending]

    async def _wait_for_gap(self) -> None:
        """An early amendment waits for its predecessors; too long and the gap becomes an exception."""
        assert self._config is not None
        if self._gap_since is None:
            self._gap_since = workflow.now()
        missing = self._missing()
        waiting = ", ".join(str(n) for n in sorted(self._pending))
        if self._status.exception is not ExceptionKind.AMENDMENT_GAP:
            deadline = self._gap_since + timedelta(seconds=self._config.gap_timeout_seconds)
            remaining = deadline - workflow.now()
            if remaining > timedelta(0):
                self._status.enter(AmendmentStage.WAITING, f"amendment(s) {waiting} wait for {missing}",
                                   waiting_for=f"amendment(s) {missing} before {deadline:%Y-%m-%d %H:%M:%S} UTC")
                try:
                    await workflow.wait_condition(self._woken, timeout=remaining, timeout_summary="amendment gap")
                    return
                except TimeoutError:
                    pass
            self._status.exception = ExceptionKind.AMENDMENT_GAP
            self._status.enter(AmendmentStage.AMENDMENT_GAP,
                               f"amendment(s) {missing} missing for {self._config.gap_timeout_seconds:g}s; "
                               f"{waiting} cannot be applied",
                               waiting_for=f"amendment(s) {missing}: resolve_gap fetches them from {self._clm.display}")
            await self._write_back(DealWriteBack(
                revops_exception=f"Amendment gap: amendment(s) {missing} of {self._clm.display} record "
                                 f"{self._record_id} "
                                 f"never arrived; {waiting} wait", amendment_status="gap"),
                notice=self._notice(NoticeKind.AMENDMENT_GAP, self._key(self._next, "notice-gap"),
                                    f"Amendment gap on {self._title or 'contract ' + self._record_id}",
                                    f"amendment(s) {missing} never arrived; {waiting} wait (resolve_gap)"))
        await workflow.wait_condition(self._woken, timeout_summary="amendment gap resolved")

    async def _fetch_from_clm(self, why: str) -> GapResolutionResult:
        """Ask the CLM for every amendment of the record and take the ones not yet seen."""
        fetched = await self._step(Clm.fetch_amendments, ContractContextRequest(record_id=self._record_id),
                                   f"Fetch amendments of {self._clm.label} record {self._record_id} ({why})")
        now = workflow.now()
        found = [seq for seq, clm_id in sorted(fetched.amendments)
                 if seq >= self._next and seq not in self._pending
                 and self._receive(seq, clm_id, received=now, executed=now)]
        return GapResolutionResult(found=found, still_missing=self._missing())

    # -- one amendment ----------------------------------------------------------------------------
    async def _apply(self, record: AmendmentRecord) -> None:
        assert self._config is not None and self._terms is not None
        sequence = record.sequence
        self._current = record
        self._status.enter(AmendmentStage.APPLYING, f"applying amendment {sequence}",
                           waiting_for=f"amendment {sequence} read and propagated")
        amendment = await self._read_amendment(sequence)
        if amendment.clm_amendment_id:
            record.clm_amendment_id = amendment.clm_amendment_id
            self._status.add_keys(self._clm.ref("record", amendment.clm_amendment_id))
        assert amendment.terms is not None
        plan: AmendmentPlan = await self._step(Ctx.plan_amendment, AmendmentPlanInput(
            sequence=sequence, deal_id=self._deal_id, before=self._terms, after=amendment.terms,
            entities=self._config.entities, provisioned=self._provisioned, billing_ids=self._billing_ids),
            f"Plan amendment {sequence} against the current terms")
        record.summary = plan.summary()
        self._status.note(f"amendment {sequence}: {record.summary}")
        if plan.approval_reasons:
            decision = await self._approve(record, plan)
            if decision is None:
                record.outcome = "expired"
                self._done(record, f"amendment {sequence} expired without a finance decision: not propagated")
                return
            if not decision.approved:
                record.outcome = "rejected"
                self._done(record, f"amendment {sequence} rejected by {decision.approver}: not propagated")
                return
        await self._propagate(record, plan, amendment.terms)
        self._terms = amendment.terms
        record.outcome = "applied"
        self._done(record, f"amendment {sequence} propagated")
        self._status.set(DEAL_SIZE.value_set(deal_size_band(self._terms.total_value.amount)))

    async def _read_amendment(self, sequence: int) -> Amendment:
        while True:
            try:
                amendment: Amendment = await self._step(
                    Clm.load_amendment, AmendmentRef(record_id=self._record_id, sequence=sequence),
                    f"Read amendment {sequence} of {self._clm.label} record {self._record_id}")
                return amendment
            except ActivityError as err:
                await self._failed(f"amendment {sequence} cannot be read: {failure_reason(err)}")

    def _done(self, record: AmendmentRecord, note: str) -> None:
        now = workflow.now()
        record.applied_at = now
        if record.executed_at is not None:
            record.cycle_time_seconds = max(0.0, (now - record.executed_at).total_seconds())
        self._pending.pop(record.sequence, None)
        self._history = [*self._history, record][-HISTORY_KEPT:]
        self._current = None
        self._next = record.sequence + 1
        self._applied_this_run += 1
        if not self._missing():
            self._gap_since = None
            if self._status.exception is ExceptionKind.AMENDMENT_GAP:
                self._status.exception = ExceptionKind.NONE
        self._status.note(note + (f" (cycle time {record.cycle_time_seconds:.1f}s)"
                                  if record.cycle_time_seconds is not None else ""))

    async def _approve(self, record: AmendmentRecord, plan: AmendmentPlan) -> ApprovalDecision | None:
        """Finance decides through ``decide_approval`` (the quote-to-cash contract, same authority rules),
        reminded and expired like a deal's approval; ``None`` when it expired."""
        assert self._config is not None
        given_up = plan.old_value.amount - plan.new_value.amount
        facts = ApprovalFacts(amount=Money.of(given_up if given_up > 0 else 0, plan.old_value.currency),
                              legal_entity=self._provisioned[0].legal_entity if self._provisioned else "",
                              owner_id=self._deal_owner_id)
        approval = self._gate.open(reasons=plan.approval_reasons, facts=facts,
                                   required=approvals_required(self._config.authority, facts),
                                   expires_in=timedelta(days=self._config.approval_expiry_days),
                                   title=f"{self._title or 'contract ' + self._record_id}, amendment {plan.sequence}",
                                   company=self._counterparty, terms=plan.summary(), amendment_sequence=plan.sequence)
        record.approval = approval
        reasons = "; ".join(plan.approval_reasons)
        self._status.enter(AmendmentStage.AWAITING_APPROVAL,
                           f"amendment {plan.sequence} needs finance approval: {reasons}",
                           waiting_for=f"finance decision on amendment {plan.sequence} (decide_approval) before "
                                       f"{approval.expires_at:%Y-%m-%d %H:%M} UTC")
        await self._write_back(DealWriteBack(approval_status="pending", amendment_status="awaiting approval",
                                             amendment_sequence=str(plan.sequence),
                                             approval_note=f"Amendment {plan.sequence}: {reasons}"),
                               notice=self._approval_notice(approval, plan.sequence, NoticeKind.APPROVAL_REQUESTED,
                                                            "requested", "Approval needed"))

        async def remind(approval: ApprovalState) -> None:
            self._status.exception = ExceptionKind.APPROVAL_OVERDUE
            self._status.enter(self._status.stage, f"reminder {approval.reminders_sent}: amendment "
                                                   f"{plan.sequence} still awaits finance",
                               waiting_for=self._status.waiting_for)
            await self._write_back(
                DealWriteBack(approval_status=f"pending (reminder {approval.reminders_sent})"),
                notice=self._approval_notice(approval, plan.sequence, NoticeKind.APPROVAL_REMINDER,
                                             f"reminder-{approval.reminders_sent}", "Reminder: approval needed"))

        decision = await self._gate.wait(reminder_every=timedelta(hours=self._config.approval_reminder_hours),
                                         on_reminder=remind, summary="amendment approval reminder")
        self._gate.close()
        if decision is None:
            self._status.exception = ExceptionKind.NONE
            days = self._config.approval_expiry_days
            await self._write_back(DealWriteBack(
                approval_status="expired", amendment_status="expired", amendment_sequence=str(plan.sequence),
                approval_note=f"Amendment {plan.sequence}: no decision within {days:g} days; not propagated"),
                notice=self._approval_notice(approval, plan.sequence, NoticeKind.APPROVAL_EXPIRED, "expired",
                                             "Approval expired (not propagated)"))
            return None
        if self._status.exception is ExceptionKind.APPROVAL_OVERDUE:
            self._status.exception = ExceptionKind.NONE
        status = "approved" if decision.approved else "rejected"
        self._status.note(f"amendment {plan.sequence} {status} by {decision.approver}"
                          + (f": {decision.note}" if decision.note else ""))
        await self._write_back(DealWriteBack(
            approval_status=status, amendment_status=status, amendment_sequence=str(plan.sequence),
            approval_note=f"Amendment {plan.sequence}: {decision.approver}: {decision.note}".rstrip(": ")))
        return decision

    @workflow.update
    async def decide_approval(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """Finance decides the pending amendment approval. Refused at once when nothing is pending, when the
        proof is not for this run, request and terms or was used before, or the approver lacks authority."""
        outcome = self._gate.decide(decision)
        # timeline only: the run's own step publishes (an upsert here would be a new command in the update)
        assert self._gate.pending is not None
        self._status.record(self._gate.decision_note(self._gate.pending, outcome))
        return outcome

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        self._gate.validate(decision, subject=f"contract {self._record_id}", stage=self._status.stage.value,
                            authority=self._config.authority if self._config else None)

    # -- propagation -------------------------------------------------------------------------------
    def _provisioning_record(self) -> ProvisioningRecord:
        """The deal's provisioning record as this contract now stands (budgets and billing IDs as amended)."""
        return ProvisioningRecord(
            entities=[e.model_copy(update={"budget": self._budgets.get(e.project_code, e.budget)})
                      for e in self._provisioned],
            billing_ids=list(self._billing_ids))

    async def _propagate(self, record: AmendmentRecord, plan: AmendmentPlan, terms: ContractTerms) -> None:
        """Every step is idempotent, so after a failure an operator's retry runs them all again."""
        choices: dict[str, ConflictResolution] = {}
        while True:
            try:
                for change in plan.entities:
                    await self._propagate_entity(plan.sequence, change, terms, choices)
                await self._write_back(DealWriteBack(
                    revops_exception="" if self._status.exception is ExceptionKind.NONE else None,
                    contract_value=str(terms.total_value.amount), forecast_amount=str(terms.total_value.amount),
                    forecast_monthly_recurring=str(monthly_recurring(terms).amount),
                    forecast_end_date=terms.end_date.isoformat() if terms.end_date else "",
                    amendment_sequence=str(plan.sequence), amendment_status="applied",
                    provisioned=self._provisioning_record()), required=True)
                self._failure = self._conflict = ""
                return
            except _Conflict as conflict:
                choices[conflict.project_code] = await self._resolve_conflict(conflict)
            except ActivityError as err:
                await self._failed(f"amendment {plan.sequence} propagation failed: {failure_reason(err)}")
            self._status.enter(AmendmentStage.APPLYING, f"propagating amendment {plan.sequence} again",
                               waiting_for=f"amendment {plan.sequence} propagated")

    async def _propagate_entity(self, sequence: int, change: EntityChange, terms: ContractTerms,
                                choices: dict[str, ConflictResolution]) -> None:
        assert self._config is not None
        target = next(p for p in self._provisioned if p.legal_entity == change.legal_entity)
        entity = change.legal_entity
        if change.project is not None:
            choice = choices.get(target.project_code)
            try:
                project: Project = await self._step(Erp.update_erp_project, GuardedProjectInput(
                    tenant_id=target.tenant_id, project=change.project,
                    expected_budget=self._budgets.get(target.project_code),
                    force=choice is not None and not choice.keep_erp_value,
                    keep_erp_budget=choice is not None and choice.keep_erp_value,
                    idempotency_key=self._key(sequence, f"erp-project-{entity}")),
                    f"Update {self._erp_of(entity).label} project {target.project_code}: "
                    f"budget {change.project.budget}, "
                    f"{len(change.project.tasks)} task(s)")
            except ActivityError as err:
                if failure_type(err) == "OwnershipViolation":
                    raise _Conflict(target.project_code, failure_reason(err)) from err
                raise
            self._budgets[target.project_code] = str(project.budget.amount)
        for item in change.subscription_changes:
            await self._step(Bill.change_subscription_item, SubscriptionChangeInput(
                change=item, prorate=self._config.prorate,
                idempotency_key=self._key(sequence, f"sub-item-{item.item_id}")),
                f"{self._billing.label} {item.product_code}: quantity {item.old_quantity} -> {item.quantity}, "
                f"price {item.old_unit_amount} -> {item.unit_amount}")
        for index, schedule in enumerate(change.new_schedules):
            key = self._key(sequence, f"billing-{entity}-{schedule.kind.value}-{index}")
            schedule = schedule.model_copy(update={"metadata": {**schedule.metadata,
                                                                "revops_workflow": workflow.info().workflow_id}})
            created: BillingSchedule = await self._step(
                Bill.create_billing_schedule, BillingScheduleInput(schedule=schedule, idempotency_key=key),
                f"Create {self._billing.label} {schedule.kind.value} for "
                + ", ".join(c.product_code for c in schedule.charges))
            for billing_id in [created.billing_id or "", *created.item_ids]:
                if billing_id and billing_id not in self._billing_ids:
                    self._billing_ids.append(billing_id)
            if created.billing_id:
                self._status.add_keys(self._billing.ref("subscription", created.billing_id))
        if change.cancel_ids:
            retired = BillingSchedule(kind=BillingScheduleKind.MILESTONE, customer_id=target.billing_customer_id,
                                      currency=terms.total_value.currency, start_date=terms.start_date,
                                      item_ids=change.cancel_ids)
            await self._step(Bill.cancel_billing_schedule,
                             BillingScheduleInput(schedule=retired, idempotency_key=self._key(sequence,
                                                                                               f"retire-{entity}")),
                             f"Retire {len(change.cancel_ids)} {self._billing.label} record(s) replaced by "
                             f"amendment {sequence}")
            self._billing_ids = [i for i in self._billing_ids if i not in change.cancel_ids]
        for subscription_id in change.subscription_ends:
            await self._step(Bill.set_subscription_end, SubscriptionEndInput(
                subscription_id=subscription_id, end_date=change.end_date,
                idempotency_key=self._key(sequence, f"sub-end-{subscription_id}")),
                f"{self._billing.label} subscription {subscription_id} ends {change.end_date or 'never'}")

    async def _resolve_conflict(self, conflict: _Conflict) -> ConflictResolution:
        self._conflict = conflict.detail
        self._conflict_choice = None
        self._status.exception = ExceptionKind.OWNERSHIP_CONFLICT
        self._status.enter(AmendmentStage.OWNERSHIP_CONFLICT, f"ERP-owned budget changed in the ERP: {conflict.detail}",
                           waiting_for="an operator: resolve_conflict (keep the ERP's value or overwrite it)")
        await self._write_back(DealWriteBack(revops_exception=f"Ownership conflict: {conflict.detail}",
                                             amendment_status="ownership conflict"))
        await workflow.wait_condition(lambda: self._conflict_choice is not None,
                                      timeout_summary="ownership conflict resolved")
        choice = self._conflict_choice
        assert choice is not None
        self._conflict_choice = None
        self._status.exception = ExceptionKind.NONE
        kept = "keep the ERP value" if choice.keep_erp_value else "overwrite it"
        self._status.note(f"{choice.operator} chose to {kept}" + (f": {choice.note}" if choice.note else ""))
        return choice

    async def _failed(self, reason: str) -> None:
        """A step failed for good: show it and wait for an operator's retry."""
        self._failure = reason
        self._status.exception = ExceptionKind.PROPAGATION_FAILED
        self._status.enter(AmendmentStage.PROPAGATION_FAILED, reason,
                           waiting_for="an operator to fix the cause and retry (retry_propagation update)")
        self._failures += 1
        await self._write_back(DealWriteBack(revops_exception=f"Amendment propagation failed: {reason}",
                                             amendment_status="failed"),
                               notice=self._notice(NoticeKind.PROPAGATION_FAILED,
                                                   idempotency_key(f"notice-failed-{self._failures}",
                                                                   scope=workflow.info().run_id[:8]),
                                                   f"Amendment propagation failed on {self._title or self._record_id}",
                                                   reason))
        await self._until_retried()
        self._status.exception = ExceptionKind.NONE

    async def _until_retried(self) -> None:
        """Wait for an operator's retry, or for the CLM's own delivery of the amendment being applied (it was
        not readable yet when a manual ``amend`` signalled it): that delivery resumes the propagation."""
        self._retry = None
        await workflow.wait_condition(lambda: self._retry is not None or self._redelivered() is not None,
                                      timeout_summary="operator retry or the amendment's webhook")
        if self._retry is not None:
            self._status.note(f"retry requested by {self._retry.operator}")
            self._retry = None
            return
        delivered = self._redelivered()
        assert delivered is not None and self._current is not None
        self._inbox.remove(delivered)
        self._current.deliveries += 1
        if delivered[0].clm_amendment_id:
            self._current.clm_amendment_id = delivered[0].clm_amendment_id
        if delivered[0].executed_at is not None:
            self._current.executed_at = delivered[0].executed_at
        self._status.note(f"amendment {self._current.sequence} delivered by {self._clm.display}: "
                          "retrying its propagation")

    def _redelivered(self) -> tuple[AmendmentSignal, datetime] | None:
        """A received signal for the amendment being applied (not a duplicate: it carries news)."""
        current = self._current
        if current is None:
            return None
        return next((item for item in self._inbox
                     if item[0].record_id == self._record_id and item[0].sequence == current.sequence), None)

    # ------------------------------------------------------------------------------------------
    # Messages
    # ------------------------------------------------------------------------------------------
    @workflow.signal(name=AMENDMENT_SIGNAL)
    def amendment_executed(self, signal: AmendmentSignal) -> None:
        """An amendment was executed in the CLM (duplicates and early arrivals are sorted out by the run)."""
        self._inbox.append((signal, workflow.now()))

    @workflow.update
    async def resolve_gap(self, request: GapResolution) -> GapResolutionResult:
        """An operator fetches the missing amendments from the CLM; answers what was found."""
        result = await self._fetch_from_clm(f"gap resolved by {request.operator}")
        self._status.note(f"{request.operator} fetched amendments from {self._clm.display}: "
                          f"found {result.found or 'none'}"
                          + (f", still missing {result.still_missing}" if result.still_missing else ""))
        return result

    @resolve_gap.validator
    def _validate_gap(self, request: GapResolution) -> None:
        if not self._missing():
            raise ValueError(f"contract {self._record_id} has no amendment gap")

    @workflow.update
    def resolve_conflict(self, choice: ConflictResolution) -> ConflictResolution:
        """An operator decides an ownership conflict: keep the ERP's value, or overwrite it with ours."""
        self._conflict_choice = choice
        return choice

    @resolve_conflict.validator
    def _validate_conflict(self, choice: ConflictResolution) -> None:
        if self._status.stage is not AmendmentStage.OWNERSHIP_CONFLICT or self._conflict_choice is not None:
            raise ValueError(f"contract {self._record_id} has no ownership conflict (stage {self._status.stage.value})")

    @workflow.update
    def retry_propagation(self, request: RetryRequest) -> RetryRequest:
        """An operator fixed what made a step fail for good; the workflow tries again."""
        self._retry = request
        return request

    @retry_propagation.validator
    def _validate_retry(self, request: RetryRequest) -> None:
        if self._status.stage not in (AmendmentStage.PROPAGATION_FAILED, AmendmentStage.NOT_PROVISIONED) \
                or self._retry is not None:
            raise ValueError(f"contract {self._record_id} has nothing to retry (stage {self._status.stage.value})")

    @workflow.query
    def status(self) -> ContractAmendmentsStatus:
        return ContractAmendmentsStatus(
            record_id=self._record_id, deal_id=self._deal_id, stage=self._status.stage,
            exception_kind=self._status.exception, exception_since=self._status.exception_since,
            waiting_for=self._status.waiting_for, next_sequence=self._next, pending_sequences=sorted(self._pending),
            missing_sequences=self._missing(), terms=self._terms, provisioned=self._provisioned,
            current=self._current, history=self._history, duplicates_ignored=self._duplicates,
            conflict=self._conflict, failure=self._failure, business_keys=self._status.keys, runs=self._runs,
            timeline=list(self._status.timeline))

    # ------------------------------------------------------------------------------------------
    # Continue-as-new
    # ------------------------------------------------------------------------------------------
    def _should_continue_as_new(self) -> bool:
        assert self._config is not None
        return (self._applied_this_run >= self._config.continue_as_new_after
                or workflow.info().is_continue_as_new_suggested())

    def _carry(self) -> AmendmentsCarried:
        assert self._terms is not None
        return AmendmentsCarried(
            deal_id=self._deal_id, title=self._title, counterparty=self._counterparty,
            deal_owner_id=self._deal_owner_id, terms=self._terms, next_sequence=self._next,
            provisioned=self._provisioned, budgets=self._budgets, billing_ids=self._billing_ids,
            pending=[self._pending[n] for n in sorted(self._pending)], history=self._history,
            business_keys=self._status.keys, gap_since=self._gap_since, duplicates_ignored=self._duplicates,
            exception_kind=self._status.exception, exception_since=self._status.exception_since, runs=self._runs + 1,
            approval_gate=self._gate.memory())

    def _restore(self, carried: AmendmentsCarried) -> None:
        self._deal_id, self._title, self._terms = carried.deal_id, carried.title, carried.terms
        self._counterparty, self._deal_owner_id = carried.counterparty, carried.deal_owner_id
        self._next, self._provisioned, self._budgets = carried.next_sequence, carried.provisioned, carried.budgets
        self._billing_ids = list(carried.billing_ids)
        self._pending = {r.sequence: r for r in carried.pending}
        self._history, self._gap_since = carried.history, carried.gap_since
        self._duplicates, self._runs = carried.duplicates_ignored, carried.runs
        self._status.resume_exception(carried.exception_kind, carried.exception_since)
        self._gate.restore(carried.approval_gate)
        self._status.add_keys(*carried.business_keys)
        self._describe_targets()

    # ------------------------------------------------------------------------------------------
    # Plumbing
    # ------------------------------------------------------------------------------------------
    def _notice(self, kind: NoticeKind, event_key: str, title: str, text: str) -> Notice:
        return Notice(event_key=event_key, kind=kind, workflow_id=workflow.info().workflow_id, title=title, text=text)

    def _approval_notice(self, approval: ApprovalState, sequence: int, kind: NoticeKind, event: str,
                         title: str) -> Notice:
        text = "; ".join(approval.reasons) + (". No decision came in time: the amendment was not propagated."
                                              if kind is NoticeKind.APPROVAL_EXPIRED
                                              else f". Decide before {approval.expires_at:%Y-%m-%d %H:%M} UTC.")
        return Notice(event_key=self._key(sequence, f"notice-approval-{event}"), kind=kind,
                      workflow_id=workflow.info().workflow_id, title=f"{title}: {approval.title}", text=text,
                      facts=approval.facts)

    async def _write_back(self, update: DealWriteBack, *, required: bool = False,
                          notice: Notice | None = None) -> None:
        """Write to the CRM deal. Status write-backs never stop the flow; the final one of a propagation
        (``required``) fails it, so that a refused CRM write is retried by an operator like any other."""
        await self._crm_writes.write(self._deal_id, update, notice=notice, required=required)

    def _key(self, sequence: int, step: str) -> str:
        """Idempotency key: the business key, the amendment and the step (stable across continue-as-new)."""
        return idempotency_key(step, scope=f"a{sequence}")

    def _details(self) -> list[str]:
        """The contract's lines of the run's current details (the status component adds stage and timeline)."""
        lines = [f"**Contract:** {self._title or 'contract record'} (`{self._record_id}`)"
                 + (f", deal `{self._deal_id}`" if self._deal_id else "")]
        if self._terms is not None:
            lines.append(f"**Current terms:** {self._terms.total_value}, ends {self._terms.end_date or 'open'}; "
                         f"next amendment {self._next}")
        if self._pending:
            lines.append(f"**Received, not applied:** {sorted(self._pending)}"
                         + (f"; missing {self._missing()}" if self._missing() else ""))
        if self._conflict:
            lines.append(f"**Conflict:** {self._conflict}")
        if self._failure:
            lines.append(f"**Failure:** {self._failure}")
        cycles = [h for h in self._history if h.cycle_time_seconds is not None]
        if cycles:
            lines.append("**Cycle times:**\n" + "\n".join(
                f"- amendment {h.sequence}: {h.outcome}, {h.cycle_time_seconds:.1f}s" for h in cycles[-5:]))
        return lines


class _Conflict(Exception):
    """An ERP-owned value changed in the ERP since we last wrote it."""

    def __init__(self, project_code: str, detail: str) -> None:
        super().__init__(detail)
        self.project_code = project_code
        self.detail = detail
