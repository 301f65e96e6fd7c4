"""Stripe as the billing system: ``StripeBilling`` (``BillingPort``) and ``StripeWebhooks``."""

from connectors.stripe.client import StripeBilling
from connectors.stripe.client import from_settings as billing_from_settings
from connectors.stripe.webhooks import StripeWebhooks
from connectors.stripe.webhooks import from_settings as webhooks_from_settings

from_settings = billing_from_settings

__all__ = ["StripeBilling", "StripeWebhooks", "billing_from_settings", "from_settings", "webhooks_from_settings"]
