"""Field ownership: a write never overwrites a field another system owns."""

from __future__ import annotations

import pytest

from canonical.ownership import (
    OwnershipViolation,
    SystemRole,
    drop_foreign_fields,
    guard_write,
    may_write,
    owner_of,
)

CRM, CLM, BILLING, ERP = SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING, SystemRole.ERP


def test_ownership_owner_of_uses_the_table_then_the_home_system() -> None:
    assert owner_of("account", "tax_number") is ERP
    assert owner_of("account", "name") is CRM
    assert owner_of("contract", "anything_else") is CLM
    assert owner_of("invoice", "status") is BILLING
    assert owner_of("deal", "revops_status") is SystemRole.REVOPS


def test_ownership_owners_are_roles_never_vendors() -> None:
    from canonical.ownership import FIELD_OWNERSHIP, HOME_SYSTEM

    owners = {*FIELD_OWNERSHIP.values(), *HOME_SYSTEM.values()}
    assert owners == {CRM, CLM, BILLING, ERP}
    assert all(type(owner) is SystemRole for owner in owners)


@pytest.mark.parametrize("vendor", ["hubspot", "xero", "ironclad", "stripe"])
def test_ownership_a_vendor_name_as_writer_is_refused(vendor: str) -> None:
    with pytest.raises(ValueError, match=f"'{vendor}' is not a system role"):
        may_write("account", "name", vendor, current="Acme")


def test_ownership_owner_of_unknown_entity_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown entity 'widget'"):
        owner_of("widget", "name")


def test_ownership_guard_write_refuses_overwriting_a_foreign_field() -> None:
    with pytest.raises(OwnershipViolation) as info:
        guard_write("account", {"tax_number": "DE999"}, writer=CRM, current={"tax_number": "DE123"})
    err = info.value
    assert (err.entity, err.field, err.owner, err.writer) == ("account", "tax_number", ERP, CRM)
    assert str(err) == "account.tax_number is owned by the ERP; the CRM may not overwrite it"


def test_ownership_guard_write_allows_first_fill_of_an_empty_foreign_field() -> None:
    changes = {"tax_number": "DE123", "payment_terms_days": 30}
    assert guard_write("account", changes, writer=CRM, current={"tax_number": ""}) == changes
    assert guard_write("account", changes, writer=CRM) == changes


def test_ownership_guard_write_lets_the_owner_overwrite() -> None:
    changes = {"tax_number": "DE999"}
    assert guard_write("account", changes, writer=ERP, current={"tax_number": "DE123"}) == changes


def test_ownership_guard_write_names_the_first_foreign_field_among_several() -> None:
    with pytest.raises(OwnershipViolation) as info:
        guard_write("invoice", {"status": "paid", "receivable_status": "AUTHORISED"}, writer=ERP,
                    current={"status": "open", "receivable_status": "DRAFT"})
    assert (info.value.field, info.value.owner) == ("status", BILLING)


def test_ownership_integration_fields_are_writable_by_the_integration() -> None:
    assert guard_write("deal", {"revops_status": "provisioned"}, writer=SystemRole.REVOPS,
                       current={"revops_status": "approved"}) == {"revops_status": "provisioned"}


@pytest.mark.parametrize("empty", [None, "", [], {}])
def test_ownership_may_write_treats_empty_values_as_a_first_fill(empty: object) -> None:
    assert may_write("project", "budget", BILLING, current=empty)


def test_ownership_may_write_refuses_a_set_falsy_value() -> None:
    # zero is a value the owner set, not an empty field
    assert not may_write("account", "payment_terms_days", CRM, current=0)


def test_ownership_drop_foreign_fields_keeps_only_what_the_writer_may_set() -> None:
    kept = drop_foreign_fields("account", {"name": "Acme", "tax_number": "X", "erp_contact_id": "c-1"},
                               writer=CRM, current={"tax_number": "DE123", "erp_contact_id": None})
    assert kept == {"name": "Acme", "erp_contact_id": "c-1"}


def test_ownership_violation_is_a_value_error() -> None:
    assert issubclass(OwnershipViolation, ValueError)


def test_ownership_writable_over_leaves_out_foreign_fields_the_record_holds_and_fills_empty_ones() -> None:
    from canonical import Account
    from canonical.ownership import writable_over

    wanted = Account(name="New", tax_number="CRM-TAX", payment_terms_days=30, country="DE")
    fields = ("country", "tax_number", "payment_terms_days")
    held = Account(name="Old", tax_number="ERP-TAX", payment_terms_days=None, country="US")
    written = writable_over("account", wanted, held, writer=CRM, fields=fields)
    # the ERP's tax number stays (left out), its empty payment terms are filled, the CRM's own country is written
    assert (written.tax_number, written.payment_terms_days, written.country, written.name) == (
        None, 30, "DE", "New")
    assert writable_over("account", wanted, None, writer=CRM, fields=fields) == wanted  # a create: all of it
    as_erp = writable_over("account", wanted, held, writer=ERP, fields=fields)
    assert (as_erp.tax_number, as_erp.country) == ("CRM-TAX", None)  # the owner overwrites; the CRM's stays
