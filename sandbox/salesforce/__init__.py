"""Salesforce CRM emulator (REST API v60.0)."""
