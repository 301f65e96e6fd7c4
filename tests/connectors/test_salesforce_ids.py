"""Salesforce IDs: the 18-character form computed by hand from Salesforce's documented rule."""

from __future__ import annotations

import pytest

from connectors.identifiers import InvalidIdentifier
from connectors.registry import default_registry
from connectors.salesforce.ids import normalise_id, to_18
from settings import Settings


@pytest.mark.parametrize(("id15", "id18"), [
    # 001A0 -> A at 3 -> 8 -> I; 00000 -> A; 6Vm9r -> V at 1 -> 2 -> C
    ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
    ("006000000000001", "006000000000001AAA"),
    # ABCDE -> all five upper -> 31 -> 5; a lower-case group -> A
    ("ABCDEabcdeABCDE", "ABCDEabcdeABCDE5A5"),
])
def test_salesforce_ids_15_to_18(id15: str, id18: str) -> None:
    assert to_18(id15) == id18
    assert to_18(id18) == id18 and to_18(id18[:15] + id18[15:].lower()) == id18


@pytest.mark.parametrize("bad", ["001A0000006Vm9rIAD", "001A0000006Vm9", "001A0000006Vm9r-AC", "", "../x"])
def test_salesforce_ids_refuse_what_is_not_an_id(bad: str) -> None:
    with pytest.raises(InvalidIdentifier):
        normalise_id(bad)


def test_salesforce_ids_the_descriptor_gives_the_canonical_form() -> None:
    spec = next(s for s in default_registry(Settings(_env_file=None)).all()  # type: ignore[call-arg]
                if s.name == "salesforce")
    assert spec.canonical_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert spec.canonical_id("not-an-id") == "not-an-id"  # left for the adapter to refuse visibly
    assert spec.recognise("006000000000001AAA") == ["deal"] and spec.recognise("001000000000001") == ["company"]
    assert spec.recognise("0010abcd-0000-4000-8000-000000000001") == []  # a GUID is not an Account ID
