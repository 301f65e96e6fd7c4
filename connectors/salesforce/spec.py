"""Salesforce as the CRM: its descriptor and its own settings (``SALESFORCE_*``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.salesforce.ids import to_18
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


class SalesforceSettings(VendorSettings):
    """A Salesforce org reached through a connected app; the sandbox emulator's org by default.

    Authentication is OAuth 2.0: the client-credentials flow with the connected app's consumer key and secret
    (``client_id``/``client_secret``), or, when ``jwt_private_key`` is set, the JWT bearer flow as
    ``jwt_username``, signed with that RSA key. Salesforce trusts the key through the certificate uploaded to the
    connected app; the emulator through ``POST /_sandbox/connected-app/keys`` (its public key in PEM).
    """

    model_config = SettingsConfigDict(env_prefix="SALESFORCE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "salesforce"

    base_url: str = Field(default="http://127.0.0.1:8106", description="the org's My Domain (instance) URL")
    sandbox_port: int = 8106
    api_version: str = Field(default="v60.0", description="the REST API version every path pins")
    client_id: str = Field(default="3MVG9sandboxRevopsConnectedApp", description="the connected app's consumer key")
    client_secret: str = Field(default="sandbox-salesforce-consumer-secret")
    org_id: str = Field(default="00D000000000001EAA", description="the organisation ID Outbound Messages carry")
    jwt_username: str = Field(default="integration@revops.sandbox", description="the run-as user of the JWT flow")
    jwt_private_key: str | None = Field(default=None, description="PEM RSA key: use the JWT bearer flow")
    jwt_audience: str = Field(default="https://test.salesforce.com",
                              description="login.salesforce.com for production, test.salesforce.com for sandboxes")
    approval_stage: str = Field(default="Negotiation/Review", description="the stage that asks for approval")
    closed_won_stage: str = "Closed Won"
    external_id_field: str = Field(default="Revops_External_Ref__c",
                                   description="the Account external-ID field companies are upserted by")
    outbound_secret: str = Field(default="sandbox-salesforce-outbound-secret",
                                 description="shared secret in the Outbound Message endpoint URL's query")
    outbound_secret_param: str = Field(default="revops_token",
                                       description="the query parameter of the endpoint URL carrying the secret")
    requests_per_second: float = Field(default=5.0, description="bulk reads; the org's daily API allowance is "
                                       "watched through Sforce-Limit-Info")
    limit_headroom: float = Field(default=0.8, ge=0, le=1,
                                  description="share of the daily API allowance after which every call is paced")


def _adapter(settings: Settings, config: SalesforceSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.salesforce.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: SalesforceSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.salesforce.webhooks import from_settings

    return from_settings(settings, config=config)


def _fields() -> list[Any]:
    from connectors.salesforce.fields import FIELDS

    return FIELDS


def _with_prefix(prefix: str) -> re.Pattern[str]:
    """A 15- or 18-character record ID with the object's key prefix."""
    return re.compile(rf"{prefix}[a-zA-Z0-9]{{12}}(?:[A-Z0-5]{{3}})?")


def _id18(bare_id: str) -> str:
    """The 18-character form of a 15- or 18-character ID; anything else as given (the adapter refuses it)."""
    try:
        return to_18(bare_id)
    except ValueError:
        return bare_id


_DEFAULTS = SalesforceSettings.model_fields
SPEC = AdapterSpec(
    role=SystemRole.CRM, name="salesforce", display_name="Salesforce", settings_class=SalesforceSettings,
    adapter=_adapter, receiver=_receiver,
    # the flows' words for the objects (an Opportunity is the deal, an Account the company), as for every CRM; a
    # record ID's key prefix names its object (006 Opportunity, 001 Account, 003 Contact, 00k line item), and only
    # an ID of Salesforce's form is taken for one (a GUID that starts with 001 is not an Account)
    object_kinds=("deal", "company", "contact", "line_item"),
    id_patterns=tuple(IdPattern(kind, _with_prefix(prefix)) for prefix, kind in (
        ("006", "deal"), ("001", "company"), ("003", "contact"), ("00k", "line_item"))),
    rate_limits=RateLimits(reads_per_second=_DEFAULTS["requests_per_second"].default,
                           search_per_second=_DEFAULTS["requests_per_second"].default),
    wire_tables=_fields, emulator=Emulator(module="sandbox.salesforce.app", acts="connectors.salesforce.acts"),
    normalise_id=_id18,
)

__all__ = ["SPEC", "SalesforceSettings"]
