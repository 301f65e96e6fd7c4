"""Customer master matching: before a flow creates a customer in the ERP, it looks for one finance already keyed.

The rules, in order; the first rule that finds anyone decides:

1. **tax number** (VAT/EIN/ABN, compared without spaces, dots, dashes and case);
2. **legal name + country**: the name normalised (case, accents, punctuation and the legal form — GmbH, Ltd,
   Inc., S.A. … — dropped) and the same ISO country (a candidate with no country matches on the name alone);
3. **email domain**: the account's web domain or its billing contact's email domain, never a free-mail one.

One candidate found by rule 1 or 2 is an **exact** match: the flow links it (writes our reference on it) instead
of creating a duplicate. Several candidates, or any found only by email domain (a shared domain is a hint, not an
identity), or one that already carries another number in our look-up field (another of our references, or
finance's own customer number, which linking would replace), is **ambiguous**: the flow waits in a visible
``customer_match`` exception until a person picks one (or says it is a new customer). Nobody found: create.
Pure functions; the adapters only fetch candidates.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from pydantic import BaseModel, Field

from canonical.keys import parse_erp_contact_reference
from canonical.parties import Account

#: legal forms dropped from a name before comparing (lower case, without dots)
LEGAL_FORMS = frozenset({
    "ab", "ag", "as", "asa", "bv", "co", "company", "corp", "corporation", "gmbh", "inc", "incorporated", "kg",
    "kk", "limited", "llc", "llp", "lp", "ltd", "nv", "oy", "oyj", "plc", "pte", "pty", "sa", "sarl", "sas", "sl",
    "spa", "srl", "ug", "ulc", "the", "and", "&",
})
#: email domains anyone can have an address at: never evidence of being the same company
FREE_MAIL = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com", "icloud.com", "me.com",
    "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com",
})


class MatchRule(StrEnum):
    TAX_NUMBER = "tax_number"
    NAME_COUNTRY = "name_country"
    EMAIL_DOMAIN = "email_domain"


class MatchKind(StrEnum):
    NONE = "none"  # nobody like it: create
    EXACT = "exact"  # one, by tax number or name + country: link it
    AMBIGUOUS = "ambiguous"  # ask a person


class CustomerCandidate(BaseModel):
    """A customer record already in the ERP, as the adapter read it."""

    record_id: str
    name: str
    country: str | None = None
    tax_number: str | None = None
    email: str | None = None
    reference: str | None = Field(default=None, description="our reference on it, when it has one")


class CustomerMatch(BaseModel):
    """What the look-up found for one account."""

    kind: MatchKind = MatchKind.NONE
    rule: MatchRule | None = None
    record_id: str | None = Field(default=None, description="the exact match")
    candidates: list[CustomerCandidate] = Field(default_factory=list, description="those found by ``rule``")
    refused: str = Field(default="", description="why the ERP refused the new customer a person asked for (e.g. "
                                                 "a name it already holds): asked again, with this reason")


def normalise_name(name: str) -> str:
    """``"ACME Solutions, GmbH"`` -> ``"acme solutions"``: case, accents, punctuation and legal forms dropped."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = re.sub(r"(?<=\b\w)\.(?=\w\b)", "", text)  # s.a. -> sa, u.k. -> uk
    words = re.sub(r"[^\w&]+", " ", text).split()
    kept = [w for w in words if w not in LEGAL_FORMS]
    return " ".join(kept or words)


def normalise_tax_number(number: str | None) -> str:
    return re.sub(r"[\s.\-/]", "", number or "").upper()


def email_domain(address: str | None) -> str | None:
    if not address or "@" not in address:
        return None
    domain = address.rsplit("@", 1)[1].strip().lower().rstrip(".")
    return domain or None


def account_domains(account: Account, email: str | None) -> set[str]:
    """The web and email domains that may identify the account's company (free-mail ones left out)."""
    domains = {d for d in (_bare(account.domain), email_domain(email)) if d}
    return {d for d in domains if d not in FREE_MAIL}


def _bare(domain: str | None) -> str | None:
    if not domain:
        return None
    text = re.sub(r"^[a-z]+://", "", domain.strip().lower()).split("/", 1)[0]
    return text.removeprefix("www.") or None


def match_customer(account: Account, candidates: list[CustomerCandidate], *, email: str | None = None,
                   reference: str | None = None) -> CustomerMatch:
    """Decide, by the rules of this module, what to do with ``candidates`` for ``account`` (whose reference, when
    given, is ours: a candidate already carrying it is the account itself)."""
    if reference:
        ours = [c for c in candidates if c.reference == reference]
        if len(ours) == 1:
            return CustomerMatch(kind=MatchKind.EXACT, rule=None, record_id=ours[0].record_id, candidates=ours)
    # a record carrying one of our own references belongs to an account our flows already keep (another company,
    # or this company in another legal entity): never a record finance keyed, never a candidate
    candidates = [c for c in candidates if not (c.reference and is_our_reference(c.reference))]
    tax = normalise_tax_number(account.tax_number)
    if tax:
        found = [c for c in candidates if normalise_tax_number(c.tax_number) == tax]
        if found:
            return _decide(MatchRule.TAX_NUMBER, found, reference)
    name = normalise_name(account.name)
    country = (account.country or "").upper()
    if name:
        found = [c for c in candidates if normalise_name(c.name) == name
                 and (not country or not c.country or c.country.upper() == country)]
        if found:
            return _decide(MatchRule.NAME_COUNTRY, found, reference)
    domains = account_domains(account, email)
    if domains:
        found = [c for c in candidates if email_domain(c.email) in domains]
        if found:
            return CustomerMatch(kind=MatchKind.AMBIGUOUS, rule=MatchRule.EMAIL_DOMAIN, candidates=found)
    return CustomerMatch()


def is_our_reference(text: str) -> bool:
    """``<crm>-company-<id>-<entity>`` or ``<billing>-customer-<id>-<entity>``: a reference our flows wrote."""
    return parse_erp_contact_reference(text.replace("-customer-", "-company-", 1)) is not None


def _decide(rule: MatchRule, found: list[CustomerCandidate], reference: str | None) -> CustomerMatch:
    # a record carrying another number in our look-up field (another account of ours, or finance's own number,
    # which the link would replace) is never linked without a person
    if len(found) == 1 and not (found[0].reference and found[0].reference != reference):
        return CustomerMatch(kind=MatchKind.EXACT, rule=rule, record_id=found[0].record_id, candidates=found)
    return CustomerMatch(kind=MatchKind.AMBIGUOUS, rule=rule, candidates=found)


__all__ = ["CustomerCandidate", "CustomerMatch", "MatchKind", "MatchRule", "account_domains", "email_domain",
           "match_customer", "normalise_name", "normalise_tax_number"]
