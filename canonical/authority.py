"""Delegation of authority: who may approve what, as pure rules (no I/O, no clock).

The approver registry lives in settings (``APPROVERS`` as JSON). Amount limits are stated **per currency**
(``{"USD": "25000", "EUR": "23000"}``), with no FX conversion: a limit is a policy figure a controller signs
off in each currency the approver may approve in; a currency missing from an approver's limits is refused
unless the approver is unlimited (``max_amount`` null). The dual-approval threshold is per currency too.

Identities are compared case-insensitively: an approver's ID and e-mail are normalised once
(:func:`normalise_identity`), and either names the same person. :func:`registry_problems` is the start-up
check of a registry (unique people, every dual threshold reachable by two distinct people).

A decision is also *verifiable*: the approvals API (the only holder of the signing key besides the worker)
signs it with an HMAC over one canonical encoding (:func:`approval_message`: JSON with sorted keys, every
string escaped, so no note or ID can make one message read as another) of the key ID, the workflow ID **and
run ID**, the approval request's ID, the decision, the approver, the digest of the terms approved
(:func:`terms_digest`), the note's digest, the token subject, the channel, a nonce and an expiry
(:func:`sign_approval`). The worker checks the signature (:func:`verify_approval`) before any rule is
judged; the workflow's approval gate checks that the proof names its pending request and terms, and
remembers used nonces, so a proof is good for one decision of one request of one run, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, Field, field_validator

from canonical.money import Money, normalise_currency

APPROVAL_MESSAGE_VERSION = "revops-approval-v2"


def normalise_identity(value: str) -> str:
    """An approver ID or e-mail as it is compared: trimmed and case-folded (``Chris@X`` is ``chris@x``)."""
    return value.strip().lower()


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

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        normalised = normalise_identity(value)
        if not normalised:
            raise ValueError("an approver's ID is required")
        return normalised

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalise_identity(value) or None if value is not None else None

    def names(self) -> set[str]:
        """Every identity that means this person (their ID and e-mail, normalised)."""
        return {self.id} | ({self.email} if self.email else set())

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
        """The person an ID or e-mail names, compared case-insensitively."""
        wanted = normalise_identity(approver_id)
        return next((a for a in self.approvers if wanted in a.names()), None)

    def person(self, approver_id: str) -> str:
        """The one ID of the person behind an ID or e-mail (the normalised input when unknown)."""
        found = self.approver(approver_id)
        return found.id if found else normalise_identity(approver_id)


def registry_problems(authority: ApprovalAuthority) -> list[str]:
    """What is wrong with an approver registry, for a refusal at start (empty when it is sound): an ID or
    e-mail naming two entries (one person must not give both halves of a dual approval), a limit that is
    not positive, and a dual-approval threshold fewer than two distinct people can approve above."""
    problems: list[str] = []
    owner: dict[str, str] = {}
    for approver in authority.approvers:
        for name in sorted(approver.names()):
            if name in owner and owner[name] != approver.id:
                problems.append(f"{name!r} names two approvers ({owner[name]!r} and {approver.id!r}): "
                                f"one person, one entry")
            elif name in owner:
                problems.append(f"approver {approver.id!r} is listed twice")
            owner.setdefault(name, approver.id)
        for currency, limit in (approver.max_amount or {}).items():
            if limit <= 0:
                problems.append(f"approver {approver.id!r} has a limit of {limit} {currency}: limits are positive")
        if approver.max_discount_percent is not None and approver.max_discount_percent < 0:
            problems.append(f"approver {approver.id!r} has a negative discount limit")
    for currency, threshold in sorted(authority.dual_approval_above.items()):
        try:
            code = normalise_currency(currency)
        except ValueError:
            problems.append(f"dual-approval threshold in {currency!r}, which is not a currency")
            continue
        able = {a.id for a in authority.approvers
                if a.max_amount is None or (a.max_amount.get(code) is not None and a.max_amount[code] > threshold)}
        if len(able) < 2:
            problems.append(f"above the dual-approval threshold of {threshold} {code} two distinct approvers must "
                            f"approve, but only {len(able)} may approve such an amount"
                            + (f" ({', '.join(sorted(able))})" if able else ""))
    return problems


def refuse_unsound_registry(authority: ApprovalAuthority) -> None:
    """Raise ``ValueError`` naming every problem of :func:`registry_problems` (called at every start)."""
    problems = registry_problems(authority)
    if problems:
        raise ValueError("the approver registry (APPROVERS, APPROVAL_DUAL_ABOVE) is refused: " + "; ".join(problems))


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
    if approver.id in {authority.person(d) for d in decided_by}:
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
def _decimal_text(value: Decimal) -> str:
    """One spelling per value (``100``, ``100.0`` and ``1E+2`` are all ``100``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def terms_digest(facts: ApprovalFacts, amendment_sequence: int | None = None) -> str:
    """The SHA-256 of the terms an approval is about: amount, currency, deepest discount and, for an
    amendment, its sequence; the workflow stores it on the request and the API computes it again from what
    it reads, so a proof signed for other terms is refused."""
    terms: dict[str, object] = {
        "amount": _decimal_text(facts.amount.amount) if facts.amount else None,
        "currency": facts.amount.currency if facts.amount else None,
        "discount_percent": _decimal_text(facts.discount_percent),
        "amendment_sequence": amendment_sequence}
    return hashlib.sha256(_canonical(terms)).hexdigest()


def _canonical(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


class ApprovalProof(BaseModel):
    """The API's signature over one decision of one approval request, and who it authenticated."""

    subject: str = Field(min_length=1, description="the bearer token's `sub`")
    channel: str = Field(min_length=1, description="api, inbox, cli")
    nonce: str = Field(min_length=16, max_length=64)
    expires_at: datetime
    key_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1, description="the run whose request is decided")
    request_id: int = Field(ge=1, description="the approval request's sequence number within the run chain")
    terms_digest: str = Field(min_length=64, max_length=64, description="terms_digest() of what is approved")
    signature: str = Field(min_length=1, description="hex HMAC-SHA256 of approval_message()")


def approval_message(*, workflow_id: str, run_id: str, approver: str, approved: bool, note: str,
                     proof: ApprovalProof) -> bytes:
    """The exact bytes signed: every bound field in one JSON object with sorted keys (strings escaped, no
    separator a value can forge)."""
    expires = proof.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _canonical({
        "v": APPROVAL_MESSAGE_VERSION, "key_id": proof.key_id, "workflow_id": workflow_id, "run_id": run_id,
        "request_id": proof.request_id, "decision": "approve" if approved else "reject",
        "approver": normalise_identity(approver), "terms_digest": proof.terms_digest,
        "note_digest": hashlib.sha256(note.encode("utf-8")).hexdigest(), "subject": normalise_identity(proof.subject),
        "channel": proof.channel, "nonce": proof.nonce, "expires_at": expires})


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


def sign_approval(*, key_id: str, key: bytes, workflow_id: str, run_id: str, request_id: int, terms: str,
                  approver: str, approved: bool, note: str, subject: str, channel: str, nonce: str, now: datetime,
                  ttl: timedelta) -> ApprovalProof:
    """The proof the approvals API attaches to a decision it authenticated and checked (``terms`` is the
    request's :func:`terms_digest`)."""
    unsigned = ApprovalProof(subject=subject, channel=channel, nonce=nonce, expires_at=now + ttl, key_id=key_id,
                             run_id=run_id, request_id=request_id, terms_digest=terms, signature="-")
    message = approval_message(workflow_id=workflow_id, run_id=run_id, approver=approver, approved=approved,
                               note=note, proof=unsigned)
    return unsigned.model_copy(update={"signature": hmac.new(key, message, hashlib.sha256).hexdigest()})


def verify_approval(keys: dict[str, bytes], *, workflow_id: str, run_id: str, approver: str, approved: bool,
                    note: str, proof: ApprovalProof | None, now: datetime) -> str | None:
    """Why the decision's proof is not valid for this workflow run, or ``None`` when it is. The request ID
    and terms digest it names are the approval gate's to compare with the pending request."""
    if proof is None:
        return "the decision carries no signed approval: decide through the approvals API or the finance inbox"
    if proof.run_id != run_id:
        return "the signed approval is for another run of this workflow"
    key = keys.get(proof.key_id)
    if key is None:
        return f"the approval is signed with unknown key {proof.key_id!r}"
    message = approval_message(workflow_id=workflow_id, run_id=run_id, approver=approver, approved=approved,
                               note=note, proof=proof)
    expected = hmac.new(key, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, proof.signature):
        return "the approval's signature does not match the decision"
    if now > proof.expires_at:
        return "the signed approval has expired; decide again"
    if normalise_identity(proof.subject) != normalise_identity(approver):
        return "the approval was signed for another person"
    return None
