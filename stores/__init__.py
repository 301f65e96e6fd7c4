"""Our own databases (SQLite by default, PostgreSQL by URL): the event ledger and the reconciliation findings.
Engines are built by the composition roots, never at import."""
