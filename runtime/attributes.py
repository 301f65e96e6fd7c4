"""Registration of the workflows' search attributes (workflows/attributes.py) on a server: by the dev-server
start-up and by the test environments."""

from __future__ import annotations

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client

from workflows.attributes import (  # noqa: F401 (the keys, re-exported for callers of the registration)
    BUSINESS_KEYS,
    DEAL_SIZE,
    EXCEPTION_KIND,
    LEGAL_ENTITY,
    SEARCH_ATTRIBUTES,
    STAGE,
)


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
