"""Salesforce (CRM): the ``CrmPort`` adapter and the Outbound Messages receiver."""

from connectors.salesforce.client import SalesforceCrm, from_settings

__all__ = ["SalesforceCrm", "from_settings"]
