"""Reconciliation's delta reads against the emulators: Stripe's event feed (an invoice edited by a person is
reported as ``invoice.updated``; each changed object re-read as it stands) and Xero's ``If-Modified-Since``
on invoices and payments, page by page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest_asyncio

from canonical import Account, Invoice, Payment
from canonical.reconciliation import BillingChange
from connectors.stripe import StripeBilling
from settings import Settings
from tests.helpers.ledger import BillingAccount, billing_account, draft_invoices
from tests.helpers.servers import SandboxHandle, stripe_auth, vendor_settings
from worker import Connectors, open_connectors


@pytest_asyncio.fixture
async def connectors(settings: Settings, sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[Connectors]:
    async with open_connectors(settings) as built:
        yield built


async def test_stripe_changes_report_a_hand_edited_invoice_and_current_reads_it_as_it_stands(
        connectors: Connectors, settings: Settings, sandboxes: dict[str, SandboxHandle]) -> None:
    billing = connectors.billing
    account = await billing_account(billing, sandboxes["hubspot"])
    [invoice_id] = await draft_invoices(billing, account, ["42.00"], with_deal=False)
    await billing.finalize_invoice(invoice_id)
    since = datetime.now(UTC) - timedelta(seconds=1)
    await asyncio.to_thread(httpx.post, f"{vendor_settings(settings, 'stripe').base_url}/v1/invoices/{invoice_id}",
                            data={"metadata[revops_deal_id]": account.deal_id},
                            headers=stripe_auth(settings), timeout=10)
    seen, cursor = [], None
    while True:
        page, cursor = await billing.changes_page(since, cursor)
        seen += [c for c in page if c.id == invoice_id]
        if cursor is None:
            break
    assert seen and seen[0].invoice is not None and seen[0].invoice.crm_deal_id == account.deal_id
    current = await billing.current(seen[-1])
    assert current.invoice is not None and current.invoice.total.amount == 42 and not current.deleted
    [draft] = await draft_invoices(billing, account, ["1.00"])  # the draft, then its item: two events
    [as_drafted] = [c for c in await _changes(billing, since) if c.id == draft]
    assert (await billing.current(as_drafted)).invoice.total.amount == 1  # type: ignore[union-attr]
    await asyncio.to_thread(httpx.delete, f"{vendor_settings(settings, 'stripe').base_url}/v1/invoices/{draft}",
                            headers=stripe_auth(settings), timeout=10)
    [deleted] = [c for c in await _changes(billing, since) if c.id == draft]
    assert deleted.deleted and (await billing.current(deleted)).deleted


async def _changes(billing: StripeBilling, since: datetime) -> list[BillingChange]:
    """Every change since ``since``, newest first, the newest of each object only."""
    seen: dict[str, BillingChange] = {}
    cursor = None
    while True:
        page, cursor = await billing.changes_page(since, cursor)
        for change in page:
            seen.setdefault(change.id, change)
        if cursor is None:
            return list(seen.values())


async def test_xero_pages_return_only_what_changed_since_the_checkpoint(connectors: Connectors,
                                                                        settings: Settings) -> None:
    erp = connectors.erp
    tenant = settings.entity("US01").erp_tenant_id
    contact = await erp.upsert_customer(tenant, Account(name=f"Feed {uuid.uuid4().hex[:6]}"), contact=None,
                                        reference=f"feed-{uuid.uuid4().hex[:8]}", idempotency_key=str(uuid.uuid4()))
    assert contact.erp_contact_id
    invoice = await _some_invoice(connectors)
    before = await erp.post_invoice(tenant, invoice, erp_contact_id=contact.erp_contact_id,
                                    idempotency_key=str(uuid.uuid4()))
    await asyncio.sleep(1.1)  # Xero's If-Modified-Since has whole seconds
    checkpoint = datetime.now(UTC)
    payment = await erp.record_payment(tenant, before, Payment(
        billing_id=f"ch_{uuid.uuid4().hex[:8]}", invoice_billing_id=invoice.billing_id, amount=invoice.total,
        paid_at=checkpoint), idempotency_key=str(uuid.uuid4()))

    async def all_pages(read):  # type: ignore[no-untyped-def]
        found, cursor = [], None
        while True:
            items, cursor = await read(cursor)
            found += items
            if cursor is None:
                return found

    changed = await all_pages(lambda c: erp.invoices_page(tenant, c, modified_since=checkpoint))
    payments = await all_pages(lambda c: erp.payments_page(tenant, c, modified_since=checkpoint))
    everything = await all_pages(lambda c: erp.payments_page(tenant, c))
    assert [i.metadata["erp_invoice_id"] for i in changed if i.billing_id == invoice.billing_id] == [before]
    assert [p.erp_id for p in payments if p.erp_invoice_id == before] == [payment]
    assert payment in {p.erp_id for p in everything}
    old = await all_pages(lambda c: erp.payments_page(tenant, c, modified_since=checkpoint + timedelta(hours=1)))
    assert payment not in {p.erp_id for p in old}


async def _some_invoice(connectors: Connectors) -> Invoice:
    customer_id = await connectors.billing.ensure_customer(
        Account(name=f"Feed {uuid.uuid4().hex[:6]}", country="US"), contact=None,
        reference=f"feed-{uuid.uuid4().hex[:8]}", legal_entity="US01", idempotency_key=str(uuid.uuid4()))
    account = BillingAccount(company_id="", deal_id="", customer_id=customer_id, entity="US01")
    [invoice_id] = await draft_invoices(connectors.billing, account, ["75.00"], with_deal=False)
    return await connectors.billing.finalize_invoice(invoice_id)
