"""Connectors: one port per role, one adapter per vendor, one error tree (see errors.py)."""
