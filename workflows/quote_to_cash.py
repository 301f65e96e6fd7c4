"""Quote-to-cash: a CRM deal becomes an approved, executed contract and provisioned ERP and billing records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.clm import ClmActivities
    from activities.config import ConfigActivities
    from activities.crm import CrmActivities
    from activities.erp import ErpActivities
    from activities.models import (
        BillingCustomerInput,
        BillingCustomerResult,
        BillingRecordRef,
        BillingScheduleInput,
        ContractRef,
        DealRef,
        ErpProjectInput,
        ErpRecordRef,
        FlowConfigRequest,
        LaunchContractInput,
        LinkBillingCustomerInput,
        MatchBillingCustomerInput,
        QuoteToCashConfig,
    )
    from canonical import Contract, ContractStatus, Deal, Engagement, MissingField, describe_missing
    from canonical.authority import ApprovalFacts, approvals_required
    from canonical.backfill import ErpCustomerDraft
    from canonical.bands import deal_size_band
    from canonical.billing import BillingScheduleKind
    from canonical.exceptions import ExceptionKind
    from canonical.keys import erp_contact_reference, invoicing_workflow_id, time_billing_workflow_id
    from canonical.matching import CustomerMatch, MatchKind
    from canonical.notifications import Notice, NoticeKind
    from canonical.policy import RoutingError, approval_reasons, deal_entity
    from canonical.provisioning import (
        EngagementPlan,
        plan_engagements,
        proposed_terms,
        provisioning_record,
        written_back_refs,
    )
    from canonical.requests import ContractRequest, DealWriteBack
    from canonical.systems import OURS, Systems
    from workflows.approval_gate import ApprovalGate
    from workflows.attributes import DEAL_SIZE, LEGAL_ENTITY
    from workflows.erp_contacts import find_or_create_erp_contact
    from workflows.invoicing import OneOffInvoicingWorkflow
    from workflows.models import (
        ApprovalDecision,
        ApprovalOutcome,
        ApprovalState,
        ContractExecutedSignal,
        CustomerMatchChoice,
        CustomerMatchChosen,
        DealCorrection,
        Milestone,
        OneOffInvoicingInput,
        PendingCustomerMatch,
        QuoteToCashInput,
        QuoteToCashResult,
        QuoteToCashStatus,
        RecheckRequest,
        RecheckResult,
        Stage,
        TimeBillingInput,
    )
    from workflows.status import WorkflowStatus, idempotency_key
    from workflows.steps import STEP_FAILED, failure_reason
    from workflows.time_billing import TimeBillingWorkflow
    from workflows.write_back import CrmWriteBack

Cfg = ConfigActivities
Crm = CrmActivities
Clm = ClmActivities
Bill = BillingActivities
Erp = ErpActivities


#: Outcomes that end the run *Failed* in Temporal (the deal cannot proceed; a person must act), with the
#: ``ApplicationError`` type per exception kind. Rejected, expired, cancelled and skipped are decisions or
#: no-ops and end *Completed* (README, "Outcomes in the Temporal UI").
FAILURE_TYPES = {
    ExceptionKind.DEAL_NOT_FOUND: "DealNotFound",
    ExceptionKind.PROVISIONING_FAILED: "ProvisioningFailed",
}


class _Stop(Exception):
    """Ends the run early with an outcome (rejected, expired, cancelled, failed...)."""

    def __init__(self, outcome: Stage, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def _terms(deal: Deal) -> str:
    """The deal's commercial terms in one line, for the people who decide."""
    parts = [f"{deal.billing_model.value}" if deal.billing_model else "",
             f"{deal.start_date or '?'} to {deal.end_date or 'open'}",
             f"payment {deal.payment_terms_days} days" if deal.payment_terms_days is not None else "",
             "non-standard terms" if deal.non_standard_terms else ""]
    lines = "; ".join(f"{line.quantity} x {line.name} at {line.unit_price}"
                      + (f" less {line.discount_percent}%" if line.discount_percent else "") for line in deal.lines[:5])
    return ", ".join(p for p in parts if p) + (f" | {lines}" if lines else "")


