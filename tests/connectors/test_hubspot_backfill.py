"""HubSpotCrm.list_companies against the HubSpot emulator: pages with a cursor until the end."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from canonical import Account
from connectors.hubspot import HubSpotCrm, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle


@pytest_asyncio.fixture
async def crm(settings: Settings, hubspot_sandbox: SandboxHandle) -> AsyncIterator[HubSpotCrm]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


async def test_hubspot_list_companies_pages_through_every_company(crm: HubSpotCrm) -> None:
    run = uuid.uuid4().hex[:8]
    created = await crm.upsert_companies([Account(name=f"Pager {run} {i}", domain=f"pg{run}-{i}.example.com",
                                                  country="DE") for i in range(7)])
    seen: dict[str, Account] = {}
    after: str | None = None
    pages = 0
    while True:
        page = await crm.list_companies(after=after, limit=3)
        pages += 1
        assert len(page.accounts) <= 3
        seen.update({a.crm_id or "": a for a in page.accounts})
        if page.next_after is None:
            break
        after = page.next_after
    assert pages >= 3
    assert set(created.ids) <= set(seen)
    first = seen[created.ids[0]]
    assert first.name == f"Pager {run} 0" and first.domain == f"pg{run}-0.example.com" and first.country == "DE"
