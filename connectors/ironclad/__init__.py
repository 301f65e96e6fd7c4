"""Ironclad (CLM): the ``ClmPort`` adapter and the webhook receiver."""

from connectors.ironclad.client import IroncladClm, from_settings
from connectors.ironclad.webhooks import IroncladWebhooks
from connectors.ironclad.webhooks import from_settings as webhooks_from_settings

__all__ = ["IroncladClm", "IroncladWebhooks", "from_settings", "webhooks_from_settings"]
