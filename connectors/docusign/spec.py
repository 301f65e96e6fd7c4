"""DocuSign eSignature as the CLM: its descriptor and its own settings (``DOCUSIGN_*``).

The defaults are the sandbox's (``sandbox/docusign``): an integration key, the user it impersonates, the
account, and an RSA key pair for the JWT grant. The private key is a **published, test-only PEM shipped as the
default** (RSA 2048, generated once and committed: RSA key generation cannot be made deterministic from a seed
with the libraries we use); the emulator trusts its public half as the integration key's registered key. A
deployment sets ``DOCUSIGN_PRIVATE_KEY`` to its own key; the shipped one opens nothing but the sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import UUID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings

#: the sandbox's RSA private key for the JWT grant: published, test-only (see the module docstring)
SANDBOX_PRIVATE_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAuzPJ4yqKW5uviRiRdlkie3cyTfBILSlmPdRma48pOcYmcncV
eAzmru+Vsiu+Dfk5hJlQ62DgUvombwAtu60uruiVMz3cKb3mJR+fecxw8ADfsazQ
ZM/buZ28wOzprDW8NoJLxwNXRYXFquViAWB+Cd43thAkx9Vs4Sdq8PlP7FgjY9Ni
j2Sc+kpVf8dGEvIkw8hEDhgRCla/FVvUoxke8QEOhHdWK/aDHCEUQkTKW/qvdObz
DLkUcdC6VUsglRtoOFIGhafDt3P/ZcfNxAJK945jNGFchc4pOx/IfXWpXuOfKMip
uEU6pnfhKRVlLwKSITiUMFY6JqItzM0TFy2H4wIDAQABAoIBAENSahG8XDp6oCN1
BubhQkHViW028rXvE/o7VsPqnaBNzsjOY5WjShhyR8rl6TjcPl+dxViIo9Oja0vy
6/941feH5BQj9He8d7Y1C6SBLcJaBhg+9kiy6al0fQuCh7xrLK8Lp5W/8VQquf3t
9RNasKj61d0vLBMDgV7tTouvlRsArpqJNvWSrz/uPC9xDwhhS8Qz7ABN2abFFHgv
Wno1/XkibweOi4iF2PyvPyi6yJwtF07CZ9FJyd5BQbI8YmevhMHHVlxCxZoO3sfV
xWh4C96VDiw4N8Ct3ICh/a1gkjziQaMT8dfhVS7meohvwv7paKsuV79wm1CvfHH3
GA6hGnkCgYEA+V3dbxMT5a9Dav8QSKhOcRohMIbdVYzOzkJWXg3bMGSOIFDBs0La
cQdd+/jPxE3qXHeWwkyc58W7Y8jFL+KRsqsViKRLk1zwGvaniU3UFhx+Bm/+mDRF
1zG4rI/vzpuz9eIMAWd5HMKAXS3Dggv5i5ZZSZknXM343WHB6asWP5sCgYEAwC6Y
6FwecBult3BWdyWsX5zncovR+YhUqgzj7NeBcTue50Ac8YXzwD3JAAK/FQt8v5bG
KUql0MTK/nP++/zXB9gVwwxVgT0tZ99UWQ2lQVh3TGD+ouAqP57PHUgU6+n5apll
QfLyuC6aYACeB8GM3JZSE2tr/M4IS4qpjlf6cVkCgYBnpr2JEuv9V8l1KwowuUzJ
tGvBSP2tNrcrguV1eNr4FYQCKK8q/QnhW4eUWcq6tQxKXSccIk5CBK2sf2J/UfTv
yC9OOcR0P3hKLOZcqy4R9svnjxvLVkcFeNRjXfz26z91X/1PhBwSeUJz+LbAUovq
mpcIgZGcAL2F/8FjiEraKwKBgHFAxJFh//n3AQCKLhpG1D8AOxCwvwu7QJF5yTPA
iCKPjQQgLy5RzyRCBNqBw9OGEnzhQGQC/pZ58lpjRyd+h8WynJh2A0mHIOPuo0lb
lkBc/ui+3DBlw9/8GXfbC6E/H+GnBhoILutFY2oh0v8lG3q/Bx00l83CKPdDfspI
pGj5AoGAKclwPOTkTPMBzAyQ1W6saMdQ5OOe6BJF71ZPA94HXkkiiNgSNTzOEoSV
Lb2yYHVZVoRTNW7Us0eYyQ3p8p897jHC3t9x8uE8LFc60AOgcLescrxoUmuDVaZF
hYZKrqpQCAv6gxqGkq91Hsotc1YWWjk7jJzzEVZ17Yddxbttsyw=
-----END RSA PRIVATE KEY-----
"""


