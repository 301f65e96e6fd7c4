"""A customer keyed into NetSuite by hand (the emulator over real HTTP, TBA-signed), found by the NetSuite adapter
by its name and linked by writing our reference as its external ID."""

from __future__ import annotations

import uuid

from canonical import Account
from canonical.matching import MatchKind, MatchRule, match_customer
from connectors.netsuite import from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle


async def test_a_netsuite_customer_keyed_by_hand_is_found_and_linked(settings: Settings,
                                                                    netsuite_sandbox: SandboxHandle) -> None:
    erp = from_settings(settings)
    tenant = settings.entity("US01").erp_tenant_id
    tag = uuid.uuid4().hex[:6]
    try:
        keyed = await erp.upsert_customer(tenant, Account(name=f"Pelican {tag} Freight Inc"), contact=None,
                                          reference=f"HAND{tag}", idempotency_key=f"hand-{tag}")
        account = Account(name=f"PELICAN {tag} FREIGHT, INC.")
        candidates = [c for c in await erp.customer_candidates(tenant, account) if c.record_id == keyed.erp_contact_id]
        assert [c.name for c in candidates] == [f"Pelican {tag} Freight Inc"]
        match = match_customer(account, [c.model_copy(update={"reference": None}) for c in candidates])
        assert (match.kind, match.rule) == (MatchKind.EXACT, MatchRule.NAME_COUNTRY)
        reference = f"hubspot-company-{tag}-US01"
        await erp.link_customer(tenant, keyed.erp_contact_id or "", reference=reference, idempotency_key=tag)
        found = await erp.find_customer(tenant, reference)
        assert found is not None and found.erp_contact_id == keyed.erp_contact_id
    finally:
        await erp.aclose()
