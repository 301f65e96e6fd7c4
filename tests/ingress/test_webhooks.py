"""Each vendor's valid delivery over real HTTP starts or signals the right workflow, once."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from temporalio.client import Client

from canonical import Account, BillingModel, Contact, ContractTerms, Money
from canonical.requests import ContractRequest
from connectors import ironclad
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.events import Outcome
from tests.helpers.ids import amendments_id, ledger_id, quote_to_cash_id
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.webhooks import (
    hubspot_delivery,
    hubspot_property_change,
    stripe_delivery,
    stripe_invoice,
    unique_deal_id,
    xero_delivery,
    xero_event,
)
from tests.ingress.conftest import RunningIngress, eventually, post, signal_names
from tests.ingress.conftest import workflow_exists as exists


# -- HubSpot ----------------------------------------------------------------------------------------
async def test_hubspot_closed_won_delivery_starts_quote_to_cash(ingress: RunningIngress, client: Client,
                                                                 task_queue: str) -> None:
    deal_id = unique_deal_id()
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                [hubspot_property_change(deal_id, "dealstage", "closedwon")])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outcome"] == "started" and body["workflow_id"] == quote_to_cash_id(deal_id)
    description = await client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
    assert description.workflow_type == "QuoteToCashWorkflow" and description.task_queue == task_queue
    [row] = ingress.deliveries(event_id=body["event_id"])
    assert (row.signature, row.outcome, row.workflow_id) == ("valid", "started", quote_to_cash_id(deal_id))
    assert "x-hubspot-signature-v3" in row.headers
    # the accepted body is kept, encrypted at rest with the codec keys
    assert row.body.startswith("enc:v1:") and deal_id not in row.body
    assert ingress.ledger.open(row.body) == delivery.body.decode()


async def test_hubspot_approval_stage_delivery_starts_quote_to_cash(ingress: RunningIngress, client: Client) -> None:
    deal_id = unique_deal_id()
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"), [
        hubspot_property_change(deal_id, "dealstage", vendor_settings(ingress.settings, "hubspot").approval_stage)])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.json()["outcome"] == "started"
    assert await exists(client, quote_to_cash_id(deal_id))


async def test_hubspot_same_delivery_twice_yields_one_workflow_and_a_duplicate(ingress: RunningIngress,
                                                                                client: Client) -> None:
    deal_id = unique_deal_id()
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                [hubspot_property_change(deal_id, "dealstage", "closedwon")])

    first = await post(ingress.url("hubspot"), delivery.body, delivery.headers)
    second = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["outcome"] == "started" and second.json()["outcome"] == "duplicate"
    assert second.json()["workflow_id"] == first.json()["workflow_id"]
    query = f'WorkflowId = "{quote_to_cash_id(deal_id)}"'

    async def visible() -> bool:
        return (await client.count_workflows(query)).count >= 1

    await eventually(visible, what="the run in visibility")
    assert (await client.count_workflows(query)).count == 1
    assert ingress.outcomes() == {"started": 1, "duplicate": 1}


async def test_hubspot_second_stage_event_for_a_running_deal_is_a_duplicate(ingress: RunningIngress) -> None:
    deal_id = unique_deal_id()
    for stage, expected in ((vendor_settings(ingress.settings, "hubspot").approval_stage, "started"), ("closedwon",
                                                                                                       "duplicate")):
        delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                    [hubspot_property_change(deal_id, "dealstage", stage)])
        response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)
        assert response.json()["outcome"] == expected


async def test_hubspot_deal_change_signals_the_run_waiting_for_data(ingress: RunningIngress, client: Client) -> None:
    deal_id = unique_deal_id()
    handle = await start_quote_to_cash(client, ingress.settings, deal_id, trigger="test")
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                [hubspot_property_change(deal_id, "revops_region", "EMEA")])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.json()["outcome"] == "signalled"
    assert await signal_names(handle) == ["deal_corrected"]


async def test_hubspot_echo_of_our_write_back_is_recorded_as_echo_and_routes_nothing(
        ingress: RunningIngress, client: Client) -> None:
    deal_id = unique_deal_id()
    handle = await start_quote_to_cash(client, ingress.settings, deal_id, trigger="test")
    echo = [hubspot_property_change(deal_id, name, value) for name, value in (
        ("revops_status", "awaiting_signature"), ("revops_clm_workflow_id", "wf-1"))]
    for change in echo:
        change["changeSource"] = "INTEGRATION"
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"), echo)

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 200 and response.json()["outcome"] == "echo"
    assert await signal_names(handle) == []  # the waiting run was not woken by its own write-back
    [row] = ingress.deliveries()
    assert (row.outcome, row.workflow_id, row.event_kind) == ("echo", quote_to_cash_id(deal_id), "crm.own_write_echo")
    assert "revops_status, revops_clm_workflow_id" in row.reason
    await handle.terminate("test done")


async def test_hubspot_deal_change_without_a_run_is_ignored(ingress: RunningIngress, client: Client) -> None:
    deal_id = unique_deal_id()
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"),
                                [hubspot_property_change(deal_id, "amount", "1000")])

    response = await post(ingress.url("hubspot"), delivery.body, delivery.headers)

    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored" and response.json()["workflow_id"] is None
    assert not await exists(client, quote_to_cash_id(deal_id))
    assert ingress.outcomes() == {"ignored": 1}


async def test_hubspot_sandbox_closed_won_starts_its_workflow_by_webhook(
        ingress: RunningIngress, client: Client, hubspot_sandbox: SandboxHandle, task_queue: str) -> None:
    target = ingress.url("hubspot")
    hubspot_sandbox.post_control("webhooks", {"url": target})
    try:
        company = f"Webhook Co {uuid.uuid4().hex[:6]}"
        deal_id = hubspot_sandbox.post_control("seed/deal", {"deal": {
            "dealname": f"Webhook {uuid.uuid4().hex[:6]}", "dealstage": "qualifiedtobuy"},
            "company": {"name": company, "country": "US"}}).json()["dealId"]
        hubspot_sandbox.post_control(f"deals/{deal_id}/stage", {"stage": "closedwon"})

        await eventually(lambda: exists(client, quote_to_cash_id(deal_id)), what="the webhook-started workflow")
    finally:
        hubspot_sandbox.control.webhooks.targets = [t for t in hubspot_sandbox.control.webhooks.targets
                                                    if t.url != target]
    description = await client.get_workflow_handle(quote_to_cash_id(deal_id)).describe()
    assert description.task_queue == task_queue
    # The run explains itself in the UI from the first moment: its summary names the deal and company.
    assert f"Deal {deal_id}: {company}" in (await description.static_summary() or "")
    assert ingress.deliveries(outcome="started")[0].workflow_id == quote_to_cash_id(deal_id)


# -- Ironclad -----------------------------------------------------------------------------------------
def contract_request(settings: Settings, deal_id: str) -> ContractRequest:
    return ContractRequest(
        deal_crm_id=deal_id, title=f"Order Form {deal_id}", 
            legal_entity="EU01", counterparty=Account(name="Acme GmbH", country="DE"),
        signer=Contact(first_name="Ada", last_name="Lovelace", email="ada@acme.example", role="signer"),
        terms=ContractTerms(start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
                            total_value=Money.of("12000", "EUR"), billing_model=BillingModel.FIXED_FEE,
                            payment_terms_days=30, fixed_fee=Money.of("12000", "EUR")))


@pytest.fixture
def ironclad_target(ingress: RunningIngress, ironclad_sandbox: SandboxHandle):  # type: ignore[no-untyped-def]
    target = ingress.url("ironclad")
    ironclad_sandbox.post_control("webhooks", {"url": target})
    yield target
    ironclad_sandbox.control.webhooks.targets = [t for t in ironclad_sandbox.control.webhooks.targets
                                                 if t.url != target]


async def test_ironclad_workflow_completed_signals_the_deal_run_waiting_for_it(
        ingress: RunningIngress, client: Client, ironclad_sandbox: SandboxHandle, ironclad_target: str) -> None:
    deal_id = unique_deal_id()
    handle = await start_quote_to_cash(client, ingress.settings, deal_id, trigger="test")
    clm = ironclad.from_settings(ingress.settings)
    try:
        launched = await clm.launch_contract(contract_request(ingress.settings, deal_id),
                                             idempotency_key=f"ingress-{uuid.uuid4()}")
    finally:
        await clm.aclose()

    ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign")

    await eventually(lambda: ingress.outcomes().get("signalled", 0) == 1, what="the signalled delivery")
    assert await signal_names(handle) == ["contract_executed"]
    [row] = ingress.deliveries(outcome="signalled")
    assert row.vendor == "ironclad" and row.workflow_id == quote_to_cash_id(deal_id)
    assert row.event_kind == "contract.executed" and row.signature == "valid"


async def test_ironclad_amendment_executed_signal_with_starts_the_contract_amendments(
        ingress: RunningIngress, client: Client, ironclad_sandbox: SandboxHandle, ironclad_target: str) -> None:
    deal_id = unique_deal_id()
    clm = ironclad.from_settings(ingress.settings)
    try:
        launched = await clm.launch_contract(contract_request(ingress.settings, deal_id),
                                             idempotency_key=f"ingress-{uuid.uuid4()}")
    finally:
        await clm.aclose()
    record_id = ironclad_sandbox.post_control(f"workflows/{launched.clm_workflow_id}/sign").json()["recordId"]
    # the contract's own completion finds no deal run: acknowledged, ignored
    await eventually(lambda: ingress.outcomes().get("ignored", 0) == 1, what="the ignored completion")

    ironclad_sandbox.post_control(f"records/{record_id}/amendments", {"sequence": 1, "properties": {}})

    await eventually(lambda: ingress.outcomes().get("started", 0) == 1, what="the amendment start")
    handle = client.get_workflow_handle(amendments_id(record_id))
    description = await handle.describe()
    assert description.workflow_type == "ContractAmendmentsWorkflow"
    assert await signal_names(handle) == ["amendment_executed"]


# -- Stripe -------------------------------------------------------------------------------------------
async def test_stripe_invoice_events_signal_with_start_the_customer_ledger(ingress: RunningIngress,
                                                                           client: Client) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    invoice = stripe_invoice(customer)
    finalized = stripe_delivery(ingress.settings, "invoice.finalized", invoice)
    paid = stripe_delivery(ingress.settings, "invoice.paid", {**invoice, "status": "paid", "amount_paid": 10000,
                                                              "amount_remaining": 0})

    first = await post(ingress.url("stripe"), finalized.body, finalized.headers)
    second = await post(ingress.url("stripe"), paid.body, paid.headers)

    assert first.json()["outcome"] == "started" and second.json()["outcome"] == "signalled"
    handle = client.get_workflow_handle(ledger_id(customer))
    assert (await handle.describe()).workflow_type == "AccountLedgerWorkflow"
    assert await signal_names(handle) == ["billing_event", "billing_event"]


async def test_stripe_credit_note_signals_the_customer_ledger(ingress: RunningIngress, client: Client) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    note = {"id": f"cn_{uuid.uuid4().hex[:12]}", "object": "credit_note", "customer": customer,
            "invoice": "in_1", "currency": "eur", "amount": 2500, "total": 2500, "subtotal": 2500,
            "number": "RO-0001-CN-01", "reason": "order_change", "memo": "goodwill", "status": "issued",
            "created": 1764547300, "metadata": {}, "lines": {"object": "list", "data": []}}
    delivery = stripe_delivery(ingress.settings, "credit_note.created", note)

    response = await post(ingress.url("stripe"), delivery.body, delivery.headers)

    assert response.status_code == 200, response.text
    assert response.json()["workflow_id"] == ledger_id(customer)
    assert await signal_names(client.get_workflow_handle(ledger_id(customer))) == ["billing_event"]


async def test_stripe_event_of_no_interest_is_acknowledged_and_counted(ingress: RunningIngress) -> None:
    delivery = stripe_delivery(ingress.settings, "customer.created", {"id": "cus_x", "object": "customer"})

    response = await post(ingress.url("stripe"), delivery.body, delivery.headers)

    assert response.status_code == 200 and response.json()["outcome"] == "ignored"
    assert ingress.outcomes(vendor="stripe") == {"ignored": 1}


# -- Xero ---------------------------------------------------------------------------------------------
async def test_xero_record_change_is_acknowledged_with_no_body_and_counted(ingress: RunningIngress) -> None:
    delivery = xero_delivery(ingress.settings, [xero_event()])

    response = await post(ingress.url("xero"), delivery.body, delivery.headers)

    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-revops-outcome"] == "ignored"
    [row] = ingress.deliveries(vendor="xero")
    assert row.event_kind == "erp.record_changed" and row.outcome == "ignored"


async def test_xero_intent_to_receive_passes_against_the_ingress(ingress: RunningIngress,
                                                                  xero_sandbox: SandboxHandle) -> None:
    target = ingress.url("xero")
    xero_sandbox.post_control("webhooks", {"url": target})
    try:
        result = xero_sandbox.post_control("webhooks/intent").json()
    finally:
        xero_sandbox.control.webhooks.targets = [t for t in xero_sandbox.control.webhooks.targets if t.url != target]

    assert result["intent_ok"], result
    assert ingress.outcomes(vendor="xero") == {"ignored": 1, "rejected": 1}


async def test_delivery_outcomes_are_the_documented_names(ingress: RunningIngress) -> None:
    delivery = xero_delivery(ingress.settings, [])
    await post(ingress.url("xero"), delivery.body, delivery.headers)
    assert set(ingress.outcomes()) <= {o.value for o in Outcome}
