"""NetSuite (ERP): REST record API v1 + SuiteQL adapter with Token-Based Authentication, and its factory."""

from connectors.netsuite.client import NetSuiteErp, from_settings

__all__ = ["NetSuiteErp", "from_settings"]
