"""No PII or prices in plaintext in Temporal: quote-to-cash, an amendment and the invoice ledger run for a
deal seeded with a recognisable company, contact and unit price, and the raw histories are searched."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from cli.amendments import signal_amendment
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.codec import ENCODING, EncryptionCodec
from tests.helpers.codec import _payloads_in, keyring_for_tests
from tests.helpers.deals import DealSpec, Line
from tests.helpers.ledger import BillingAccount, canonical, draft_invoices, finalize, pay, signal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_amendments import amend, applied, until, with_seats
from tests.workflows.test_quote_to_cash import sign_when_out
from worker import open_connectors
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import LedgerStatusRequest, QuoteToCashResult, Stage

US01_TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


async def raw_history(handle: WorkflowHandle) -> tuple[bytes, str, list[Payload]]:
    """The history as the server keeps it (protobuf bytes), as JSON, and every payload in it."""
    history = await handle.fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    payloads = [p for event in history.events for p in _payloads_in(event, [])]
    return raw, history.to_json(), payloads


async def test_history_holds_no_pii_or_prices_in_plaintext(
    client: Client, worker: Worker, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
) -> None:
    hubspot, ironclad, stripe, xero = (sandboxes[v] for v in ("hubspot", "ironclad", "stripe", "xero"))
    tag = uuid.uuid4().hex[:8]
    company = f"Privata {tag} GmbH"
    email = f"billing@{tag}.example.com"
    phone = f"+1 415 555 {int(tag[:6], 16) % 10000:04d}-{tag[6:]}"
    tax_number = f"US-TIN-{tag.upper()}"
    unit_price = "7391.37"
    # billed annually: the one-year contract stays within one approver's authority
    spec = DealSpec(company=company, lines=[Line("PLAT-PRO", "Platform Pro seats", quantity="3", price=unit_price,
                                                 model="subscription", frequency="annually")])
    payload = spec.payload()
    payload["contacts"][0]["phone"] = phone
    seeded = hubspot.post_control("seed/deal", payload).json()
    company_id, deal_id = str(seeded["companyId"]), str(seeded["dealId"])
    # the ERP already knows the customer with its tax number (ERP-owned): quote-to-cash finds it by reference
    xero.post_control("contacts", {"tenantId": US01_TENANT, "Name": company, "EmailAddress": email,
                                   "ContactNumber": f"hubspot-company-{company_id}-US01", "TaxNumber": tax_number})

    # quote-to-cash (started as the ingress does: its summary names company and amount, in user metadata),
    # one amendment, then an invoice finalized and paid through the ledger
    async with open_connectors(flow_settings) as connectors:
        deal = await connectors.crm.get_deal(deal_id)
    q2c = await start_quote_to_cash(client, flow_settings, deal_id, deal=deal)
    await sign_when_out(q2c, ironclad)
    result: QuoteToCashResult = await q2c.result()
    assert result.outcome is Stage.PROVISIONED, result.reason
    assert result.contract and result.contract.clm_record_id and result.contract.terms
    [engagement] = result.engagements
    record_id, signed = result.contract.clm_record_id, result.contract.terms
    amendment_id = amend(ironclad, record_id, 1, signed, with_seats(signed, 4))
    amendments = await signal_amendment(client, flow_settings, record_id, sequence=1, clm_amendment_id=amendment_id)
    await until(amendments, applied(1), "amendment 1 applied")
    customer_id = engagement.billing_customer_id or ""
    async with open_connectors(flow_settings) as connectors:
        account = BillingAccount(company_id=company_id, deal_id=deal_id, customer_id=customer_id, entity="US01")
        [invoice_id] = await draft_invoices(connectors.billing, account, [unit_price])
        raw = await finalize(connectors.billing, stripe, invoice_id)
    await signal(client, flow_settings, customer_id, canonical(flow_settings, raw[-1]))
    ledger = await signal(client, flow_settings, customer_id,
                          [e for r in pay(stripe, invoice_id) for e in canonical(flow_settings, r)])
    await eventually(lambda: ledger.query(AccountLedgerWorkflow.open_items,
                                          LedgerStatusRequest(include_settled=True)),
                     lambda s: any(i.invoice_id == invoice_id for i in s.settled_items), what="invoice settled")
    await amendments.terminate("test done")
    await ledger.terminate("test done")

    minor = str(int(Decimal(unit_price) * 100))
    needles = {"company": company, "email": email, "phone": phone, "tax number": tax_number,
               "unit price": unit_price, "unit price (minor units)": minor}
    codec = EncryptionCodec(keyring_for_tests())
    decoded_text = ""
    for handle in (q2c, amendments, ledger):
        raw_bytes, as_json, payloads = await raw_history(handle)
        for what, needle in needles.items():
            assert needle.encode() not in raw_bytes, f"{what} in plaintext in {handle.id}'s history"
            assert needle not in as_json, f"{what} in plaintext in {handle.id}'s history (JSON)"
        assert payloads and all(p.metadata.get("encoding") == ENCODING for p in payloads), handle.id
        decoded_text += b"".join(p.data for p in await codec.decode(payloads)).decode(errors="replace")
    description = await q2c.describe()
    described = json.dumps([str(a) for a in description.typed_search_attributes])
    assert unit_price not in described and company not in described and tax_number not in described
    assert company in (await description.static_summary() or "")  # decoded through the codec by the client
    # the needles are there, encrypted: with the key they read back (so the searches above could fail); all but
    # the ERP's tax number, which the contact find-or-create never brings back (only the contact's ID): less to hold
    for what, needle in needles.items():
        if what == "tax number":
            assert needle not in decoded_text, "the ERP-owned tax number has no business in the histories"
        elif what != "unit price (minor units)":
            assert needle in decoded_text, f"{what} never reached the histories: the search proves nothing"
