"""The Xero emulator's ``where`` language: the batch look-up fast path answers as the general evaluation does."""

from __future__ import annotations

import pytest

from sandbox.xero.where import WhereError, compile_where

DOCS = [
    {"ContactNumber": "hubspot-company-1-US01", "Name": "Acme", "Contact": {"ContactID": "ABC"}, "Total": "10.50"},
    {"ContactNumber": "HUBSPOT-COMPANY-2-US01", "Name": "Beta", "Contact": {"ContactID": "def"}, "Total": "99"},
    {"Name": "No number", "Total": "0"},
]


def matching(where: str) -> list[str]:
    predicate = compile_where(where)
    return [d["Name"] for d in DOCS if predicate(d)]


def test_or_of_equalities_on_one_field_matches_case_insensitively() -> None:
    assert matching('ContactNumber=="hubspot-company-2-us01" OR ContactNumber=="hubspot-company-1-US01"') == [
        "Acme", "Beta"]
    assert matching('ContactNumber=="hubspot-company-9-US01" || ContactNumber=="nope"') == []
    assert matching('Contact.ContactID==Guid("abc")') == ["Acme"]


def test_mixed_clauses_use_the_general_evaluation() -> None:
    assert matching('ContactNumber=="hubspot-company-1-US01" OR Name=="Beta"') == ["Acme", "Beta"]
    assert matching('ContactNumber=="hubspot-company-1-US01" AND Name=="Beta"') == []
    assert matching("Total>50") == ["Beta"]
    assert matching('ContactNumber!="hubspot-company-1-US01"') == ["Beta", "No number"]
    assert matching("") == ["Acme", "Beta", "No number"]


@pytest.mark.parametrize("bad", ['ContactNumber=="x" OR', "ContactNumber", 'ContactNumber ~ "x"'])
def test_malformed_filters_are_refused(bad: str) -> None:
    with pytest.raises(WhereError):
        compile_where(bad)