@workflow.defn(name="QuoteToCashWorkflow")
class QuoteToCashWorkflow:
    """One run per CRM deal (workflow ID ``q2c-<crm>-<dealId>``)."""

    def __init__(self) -> None:
        self._deal_id = ""
        self._status = WorkflowStatus(Stage.LOADING, details=self._details)
        self._step = self._status.step  # the typed step of the status component, under its short name
        self._failure = ""
        self._config: QuoteToCashConfig | None = None
        self._deal: Deal | None = None
        self._entity_code = ""
        self._missing: list[MissingField] = []
        self._corrections = 0
        self._corrected_deal: Deal | None = None
        self._gate = ApprovalGate()  # the one pending approval of this run (status shows it, never a proof)
        self._contract: Contract | None = None
        self._executed: ContractExecutedSignal | None = None
        self._engagements: list[Engagement] = []
        self._one_offs: list[OneOffInvoicingInput] = []  # draft one-off invoices, per project, to finalize when due
        self._time_billing: list[TimeBillingInput] = []  # time-and-materials projects whose time is billed monthly
        self._milestones: list[Milestone] = []  # query-only state for the KPIs: no command, no history change
        self._matches: dict[str, PendingCustomerMatch] = {}  # "<entity>:<erp|billing>" -> match waiting for a person
        self._match_choices: dict[str, CustomerMatchChoice] = {}
        self._crm_writes = CrmWriteBack(self._status, label=lambda: self._crm, stamp_workflow_id=True,
                                        local_when_quiet=True, exception_on_failure=True)

    @property
    def _systems(self) -> Systems:
        assert self._config is not None, "the configuration is read first"
        return self._config.systems

    @property
    def _crm(self) -> str:
        """``CRM (HubSpot)`` once the configuration is read, ``CRM`` before."""
        return self._config.systems.crm.label if self._config else "CRM"

    # ------------------------------------------------------------------------------------------
    # The flow
    # ------------------------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: QuoteToCashInput) -> QuoteToCashResult:
        self._deal_id = request.deal_id
        self._status.started_with(workflow.info())
        self._mark("started")
        self._status.enter(Stage.LOADING, f"started by {request.trigger}", waiting_for="the CRM deal")
        try:
            self._config = (await self._step(Cfg.load_flow_config, FlowConfigRequest(flow="quote_to_cash"),
                                             "Read approval policy and entities", local=True)).for_quote_to_cash()
            self._status.add_keys(self._config.systems.crm.ref("deal", request.deal_id))
            self._status.use(retry_max_seconds=self._config.activity_retry_max_seconds,
                             timeout_seconds=self._config.activity_timeout_seconds)
            deal = await self._load_deal()
            if deal.write_backs.revops_status == Stage.PROVISIONED.value:
                # the re-run is findable by the deal's IDs
                self._status.add_keys(*written_back_refs(deal.write_backs, self._config.systems))
                raise _Stop(Stage.SKIPPED, "the deal is already provisioned")
            deal = await self._until_complete(deal)
            await self._approve(deal)
            contract = await self._contract_signed(deal)
            await self._provision(deal, contract)
        except _Stop as stop:
            result = await self._finish(stop.outcome, stop.reason)
            if stop.outcome is Stage.FAILED:
                # After compensation and write-back: the run ends Failed so lists, filters and metrics show
                # it; the result rides along as the error's details (``starter.py status`` reads it).
                workflow.logger.info("deal %s ended %s (%s)", self._deal_id, stop.outcome.value,
                                     self._status.exception.value)
                raise ApplicationError(stop.reason, result, non_retryable=True,
                                       type=FAILURE_TYPES.get(self._status.exception, "DealFailed")) from None
            return result
        return await self._finish(Stage.PROVISIONED, "provisioned in " + ", ".join(
            e.legal_entity for e in self._engagements))

    async def _load_deal(self) -> Deal:
        try:
            deal = await self._step(Crm.load_deal, DealRef(deal_id=self._deal_id),
                                    f"Read {self._crm} deal {self._deal_id}", local=True)
        except STEP_FAILED as err:
            self._status.exception = ExceptionKind.DEAL_NOT_FOUND
            raise _Stop(Stage.FAILED, f"the deal could not be read: {failure_reason(err)}") from err
        self._use_deal(deal)
        return deal

    def _use_deal(self, deal: Deal) -> None:
        self._deal = deal
        if deal.account and deal.account.crm_id:
            self._status.add_keys(self._systems.crm.ref("company", deal.account.crm_id))
        if deal.currency and deal.lines:
            self._status.set(DEAL_SIZE.value_set(deal_size_band(deal.total().amount)))

    # -- 1. mandatory commercial data ---------------------------------------------------------------
    def _check(self, deal: Deal) -> list[MissingField]:
        missing = deal.missing_commercial_fields()
        if not missing:
            assert self._config is not None
            try:
                entity = deal_entity(deal, self._config.entities, self._systems.erp)
            except RoutingError as exc:
                missing.append(MissingField(field=exc.field, reason=exc.reason))
            else:
                self._entity_code = entity.code
                self._status.set(LEGAL_ENTITY.value_set(entity.code))
        return missing

    async def _until_complete(self, deal: Deal) -> Deal:
        """Wait in a visible data exception until the deal carries every mandatory field."""
        while True:
            # Corrections that arrive while this deal is checked and written back wake the next wait.
            handled = self._corrections
            self._missing = self._check(deal)
            if not self._missing:
                if self._status.exception is ExceptionKind.MISSING_DATA:
                    self._status.exception = ExceptionKind.NONE
                    self._write_back_later(DealWriteBack(revops_status="data_complete", revops_exception=""))
                return deal
            described = describe_missing(self._missing)
            if self._status.exception is not ExceptionKind.MISSING_DATA:
                self._mark("data_exception")
            self._status.exception = ExceptionKind.MISSING_DATA
            self._status.enter(Stage.DATA_EXCEPTION, f"missing data: {described}",
                               waiting_for="a corrected deal (deal_corrected signal or recheck_deal update)")
            await self._write_back(DealWriteBack(revops_status=Stage.DATA_EXCEPTION.value,
                                                 revops_exception=f"Missing data: {described}"),
                                   notice=self._notice(NoticeKind.DATA_EXCEPTION, f"data-exception-{handled}",
                                                       f"Deal {deal.name} is missing data",
                                                       f"Fix in {self._crm}: {described}"))
            await workflow.wait_condition(lambda: self._corrections > handled,  # noqa: B023 (awaited here)
                                          timeout_summary="deal corrected")
            if self._corrected_deal is not None:
                deal, self._corrected_deal = self._corrected_deal, None
                self._use_deal(deal)
            else:
                deal = await self._load_deal()

    # -- 2. commercial approval ---------------------------------------------------------------------
    async def _approve(self, deal: Deal) -> None:
        assert self._config is not None
        reasons = approval_reasons(deal, self._config.policy)
        if not reasons:
            self._status.note("approved by policy: within discount, amount and terms limits")
            self._write_back_later(DealWriteBack(approval_status="auto-approved"))
            return
        facts = ApprovalFacts(amount=deal.total() if deal.currency and deal.lines else None,
                              discount_percent=deal.max_discount_percent(), legal_entity=self._entity_code,
                              owner_id=deal.owner_id)
        required = approvals_required(self._config.authority, facts)
        if required > 1:
            reasons = [*reasons, "two approvers needed: amount above the dual-approval threshold"]
        approval = self._gate.open(reasons=reasons, facts=facts, required=required,
                                   expires_in=timedelta(days=self._config.approval_expiry_days), title=deal.name,
                                   company=deal.account.name if deal.account else "", terms=_terms(deal))
        self._status.enter(Stage.AWAITING_APPROVAL, "finance approval needed: " + "; ".join(reasons),
                           waiting_for=f"finance decision{'s of two approvers' if required > 1 else ''} "
                                       f"(decide_approval) before {approval.expires_at:%Y-%m-%d %H:%M} UTC")
        await self._write_back(DealWriteBack(revops_status=Stage.AWAITING_APPROVAL.value,
                                             approval_status="pending",
                                             approval_note="; ".join(reasons)),
                               notice=self._approval_notice(NoticeKind.APPROVAL_REQUESTED, "requested",
                                                            "Approval needed"))

        async def remind(approval: ApprovalState) -> None:
            self._status.exception = ExceptionKind.APPROVAL_OVERDUE
            self._status.enter(Stage.AWAITING_APPROVAL, f"reminder {approval.reminders_sent}: still no decision",
                               waiting_for=self._status.waiting_for)
            await self._write_back(DealWriteBack(approval_status=f"pending (reminder {approval.reminders_sent})"),
                                   notice=self._approval_notice(NoticeKind.APPROVAL_REMINDER,
                                                                f"reminder-{approval.reminders_sent}",
                                                                "Reminder: approval needed"))

        decided = await self._gate.wait(reminder_every=timedelta(hours=self._config.approval_reminder_hours),
                                        on_reminder=remind, summary="approval reminder")
        if decided is None:
            self._status.exception = ExceptionKind.NONE
            days = self._config.approval_expiry_days
            await self._write_back(DealWriteBack(revops_status=Stage.EXPIRED.value, approval_status="expired",
                                                 approval_note=f"no decision within {days:g} days"),
                                   notice=self._approval_notice(NoticeKind.APPROVAL_EXPIRED, "expired",
                                                                "Approval expired"))
            raise _Stop(Stage.EXPIRED, "approval request expired without a decision")
        decision = decided
        self._status.exception = ExceptionKind.NONE
        if not decision.approved:
            approval.status = "rejected"
            await self._write_back(DealWriteBack(revops_status=Stage.REJECTED.value, approval_status="rejected",
                                                 approval_note=f"{decision.approver}: {decision.note}"))
            raise _Stop(Stage.REJECTED, f"rejected by {decision.approver}: {decision.note}")
        approval.status = "approved"
        approvers = ", ".join(d.approver for d in approval.decisions if d.approved)
        self._status.note(f"approved by {approvers}" + (f": {decision.note}" if decision.note else ""))
        self._write_back_later(DealWriteBack(approval_status="approved",
                                             approval_note=f"{approvers}: {decision.note}".rstrip(": ")))

    @workflow.update
    async def decide_approval(self, decision: ApprovalDecision) -> ApprovalOutcome:
        """Finance decides a pending approval. Refused at once when nothing is pending, when the decision is
        not signed by the approvals API, or when the approver lacks the authority (limits, own deal...)."""
        outcome = self._gate.decide(decision)
        # timeline only: the run's own step publishes (an upsert here would be a new command in the update)
        assert self._gate.pending is not None
        self._status.record(self._gate.decision_note(self._gate.pending, outcome))
        return outcome

    @decide_approval.validator
    def _validate_decision(self, decision: ApprovalDecision) -> None:
        self._gate.validate(decision, subject=f"deal {self._deal_id}", stage=self._status.stage.value,
                            authority=self._config.authority if self._config else None)

    # -- 3. contract --------------------------------------------------------------------------------
    async def _contract_signed(self, deal: Deal) -> Contract:
        assert self._config is not None and deal.account is not None and deal.billing_contact is not None
        clm = self._config.systems.clm
        self._status.enter(Stage.CONTRACTING, f"launching the contract in the {clm.label}",
                           waiting_for=f"{clm.label} launch")
        request = ContractRequest(deal_crm_id=deal.crm_id, title=f"{deal.name} - Order Form",
                                  legal_entity=self._entity_code,
                                  counterparty=deal.account, signer=deal.billing_contact, terms=proposed_terms(deal))
        contract = await self._step(Clm.launch_contract,
                                    LaunchContractInput(request=request, idempotency_key=self._key("contract")),
                                    f"Launch {clm.label} contract for deal {deal.crm_id}")
        assert contract.clm_workflow_id
        self._contract = contract
        self._status.add_keys(clm.ref("workflow", contract.clm_workflow_id))
        await self._write_back(DealWriteBack(revops_status=Stage.AWAITING_SIGNATURE.value,
                                             clm_workflow_id=contract.clm_workflow_id))
        self._status.enter(Stage.AWAITING_SIGNATURE, f"contract {contract.clm_workflow_id} out for signature",
                           waiting_for=f"signature of {clm.label} contract {contract.clm_workflow_id} "
                                       f"(webhook, polled every {self._config.contract_poll_interval_seconds:g}s)")
        poll = timedelta(seconds=self._config.contract_poll_interval_seconds)
        stalled_at = workflow.now() + timedelta(days=self._config.contract_max_wait_days)
        while True:
            try:
                await workflow.wait_condition(lambda: self._executed is not None, timeout=poll,
                                              timeout_summary=f"poll {clm.display}")
            except TimeoutError:
                pass
            contract = await self._step(Clm.check_contract, ContractRef(clm_workflow_id=contract.clm_workflow_id),
                                        f"Check {clm.label} contract {contract.clm_workflow_id}", local=True)
            self._contract = contract
            if contract.status is ContractStatus.EXECUTED and contract.terms is not None:
                break
            if contract.status is ContractStatus.CANCELLED:
                self._status.exception = ExceptionKind.CONTRACT_CANCELLED
                await self._write_back(DealWriteBack(revops_status=Stage.CANCELLED.value,
                                                     revops_exception=f"contract cancelled in {clm.display}"))
                raise _Stop(Stage.CANCELLED, f"contract {contract.clm_workflow_id} was cancelled in {clm.display}")
            self._executed = None  # a signal that raced ahead of the record: look again next time
            if workflow.now() >= stalled_at and self._status.exception is not ExceptionKind.CONTRACT_STALLED:
                self._status.exception = ExceptionKind.CONTRACT_STALLED
                self._status.enter(Stage.AWAITING_SIGNATURE, "contract unsigned past the expected time",
                                   waiting_for=self._status.waiting_for)
        self._status.exception = ExceptionKind.NONE
        if contract.clm_record_id:
            self._status.add_keys(clm.ref("record", contract.clm_record_id))
        self._mark("contract_signed")
        self._status.note(f"contract executed (record {contract.clm_record_id})")
        self._write_back_later(DealWriteBack(clm_record_id=contract.clm_record_id,
                                             contract_value=str(contract.terms.total_value.amount)))
        return contract

    @workflow.signal
    async def contract_executed(self, signal: ContractExecutedSignal) -> None:
        """The CLM says the contract is signed (the poll confirms and reads the terms)."""
        self._executed = signal

    # -- 4. provisioning saga -------------------------------------------------------------------------
    async def _provision(self, deal: Deal, contract: Contract) -> None:
        assert self._config is not None and contract.terms is not None and deal.account is not None
        plans = plan_engagements(deal, contract.terms, self._config.entities, self._systems.erp)
        self._status.enter(Stage.PROVISIONING, "provisioning " + ", ".join(p.entity.code for p in plans),
                           waiting_for="ERP and billing records")
        await self._write_back(DealWriteBack(revops_status=Stage.PROVISIONING.value))
        undo: list[tuple[Any, Any, str]] = []
        try:
            for plan in plans:
                self._engagements.append(await self._provision_entity(deal, contract, plan, undo))
        except STEP_FAILED as err:
            reason = failure_reason(err)
            self._failure = reason
            self._status.enter(Stage.COMPENSATING, f"provisioning failed: {reason}; undoing {len(undo)} step(s)",
                               waiting_for="compensation")
            for activity_fn, arg, summary in reversed(undo):
                try:
                    await self._step(activity_fn, arg, summary)
                except STEP_FAILED as undo_err:
                    self._status.note(f"compensation '{summary}' failed: {failure_reason(undo_err)}")
            self._status.exception = ExceptionKind.PROVISIONING_FAILED
            await self._write_back(DealWriteBack(revops_status=Stage.FAILED.value,
                                                 revops_exception=f"Provisioning failed and was undone: {reason}"),
                                   notice=self._notice(NoticeKind.PROVISIONING_FAILED, "provisioning-failed",
                                                       f"Provisioning of deal {deal.name} failed and was undone",
                                                       reason))
            raise _Stop(Stage.FAILED, f"provisioning failed and was undone: {reason}") from err
        await self._start_invoicing()
        await self._write_back(DealWriteBack(revops_status=Stage.PROVISIONED.value, revops_exception="",
                                             provisioned=provisioning_record(self._engagements)))

    async def _start_invoicing(self) -> None:
        """Each project's draft one-off invoices (fixed fee, milestones) go to their finalization flow, which
        outlives this run: finalized on their billing date or when their milestone is accepted. Started once
        the saga holds (a compensated draft is never finalized); one flow per project, so a second start is
        the same flow."""
        for request in self._one_offs:
            flow_id = invoicing_workflow_id(self._systems.billing.name, request.project_code)
            try:
                await workflow.start_child_workflow(OneOffInvoicingWorkflow.run, request, id=flow_id,
                                                    parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            except WorkflowAlreadyStartedError:
                self._status.note(f"one-off invoicing {flow_id} already runs")
                continue
            dated = sorted(str(d.bill_on) for d in request.drafts if d.bill_on is not None)
            self._status.note(f"{len(request.drafts)} one-off invoice(s) of {request.project_code} to finalize "
                              f"when due ({', '.join(dated) or 'on acceptance'}): {flow_id}")
        for time in self._time_billing:
            flow_id = time_billing_workflow_id(self._systems.billing.name, time.project_code)
            try:
                await workflow.start_child_workflow(TimeBillingWorkflow.run, time, id=flow_id,
                                                    parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            except WorkflowAlreadyStartedError:
                self._status.note(f"time billing {flow_id} already runs")
                continue
            self._status.note(f"the approved time of {time.project_code} is billed monthly at "
                              f"{len(time.rates)} rate(s): {flow_id}")

    async def _provision_entity(self, deal: Deal, contract: Contract, plan: EngagementPlan,
                                undo: list[tuple[Any, Any, str]]) -> Engagement:
        assert deal.account is not None
        entity = plan.entity
        tenant = entity.erp_tenant_id
        erp, billing = self._systems.erp_of(entity.code), self._systems.billing
        customer_ref = erp_contact_reference(self._systems.crm.name, deal.account.crm_id or "", entity.code)
        draft = ErpCustomerDraft(account=deal.account, contact=deal.billing_contact, reference=customer_ref)

        async def choose(match: CustomerMatch) -> str | None:
            return await self._choose_customer(entity.code, erp.label, match)

        contact = await find_or_create_erp_contact(self._step, erp=erp, tenant_id=tenant, entity_code=entity.code,
                                                   draft=draft, idempotency_key=self._key(f"erp-contact-{entity.code}"),
                                                   refresh=True, choose=choose)
        contact_id, contact_created = contact.contact_id, contact.created
        self._mark("customer_created" if contact_created else
                   "customer_matched" if contact.matched else "customer_reused", entity.code)
        if contact_created:
            undo.append((Erp.archive_erp_customer, ErpRecordRef(tenant_id=tenant, record_id=contact_id),
                         f"Archive {erp.label} contact {contact_id}"))
        self._status.add_keys(erp.ref("contact", contact_id))

        project = await self._step(Erp.create_erp_project, ErpProjectInput(
            tenant_id=tenant, project=plan.project.model_copy(update={"erp_contact_id": contact_id}),
            idempotency_key=self._key(f"erp-project-{entity.code}")),
            f"Create {erp.label} project {plan.project.code} with {len(plan.project.tasks)} task(s) in {entity.code}")
        self._mark("project_created", entity.code)
        undo.append((Erp.close_erp_project, ErpRecordRef(tenant_id=tenant, record_id=project.erp_id or ""),
                     f"Close {erp.label} project {project.erp_id}"))
        self._status.add_keys(erp.ref("project", project.erp_id or ""), OURS.ref("project", project.code))

        customer = await self._billing_customer(deal, entity.code, customer_ref)
        self._mark("customer_created" if customer.created else
                   "customer_matched" if customer.matched else "customer_reused", entity.code)
        if customer.created:
            undo.append((Bill.delete_billing_customer, BillingRecordRef(record_id=customer.customer_id),
                         f"Delete {billing.label} customer {customer.customer_id}"))
        self._status.add_keys(billing.ref("customer", customer.customer_id))

        schedule_ids: list[str] = []
        for index, schedule in enumerate(plan.schedules):
            key = self._key(f"billing-{entity.code}-{schedule.kind.value}-{index}")
            schedule = schedule.model_copy(update={"customer_id": customer.customer_id,
                                                   "metadata": {**schedule.metadata, "revops_project": project.code,
                                                                "revops_workflow": workflow.info().workflow_id}})
            created = await self._step(Bill.create_billing_schedule, BillingScheduleInput(schedule=schedule,
                                                                                       idempotency_key=key),
                                       f"Create {billing.label} {schedule.kind.value} schedule for {entity.code}")
            undo.append((Bill.cancel_billing_schedule,
                         BillingScheduleInput(schedule=created, idempotency_key=key + ":undo"),
                         f"Cancel {billing.label} {schedule.kind.value} schedule {created.billing_id or ''}".rstrip()))
            if created.billing_id:
                schedule_ids.append(created.billing_id)
            schedule_ids.extend(i for i in created.item_ids if i not in schedule_ids)
            self._status.add_keys(*created.refs)
            if schedule.kind is BillingScheduleKind.TIME_AND_MATERIALS:
                self._time_billing.append(TimeBillingInput(
                    project_code=project.code, legal_entity=entity.code, tenant_id=tenant,
                    project_id=project.erp_id or "", customer_id=customer.customer_id, deal_id=deal.crm_id,
                    currency=schedule.currency, rates={c.product_code: c.unit_amount for c in schedule.charges},
                    start_date=schedule.start_date, end_date=schedule.end_date,
                    days_until_due=schedule.days_until_due, keys=created.refs))
            if created.drafts:
                self._one_offs.append(OneOffInvoicingInput(
                    project_code=project.code, legal_entity=entity.code, drafts=created.drafts, keys=created.refs,
                    tenant_id=tenant, project_id=project.erp_id or "",
                    acceptance_poll_seconds=self._config.milestone_poll_interval_seconds if self._config else 3600))
        self._mark("billing_live", entity.code)
        self._status.note(f"{entity.code}: {erp.label} contact {contact_id}, project {project.code}, "
                          f"{billing.label} customer {customer.customer_id}, {len(plan.schedules)} schedule(s)")
        return Engagement(deal_crm_id=deal.crm_id, legal_entity=entity.code, contract_record_id=contract.clm_record_id,
                          erp_contact_id=contact_id, project=project, billing_customer_id=customer.customer_id,
                          billing_schedule_ids=schedule_ids)

    async def _billing_customer(self, deal: Deal, entity_code: str, reference: str) -> BillingCustomerResult:
        """The entity's billing customer: ours by reference; else one keyed by hand that the matching rules (or a
        person, for an ambiguous match) link; else created once."""
        assert deal.account is not None
        billing, key = self._systems.billing, self._key(f"billing-customer-{entity_code}")
        match = await self._step(Bill.match_billing_customer, MatchBillingCustomerInput(
            account=deal.account, contact=deal.billing_contact, reference=reference),
            f"Look for {billing.label} customers like {reference}", local=True)
        chosen = match.record_id if match.kind is MatchKind.EXACT and match.rule is not None else None
        if match.kind is MatchKind.AMBIGUOUS:
            chosen = await self._choose_customer(entity_code, billing.label, match, system="billing")
        if chosen:
            return await self._step(Bill.link_billing_customer, LinkBillingCustomerInput(
                customer_id=chosen, reference=reference, legal_entity=entity_code, idempotency_key=f"{key}:link"),
                f"Link {billing.label} customer {chosen} to {reference}")
        return await self._step(Bill.ensure_billing_customer, BillingCustomerInput(
            account=deal.account, contact=deal.billing_contact, reference=reference, legal_entity=entity_code,
            idempotency_key=key), f"Find or create {billing.label} customer for {entity_code}")

    async def _choose_customer(self, entity_code: str, erp_label: str, match: CustomerMatch, *,
                               system: str = "erp") -> str | None:
        """Wait in a visible ``customer_match`` exception until a person picks a candidate (its record ID) or a new
        customer (None) through ``choose_customer_match`` (``starter.py match``, the finance inbox). ``system``:
        the entity's ERP contact (``erp``) or its billing customer (``billing``); ``erp_label`` names it."""
        key = f"{entity_code}:{system}"
        self._matches[key] = PendingCustomerMatch(legal_entity=entity_code, system=system, erp=erp_label,
                                                  match=match)
        asked = sum(1 for m in self._milestones if m.name == "customer_match_asked" and m.legal_entity == entity_code)
        if not match.refused:
            self._mark("customer_match_asked", entity_code)
        self._status.exception = ExceptionKind.CUSTOMER_MATCH
        names = ", ".join(f"{c.name} ({c.record_id})" for c in match.candidates[:5])
        again = f"asked again: {match.refused}. " if match.refused else ""
        self._status.enter(Stage.PROVISIONING, f"{entity_code}: {again}{len(match.candidates)} {erp_label} contact(s) "
                           f"may be this customer (by {match.rule.value if match.rule else 'reference'}): {names}",
                           waiting_for=f"a person to pick the {erp_label} contact of {entity_code} or a new one "
                                       "(choose_customer_match update: starter.py match)")
        await self._write_back(DealWriteBack(revops_status="customer_match",
                                             revops_exception=f"Customer match in {entity_code}: pick one"),
                               notice=self._notice(NoticeKind.DATA_EXCEPTION,
                                                   f"customer-match-{key}-{asked}-{bool(match.refused)}",
                                                   f"Which {erp_label} contact is this customer?",
                                                   f"{len(match.candidates)} candidate(s) in {entity_code}; "
                                                   f"pick one with starter.py match"))
        await workflow.wait_condition(lambda: key in self._match_choices, timeout_summary="customer match chosen")
        choice = self._match_choices.pop(key)
        del self._matches[key]
        if not self._matches:
            self._status.exception = ExceptionKind.NONE
        picked = "a new customer" if choice.new_customer else f"contact {choice.record_id}"
        self._status.enter(Stage.PROVISIONING, f"{entity_code}: {choice.chosen_by} chose {picked}",
                           waiting_for="provisioning")
        return None if choice.new_customer else choice.record_id

    # ------------------------------------------------------------------------------------------
    # Messages
    # ------------------------------------------------------------------------------------------
    @workflow.update
    async def choose_customer_match(self, choice: CustomerMatchChoice) -> CustomerMatchChosen:
        """A person settles an ambiguous customer match (validated first: a pending match, one of its
        candidates or a new customer)."""
        self._match_choices[f"{choice.legal_entity}:{choice.system}"] = choice
        return CustomerMatchChosen(legal_entity=choice.legal_entity, system=choice.system, record_id=choice.record_id,
                                   new_customer=choice.new_customer)

    @choose_customer_match.validator
    def _validate_match_choice(self, choice: CustomerMatchChoice) -> None:
        key = f"{choice.legal_entity}:{choice.system}"
        pending = self._matches.get(key)
        if pending is None or key in self._match_choices:
            waiting = ", ".join(sorted(self._matches)) or "none"
            what = "customer match" if choice.system == "erp" else f"{choice.system} customer match"
            raise ValueError(f"no {what} waits in {choice.legal_entity} (waiting: {waiting})")
        if choice.new_customer == bool(choice.record_id):
            raise ValueError("pick exactly one: a candidate's record ID, or a new customer")
        known = [c.record_id for c in pending.match.candidates]
        if choice.record_id and choice.record_id not in known:
            raise ValueError(f"{choice.record_id} is not one of the candidates: {', '.join(known)}")

    @workflow.signal
    async def deal_corrected(self, correction: DealCorrection) -> None:
        """The deal changed in the CRM; re-check it (with the new data if the signal carries it)."""
        if correction.deal is not None:
            self._corrected_deal = correction.deal
        self._corrections += 1

    @workflow.update
    async def recheck_deal(self, request: RecheckRequest) -> RecheckResult:
        """An operator re-reads the deal now; answers whether it is complete."""
        deal = await self._step(Crm.load_deal, DealRef(deal_id=self._deal_id),
                                f"Re-read {self._crm} deal {self._deal_id} for {request.requested_by}", local=True)
        missing = deal.missing_commercial_fields()
        self._corrected_deal = deal
        self._corrections += 1
        return RecheckResult(complete=not missing, missing=missing)

    @recheck_deal.validator
    def _validate_recheck(self, request: RecheckRequest) -> None:
        if self._status.stage is not Stage.DATA_EXCEPTION:
            raise ValueError(f"deal {self._deal_id} is not waiting for data (stage {self._status.stage.value})")

    @workflow.query
    def status(self) -> QuoteToCashStatus:
        deal = self._deal
        return QuoteToCashStatus(
            deal_id=self._deal_id, stage=self._status.stage, exception_kind=self._status.exception,
            exception_since=self._status.exception_since, waiting_for=self._status.waiting_for,
            legal_entity=self._entity_code, deal_name=deal.name if deal else "",
            company=deal.account.name if deal and deal.account else "",
            amount=str(deal.total()) if deal and deal.currency and deal.lines else "",
            missing=self._missing, approval=self._gate.pending, contract=self._contract,
            engagements=self._engagements, business_keys=self._status.keys, failure=self._failure,
            timeline=list(self._status.timeline), milestones=self._milestones,
            customer_matches=list(self._matches.values()),
        )

    # ------------------------------------------------------------------------------------------
    # Plumbing
    # ------------------------------------------------------------------------------------------
    def _write_back_later(self, update: DealWriteBack) -> None:
        """Progress the CRM need not see before the next step: carried by the next write-back."""
        self._crm_writes.later(update)

    def _notice(self, kind: NoticeKind, event: str, title: str, text: str) -> Notice:
        return Notice(event_key=self._key(f"notice-{event}"), kind=kind, workflow_id=workflow.info().workflow_id,
                      title=title, text=text)

    def _approval_notice(self, kind: NoticeKind, event: str, title: str) -> Notice:
        approval = self._gate.pending
        assert approval is not None
        deal = self._deal
        what = f"{deal.name}" + (f" ({deal.account.name})" if deal and deal.account else "") if deal else self._deal_id
        return Notice(event_key=self._key(f"notice-approval-{event}"), kind=kind,
                      workflow_id=workflow.info().workflow_id, title=f"{title}: {what}", facts=approval.facts,
                      text="; ".join(approval.reasons) + (
                          ". No decision came in time: the deal stopped." if kind is NoticeKind.APPROVAL_EXPIRED
                          else f". Decide before {approval.expires_at:%Y-%m-%d %H:%M} UTC."))

    async def _write_back(self, update: DealWriteBack, *, notice: Notice | None = None) -> None:
        """Write to the CRM with what was carried (and tell people of ``notice``); a refused write-back is
        recorded, never allowed to undo the business step."""
        await self._crm_writes.write(self._deal_id, update, notice=notice)

    def _key(self, step: str) -> str:
        """Idempotency key of a step: stable across retries and replays of this run chain."""
        return idempotency_key(step)

    def _mark(self, name: str, legal_entity: str = "") -> None:
        self._milestones.append(Milestone(name=name, at=workflow.now(), legal_entity=legal_entity))

    def _details(self) -> list[str]:
        """The deal's lines of the run's current details (the status component adds stage and timeline)."""
        deal = self._deal
        lines = []
        if deal:
            lines.append(f"**Deal:** {deal.name} ({deal.crm_id})" + (f", {deal.account.name}" if deal.account else "")
                         + (f", {deal.total()}" if deal.currency and deal.lines else ""))
        if self._entity_code:
            lines.append(f"**Legal entity:** {self._entity_code}")
        if self._missing and self._status.stage is Stage.DATA_EXCEPTION:
            lines.append("**Missing:**\n" + "\n".join(f"- {m}" for m in self._missing))
        if self._failure:
            lines.append(f"**Failure:** {self._failure}")
        return lines

    async def _finish(self, outcome: Stage, reason: str) -> QuoteToCashResult:
        self._status.enter(outcome, reason, waiting_for="")
        if self._crm_writes.carried is not None:
            await self._write_back(DealWriteBack())
        self._status.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return QuoteToCashResult(deal_id=self._deal_id, outcome=outcome, reason=reason, contract=self._contract,
                                 engagements=self._engagements, business_keys=self._status.keys)
