"""A new adapter is a descriptor, a registry line and settings: nothing else in the house changes.

An in-memory CRM (``memorycrm``) and an in-memory ERP for one legal entity (``memoryerp`` for US01, the other
entities stay on the emulated ERP) come in through ``EXTRA_ADAPTERS`` alone (``tests/helpers/memory_adapters.py``).
The production worker, quote-to-cash and the ledger then run for them: workflow IDs, business keys, references
written to the ERP and billing, and the operator texts all carry the new adapters' names. The deal ID is an
opaque string in the CRM's own shape (letters, digits, a dash), not a number.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from canonical import Account, Contact, Deal, DealLine
from canonical.deal import BillingModel
from canonical.ownership import SystemRole
from connectors.registry import default_registry
from connectors.stripe import from_settings as billing_from_settings
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.ledger import BillingAccount, draft_invoices, finalize, ledger_status, signal
from tests.helpers.ledger import canonical as canonical_events
from tests.helpers.memory_adapters import CRM_BOOKS, ERP_BOOKS
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_quote_to_cash import sign_when_out
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, Stage

EXTRA = ["tests.helpers.memory_adapters:CRM", "tests.helpers.memory_adapters:ERP"]


def _seam_settings(flow_settings: Settings, book: str) -> Settings:
    """Only settings: the descriptors, the CRM's name, US01's ERP, and each memory adapter's own book."""
    entities = [e.model_copy(update={"erp_adapter": "memoryerp"}) if e.code == "US01" else e
                for e in flow_settings.legal_entities]
    adapters = {**flow_settings.adapter_settings, "memorycrm": {"book": book}, "memoryerp": {"book": book}}
    return flow_settings.model_copy(update={"extra_adapters": EXTRA, "crm_adapter": "memorycrm",
                                            "legal_entities": entities, "adapter_settings": adapters})


@pytest_asyncio.fixture
async def seam(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
               ) -> AsyncIterator[tuple[Settings, str, Worker]]:
    book = uuid.uuid4().hex
    settings = _seam_settings(flow_settings, book)
    async with open_connectors(settings) as connectors, build_worker(client, settings, connectors) as worker:
        yield settings, book, worker


def _deal(deal_id: str) -> Deal:
    company = f"acct-{uuid.uuid4().hex[:8]}"
    return Deal(crm_id=deal_id, name=f"Seam deal {deal_id}", currency="USD", region="NA",
                billing_model=BillingModel.FIXED_FEE, start_date=date(2027, 1, 1), end_date=date(2027, 12, 31),
                payment_terms_days=30, account=Account(crm_id=company, name=f"Seam Co {company}", country="US"),
                contacts=[Contact(first_name="Bea", last_name="Biller", email="bea@seam.example", role="billing")],
                lines=[DealLine(product_code="IMPL", name="Implementation", quantity=Decimal(1),
                                unit_price=Decimal("12000"), billing_model=BillingModel.FIXED_FEE)])


def test_adapter_seam_the_registry_takes_descriptors_from_settings_alone(flow_settings: Settings) -> None:
    settings = _seam_settings(flow_settings, "names")
    systems = default_registry(settings).systems(settings)
    assert (systems.crm.name, systems.crm.label) == ("memorycrm", "CRM (Memory CRM)")
    assert systems.erp_of("US01").name == "memoryerp" and systems.erp_of("EU01").name == "xero"
    assert "memorycrm" not in default_registry(flow_settings).names(SystemRole.CRM)  # not built in


async def test_adapter_seam_quote_to_cash_and_the_ledger_run_for_adapters_added_by_settings(
        client: Client, seam: tuple[Settings, str, Worker], sandboxes: dict[str, SandboxHandle]) -> None:
    settings, book, _worker = seam
    deal_id = f"0065g{uuid.uuid4().hex[:10]}-Ab"  # an opaque ID: letters, digits, a dash
    deal = _deal(deal_id)
    CRM_BOOKS[book].deals[deal_id] = deal
    assert deal.account is not None and deal.account.crm_id

    handle = await start_quote_to_cash(client, settings, deal_id)
    assert handle.id == f"q2c-memorycrm-{deal_id}"
    await sign_when_out(handle, sandboxes["ironclad"])
    result: QuoteToCashResult = await handle.result()

    assert result.outcome is Stage.PROVISIONED, result.reason
    [engagement] = result.engagements
    us01 = settings.entity("US01")
    erp = ERP_BOOKS[book]
    reference = f"memorycrm-company-{deal.account.crm_id}-US01"
    # the ERP records went to the in-memory ERP, in US01's tenant, under a reference built from the CRM's name
    assert erp.tenants == {us01.erp_tenant_id}
    assert erp.contacts[us01.erp_tenant_id][reference].erp_contact_id == engagement.erp_contact_id
    assert engagement.project is not None and erp.projects[engagement.project.code].erp_id == engagement.project.erp_id
    assert not sandboxes["xero"].store.list("contact", where=lambda c: c.get("ContactNumber") == reference)
    # the billing customer (the emulated one) carries the same reference
    stripe_customers = sandboxes["stripe"].store.list(
        "customer", where=lambda c: c["id"] == engagement.billing_customer_id)
    assert [c["metadata"].get("revops_ref") for c in stripe_customers] == [reference]
    # business keys name each adapter by its own name
    keys = set(result.business_keys)
    assert {f"memorycrm:deal:{deal_id}", f"memorycrm:company:{deal.account.crm_id}",
            f"memoryerp:contact:{engagement.erp_contact_id}", f"memoryerp:project:{engagement.project.erp_id}",
            f"stripe:customer:{engagement.billing_customer_id}"} <= keys
    assert not any(k.startswith(("hubspot:", "xero:")) for k in keys)
    # operators read the adapters' display names
    summaries = [(await client.data_converter.decode([e.user_metadata.summary], [str]))[0]
                 async for e in handle.fetch_history_events()
                 if e.HasField("activity_task_scheduled_event_attributes") and e.HasField("user_metadata")]
    assert f"Create ERP (Memory ERP) contact {reference} in US01" in summaries, summaries
    assert "Find or create Billing (Stripe) customer for US01" in summaries, summaries
    # the CRM got its write-backs
    assert CRM_BOOKS[book].written[deal_id]["revops_status"] == "provisioned"

    # the ledger of that billing customer posts to the in-memory ERP of US01
    billing = billing_from_settings(settings)
    try:
        account = BillingAccount(company_id=deal.account.crm_id, deal_id=deal_id,
                                 customer_id=engagement.billing_customer_id or "", entity="US01")
        [invoice_id] = await draft_invoices(billing, account, ["500.00"])
        events = [e for raw in await finalize(billing, sandboxes["stripe"], invoice_id)
                  for e in canonical_events(settings, raw)]
    finally:
        await billing.aclose()
    ledger = await signal(client, settings, account.customer_id, events)
    assert ledger.id == f"ledger-stripe-{account.customer_id}"
    await eventually(lambda: ledger_status(ledger), lambda s: any(i.erp_invoice_id for i in s.open_items),
                     what="the invoice posted to the in-memory ERP")
    [posted] = [i for i in erp.invoices.values() if i.billing_id == invoice_id]
    assert posted.total.amount == Decimal("500.00") and posted.legal_entity == "US01"
    await eventually(lambda: _figures(book, deal.account.crm_id), lambda f: bool(f),
                     what="billing figures written to the in-memory CRM")


async def _figures(book: str, company_id: str | None) -> list[object]:
    return list(CRM_BOOKS[book].figures.get(f"company:{company_id}", []))
