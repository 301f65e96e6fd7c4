"""Delegation of authority and signed approvals as pure rules (milliseconds, no servers)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from canonical.authority import (
    ApprovalAuthority,
    ApprovalFacts,
    Approver,
    approval_message,
    approvals_required,
    authority_refusal,
    parse_signing_keys,
    refuse_unsound_registry,
    registry_problems,
    sign_approval,
    terms_digest,
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


RUN = "0b1c2d3e-run-1"
TERMS = terms_digest(facts(amount="5000", discount="20"))


def _proof(**overrides: object) -> dict[str, object]:
    values: dict[str, object] = {"key_id": "k1", "key": KEY, "workflow_id": "q2c-hubspot-1", "run_id": RUN,
                                 "request_id": 1, "terms": TERMS, "approver": "sam", "approved": True, "note": "ok",
                                 "subject": "sam", "channel": "api", "nonce": "0123456789abcdef", "now": NOW,
                                 "ttl": timedelta(minutes=5)}
    values.update(overrides)
    return values


def test_signed_approval_verifies_and_any_change_breaks_it() -> None:
    proof = sign_approval(**_proof())  # type: ignore[arg-type]
    keys = {"k1": KEY}
    check = {"workflow_id": "q2c-hubspot-1", "run_id": RUN, "approver": "sam", "approved": True, "note": "ok",
             "proof": proof}
    assert verify_approval(keys, now=NOW, **check) is None  # type: ignore[arg-type]
    for change in ({"approved": False}, {"note": "ok!"}, {"workflow_id": "q2c-hubspot-2"}, {"approver": "cfo"}):
        assert "does not match" in (verify_approval(keys, now=NOW, **{**check, **change}) or "")  # type: ignore[arg-type]
    for field, value in (("channel", "inbox"), ("request_id", 2), ("terms_digest", "0" * 64),
                         ("nonce", "fedcba9876543210"), ("expires_at", NOW + timedelta(hours=1))):
        forged = proof.model_copy(update={field: value})
        assert "does not match" in (verify_approval(keys, now=NOW, **{**check, "proof": forged}) or ""), field  # type: ignore[arg-type]
    assert "another run" in (verify_approval(keys, now=NOW, **{**check, "run_id": "run-2"}) or "")  # type: ignore[arg-type]
    assert "expired" in (verify_approval(keys, now=NOW + timedelta(minutes=6), **check) or "")  # type: ignore[arg-type]
    assert "unknown key" in (verify_approval({"k2": KEY}, now=NOW, **check) or "")  # type: ignore[arg-type]
    assert "no signed approval" in (verify_approval(keys, now=NOW, **{**check, "proof": None}) or "")  # type: ignore[arg-type]
    other = sign_approval(**_proof(subject="cfo"))  # type: ignore[arg-type]
    assert "signed for another person" in (verify_approval(keys, now=NOW, **{**check, "proof": other}) or "")  # type: ignore[arg-type]


def test_attacker_cannot_splice_fields_through_newlines_in_an_id_or_a_note() -> None:
    """The old message joined fields with newlines: ``workflow "A\nB", approver "C"`` and ``workflow "A",
    approver "B\nC"`` were the same bytes, so one signature approved both. Every split must now differ."""
    spliced = sign_approval(**_proof(workflow_id="q2c-hubspot-1\nsam", approver="x"))  # type: ignore[arg-type]
    as_other = {"workflow_id": "q2c-hubspot-1", "run_id": RUN, "approver": "sam\nx", "approved": True, "note": "ok"}
    assert "does not match" in (verify_approval({"k1": KEY}, now=NOW, proof=spliced, **as_other) or "")  # type: ignore[arg-type]
    base = sign_approval(**_proof())  # type: ignore[arg-type]
    message = approval_message(workflow_id="q2c-hubspot-1", run_id=RUN, approver="sam", approved=True,
                               note="ok", proof=base)
    other = approval_message(workflow_id="q2c-hubspot-1", run_id=RUN, approver="sam", approved=True,
                             note="ok\nreject", proof=base)
    assert message != other
    decoded = json.loads(message)
    assert decoded["run_id"] == RUN and decoded["request_id"] == 1 and decoded["terms_digest"] == TERMS
    assert set(decoded) == {"v", "key_id", "workflow_id", "run_id", "request_id", "decision", "approver",
                            "terms_digest", "note_digest", "subject", "channel", "nonce", "expires_at"}
    assert "ok" not in decoded.values(), "the note is bound by its digest, not carried in clear"


def test_terms_digest_binds_amount_currency_discount_and_amendment() -> None:
    base = terms_digest(facts(amount="5000", discount="20"))
    assert base == terms_digest(facts(amount="5000.00", discount="20.0")), "one spelling per value"
    assert len({base, terms_digest(facts(amount="5000.01", discount="20")),
                terms_digest(facts(amount="5000", discount="20", currency="EUR")),
                terms_digest(facts(amount="5000", discount="21")),
                terms_digest(facts(amount="5000", discount="20"), 1),
                terms_digest(facts(amount="5000", discount="20"), 2)}) == 6


def test_upper_case_ids_and_emails_name_the_same_approver() -> None:
    chris = Approver(id="Chris@RevOps.Example ", name="Chris", role="cfo", email="CFO@RevOps.example")
    authority = ApprovalAuthority(approvers=[chris])
    assert chris.id == "chris@revops.example" and chris.email == "cfo@revops.example"
    assert authority.approver("CHRIS@revops.example") is chris and authority.approver("cfo@REVOPS.example") is chris
    assert authority_refusal(authority, facts(), "Chris@RevOps.example", []) is None
    # the same person by e-mail after deciding by ID: not a second approver
    assert "already decided" in (authority_refusal(authority, facts(), "cfo@revops.example",
                                                   ["chris@revops.example"]) or "")


def test_registry_refuses_one_person_twice_and_unreachable_dual_thresholds() -> None:
    twice = ApprovalAuthority(approvers=[
        CFO, Approver(id="chris.alt", name="Chris again", role="cfo", email="CFO"),
        Approver(id="pat", name="Pat", role="treasurer")], dual_approval_above={"USD": Decimal(1000)})
    assert any("'cfo' names two approvers" in p for p in registry_problems(twice))
    lonely = ApprovalAuthority(approvers=[SAM, CFO], dual_approval_above={"USD": Decimal(250000)})
    [problem] = registry_problems(lonely)
    assert "250000 USD" in problem and "only 1 may approve" in problem and "cfo" in problem
    assert registry_problems(ApprovalAuthority(approvers=[SAM, CFO, Approver(id="pat", name="P", role="t")],
                                               dual_approval_above={"USD": Decimal(250000)})) == []
    bad_limit = Approver(id="zed", name="Z", role="x", max_amount={"USD": Decimal(0)})
    assert any("limits are positive" in p for p in registry_problems(ApprovalAuthority(approvers=[bad_limit])))
    with pytest.raises(ValueError, match="approver registry .* is refused: .*names two approvers"):
        refuse_unsound_registry(twice)


def test_shipped_registry_is_sound() -> None:
    from settings import Settings

    assert registry_problems(Settings(_env_file=None).approval_authority()) == []  # type: ignore[call-arg]


def test_signing_keys_parse_and_refuse_bad_entries() -> None:
    good = "k1:" + base64.b64encode(KEY).decode()
    assert parse_signing_keys([good]) == {"k1": KEY}
    with pytest.raises(ValueError, match="key-id:base64-key"):
        parse_signing_keys(["nokey"])
    with pytest.raises(ValueError, match="not base64"):
        parse_signing_keys(["k1:***"])
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        parse_signing_keys(["k1:" + base64.b64encode(b"short").decode()])
