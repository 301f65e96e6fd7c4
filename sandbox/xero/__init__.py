"""Xero emulator: accounting (``/api.xro/2.0``), projects (``/projects.xro/2.0``) and identity."""
