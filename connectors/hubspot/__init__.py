"""HubSpot (CRM): the ``CrmPort`` adapter and the webhook receiver."""

from connectors.hubspot.client import HubSpotCrm, from_settings
from connectors.hubspot.webhooks import HubSpotWebhooks
from connectors.hubspot.webhooks import from_settings as webhooks_from_settings

__all__ = ["HubSpotCrm", "HubSpotWebhooks", "from_settings", "webhooks_from_settings"]
