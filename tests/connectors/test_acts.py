"""The role acts behind the registry: every emulated adapter names an acts module that implements its role's
protocol, and billing amounts cross in the currency's own minor unit (not x100)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from canonical.ownership import SystemRole
from connectors.acts import BillingActs, ClmActs, CrmActs, DealDraft, ErpActs, acts_for
from connectors.registry import default_registry
from settings import Settings

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
