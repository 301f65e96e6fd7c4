"""The search attributes our workflows set (DESIGN.md): what operators filter the Temporal UI by.
Registered on the server by runtime/attributes.py. No PII or prices beyond what DESIGN.md names."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

BUSINESS_KEYS = SearchAttributeKey.for_keyword_list("BusinessKeys")
STAGE = SearchAttributeKey.for_keyword("Stage")
EXCEPTION_KIND = SearchAttributeKey.for_keyword("ExceptionKind")
LEGAL_ENTITY = SearchAttributeKey.for_keyword("LegalEntity")
#: the deal's order of magnitude (canonical.bands), never its amount: search attributes are plaintext
DEAL_SIZE = SearchAttributeKey.for_keyword("DealSize")

SEARCH_ATTRIBUTES: list[SearchAttributeKey] = [  # type: ignore[type-arg]
    BUSINESS_KEYS, STAGE, EXCEPTION_KIND, LEGAL_ENTITY, DEAL_SIZE,
]
