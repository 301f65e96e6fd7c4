"""XeroErp.find_customers / create_customers against the Xero emulator: one request per batch each way,
idempotent creation, lookups by ContactNumber."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from canonical import Account
from canonical.backfill import ErpCustomerDraft
from connectors.errors import Rejected
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle

TENANT = "4f7a0c1e-0002-4000-8000-000000000002"


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def drafts(run: str, n: int) -> list[ErpCustomerDraft]:
    return [ErpCustomerDraft(account=Account(crm_id=f"{run}{i}", name=f"Batch {run} {i} GmbH"),
                             reference=f"hubspot-company-{run}{i}-EU01") for i in range(n)]


async def test_xero_create_customers_creates_a_batch_in_one_request(erp: XeroErp, xero_sandbox: SandboxHandle
                                                                    ) -> None:
    run = uuid.uuid4().hex[:8]
    batch = drafts(run, 5)
    await erp.list_tenants()  # the access token is fetched first, outside the count
    before = xero_sandbox.control.stats.requests
    result = await erp.create_customers(TENANT, batch, idempotency_key=f"bf-{run}")
    assert xero_sandbox.control.stats.requests - before == 1
    assert result.created == 5 and len(set(result.contact_ids)) == 5
    found = await erp.find_customers(TENANT, [d.reference for d in batch] + [f"hubspot-company-none-{run}"])
    assert found == {d.reference: cid for d, cid in zip(batch, result.contact_ids, strict=True)}


async def test_xero_create_customers_replays_with_the_same_key(erp: XeroErp, xero_sandbox: SandboxHandle) -> None:
    run = uuid.uuid4().hex[:8]
    batch = drafts(run, 3)
    first = await erp.create_customers(TENANT, batch, idempotency_key=f"bf-{run}")
    again = await erp.create_customers(TENANT, batch, idempotency_key=f"bf-{run}")
    assert again.contact_ids == first.contact_ids
    numbers = [c.get("ContactNumber") for c in xero_sandbox.store.list("contact", tenant=TENANT)]
    assert all(numbers.count(d.reference) == 1 for d in batch)


async def test_xero_create_customers_refuses_an_existing_name_without_saving_any(
        erp: XeroErp, xero_sandbox: SandboxHandle) -> None:
    run = uuid.uuid4().hex[:8]
    await erp.create_customers(TENANT, drafts(run, 1), idempotency_key=f"bf-{run}-a")
    clash = drafts(run, 2)  # the first one's name exists already
    clash = [d.model_copy(update={"reference": d.reference + "-x"}) for d in clash]
    with pytest.raises(Rejected):
        await erp.create_customers(TENANT, clash, idempotency_key=f"bf-{run}-b")
    assert await erp.find_customers(TENANT, [d.reference for d in clash]) == {}
