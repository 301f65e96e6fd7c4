"""HubSpotCrm.write_deal_figures against the HubSpot emulator: per-currency billing figures on a deal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest_asyncio

from canonical.requests import AccountFigures
from connectors.hubspot import HubSpotCrm, from_settings
from settings import Settings
from tests.helpers.deals import DealSpec, deal_properties, seed_deal
from tests.helpers.servers import SandboxHandle


@pytest_asyncio.fixture
async def crm(settings: Settings, hubspot_sandbox: SandboxHandle) -> AsyncIterator[HubSpotCrm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def test_hubspot_write_deal_figures_per_currency(crm: HubSpotCrm, hubspot_sandbox: SandboxHandle) -> None:
    deal_id = seed_deal(hubspot_sandbox, DealSpec())

    await crm.write_deal_figures(deal_id, [
        AccountFigures(currency="USD", billed="100.00", paid="40.00", outstanding="60.00", overdue="60.00",
                       credited="0.00", last_payment_date=date(2026, 3, 2), dso_days="12.5"),
        AccountFigures(currency="EUR", billed="10.00", paid="10.00", outstanding="0.00", overdue="0.00",
                       credited="1.00"),
    ])

    props = deal_properties(hubspot_sandbox, deal_id)
    assert props["revops_billed_usd"] == "100.00" and props["revops_overdue_usd"] == "60.00"
    assert props["revops_dso_days_usd"] == "12.5" and props["revops_credited_eur"] == "1.00"
    assert props["revops_last_payment_date"] == "2026-03-02"