class DocuSignSettings(VendorSettings):
    """A DocuSign integration (JWT grant impersonating ``user_id`` in ``account_id``); the sandbox's by default.

    ``base_url`` is the account server (``/oauth/token``, ``/oauth/userinfo``); the REST API's base URI comes
    from userinfo, as DocuSign documents. Envelopes are sent from ``template_id``, whose signer role is
    ``signer_role``; the contract terms travel as text tabs whose labels are
    :data:`connectors.docusign.mapping.TERM_TABS`.
    """

    model_config = SettingsConfigDict(env_prefix="DOCUSIGN_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "docusign"

    base_url: str = "http://127.0.0.1:8107"
    sandbox_port: int = 8107
    integration_key: str = Field(default="8ef79aaa-32a4-44d5-a8ab-35ceb5c6e7f8",
                                 description="the app's integration key (the JWT's iss)")
    user_id: str = Field(default="552065f2-0210-4f11-bad9-525adb88bce9",
                         description="the user the app impersonates (the JWT's sub)")
    account_id: str = "46026c9a-b277-4242-80ec-7abd4e0677e2"
    private_key: str = Field(default=SANDBOX_PRIVATE_KEY, repr=False,
                             description="PEM RSA private key of the integration key's registered key pair")
    scopes: str = "signature impersonation"
    template_id: str = Field(default="9c5e9305-cd0f-4077-9eec-08c8e20eb965",
                             description="the server template envelopes are sent from")
    signer_role: str = Field(default="Customer", description="the template's role the counterparty signs as")
    connect_hmac_keys: list[str] = Field(
        default_factory=lambda: ["sandbox-docusign-connect-key-1"], repr=False,
        description="Connect HMAC keys (up to 100 in DocuSign); a delivery is valid when any signature header "
                    "matches any key held, so a rotation is: add the new key here, then in DocuSign, then drop "
                    "the old one")
    #: DocuSign's default limit is 3,000 calls an hour per account (0.83/s); bulk reads stay below it
    requests_per_second: float = 0.8
    page_size: int = Field(default=100, ge=1, le=1000, description="listStatusChanges count per page")


def _adapter(settings: Settings, config: DocuSignSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.docusign.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: DocuSignSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.docusign.webhooks import from_settings

    return from_settings(settings, config=config)


def _fields() -> list[Any]:
    from connectors.docusign.fields import FIELDS

    return FIELDS


SPEC = AdapterSpec(
    role=SystemRole.CLM, name="docusign", display_name="DocuSign", settings_class=DocuSignSettings,
    adapter=_adapter, receiver=_receiver,
    # an envelope is both the contract "workflow" the flows follow and, once completed, its executed "record"
    object_kinds=("workflow", "record"),
    id_patterns=(IdPattern("workflow", UUID), IdPattern("record", UUID)),
    rate_limits=RateLimits(reads_per_second=DocuSignSettings.model_fields["requests_per_second"].default),
    wire_tables=_fields, emulator=Emulator(module="sandbox.docusign.app", acts="connectors.docusign.acts"),
)

__all__ = ["SANDBOX_PRIVATE_KEY", "SPEC", "DocuSignSettings"]
