"""Xero as an ERP: its descriptor and its own settings (``XERO_*``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import UUID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings
from connectors.xero.mapping import MONEY_DECIMALS

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


class XeroSettings(VendorSettings):
    """A Xero custom connection (client credentials); the sandbox emulator's by default."""

    model_config = SettingsConfigDict(env_prefix="XERO_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "xero"

    base_url: str = "http://127.0.0.1:8104"
    sandbox_port: int = 8104
    client_id: str = "sandbox-xero-client"
    client_secret: str = "sandbox-xero-secret"
    token_url: str | None = Field(default=None, description="defaults to <base_url>/connect/token")
    webhook_key: str = "sandbox-xero-webhook-key"
    requests_per_second: float = Field(default=0.9, description="bulk reads per tenant: Xero allows 60 a minute")

    @property
    def token_endpoint(self) -> str:
        return self.token_url or f"{self.base_url.rstrip('/')}/connect/token"

    def vendor_urls(self) -> list[str]:
        return [self.base_url, self.token_endpoint]


def _adapter(settings: Settings, config: XeroSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.xero.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: XeroSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.xero.webhooks import XeroWebhooks

    return XeroWebhooks(webhook_key=config.webhook_key)


def _fields() -> list[Any]:
    from connectors.xero.fields import FIELDS

    return FIELDS


SPEC = AdapterSpec(
    role=SystemRole.ERP, name="xero", display_name="Xero", settings_class=XeroSettings,
    adapter=_adapter, receiver=_receiver,
    object_kinds=("contact", "project", "invoice", "payment", "credit_note"),
    id_patterns=(IdPattern("contact", UUID), IdPattern("project", UUID), IdPattern("invoice", UUID),
                 IdPattern("payment", UUID), IdPattern("credit_note", UUID),
                 IdPattern("invoice", re.compile(r"INV-[0-9]{1,10}"))),
    rate_limits=RateLimits(reads_per_second=XeroSettings.model_fields["requests_per_second"].default,
                           writes_per_second=0.9, full_read_hours=2.0),
    wire_tables=_fields, emulator=Emulator(module="sandbox.xero.app", acts="connectors.xero.acts"),
    money_decimals=MONEY_DECIMALS,
)

__all__ = ["SPEC", "XeroSettings"]
