"""The cross-system conventions and their inverses (canonical/keys.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canonical.keys import (
    EntityScoped,
    business_id_of,
    erp_contact_reference,
    parse_erp_contact_reference,
    parse_project_code,
    project_code,
    project_code_prefix,
    quote_to_cash_workflow_id,
    step_idempotency_key,
)

ids = st.text(alphabet="0123456789abcdef-", min_size=1, max_size=20).filter(lambda s: not s.endswith("-"))
entities = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=6)


def test_keys_have_the_shapes_the_vendors_already_hold() -> None:
    assert erp_contact_reference("123", "US01") == "hubspot-company-123-US01"
    assert project_code("987", "EU01") == "P-987-EU01"
    assert project_code_prefix("987") == "P-987-"
    assert quote_to_cash_workflow_id("42") == "q2c-hubspot-42"
    assert step_idempotency_key("q2c-hubspot-42", "0a1b2c3d", "contract") == "q2c-hubspot-42:0a1b2c3d:contract"


@given(ids, entities)
def test_keys_parse_back_what_they_build(crm_id: str, entity: str) -> None:
    assert parse_erp_contact_reference(erp_contact_reference(crm_id, entity)) == EntityScoped(crm_id, entity)
    assert parse_project_code(project_code(crm_id, entity)) == EntityScoped(crm_id, entity)
    assert project_code(crm_id, entity).startswith(project_code_prefix(crm_id))


def test_keys_refuse_what_we_did_not_make() -> None:
    assert parse_project_code("PRJ-7") is None and parse_project_code("P-") is None
    assert parse_erp_contact_reference("stripe-customer-cus_1-US01") is None
    assert business_id_of("q2c-hubspot-42") == ("deal", "42")
    assert business_id_of("contract-ironclad-r1") == ("contract", "r1")
    assert business_id_of("q2c-hubspot-") is None and business_id_of("42") is None
