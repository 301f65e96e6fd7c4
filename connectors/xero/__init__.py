"""Xero (ERP): accounting + projects adapter, webhook receiver, and their factories."""

from connectors.xero.client import XeroErp, XeroTokenAuth, from_settings
from connectors.xero.webhooks import XeroWebhooks
from connectors.xero.webhooks import from_settings as webhooks_from_settings

__all__ = ["XeroErp", "XeroTokenAuth", "XeroWebhooks", "from_settings", "webhooks_from_settings"]
