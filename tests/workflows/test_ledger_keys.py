"""One ID finds the whole trail: every invoice, payment and credit-note ID of a customer's ledger, in billing
and in the ERP, is among the ledger's ``BusinessKeys`` and ``starter.py find`` finds the ledger by it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from temporalio.client import Client

import starter
from canonical import CreditNote, Money
from connectors.registry import default_registry
from settings import Settings
from tests.helpers.ledger import canonical, signal, stripe_events
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_ledger import US01_TENANT, LedgerRig, ledger_rig, until
from workflows.attributes import BUSINESS_KEYS
from workflows.steps import add_business_keys


@pytest_asyncio.fixture
async def rig(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
              ) -> AsyncIterator[LedgerRig]:
    async with ledger_rig(client, flow_settings, sandboxes) as value:
        yield value


async def _keys(client: Client, workflow_id: str) -> list[str]:
    described = await client.get_workflow_handle(workflow_id).describe()
    return list(described.typed_search_attributes.get(BUSINESS_KEYS) or [])


async def test_ledger_is_found_by_every_invoice_payment_and_credit_note_id(
        rig: LedgerRig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    systems = default_registry(rig.settings).systems(rig.settings)
    billing, erp = systems.billing, systems.erp["US01"]
    account = await rig.account()
    [invoice_id] = await rig.invoices(account, ["800.00"])
    handle = await rig.finalize(account, invoice_id)
    await rig.pay(account, invoice_id)
    await until(handle, lambda s: not s.open_items, "paid")
    note = await rig.connectors.billing.create_credit_note(
        CreditNote(billing_id="", invoice_billing_id=invoice_id, amount=Money.of("200.00", "USD"),
                   reason="order_change"), idempotency_key=f"test-{uuid.uuid4()}")
    [raw] = stripe_events(rig.stripe, note.billing_id, "credit_note.created")
    await signal(rig.client, rig.settings, account.customer_id, canonical(rig.settings, raw))
    status = await until(handle, lambda s: s.settled_items and s.settled_items[0].credit_note_ids, "credited")
    [item] = status.settled_items
    [payment_id] = item.payment_ids

    xero = rig.sandboxes["xero"].store
    [erp_invoice] = xero.list("invoice", tenant=US01_TENANT, where=lambda d: d.get("Reference") == invoice_id)
    [erp_payment] = xero.list("payment", tenant=US01_TENANT,
                              where=lambda d: d.get("Invoice", {}).get("InvoiceID") == erp_invoice["InvoiceID"])
    [erp_note] = xero.list("credit_note", tenant=US01_TENANT, where=lambda d: d.get("Reference") == note.billing_id)
    assert item.erp_invoice_id == erp_invoice["InvoiceID"]
    wanted = {billing.ref_of_id(invoice_id), billing.ref_of_id(payment_id, "payment"),
              billing.ref_of_id(note.billing_id), erp.ref("invoice", erp_invoice["InvoiceID"]),
              erp.ref("payment", erp_payment["PaymentID"]), erp.ref("credit_note", erp_note["CreditNoteID"])}
    keys: list[str] = await _eventually_keys(rig.client, handle.id, lambda k: wanted <= set(k))
    assert wanted <= set(keys)

    # starter.py find <bare ID> finds the ledger by each of them
    monkeypatch.setenv("TEMPORAL_ADDRESS", rig.client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", rig.client.namespace)
    for bare in (invoice_id, note.billing_id, erp_invoice["InvoiceID"], erp_payment["PaymentID"],
                 erp_note["CreditNoteID"]):
        assert await starter.run(["find", bare, "--json"]) == 0, bare
        rows = json.loads(capsys.readouterr().out)
        assert [r["workflow_id"] for r in rows] == [handle.id], bare


async def _eventually_keys(client: Client, workflow_id: str, check: Callable[[list[str]], bool]) -> list[str]:
    return await eventually(lambda: _keys(client, workflow_id), check, what="business keys published")


def test_business_keys_roll_the_oldest_documents_out_and_keep_the_identity() -> None:
    published: list[list[str]] = []
    known = ["bill:customer:c1", "crm:company:1"]
    add_business_keys(known, *(f"bill:invoice:in_{n}" for n in range(3)), limit=4,
                      publish=lambda update: published.append(list(update.value)), rolling=lambda k: ":invoice:" in k)
    # four at most: the customer and the company stay, the newest invoices take the rest
    assert known == ["bill:customer:c1", "crm:company:1", "bill:invoice:in_1", "bill:invoice:in_2"]
    add_business_keys(known, "crm:deal:9", limit=4, publish=lambda update: published.append(list(update.value)),
                      rolling=lambda k: ":invoice:" in k)
    assert known == ["bill:customer:c1", "crm:company:1", "bill:invoice:in_2", "crm:deal:9"]
    assert published[-1] == known


def test_business_keys_stay_under_the_size_of_one_search_attribute_value() -> None:
    known: list[str] = []
    add_business_keys(known, *(f"bill:invoice:in_{n:040d}" for n in range(200)), limit=1000, publish=lambda _: None,
                      rolling=lambda k: True, max_bytes=2048)
    assert len(json.dumps(known)) <= 2048
    assert known[-1] == f"bill:invoice:in_{199:040d}"  # the newest are kept
