"""Customers finance keyed into Stripe by hand (with Stripe's own SDK), found by the Stripe adapter over real HTTP
(emulator) by name and email domain, and linked by writing only our reference into their metadata."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import stripe

from canonical import Account
from canonical.matching import MatchKind, MatchRule, match_customer
from connectors.stripe import StripeBilling, from_settings
from settings import Settings
from tests.helpers.servers import SandboxHandle, vendor_settings

API_VERSION = "2023-08-16"


@pytest_asyncio.fixture
async def billing(settings: Settings, stripe_sandbox: SandboxHandle) -> AsyncIterator[StripeBilling]:
    adapter = from_settings(settings)
    yield adapter
    await adapter.aclose()


def sdk(settings: Settings, stripe_sandbox: SandboxHandle) -> stripe.StripeClient:
    return stripe.StripeClient(vendor_settings(settings, "stripe").api_key, stripe_version=API_VERSION,
                               base_addresses={"api": stripe_sandbox.base_url})


async def test_customers_keyed_by_hand_are_found_by_name_and_domain_and_linked(
        billing: StripeBilling, settings: Settings, stripe_sandbox: SandboxHandle) -> None:
    client = sdk(settings, stripe_sandbox)
    tag = uuid.uuid4().hex[:6]
    by_name = client.customers.create(params={"name": f"Nordlicht {tag} GmbH", "address": {"country": "DE"}})
    by_mail = client.customers.create(params={"name": f"NL{tag} Finance", "email": f"ap@nordlicht{tag}.example"})
    client.customers.create(params={"name": f"Someone {tag}", "email": f"x{tag}@gmail.com"})

    account = Account(name=f"NORDLICHT {tag} GMBH.", country="DE", domain=f"https://www.nordlicht{tag}.example/")
    candidates = await billing.customer_candidates(account, email=f"bea{tag}@gmail.com")
    assert {c.record_id for c in candidates} == {by_name.id, by_mail.id}, "free-mail is no hint"
    match = match_customer(account, candidates)
    assert (match.kind, match.rule, match.record_id) == (MatchKind.EXACT, MatchRule.NAME_COUNTRY, by_name.id)

    reference = f"crm-company-{tag}-EU01"
    assert await billing.link_customer(by_name.id, reference=reference, legal_entity="EU01",
                                       idempotency_key=f"link-{tag}") == by_name.id
    assert await billing.find_customer(reference) == by_name.id
    held = client.customers.retrieve(by_name.id)
    assert held.name == f"Nordlicht {tag} GmbH" and held.metadata["legal_entity"] == "EU01"  # nothing else changed
