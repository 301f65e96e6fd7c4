"""The role acts behind the registry: every emulated adapter names an acts module that implements its role's
protocol, and billing amounts cross in the currency's own minor unit (not x100)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from canonical.ownership import SystemRole
from connectors.acts import BillingActs, ClmActs, CrmActs, DealDraft, ErpActs, acts_for, role_acts
from connectors.registry import default_registry
from settings import Settings
from tests.helpers.ledger_pairs import EmulatorRecords as EmulatorStore
from tests.helpers.servers import SandboxHandle, stripe_auth

PROTOCOLS = {SystemRole.CRM: CrmActs, SystemRole.CLM: ClmActs, SystemRole.BILLING: BillingActs,
             SystemRole.ERP: ErpActs}


async def test_acts_every_emulated_adapter_has_acts_of_its_role() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    async with httpx.AsyncClient() as http:
        for spec in default_registry(settings).all():
            if spec.emulator is None:
                continue
            acts = acts_for(spec, settings, http)
            assert isinstance(acts, PROTOCOLS[spec.role]), spec.name
            assert acts.controls.base_url == spec.load(settings).base_url.rstrip("/")


@pytest.mark.parametrize(("currency", "amount", "minor"), [("JPY", "1500", 1500), ("KWD", "12.345", 12345),
                                                           ("USD", "10.50", 1050)])
async def test_acts_billing_amounts_use_the_currency_minor_unit(currency: str, amount: str, minor: int) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    registry = default_registry(settings)
    async with httpx.AsyncClient() as http:
        acts = acts_for(registry.chosen(settings, SystemRole.BILLING), settings, http)
    module = __import__(type(acts).__module__, fromlist=["to_minor", "to_major"])
    assert module.to_minor(Decimal(amount), currency) == minor
    assert module.to_major(minor, currency) == Decimal(amount)
    with pytest.raises(ValueError):
        module.to_minor(Decimal("1.5"), "JPY")  # a yen has no decimals: refused, never rounded


def test_acts_deal_draft_leaves_out_and_discounts_without_touching_the_original() -> None:
    draft = DealDraft(model="milestone", company="Initech Ltd")
    changed = draft.without({"region", "contact"}).with_discount("30")
    assert changed.region is None and not changed.with_contact and draft.region == "NA"
    assert {line.discount for line in changed.deal_lines()} == {"30"}
    assert {line.discount for line in draft.deal_lines()} == {"0"}
    with pytest.raises(ValueError):
        draft.without({"owner"})


async def _open_invoice(http: httpx.AsyncClient, base_url: str, settings: Settings, cents: int) -> str:
    headers = stripe_auth(settings)
    cus = (await http.post(f"{base_url}/v1/customers", data={"name": "Acts Co"}, headers=headers)).json()
    draft = (await http.post(f"{base_url}/v1/invoices", headers=headers, data={
        "customer": cus["id"], "currency": "usd", "collection_method": "send_invoice", "days_until_due": "30",
        "auto_advance": "false"})).json()
    await http.post(f"{base_url}/v1/invoiceitems", headers=headers, data={
        "customer": cus["id"], "invoice": draft["id"], "currency": "usd", "amount": str(cents)})
    finalized = await http.post(f"{base_url}/v1/invoices/{draft['id']}/finalize", headers=headers)
    assert finalized.status_code == 200, finalized.text
    return str(draft["id"])


async def test_acts_billing_credit_void_and_write_off_repeat_as_the_same_act(
        settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    """Finance's acts go through the vendor's public API, faults and all: tried again with the same key after a
    lost answer, a credit note is the same credit note and a void or write-off is not refused as done already."""
    async with httpx.AsyncClient(timeout=10) as http:
        acts = role_acts(settings, SystemRole.BILLING, http)
        assert isinstance(acts, BillingActs)
        credited = await _open_invoice(http, stripe_sandbox.base_url, settings, 10000)
        first = await acts.credit(credited, Decimal("12.34"), key=f"k-{credited}")
        again = await acts.credit(credited, Decimal("12.34"), key=f"k-{credited}")
        assert first.credit_note_id and again.credit_note_id == first.credit_note_id
        assert first.amount == Decimal("12.34")
        [invoice] = [i for i in acts.invoices(EmulatorStore(stripe_sandbox)) if i.invoice_id == credited]
        assert invoice.total == Decimal("100.00")
        paid = await acts.pay(credited)
        assert paid.amount == Decimal("87.66")  # what the credit note left due, credited once

        voided = await _open_invoice(http, stripe_sandbox.base_url, settings, 5000)
        assert (await acts.void(voided, key=f"v-{voided}")).status == "void"
        assert (await acts.void(voided, key=f"v-{voided}")).status == "void"

        written = await _open_invoice(http, stripe_sandbox.base_url, settings, 5000)
        await acts.pay(written, Decimal("20.00"))
        off = await acts.write_off(written, key=f"w-{written}")
        assert (off.status, off.amount) == ("uncollectible", Decimal("30.00"))
        assert (await acts.write_off(written, key=f"w-{written}")).status == "uncollectible"
