"""A sales rep's acts in Salesforce (``starter.py sandbox``, ``make demo``) against the emulator over real HTTP,
read back through the adapter as the flows read them."""

from __future__ import annotations

import httpx

from canonical.requests import AccountFigures, DealWriteBack
from connectors.acts import DealDraft, acts_for
from connectors.registry import default_registry
from connectors.salesforce import from_settings
from connectors.salesforce.acts import SalesforceActs
from settings import Settings
from tests.helpers.servers import SandboxHandle


def _acts(settings: Settings, http: httpx.AsyncClient) -> SalesforceActs:
    spec = next(s for s in default_registry(settings).all() if s.name == "salesforce")
    acts = acts_for(spec, settings, http)
    assert isinstance(acts, SalesforceActs)
    return acts


async def test_salesforce_acts_seed_move_edit_and_read_back(settings: Settings,
                                                           salesforce_sandbox: SandboxHandle) -> None:
    crm = from_settings(settings)
    async with httpx.AsyncClient(timeout=10) as http:
        acts = _acts(settings, http)
        seeded = await acts.seed_deal(DealDraft(model="milestone", region="EMEA", currency="EUR", entity="EU01"))
        deal = await crm.get_deal(seeded.deal_id)
        assert deal.stage == acts.approval_stage and deal.account is not None
        assert deal.account.crm_id == seeded.company_id
        assert [line.product_code for line in deal.lines] == ["MS-DESIGN", "MS-BUILD"]
        assert [c.role for c in deal.contacts] == ["billing"] and deal.legal_entity == "EU01"

        await acts.edit_deal(seeded.deal_id, {"region": "NA"})
        moved = await acts.move_deal(f"q2c-salesforce-{seeded.deal_id[:15]}")
        again = await acts.move_deal(seeded.deal_id)
        await crm.write_back(seeded.deal_id, DealWriteBack(clm_workflow_id="wf-1"))
        await crm.write_account_figures(seeded.company_id, [AccountFigures(
            currency="EUR", billed="120.00", paid="20.00", outstanding="100.00", overdue="0.00", credited="0.00")])

        assert moved.deal_id == seeded.deal_id and moved.changed and not again.changed
        assert (await crm.get_deal(seeded.deal_id)).region == "NA"
        assert await acts.written_back(seeded.deal_id, "clm_workflow_id") == "wf-1"
        assert await acts.company_figures(seeded.company_id, "EUR") == ("120.00", "20.00")
        assert acts.is_deal_id(f"q2c-salesforce-{seeded.deal_id}") and not acts.is_deal_id(seeded.company_id)
    await crm.aclose()
