"""Ironclad as the CLM: its descriptor and its own settings (``IRONCLAD_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.identifiers import SAFE_ID
from connectors.spec import AdapterSpec, Emulator, IdPattern, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings


class IroncladSettings(VendorSettings):
    """An Ironclad client-credentials app acting as ``user_email``; the sandbox's by default."""

    model_config = SettingsConfigDict(env_prefix="IRONCLAD_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "ironclad"

    base_url: str = "http://127.0.0.1:8102"
    sandbox_port: int = 8102
    client_id: str = "sandbox-ironclad-client"
    client_secret: str = "sandbox-ironclad-secret"
    template_id: str = Field(default="tmpl-msa-order-form", description="the workflow template contracts launch")
    user_email: str = "revops-bot@example.com"
    requests_per_second: float = 5.0


def _adapter(settings: Settings, config: IroncladSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.ironclad.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: IroncladSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.ironclad.webhooks import from_settings

    return from_settings(settings, transport=transport, clm=adapter, config=config)


def _fields() -> list[Any]:
    from connectors.ironclad.fields import FIELDS

    return FIELDS


SPEC = AdapterSpec(
    role=SystemRole.CLM, name="ironclad", display_name="Ironclad", settings_class=IroncladSettings,
    adapter=_adapter, receiver=_receiver,
    object_kinds=("workflow", "record"),
    id_patterns=(IdPattern("workflow", SAFE_ID), IdPattern("record", SAFE_ID)),
    rate_limits=RateLimits(reads_per_second=IroncladSettings.model_fields["requests_per_second"].default),
    wire_tables=_fields, emulator=Emulator(module="sandbox.ironclad.app", acts="connectors.ironclad.acts"),
)

__all__ = ["SPEC", "IroncladSettings"]
