"""Contacts finance keyed into Xero by hand, found and linked by the Xero adapter over real HTTP (emulator): by
tax number (``where``), by name (``searchTerm``) and by email domain; linking writes only our reference."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from canonical import Account
from canonical.matching import MatchKind, MatchRule, match_customer
from connectors.xero import XeroErp, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle


@pytest_asyncio.fixture
async def erp(settings: Settings, xero_sandbox: SandboxHandle) -> AsyncIterator[XeroErp]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def keyed_by_hand(xero: SandboxHandle, tenant: str, **fields: str) -> str:
    """A contact as finance enters it in Xero: no reference of ours."""
    answer = xero.post_control("contacts", {"tenantId": tenant, **fields})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["ContactID"])


async def test_a_contact_keyed_by_hand_is_found_by_tax_number_name_and_domain_and_linked(
        erp: XeroErp, xero_sandbox: SandboxHandle, settings: Settings) -> None:
    tenant = settings.entity("UK01").erp_tenant_id
    tag = uuid.uuid4().hex[:6]
    by_tax = keyed_by_hand(xero_sandbox, tenant, Name=f"Harbour {tag} Trading Ltd", TaxNumber=f"GB{tag}01",
                           Country="GB")
    by_name = keyed_by_hand(xero_sandbox, tenant, Name=f"Kestrel {tag} Systems Limited", Country="GB")
    by_domain = keyed_by_hand(xero_sandbox, tenant, Name=f"K{tag} Holdings", EmailAddress=f"ap@kestrel{tag}.example")

    account = Account(name=f"Harbour {tag} Trading", country="GB", tax_number=f"gb {tag}01")
    match = match_customer(account, await erp.customer_candidates(tenant, account))
    assert (match.kind, match.rule, match.record_id) == (MatchKind.EXACT, MatchRule.TAX_NUMBER, by_tax)

    account = Account(name=f"KESTREL {tag} SYSTEMS LTD.", country="GB", domain=f"kestrel{tag}.example")
    candidates = await erp.customer_candidates(tenant, account)
    assert {c.record_id for c in candidates} >= {by_name, by_domain}
    match = match_customer(account, candidates)
    assert (match.kind, match.rule, match.record_id) == (MatchKind.EXACT, MatchRule.NAME_COUNTRY, by_name)

    reference = f"crm-company-{tag}-UK01"
    linked = await erp.link_customer(tenant, by_name, reference=reference, idempotency_key=f"link-{tag}")
    assert linked.erp_contact_id == by_name and linked.name == f"Kestrel {tag} Systems Limited"  # name kept
    found = await erp.find_customer(tenant, reference)
    assert found is not None and found.erp_contact_id == by_name
    # linked, it is the account's own record from now on: matched by our reference, not by name
    again = match_customer(account, await erp.customer_candidates(tenant, account), reference=reference)
    assert (again.kind, again.record_id) == (MatchKind.EXACT, by_name)


async def test_an_archived_contact_is_no_candidate(erp: XeroErp, xero_sandbox: SandboxHandle,
                                                   settings: Settings) -> None:
    tenant = settings.entity("UK01").erp_tenant_id
    tag = uuid.uuid4().hex[:6]
    gone = keyed_by_hand(xero_sandbox, tenant, Name=f"Osprey {tag} Ltd", Country="GB")
    keyed_by_hand(xero_sandbox, tenant, ContactID=gone, ContactStatus="ARCHIVED")
    account = Account(name=f"Osprey {tag} Ltd", country="GB")
    assert [c for c in await erp.customer_candidates(tenant, account) if c.record_id == gone] == []
