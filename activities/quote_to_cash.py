"""The business steps of quote-to-cash. Each activity is one step against one system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.models import (
    Ack,
    BillingCustomerInput,
    BillingCustomerResult,
    BillingRecordRef,
    BillingScheduleInput,
    ContractRef,
    DealRef,
    ErpCustomerInput,
    ErpCustomerResult,
    ErpProjectInput,
    ErpRecordRef,
    FlowConfig,
    FlowConfigRequest,
    LaunchContractInput,
    WriteBackInput,
)
from activities.retrying import business_step
from canonical import BillingSchedule, Contract, Deal, Project
from canonical.policy import ApprovalPolicy
from canonical.refs import ownership_marker
from connectors.notify import Notifications
from connectors.ports import BillingPort, ClmPort, CrmPort, ErpPort
from settings import Settings


class QuoteToCashActivities:
    """Activities of the quote-to-cash flow, holding the connectors they call (built in worker.py)."""

    def __init__(self, *, settings: Settings, crm: CrmPort, clm: ClmPort, billing: BillingPort, erp: ErpPort,
                 notifications: Notifications | None = None) -> None:
        self.settings = settings
        self.notifications = notifications
        self.crm = crm
        self.clm = clm
        self.billing = billing
        self.erp = erp

    # -- configuration ---------------------------------------------------------------------------
    @activity.defn(name="load_flow_config")
    async def load_flow_config(self, request: FlowConfigRequest) -> FlowConfig:
        """Approval policy, legal entities and timers from the worker's settings."""
        s = self.settings
        return FlowConfig(
            policy=ApprovalPolicy(max_discount_percent=s.approval_max_discount_percent,
                                  max_amount=s.approval_max_amount,
                                  standard_payment_terms_days=s.approval_standard_payment_terms_days),
            entities=s.legal_entities,
            template_id=s.ironclad_template_id,
            approval_reminder_hours=s.approval_reminder_hours,
            approval_expiry_days=s.approval_expiry_days,
            contract_poll_interval_seconds=s.contract_poll_interval_seconds,
            contract_max_wait_days=s.contract_max_wait_days,
            activity_retry_max_seconds=s.activity_retry_max_seconds,
            temporal_ui_url=s.temporal_ui_url,
            activity_timeout_seconds=s.activity_timeout_seconds,
            authority=s.approval_authority(),
        )

    # -- CRM ---------------------------------------------------------------------------------------
    @activity.defn(name="load_deal")
    @business_step
    async def load_deal(self, ref: DealRef) -> Deal:
        """Deal, company, contacts and line items from the CRM."""
        return await self.crm.get_deal(ref.deal_id)

    @activity.defn(name="write_back_deal")
    @business_step
    async def write_back_deal(self, request: WriteBackInput) -> Ack:
        """Write our status and the other systems' IDs onto the CRM deal, and tell the people concerned when the
        write-back records an event they must act on (first, so a CRM refusal never silences it; each channel
        once per event, across retries of this activity and restarts of the worker)."""
        told: list[str] = []
        if request.notice is not None and self.notifications is not None:
            told = await self.notifications.tell(request.notice)
        await self.crm.write_back(request.deal_id, request.update)
        return Ack(detail=", ".join(sorted(request.update.properties())) + (f"; told via {', '.join(told)}"
                                                                               if told else ""))

    # -- CLM ---------------------------------------------------------------------------------------
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

    # -- ERP ---------------------------------------------------------------------------------------
    @activity.defn(name="upsert_erp_customer")
    @business_step
    async def upsert_erp_customer(self, request: ErpCustomerInput) -> ErpCustomerResult:
        """Find the ERP contact by our reference or create it; ERP-owned fields are never overwritten.

        ``created`` (ours to compensate) is decided by the ownership mark the create wrote, not by a look-up
        before it: a retry after a create whose answer was lost still knows the contact is its own."""
        account = await self.erp.upsert_customer(request.tenant_id, request.account, contact=request.contact,
                                                 reference=request.reference,
                                                 idempotency_key=request.idempotency_key)
        return ErpCustomerResult(account=account,
                                 created=account.created_by == ownership_marker(request.idempotency_key))

    @activity.defn(name="archive_erp_customer")
    @business_step
    async def archive_erp_customer(self, ref: ErpRecordRef) -> Ack:
        await self.erp.archive_customer(ref.tenant_id, ref.record_id)
        return Ack()

    @activity.defn(name="create_erp_project")
    @business_step
    async def create_erp_project(self, request: ErpProjectInput) -> Project:
        return await self.erp.create_project(request.tenant_id, request.project,
                                             idempotency_key=request.idempotency_key)

    @activity.defn(name="close_erp_project")
    @business_step
    async def close_erp_project(self, ref: ErpRecordRef) -> Ack:
        await self.erp.close_project(ref.tenant_id, ref.record_id)
        return Ack()

    # -- billing -----------------------------------------------------------------------------------
    @activity.defn(name="ensure_billing_customer")
    @business_step
    async def ensure_billing_customer(self, request: BillingCustomerInput) -> BillingCustomerResult:
        """Find the billing customer by our reference or create it; ``created`` by the ownership mark."""
        customer_id = await self.billing.ensure_customer(
            request.account, contact=request.contact, reference=request.reference,
            legal_entity=request.legal_entity, idempotency_key=request.idempotency_key)
        customer = await self.billing.get_customer(customer_id)
        return BillingCustomerResult(customer_id=customer_id,
                                     created=customer.account.created_by == ownership_marker(request.idempotency_key))

    @activity.defn(name="delete_billing_customer")
    @business_step
    async def delete_billing_customer(self, ref: BillingRecordRef) -> Ack:
        await self.billing.delete_customer(ref.record_id)
        return Ack()

    @activity.defn(name="create_billing_schedule")
    @business_step
    async def create_billing_schedule(self, request: BillingScheduleInput) -> BillingSchedule:
        return await self.billing.create_schedule(request.schedule, idempotency_key=request.idempotency_key)

    @activity.defn(name="cancel_billing_schedule")
    @business_step
    async def cancel_billing_schedule(self, request: BillingScheduleInput) -> Ack:
        await self.billing.cancel_schedule(request.schedule, idempotency_key=request.idempotency_key)
        return Ack()

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.load_flow_config, self.load_deal, self.write_back_deal, self.launch_contract,
                self.check_contract, self.cancel_contract, self.upsert_erp_customer, self.archive_erp_customer,
                self.create_erp_project, self.close_erp_project, self.ensure_billing_customer,
                self.delete_billing_customer, self.create_billing_schedule, self.cancel_billing_schedule]
