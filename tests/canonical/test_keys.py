"""The cross-system conventions and their inverses (canonical/keys.py): built from the adapter's name, IDs opaque."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canonical.keys import (
    BusinessId,
    EntityScoped,
    amendments_workflow_id,
    backfill_workflow_id,
    billing_customer_reference,
    business_id_of,
    erp_contact_reference,
    ledger_workflow_id,
    parse_erp_contact_reference,
    parse_project_code,
    parse_workflow_id,
    project_code,
    project_code_prefix,
    quote_to_cash_workflow_id,
    step_idempotency_key,
)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,23}", fullmatch=True).filter(lambda s: not s.endswith("-"))
entities = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=2, max_size=6)
adapters = st.from_regex(r"[a-z][a-z0-9]{1,12}", fullmatch=True)


def test_keys_have_the_shapes_the_vendors_already_hold() -> None:
    assert erp_contact_reference("hubspot", "123", "US01") == "hubspot-company-123-US01"
    assert billing_customer_reference("stripe", "cus_1", "US01") == "stripe-customer-cus_1-US01"
    assert project_code("987", "EU01") == "P-987-EU01"
    assert project_code_prefix("987") == "P-987-"
    assert quote_to_cash_workflow_id("hubspot", "42") == "q2c-hubspot-42"
    assert amendments_workflow_id("ironclad", "r1") == "contract-ironclad-r1"
    assert ledger_workflow_id("stripe", "cus_1") == "ledger-stripe-cus_1"
    assert backfill_workflow_id("xero", "EU01") == "backfill-xero-EU01"
    assert step_idempotency_key("q2c-hubspot-42", "0a1b2c3d", "contract") == "q2c-hubspot-42:0a1b2c3d:contract"


def test_keys_another_adapter_gets_its_own_ids_and_references() -> None:
    """A Salesforce deal ID (18 characters, letters) is as good as a numeric one: IDs are opaque."""
    assert quote_to_cash_workflow_id("salesforce", "0065g00000AbCdEAAZ") == "q2c-salesforce-0065g00000AbCdEAAZ"
    assert parse_workflow_id("q2c-salesforce-0065g00000AbCdEAAZ") == BusinessId("deal", "salesforce",
                                                                                  "0065g00000AbCdEAAZ")
    assert erp_contact_reference("salesforce", "001-x", "US01") == "salesforce-company-001-x-US01"


@given(adapters, ids, entities)
def test_keys_parse_back_what_they_build(adapter: str, crm_id: str, entity: str) -> None:
    assert parse_erp_contact_reference(erp_contact_reference(adapter, crm_id, entity)) == EntityScoped(crm_id, entity)
    assert parse_project_code(project_code(crm_id, entity)) == EntityScoped(crm_id, entity)
    assert project_code(crm_id, entity).startswith(project_code_prefix(crm_id))
    assert parse_workflow_id(quote_to_cash_workflow_id(adapter, crm_id)) == BusinessId("deal", adapter, crm_id)
    assert parse_workflow_id(ledger_workflow_id(adapter, crm_id)) == BusinessId("customer", adapter, crm_id)


def test_keys_refuse_what_we_did_not_make() -> None:
    assert parse_project_code("PRJ-7") is None and parse_project_code("P-") is None
    assert parse_erp_contact_reference("stripe-customer-cus_1-US01") is None
    assert business_id_of("q2c-hubspot-42") == ("deal", "42")
    assert business_id_of("contract-ironclad-r1") == ("contract", "r1")
    assert business_id_of("q2c-hubspot-") is None and business_id_of("42") is None
    assert parse_workflow_id("q2c-HubSpot-42") is None  # adapter names are lower-case
    assert parse_workflow_id("q2c-hubspot-4\n2") is None  # one line only


@pytest.mark.parametrize("bad", ["", " ", "1\n2", "1\r", "a\tb"])
def test_keys_a_blank_or_multi_line_id_is_refused_when_building(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_to_cash_workflow_id("hubspot", bad)


def test_keys_an_adapter_name_that_could_split_an_id_is_refused() -> None:
    for name in ("hub-spot", "HubSpot", "", "x"):
        with pytest.raises(ValueError):
            quote_to_cash_workflow_id(name, "1")


def test_milestone_task_name_and_its_inverse() -> None:
    from canonical.keys import milestone_of_task, milestone_task_name

    assert milestone_task_name("MS-DESIGN", "Design phase") == "MS-DESIGN Design phase"
    assert milestone_of_task(milestone_task_name("MS-DESIGN", "Design phase")) == "MS-DESIGN"
