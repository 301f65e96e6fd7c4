"""Our own small databases (the event ledger, the reconciliation findings and mirror): SQLite by default,
PostgreSQL (psycopg 3) by URL for replicas. Engines are built by functions, never at import.

SQLite gets its tables from ``create_all``; a server gets them from the Alembic migrations
(:mod:`stores.migrate`), applied when the engine is opened, one process at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, event
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers work beside the one writer; the busy timeout rides out a concurrent writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def open_engine(url: str, tables: list[Table]) -> Engine:
    """An engine for ``url`` with ``tables`` created: SQLite (file or memory, ``create_all``) or a server
    (``postgresql://`` means psycopg 3; every migration applied)."""
    from stores.migrate import database_url, upgrade

    url = database_url(url)
    kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite")
    if sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        SQLModel.metadata.create_all(engine, tables=tables)
    else:
        upgrade(engine)
    return engine
