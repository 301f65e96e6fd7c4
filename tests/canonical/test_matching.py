"""Customer master matching, as finance would judge it: the records a controller keyed into the ERP by hand, and
what the integration must do with each (link, ask, or create) — never a duplicate."""

from __future__ import annotations

from canonical.matching import (
    CustomerCandidate,
    MatchKind,
    MatchRule,
    match_customer,
    normalise_name,
    normalise_tax_number,
)
from canonical.parties import Account

ACME_UK = CustomerCandidate(record_id="c-1", name="ACME Solutions Ltd.", country="GB", tax_number="GB 123 4567 89")
ACME_DE = CustomerCandidate(record_id="c-2", name="Acme Solutions GmbH", country="DE", email="ap@acme.example")
GLOBEX = CustomerCandidate(record_id="c-3", name="Globex", country="US", email="billing@globex.example")


def test_names_compare_without_case_accents_punctuation_or_legal_form() -> None:
    assert normalise_name("ACME Solutions, Ltd.") == normalise_name("Acme Solutions Limited") == "acme solutions"
    assert normalise_name("Société Générale S.A.") == "societe generale"
    assert normalise_name("The Ltd") == "the ltd"  # a name made only of legal words is kept whole
    assert normalise_tax_number("gb-123.4567 89") == "GB123456789"


def test_a_tax_number_match_is_exact_whatever_the_name() -> None:
    account = Account(name="Acme UK Trading", country="GB", tax_number="GB123456789")
    match = match_customer(account, [ACME_UK, ACME_DE, GLOBEX])
    assert (match.kind, match.rule, match.record_id) == (MatchKind.EXACT, MatchRule.TAX_NUMBER, "c-1")


def test_legal_name_and_country_match_exactly_once() -> None:
    account = Account(name="Acme Solutions Limited", country="GB")
    match = match_customer(account, [ACME_UK, ACME_DE, GLOBEX])
    assert (match.kind, match.rule, match.record_id) == (MatchKind.EXACT, MatchRule.NAME_COUNTRY, "c-1")


def test_the_same_name_in_two_countries_for_an_account_without_country_asks_a_person() -> None:
    match = match_customer(Account(name="Acme Solutions"), [ACME_UK, ACME_DE, GLOBEX])
    assert match.kind is MatchKind.AMBIGUOUS and match.record_id is None
    assert {c.record_id for c in match.candidates} == {"c-1", "c-2"}


def test_an_email_domain_alone_is_a_hint_for_a_person_and_free_mail_is_no_hint() -> None:
    account = Account(name="Globex Corporation International", country="US", domain="globex.example")
    hint = match_customer(account, [ACME_UK, GLOBEX])
    assert (hint.kind, hint.rule, [c.record_id for c in hint.candidates]) == (
        MatchKind.AMBIGUOUS, MatchRule.EMAIL_DOMAIN, ["c-3"])
    freelancer = CustomerCandidate(record_id="c-9", name="Jo Bloggs Consulting", email="jo@gmail.com")
    assert match_customer(Account(name="Someone Else"), [freelancer], email="else@gmail.com").kind is MatchKind.NONE


def test_a_record_already_numbered_by_someone_is_never_linked_silently() -> None:
    numbered = ACME_UK.model_copy(update={"reference": "C-00042"})  # finance's own customer number
    match = match_customer(Account(name="Acme Solutions Ltd", country="GB"), [numbered],
                           reference="crm-company-7-UK01")
    assert match.kind is MatchKind.AMBIGUOUS and [c.record_id for c in match.candidates] == ["c-1"]


def test_a_record_carrying_our_own_reference_is_the_account_itself() -> None:
    ours = GLOBEX.model_copy(update={"reference": "crm-company-7-US01", "name": "Globex (renamed)"})
    match = match_customer(Account(name="Globex", country="US"), [ours, GLOBEX.model_copy(update={"record_id": "x"})],
                           reference="crm-company-7-US01")
    assert (match.kind, match.record_id) == (MatchKind.EXACT, "c-3")


def test_nobody_like_it_means_create() -> None:
    assert match_customer(Account(name="Initech", country="US"), [ACME_UK, ACME_DE, GLOBEX]).kind is MatchKind.NONE


def test_records_carrying_our_own_references_are_no_candidates() -> None:
    """The same company provisioned in another legal entity, or another company of ours with the same name: our
    flows keep those; they are never records finance keyed, so never asked about."""
    elsewhere = CustomerCandidate(record_id="c-7", name="Fake Co", country="US", reference="hubspot-company-18-EU01")
    billing = CustomerCandidate(record_id="c-8", name="Fake Co", country="US", reference="stripe-customer-cus_1-US01")
    match = match_customer(Account(name="Fake Co", country="US"), [elsewhere, billing],
                           reference="hubspot-company-18-US01")
    assert match.kind is MatchKind.NONE
