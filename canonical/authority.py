"""Delegation of authority: who may approve what, as pure rules (no I/O, no clock).

The approver registry lives in settings (``APPROVERS`` as JSON). Amount limits are stated **per currency**
(``{"USD": "25000", "EUR": "23000"}``), with no FX conversion: a limit is a policy figure a controller signs
off in each currency the approver may approve in; a currency missing from an approver's limits is refused
unless the approver is unlimited (``max_amount`` null). The dual-approval threshold is per currency too.

A decision is also *verifiable*: the approvals API (the only holder of the signing key besides the worker)
signs it with an HMAC over the workflow ID, the approver, the decision, the note's hash, the token subject,
the channel, a nonce and an expiry (:func:`sign_approval`); the worker checks it (:func:`verify_approval`)
before any rule is judged, so a raw ``temporal workflow update`` that names any approver it likes is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from canonical.money import Money, normalise_currency


class Approver(BaseModel):
    """One person allowed to approve, with the limits of their delegation."""

    id: str = Field(min_length=1, description="stable ID, the `sub` of their bearer tokens (e.g. their email)")
    name: str = Field(min_length=1)
    role: str = Field(min_length=1, description="sales_ops, finance_manager, cfo ...")
    max_amount: dict[str, Decimal] | None = Field(default=None, description="currency -> highest deal total; "
                                                                              "null: no amount limit")
    max_discount_percent: Decimal | None = Field(default=None, description="null: no discount limit")
    entities: list[str] = Field(default_factory=list, description="legal entity codes; empty: every entity")
    crm_owner_ids: list[str] = Field(default_factory=list, description="their CRM owner IDs: deals they "
                                                                         "own are not theirs to approve")
    email: str | None = None

    @field_validator("max_amount")
    @classmethod
    def _currencies(cls, value: dict[str, Decimal] | None) -> dict[str, Decimal] | None:
        return None if value is None else {normalise_currency(k): v for k, v in value.items()}


class ApprovalAuthority(BaseModel):
    """The registry and the dual-approval threshold, handed to workflows by their config activity."""

    approvers: list[Approver] = Field(default_factory=list)
    dual_approval_above: dict[str, Decimal] = Field(default_factory=dict, description="currency -> amount above "
                                                                                       "which two approvers decide")

    def approver(self, approver_id: str) -> Approver | None:
        return next((a for a in self.approvers if a.id == approver_id), None)


class ApprovalFacts(BaseModel):
    """What a decision is judged against: the amount at stake, the deepest discount, entity and owner."""

    amount: Money | None = None
    discount_percent: Decimal = Decimal(0)
    legal_entity: str = ""
    owner_id: str | None = Field(default=None, description="the deal's CRM owner")


def approvals_required(authority: ApprovalAuthority, facts: ApprovalFacts) -> int:
    """Two distinct approvers above the currency's dual-approval threshold, else one."""
    if facts.amount is None:
        return 1
    threshold = authority.dual_approval_above.get(facts.amount.currency)
    return 2 if threshold is not None and facts.amount.amount > threshold else 1


def authority_refusal(authority: ApprovalAuthority, facts: ApprovalFacts, approver_id: str,
                      decided_by: list[str]) -> str | None:
    """Why ``approver_id`` may not decide this approval, or ``None`` when they may."""
    approver = authority.approver(approver_id)
    if approver is None:
        return f"{approver_id!r} is not a registered approver"
    if approver_id in decided_by:
        return f"{approver.name} has already decided this approval; a second approver must decide"
    if facts.owner_id and facts.owner_id in approver.crm_owner_ids:
        return f"{approver.name} owns this deal and may not approve it (segregation of duties)"
    if approver.entities and facts.legal_entity and facts.legal_entity not in approver.entities:
        return f"{approver.name} may not approve for legal entity {facts.legal_entity}"
    if approver.max_discount_percent is not None and facts.discount_percent > approver.max_discount_percent:
        return (f"discount {facts.discount_percent}% is over {approver.name}'s limit of "
                f"{approver.max_discount_percent}% ({approver.role})")
    if approver.max_amount is not None and facts.amount is not None:
        limit = approver.max_amount.get(facts.amount.currency)
        if limit is None:
            return f"{approver.name} has no approval limit in {facts.amount.currency}"
        if facts.amount.amount > limit:
            return f"amount {facts.amount} is over {approver.name}'s limit of {limit} {facts.amount.currency} " \
                   f"({approver.role})"
    return None


# -- the verifiable approval -----------------------------------------------------------------------
class ApprovalProof(BaseModel):
    """The API's signature over one decision, and who it authenticated."""

    subject: str = Field(min_length=1, description="the bearer token's `sub`")
    channel: str = Field(min_length=1, description="api, inbox, cli")
    nonce: str = Field(min_length=8)
    expires_at: datetime
    key_id: str = Field(min_length=1)
    signature: str = Field(min_length=1, description="hex HMAC-SHA256")


def parse_signing_keys(entries: list[str]) -> dict[str, bytes]:
    """``key-id:base64-key`` pairs (the first signs, all verify) as a dict; refuses malformed or short keys."""
    keys: dict[str, bytes] = {}
    for entry in entries:
        key_id, sep, encoded = entry.partition(":")
        if not sep or not key_id:
            raise ValueError("an approval signing key is written key-id:base64-key")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"approval signing key {key_id!r} is not base64") from exc
        if len(key) < 32:
            raise ValueError(f"approval signing key {key_id!r} is shorter than 32 bytes")
        keys[key_id] = key
    return keys


def _message(workflow_id: str, approver: str, approved: bool, note: str, proof: ApprovalProof) -> bytes:
    note_hash = hashlib.sha256(note.encode("utf-8")).hexdigest()
    parts = ["revops-approval-v1", workflow_id, approver, "approve" if approved else "reject", note_hash,
             proof.subject, proof.channel, proof.nonce, proof.expires_at.isoformat(), proof.key_id]
    return "\n".join(parts).encode("utf-8")


def sign_approval(*, key_id: str, key: bytes, workflow_id: str, approver: str, approved: bool, note: str,
                  subject: str, channel: str, nonce: str, now: datetime, ttl: timedelta) -> ApprovalProof:
    """The proof the approvals API attaches to a decision it authenticated."""
    unsigned = ApprovalProof(subject=subject, channel=channel, nonce=nonce, expires_at=now + ttl, key_id=key_id,
                             signature="-")
    digest = hmac.new(key, _message(workflow_id, approver, approved, note, unsigned), hashlib.sha256).hexdigest()
    return unsigned.model_copy(update={"signature": digest})


def verify_approval(keys: dict[str, bytes], *, workflow_id: str, approver: str, approved: bool, note: str,
                    proof: ApprovalProof | None, now: datetime) -> str | None:
    """Why the decision's proof is not valid, or ``None`` when it is."""
    if proof is None:
        return "the decision carries no signed approval: decide through the approvals API or the finance inbox"
    key = keys.get(proof.key_id)
    if key is None:
        return f"the approval is signed with unknown key {proof.key_id!r}"
    expected = hmac.new(key, _message(workflow_id, approver, approved, note, proof), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, proof.signature):
        return "the approval's signature does not match the decision"
    if now > proof.expires_at:
        return "the signed approval has expired; decide again"
    if proof.subject != approver:
        return "the approval was signed for another person"
    return None
