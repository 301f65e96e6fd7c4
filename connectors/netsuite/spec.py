"""NetSuite as an ERP: its descriptor and its own settings (``NETSUITE_*``).

Two ways in: Token-Based Authentication (``NETSUITE_AUTH=tba``, the default) or OAuth 2.0 machine-to-machine
(``NETSUITE_AUTH=oauth2``: the client credentials flow with a JWT assertion signed by the private half of the
certificate uploaded in NetSuite's "OAuth 2.0 Client Credentials (M2M) Setup"; ``certificate_id`` is the ID
NetSuite gives that upload). The private key's default is a **published, test-only PEM** (RSA 2048, generated
once and committed); the emulator trusts its public half under the default certificate ID. A deployment sets
``NETSUITE_PRIVATE_KEY`` (the PEM itself, or a path to it) to its own key: the shipped one opens only the sandbox.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import NUMERIC_ID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


#: the sandbox's RSA private key for OAuth 2.0 M2M: published, test-only (see the module docstring)
SANDBOX_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCu/fJrB5/0NnEf
RU6gG1XZ2JxDZIu+8ktSD8wjzPLjeDuqWkxDzYzS09FYOGUqNFtYSGkKbgYwCU6f
J5UlwjB5Z6ftPfn+gSwhkXabkowKhTyizspLVDlXwHF+tF8BeH4uI8p85D/nh3w6
KqTi4uIkXXyPr5Ltedt6YmlDScQnh6Zr4AKFV2I8z3uB0k92p/kvrS4iQDBOE7qY
DFcEvMbXZV8wL+h+gO4GoiATpQs2ptuA6+VywtQmJrhY4a9kJNH8vlUT5PeYRtPM
ihULjdV8LV+EDEmE5eWI5tNoc8CGy+TXYDCF0ylCBtKDsVKo4MYSCjMx/cQG+Anl
48fP5DhtAgMBAAECggEAKtN9i5IfJF5aiwOkPWzTMvBfNeMajE2x/1BcbnqPCvp2
57cXqRRaHZK3TjbnE1Ai9tUp1+KbYxA0DKFcUBRZVqz2nQoo749fZIu8ElDoMv7u
mw2u1oazTfWMES1Ffw+lGdeqi6w0s44l6fpbxicunyW+AVA/zhyfiTEif9RCzEVv
r8A16o+01hPiRRhpFefQqP5rPvUdsNUQXwag9NlvTSIYdNKDzit9YPBCObQvom7n
25puX3qOAyHN9N7ydKsCjlWK5dTBHYDZmIqrd5TRzIUlvqAFj2nkPnWxtPtTdsql
3Y3rEQCH6JAa4bhAvnNsmvsk1jMFf9OjM9oxaRC+BQKBgQDihOFl3yNWkTDB+8FR
iCn+cZGn4VYJi/zWfVixrk38wjvY4Ac3gRe/hRGTZGOKGeapVmwtF8J8ZT5Pvq+R
iUFwil9NCaN0/Jp8g7vW7ErIhU6+Cv+o/KvZwBhi3D+a7HKId3dqPQtr5z0mnKnq
hsZf2LI9xLzb+Za3XewvZLae8wKBgQDFxEv7C/ouJllumkc5jqW2q+0zlcYmFq/o
JBpS6CrTG4pRvRPyqKswIJdAJtiF18Y1afi4uVk4598uglXhVjI5kglVJGPHjlB3
oZvioQ2PFvfggcB5Rt/zfGrnUcDuviXkS80/ahDHcMguFX1R53WZoNLIQFt0XmFq
7YV0EjVjHwKBgEpLWP4npJiFAF/vaaWLKnLY3vQYFTcGYgQbkpacW9nV/vkP6W4L
+jUHuQ8FsxwdiKjrvok/rLtOHZTcLwtl4D/AMqe6zJDXNPg34MkKMTD5gC0WwGm1
jcvalGUAZiAzAxG9VT5UDUXzzvu2EIjqcXAIS9W0jFj90LANrySQPNF/AoGAfMa1
/aX36gguItdaGtmCeneNCB/2Te/AeqHUrfxnkJxur9Ww8Ug0AgB+DW606/VQzECZ
OctPnNTG/mwjTTH6LFKUatCz16NV57TiSqG8kUw3hsG2s43hHJmiRWJSbQ8xjxG4
ZMtB3OOumUzbrcJwc0aB1vCsAwbNRg6oRax7XJcCgYEAxXAzFixQUaABPjxc6+Lf
A8210vI683FL7mou6NZ9Z0A8p3sBwsiz3o/XU7pOwNjUdujwq7Yk5pCjxnuR+yGs
0vsaohlx0xpBGkvk0Zo4Pn8bhSSQmU+p1g4NrIJisT8fs76YVIwssXaA2zV/uyEM
JwsVITmUQgdoxDVuzf/25sc=
-----END PRIVATE KEY-----

"""


class NetSuiteSettings(VendorSettings):
    """One NetSuite account reached with TBA or OAuth 2.0 M2M; the sandbox emulator's values by default.

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
    auth: Literal["tba", "oauth2"] = Field(default="tba", description="tba: Token-Based Authentication; oauth2: "
                                           "OAuth 2.0 client credentials (machine to machine)")
    client_id: str = Field(default="sandbox-netsuite-oauth2-client-id",
                           description="OAuth 2.0: the integration record's client ID (the assertion's iss)")
    certificate_id: str = Field(default="sandbox-netsuite-certificate-id",
                                description="OAuth 2.0: the certificate ID of the M2M mapping (the assertion's kid)")
    private_key: str = Field(default=SANDBOX_PRIVATE_KEY, repr=False,
                             description="OAuth 2.0: the certificate's RSA private key, PEM text or a path to it")
    scopes: str = Field(default="rest_webservices", description="OAuth 2.0: comma-separated scopes "
                        "(rest_webservices, restlets, suite_analytics)")
    assertion_algorithm: Literal["PS256", "PS384", "PS512", "RS256"] = "PS256"
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

    def private_key_pem(self) -> str:
        """The private key as PEM text: ``private_key`` itself, or the file it names."""
        if self.private_key.lstrip().startswith("-----BEGIN"):
            return self.private_key
        return Path(self.private_key).expanduser().read_text(encoding="utf-8")


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

__all__ = ["SANDBOX_PRIVATE_KEY", "SPEC", "NetSuiteSettings"]
