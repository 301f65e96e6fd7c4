"""Stripe as the billing system: its descriptor and its own settings (``STRIPE_*``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from canonical.ownership import SystemRole
from connectors.spec import AdapterSpec, Emulator, RateLimits, VendorSettings

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from settings import Settings

#: Stripe object IDs carry their kind in the prefix (longest prefixes first: ``sub_sched_`` before ``sub_``)
ID_PREFIXES: tuple[tuple[str, str], ...] = (
    ("sub_sched_", "schedule"), ("sub_", "subscription"), ("cus_", "customer"), ("prod_", "product"),
    ("price_", "price"), ("in_", "invoice"), ("ii_", "invoiceitem"), ("cn_", "credit_note"), ("ch_", "charge"),
    ("pi_", "payment_intent"), ("si_", "subscription_item"),
)


class StripeSettings(VendorSettings):
    """A Stripe secret key pinned to our API version; the sandbox's by default."""

    model_config = SettingsConfigDict(env_prefix="STRIPE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")
    adapter = "stripe"

    base_url: str = "http://127.0.0.1:8103"
    sandbox_port: int = 8103
    api_key: str = "sk_test_sandbox"
    webhook_secret: str = "whsec_sandbox"
    proration_behavior: str = "create_prorations"
    requests_per_second: float = Field(default=20, description="bulk reads: 100/s live, 25/s in test mode")


def _adapter(settings: Settings, config: StripeSettings, transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.stripe.client import from_settings

    return from_settings(settings, transport=transport, config=config)


def _receiver(settings: Settings, config: StripeSettings, adapter: Any,
              transport: httpx.AsyncBaseTransport | None) -> Any:
    from connectors.stripe.webhooks import StripeWebhooks

    return StripeWebhooks(config.webhook_secret)


def _fields() -> list[Any]:
    from connectors.stripe.fields import FIELDS

    return FIELDS


SPEC = AdapterSpec(
    role=SystemRole.BILLING, name="stripe", display_name="Stripe", settings_class=StripeSettings,
    adapter=_adapter, receiver=_receiver,
    object_kinds=tuple(dict.fromkeys(kind for _prefix, kind in ID_PREFIXES)),
    id_prefixes=ID_PREFIXES,
    rate_limits=RateLimits(reads_per_second=StripeSettings.model_fields["requests_per_second"].default),
    wire_tables=_fields, emulator=Emulator(module="sandbox.stripe.app", acts="connectors.stripe.acts"),
)


def stripe_ref(stripe_id: str) -> str:
    """``stripe:<object>:<id>`` with the object named by the ID's prefix (``in_…`` -> ``stripe:invoice:in_…``)."""
    return SPEC.system.ref_of_id(stripe_id)


__all__ = ["ID_PREFIXES", "SPEC", "StripeSettings", "stripe_ref"]
