"""The search attributes every workflow sets (DESIGN.md), registered by the dev-server start-up
and by the test environments."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
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


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    kinds = {"KEYWORD_LIST": "KeywordList", "KEYWORD": "Keyword", "DOUBLE": "Double"}
    return [arg for key in SEARCH_ATTRIBUTES
            for arg in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")]


async def register_search_attributes(client: Client) -> None:
    """Register our attributes on a server that was not started with them (time-skipping server, a cluster)."""
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES}))  # type: ignore[misc]
