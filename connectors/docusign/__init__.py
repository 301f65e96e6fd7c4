"""DocuSign eSignature (CLM): the ``ClmPort`` adapter and the Connect receiver."""

from connectors.docusign.client import DocuSignClm, from_settings
from connectors.docusign.webhooks import DocuSignConnect
from connectors.docusign.webhooks import from_settings as webhooks_from_settings

__all__ = ["DocuSignClm", "DocuSignConnect", "from_settings", "webhooks_from_settings"]
