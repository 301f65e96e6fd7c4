"""Billing data for invoice-feedback and reconciliation tests: customers, invoices and payments made in the
Stripe emulator through its public API and ``/_sandbox`` acts, and the webhook events it emitted for them,
parsed by the real Stripe receiver into canonical events."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from temporalio.client import Client, WorkflowHandle

from canonical import Account, BillingSchedule, BillingScheduleKind, DomainEvent, EventEnvelope, Money, ScheduledCharge
from connectors.stripe import StripeBilling
from connectors.stripe.webhooks import StripeWebhooks
from settings import Settings
from tests.helpers.deals import DealSpec
from tests.helpers.ids import ledger_id
from tests.helpers.servers import SandboxHandle, vendor_settings
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import LEDGER_SIGNAL, AccountLedgerInput, LedgerStatus


@dataclass
class BillingAccount:
    """A HubSpot company with a deal, and the Stripe customer billing it from one legal entity."""

    company_id: str
    deal_id: str
    customer_id: str
    entity: str


def seed_company_and_deal(hubspot: SandboxHandle) -> tuple[str, str]:
    """A CRM company with one deal: (company ID, deal ID)."""
    body = hubspot.post_control("seed/deal", DealSpec().payload()).json()
    return str(body["companyId"]), str(body["dealId"])


async def billing_account(billing: StripeBilling, hubspot: SandboxHandle, *, entity: str = "US01") -> BillingAccount:
    company_id, deal_id = seed_company_and_deal(hubspot)
    reference = f"hubspot-company-{company_id}-{entity}"
    customer_id = await billing.ensure_customer(
        Account(crm_id=company_id, name=f"Ledger Co {uuid.uuid4().hex[:6]}", country="US"), contact=None,
        reference=reference, legal_entity=entity, idempotency_key=f"test-{uuid.uuid4()}")
    return BillingAccount(company_id=company_id, deal_id=deal_id, customer_id=customer_id, entity=entity)


async def billing_account_in(billing: StripeBilling, account: BillingAccount, entity: str) -> BillingAccount:
    """The same CRM company and deal billed from another legal entity (a split customer): its own billing
    customer, and so its own ledger."""
    customer_id = await billing.ensure_customer(
        Account(crm_id=account.company_id, name=f"Ledger Co {uuid.uuid4().hex[:6]}", country="DE"), contact=None,
        reference=f"hubspot-company-{account.company_id}-{entity}", legal_entity=entity,
        idempotency_key=f"test-{uuid.uuid4()}")
    return BillingAccount(company_id=account.company_id, deal_id=account.deal_id, customer_id=customer_id,
                          entity=entity)


async def draft_invoices(billing: StripeBilling, account: BillingAccount, amounts: list[str], *,
                         currency: str = "USD", days_until_due: int = 30, with_deal: bool = True,
                         project: str | None = None) -> list[str]:
    """One draft invoice per amount (a fixed-fee schedule as quote-to-cash makes it); returns their IDs."""
    metadata = {"revops_legal_entity": account.entity}
    if with_deal:
        metadata["revops_deal_id"] = account.deal_id
    if project:
        metadata["revops_project"] = project
    schedule = BillingSchedule(
        kind=BillingScheduleKind.FIXED_FEE, customer_id=account.customer_id, currency=currency,
        start_date=datetime.now(UTC).date(), days_until_due=days_until_due, metadata=metadata,
        charges=[ScheduledCharge(product_code=f"FEE-{i}", description=f"Fee {i}", unit_amount=Money.of(a, currency))
                 for i, a in enumerate(amounts)])
    created = await billing.create_schedule(schedule, idempotency_key=f"test-{uuid.uuid4()}")
    return [i for i in created.item_ids if i.startswith("in_")]


def stripe_events(stripe: SandboxHandle, invoice_id: str, type_: str) -> list[dict[str, Any]]:
    """Events the emulator emitted for an object, oldest first."""
    return stripe.store.list("event", where=lambda e: e["type"] == type_
                             and e["data"]["object"].get("id") == invoice_id)


def stripe_event(stripe: SandboxHandle, event_id: str) -> dict[str, Any]:
    event = stripe.store.get("event", event_id)
    assert event is not None, event_id
    return event


def canonical(settings: Settings, raw: dict[str, Any]) -> list[DomainEvent]:
    """What the Stripe receiver makes of one emitted event."""
    return StripeWebhooks(vendor_settings(settings, "stripe").webhook_secret).parse(headers={},
                                                                                    body=json.dumps(raw).encode())


def pay(stripe: SandboxHandle, invoice_id: str, amount_minor: int | None = None) -> list[dict[str, Any]]:
    """The customer pays (part of) an invoice; the events emitted for it."""
    body = {"amount": amount_minor} if amount_minor is not None else {}
    response = httpx.post(f"{stripe.base_url}/_sandbox/invoices/{invoice_id}/payments", json=body, timeout=10)
    response.raise_for_status()
    return [stripe_event(stripe, e) for e in response.json()["events"]]


def fail_payment(stripe: SandboxHandle, invoice_id: str) -> list[dict[str, Any]]:
    response = httpx.post(f"{stripe.base_url}/_sandbox/invoices/{invoice_id}/payment_failure", json={}, timeout=10)
    response.raise_for_status()
    return [stripe_event(stripe, e) for e in response.json()["events"]]


async def finalize(billing: StripeBilling, stripe: SandboxHandle, invoice_id: str) -> list[dict[str, Any]]:
    await billing.finalize_invoice(invoice_id)
    return stripe_events(stripe, invoice_id, "invoice.finalized")


async def signal(client: Client, settings: Settings, customer_id: str, events: list[DomainEvent]
                 ) -> WorkflowHandle:
    """Signal-with-start each event to the customer's ledger, as the ingress does."""
    handle: WorkflowHandle | None = None
    for event in events:
        handle = await client.start_workflow(
            AccountLedgerWorkflow.run, AccountLedgerInput(customer_id=customer_id),
            id=ledger_id(customer_id), task_queue=settings.task_queue,
            start_signal=LEDGER_SIGNAL, start_signal_args=[EventEnvelope(event=event)])
    assert handle is not None
    return handle


async def ledger_status(handle: WorkflowHandle) -> LedgerStatus:
    return await handle.query(AccountLedgerWorkflow.open_items)  # type: ignore[no-any-return]


def object_properties(hubspot: SandboxHandle, kind: str, object_id: str) -> dict[str, Any]:
    """A HubSpot object's properties (``kind`` companies or deals) as the CRM holds them."""
    response = httpx.get(f"{hubspot.base_url}/_sandbox/objects/{kind}/{object_id}", timeout=10)
    response.raise_for_status()
    return dict(response.json()["properties"])


def company_properties(hubspot: SandboxHandle, company_id: str) -> dict[str, Any]:
    return object_properties(hubspot, "companies", company_id)


def today() -> date:
    return datetime.now(UTC).date()
