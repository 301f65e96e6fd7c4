"""A bare vendor ID read as the business keys it may be (the registry's descriptors say which)."""

from __future__ import annotations

import pytest

from connectors.registry import default_registry
from connectors.stripe.spec import stripe_ref
from settings import Settings

SETTINGS = Settings(_env_file=None)  # type: ignore[call-arg]


def candidate_refs(text: str) -> list[str]:
    return default_registry(SETTINGS).candidate_refs(SETTINGS, text)


@pytest.mark.parametrize(("stripe_id", "key"), [
    ("cus_123", "stripe:customer:cus_123"), ("in_9", "stripe:invoice:in_9"), ("prod_7", "stripe:product:prod_7"),
    ("price_7", "stripe:price:price_7"), ("sub_1", "stripe:subscription:sub_1"),
    ("sub_sched_1", "stripe:schedule:sub_sched_1"), ("ii_4", "stripe:invoiceitem:ii_4"),
])
def test_refs_stripe_ids_name_their_kind(stripe_id: str, key: str) -> None:
    assert stripe_ref(stripe_id) == key
    assert candidate_refs(stripe_id) == [key]


def test_refs_full_keys_are_taken_as_they_are() -> None:
    assert candidate_refs("xero:project:9fcc42d2") == ["xero:project:9fcc42d2"]


def test_refs_a_guid_is_every_kind_whose_pattern_it_fits() -> None:
    uuid = "9fcc42d2-83db-4df9-b035-12bcaa4ad093"
    found = candidate_refs(uuid)
    assert {f"xero:contact:{uuid}", f"xero:project:{uuid}", f"xero:invoice:{uuid}",
            f"ironclad:record:{uuid}", f"revops:project:{uuid}"} <= set(found)
    assert not any(key.startswith(("stripe:", "hubspot:")) for key in found)  # not a Stripe or HubSpot ID


def test_refs_a_number_is_a_crm_deal_or_company() -> None:
    found = candidate_refs("12345")
    assert "hubspot:deal:12345" in found and "hubspot:company:12345" in found
    assert not any(key.startswith(("stripe:", "xero:")) for key in found)
