"""A bare vendor ID read as the business keys it may be."""

from __future__ import annotations

import pytest

from canonical.refs import KEY_KINDS, candidate_refs, stripe_ref


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


def test_refs_other_bare_ids_are_every_non_stripe_kind() -> None:
    uuid = "9fcc42d2-83db-4df9-b035-12bcaa4ad093"
    found = candidate_refs(uuid)
    assert f"xero:contact:{uuid}" in found and f"xero:project:{uuid}" in found and f"ironclad:record:{uuid}" in found
    assert len(found) == len([k for k in KEY_KINDS if k[0] != "stripe"])
    assert not any(key.startswith("stripe:") for key in found)
