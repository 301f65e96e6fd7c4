"""Alembic migrations of our own databases (the event ledger, the findings, the mirror): ``stores.migrate``."""
