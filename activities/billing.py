"""Billing's activities (subscriptions, invoices, payment status, dunning): one step each against the
``BillingPort``, whichever vendor plays the role (``BILLING_ADAPTER``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.ledger import BillingCustomerRef, BillingInvoiceRef
from activities.models import (
    Ack,
    BillingCustomerInput,
    BillingCustomerResult,
    BillingRecordRef,
    BillingScheduleInput,
    FinalizeInvoiceInput,
    LinkBillingCustomerInput,
    MatchBillingCustomerInput,
    SubscriptionChangeInput,
    SubscriptionEndInput,
)
from activities.retrying import business_step
from canonical import BillingSchedule, Invoice
from canonical.amendments import BillingRecord
from canonical.ledger import BillingCustomer
from canonical.matching import CustomerMatch, MatchKind, match_customer
from canonical.refs import ownership_marker
from connectors.ports import BillingPort


class BillingActivities:
    """The billing port's steps."""

    def __init__(self, *, billing: BillingPort) -> None:
        self.billing = billing

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

    @activity.defn(name="match_billing_customer")
    @business_step
    async def match_billing_customer(self, request: MatchBillingCustomerInput) -> CustomerMatch:
        """Our customer by reference, else customers keyed by hand that may be the account, and what the
        matching rules make of them (``canonical.matching``). Read only."""
        ours = await self.billing.find_customer(request.reference)
        if ours is not None:
            return CustomerMatch(kind=MatchKind.EXACT, record_id=ours)  # no rule: it is ours already
        email = request.contact.email if request.contact else None
        candidates = await self.billing.customer_candidates(request.account, email=email)
        return match_customer(request.account, candidates, email=email, reference=request.reference)

    @activity.defn(name="link_billing_customer")
    @business_step
    async def link_billing_customer(self, request: LinkBillingCustomerInput) -> BillingCustomerResult:
        """Our reference on a customer keyed by hand: never the run's to delete."""
        customer_id = await self.billing.link_customer(request.customer_id, reference=request.reference,
                                                       legal_entity=request.legal_entity,
                                                       idempotency_key=request.idempotency_key)
        return BillingCustomerResult(customer_id=customer_id, created=False, matched=True)

    @activity.defn(name="delete_billing_customer")
    @business_step
    async def delete_billing_customer(self, ref: BillingRecordRef) -> Ack:
        await self.billing.delete_customer(ref.record_id)
        return Ack()

    @activity.defn(name="create_billing_schedule")
    @business_step
    async def create_billing_schedule(self, request: BillingScheduleInput) -> BillingSchedule:
        return await self.billing.create_schedule(request.schedule, idempotency_key=request.idempotency_key)

    @activity.defn(name="finalize_billing_invoice")
    @business_step
    async def finalize_billing_invoice(self, request: FinalizeInvoiceInput) -> Invoice:
        """Finalize a one-off draft (due today, or its milestone accepted); already finalized is success."""
        return await self.billing.finalize_invoice(request.invoice_id, idempotency_key=request.idempotency_key)

    @activity.defn(name="cancel_billing_schedule")
    @business_step
    async def cancel_billing_schedule(self, request: BillingScheduleInput) -> Ack:
        await self.billing.cancel_schedule(request.schedule, idempotency_key=request.idempotency_key)
        return Ack()

    @activity.defn(name="change_subscription_item")
    @business_step
    async def change_subscription_item(self, request: SubscriptionChangeInput) -> BillingRecord:
        return await self.billing.change_subscription_item(request.change,
                                                           prorate=request.prorate,
                                                           idempotency_key=request.idempotency_key)

    @activity.defn(name="set_subscription_end")
    @business_step
    async def set_subscription_end(self, request: SubscriptionEndInput) -> Ack:
        await self.billing.set_subscription_end(request.subscription_id, request.end_date,
                                                idempotency_key=request.idempotency_key)
        return Ack()

    @activity.defn(name="load_billing_customer")
    @business_step
    async def load_billing_customer(self, ref: BillingCustomerRef) -> BillingCustomer:
        """The billing customer with its CRM company and legal entity."""
        return await self.billing.get_customer(ref.customer_id)

    @activity.defn(name="load_billing_invoice")
    @business_step
    async def load_billing_invoice(self, ref: BillingInvoiceRef) -> Invoice:
        """An invoice as billing holds it now (for events that reference an invoice we have not seen)."""
        return await self.billing.get_invoice(ref.invoice_id)

    def all(self) -> list[Callable[..., Any]]:
        """Every activity of this class, for the worker."""
        return [self.ensure_billing_customer, self.match_billing_customer, self.link_billing_customer,
                self.delete_billing_customer, self.create_billing_schedule,
                self.cancel_billing_schedule, self.change_subscription_item, self.set_subscription_end,
                self.load_billing_customer, self.load_billing_invoice, self.finalize_billing_invoice]


__all__ = ["BillingActivities"]
