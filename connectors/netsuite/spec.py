"""NetSuite as an ERP: its descriptor and its own settings (``NETSUITE_*``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import NUMERIC_ID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


class NetSuiteSettings(VendorSettings):
    """One NetSuite account reached with Token-Based Authentication; the sandbox emulator's values by default.

    A legal entity on NetSuite names its subsidiary's internal ID as its ``erp_tenant_id``."""

    model_config = SettingsConfigDict(env_prefix="NETSUITE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "netsuite"

    base_url: str = Field(default="http://127.0.0.1:8108",
                          description="https://<account-id>.suitetalk.api.netsuite.com for a real account")
    sandbox_port: int = 8108
    account_id: str = Field(default="1234567_SB1", description="the account ID: the TBA realm")
    consumer_key: str = "sandbox-netsuite-consumer-key"
    consumer_secret: str = "sandbox-netsuite-consumer-secret"
    token_id: str = "sandbox-netsuite-token-id"
    token_secret: str = "sandbox-netsuite-token-secret"
    subsidiary_id: str = Field(default="1", description="the parent company's subsidiary")
    base_currency: str = "USD"
    item_id: str = Field(default="1", description="the service item invoice and credit memo lines are posted on")
    tax_item_id: str = Field(default="2", description="the item tax is posted on (one line per invoice)")
    currency_ids: dict[str, str] = Field(default_factory=lambda: {"USD": "1", "GBP": "2", "CAD": "3", "EUR": "4"},
                                         description="ISO code -> currency internal ID")
    terms_ids: dict[int, str] = Field(default_factory=lambda: {15: "1", 30: "2", 60: "3", 0: "4"},
                                      description="payment terms in days -> terms internal ID")
    payment_account_id: str | None = Field(default=None, description="the bank account payments go to; none: "
                                           "undeposited funds")
    requests_per_second: float = Field(default=5.0, description="requests per second per account")
    concurrency: int = Field(default=5, ge=1, description="requests in flight per account (the account's limit)")


def _adapter(settings: Settings, config: NetSuiteSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.netsuite.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _fields() -> list[Any]:
    from connectors.netsuite.fields import FIELDS

    return FIELDS


SPEC = AdapterSpec(
    role=SystemRole.ERP, name="netsuite", display_name="NetSuite", settings_class=NetSuiteSettings,
    adapter=_adapter,
    object_kinds=("contact", "project", "invoice", "payment", "credit_note"),  # the flows' names (a customer: contact)
    id_patterns=(IdPattern("contact", NUMERIC_ID), IdPattern("project", NUMERIC_ID),
                 IdPattern("invoice", NUMERIC_ID), IdPattern("payment", NUMERIC_ID),
                 IdPattern("credit_note", NUMERIC_ID), IdPattern("invoice", re.compile(r"INV[0-9]{1,10}"))),
    rate_limits=RateLimits(reads_per_second=NetSuiteSettings.model_fields["requests_per_second"].default,
                           writes_per_second=NetSuiteSettings.model_fields["requests_per_second"].default,
                           full_read_hours=2.0),
    wire_tables=_fields, emulator=Emulator(module="sandbox.netsuite.app", acts="connectors.netsuite.acts"),
    money_decimals=2,
)

__all__ = ["SPEC", "NetSuiteSettings"]
