"""HubSpot as the CRM: its descriptor and its own settings (``HUBSPOT_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import NUMERIC_ID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


class HubSpotSettings(VendorSettings):
    """A HubSpot private app (access token; client secret signs its webhooks); the sandbox's by default."""

    model_config = SettingsConfigDict(env_prefix="HUBSPOT_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "hubspot"

    base_url: str = "http://127.0.0.1:8101"
    sandbox_port: int = 8101
    access_token: str = "pat-sandbox-hubspot"
    client_secret: str = "sandbox-hubspot-client-secret"
    approval_stage: str = Field(default="contractsent", description="the deal stage that asks for approval")
    closed_won_stage: str = "closedwon"
    requests_per_second: float = Field(default=8, description="bulk reads: HubSpot allows 100 per 10 s")
    search_requests_per_second: float = Field(default=4.0, description="the search API allows 5/s")


def _adapter(settings: Settings, config: HubSpotSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.hubspot.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: HubSpotSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.hubspot.webhooks import from_settings

    return from_settings(settings, config=config)


def _fields() -> list[Any]:
    from connectors.hubspot.fields import FIELDS

    return FIELDS


_DEFAULTS = HubSpotSettings.model_fields
SPEC = AdapterSpec(
    role=SystemRole.CRM, name="hubspot", display_name="HubSpot", settings_class=HubSpotSettings,
    adapter=_adapter, receiver=_receiver,
    object_kinds=("deal", "company", "contact", "line_item"),
    id_patterns=(IdPattern("deal", NUMERIC_ID), IdPattern("company", NUMERIC_ID)),
    rate_limits=RateLimits(reads_per_second=_DEFAULTS["requests_per_second"].default,
                           search_per_second=_DEFAULTS["search_requests_per_second"].default),
    wire_tables=_fields, emulator=Emulator(module="sandbox.hubspot.app", acts="connectors.hubspot.acts"),
)

__all__ = ["SPEC", "HubSpotSettings"]
