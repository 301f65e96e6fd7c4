"""Delegation of authority and signed approvals as pure rules (milliseconds, no servers)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from canonical.authority import (
    ApprovalAuthority,
    ApprovalFacts,
    Approver,
    approvals_required,
    authority_refusal,
    parse_signing_keys,
    sign_approval,
    verify_approval,
)
from canonical.money import Money

SAM = Approver(id="sam", name="Sam", role="sales_ops", max_amount={"USD": Decimal(25000)},
               max_discount_percent=Decimal(10), crm_owner_ids=["7"])
EU_ONLY = Approver(id="eve", name="Eve", role="finance_manager", entities=["EU01"])
CFO = Approver(id="cfo", name="Chris", role="cfo")
AUTHORITY = ApprovalAuthority(approvers=[SAM, EU_ONLY, CFO], dual_approval_above={"USD": Decimal(250000)})
KEY = b"k" * 32
NOW = datetime(2027, 1, 1, 12, tzinfo=UTC)


def facts(amount: str = "1000", discount: str = "0", entity: str = "US01", owner: str | None = None,
          currency: str = "USD") -> ApprovalFacts:
    return ApprovalFacts(amount=Money.of(amount, currency), discount_percent=Decimal(discount),
                         legal_entity=entity, owner_id=owner)


@pytest.mark.parametrize(("approver", "case", "reason"), [
    ("nobody", facts(), "'nobody' is not a registered approver"),
    ("sam", facts(discount="10.5"), "discount 10.5% is over Sam's limit of 10% (sales_ops)"),
    ("sam", facts(amount="25000.01"), "amount 25000.01 USD is over Sam's limit of 25000 USD (sales_ops)"),
    ("sam", facts(currency="EUR"), "Sam has no approval limit in EUR"),
    ("sam", facts(owner="7"), "Sam owns this deal and may not approve it (segregation of duties)"),
    ("eve", facts(entity="US01"), "Eve may not approve for legal entity US01"),
])
def test_authority_refuses_with_the_reason(approver: str, case: ApprovalFacts, reason: str) -> None:
    assert authority_refusal(AUTHORITY, case, approver, []) == reason


def test_authority_allows_within_limits_and_refuses_a_second_decision_by_the_same_person() -> None:
    assert authority_refusal(AUTHORITY, facts(amount="25000", discount="10"), "sam", []) is None
    assert authority_refusal(AUTHORITY, facts(entity="EU01", currency="EUR"), "eve", []) is None
    assert authority_refusal(AUTHORITY, facts(amount="9999999"), "cfo", []) is None
    assert "already decided" in (authority_refusal(AUTHORITY, facts(), "cfo", ["cfo"]) or "")


def test_authority_dual_approval_above_the_threshold_of_the_currency() -> None:
    assert approvals_required(AUTHORITY, facts(amount="250000")) == 1
    assert approvals_required(AUTHORITY, facts(amount="250000.01")) == 2
    assert approvals_required(AUTHORITY, facts(amount="9999999", currency="GBP")) == 1  # no GBP threshold set


def _proof(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {"key_id": "k1", "key": KEY, "workflow_id": "q2c-hubspot-1", "approver": "sam",
                                 "approved": True, "note": "ok", "subject": "sam", "channel": "api",
                                 "nonce": "0123456789abcdef", "now": NOW, "ttl": timedelta(minutes=5)}
    values.update(overrides)
    return values


def test_signed_approval_verifies_and_any_change_breaks_it() -> None:
    proof = sign_approval(**_proof())  # type: ignore[arg-type]
    keys = {"k1": KEY}
    check = {"workflow_id": "q2c-hubspot-1", "approver": "sam", "approved": True, "note": "ok", "proof": proof}
    assert verify_approval(keys, now=NOW, **check) is None  # type: ignore[arg-type]
    for change in ({"approved": False}, {"note": "ok!"}, {"workflow_id": "q2c-hubspot-2"}, {"approver": "cfo"}):
        assert "does not match" in (verify_approval(keys, now=NOW, **{**check, **change}) or "")  # type: ignore[arg-type]
    forged = proof.model_copy(update={"channel": "inbox"})
    assert "does not match" in (verify_approval(keys, now=NOW, **{**check, "proof": forged}) or "")  # type: ignore[arg-type]
    assert "expired" in (verify_approval(keys, now=NOW + timedelta(minutes=6), **check) or "")  # type: ignore[arg-type]
    assert "unknown key" in (verify_approval({"k2": KEY}, now=NOW, **check) or "")  # type: ignore[arg-type]
    assert "no signed approval" in (verify_approval(keys, now=NOW, **{**check, "proof": None}) or "")  # type: ignore[arg-type]
    other = sign_approval(**_proof(subject="cfo"))  # type: ignore[arg-type]
    assert "signed for another person" in (verify_approval(keys, now=NOW, **{**check, "proof": other}) or "")  # type: ignore[arg-type]


def test_signing_keys_parse_and_refuse_bad_entries() -> None:
    good = "k1:" + base64.b64encode(KEY).decode()
    assert parse_signing_keys([good]) == {"k1": KEY}
    with pytest.raises(ValueError, match="key-id:base64-key"):
        parse_signing_keys(["nokey"])
    with pytest.raises(ValueError, match="not base64"):
        parse_signing_keys(["k1:***"])
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        parse_signing_keys(["k1:" + base64.b64encode(b"short").decode()])
