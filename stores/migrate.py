"""``make migrate`` (``python -m stores.migrate``): bring our databases (``DATABASE_URL``, ``FINDINGS_URL``,
``NOTIFICATIONS_URL``) to the latest schema (Alembic, under
``stores/migrations/``).

PostgreSQL (or any server) gets its tables from the migrations only: :func:`stores.database.open_engine` runs
:func:`upgrade` under a transaction-scoped advisory lock, so replicas starting at once migrate one at a time.
A SQLite file keeps being made by ``create_all`` (the tests and a laptop's ``.data/``); ``make migrate`` marks
such a file as being at the latest revision once its tables are complete. :func:`pending_changes` is Alembic's
autogenerate comparison of the models with a database: empty when the migrations match the models.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, func, make_url, select
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key: "revops migrate" (any constant; one lock for every store)
LOCK_KEY = 0x7265766F70
SERVER_DRIVER = "postgresql+psycopg"


def database_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` name the psycopg 3 driver (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return f"{SERVER_DRIVER}://{url.removeprefix(prefix)}"
    return url


def store_metadata() -> MetaData:
    """The tables of the event ledger, the findings, the mirror, the notification log and the ERP cut-over (a
    copy: SQLModel's own metadata also holds whatever else was imported, e.g. the emulators' tables)."""
    from stores import cutover, events, findings, mirror, notifications

    metadata = MetaData()
    for table in [*events.TABLES, *findings.TABLES, *mirror.TABLES, *notifications.TABLES, *cutover.TABLES]:
        table.to_metadata(metadata)
    return metadata


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _locked(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``, one process at a time (PostgreSQL advisory lock)."""
    with engine.begin() as connection:
        _locked(connection)
        command.upgrade(alembic_config(connection), revision)


def stamp(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        _locked(connection)
        command.stamp(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def pending_changes(engine: Engine) -> list[Any]:
    """What autogenerate would put in a new migration for this database: ``[]`` when it matches the models."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, store_metadata()))


def migrate(url: str) -> str:
    """``make migrate`` for one URL; what it did, for the operator."""
    from stores.database import open_engine

    url = database_url(url)
    engine = open_engine(url, [])  # a server: migrated here; SQLite: the file and its folder made
    try:
        if engine.dialect.name == "sqlite":
            from stores.events import ledger_engine
            from stores.findings import findings_engine
            from stores.mirror import mirror_engine
            from stores.notifications import notifications_engine

            for build in (ledger_engine, findings_engine, mirror_engine, notifications_engine):
                build(url).dispose()
            stamp(engine)
        return f"{make_url(url).render_as_string(hide_password=True)} at revision {current_revision(engine)}"
    finally:
        engine.dispose()


def main() -> None:
    from settings import Settings

    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    settings = Settings()
    for url in dict.fromkeys([settings.ledger_url, settings.findings_database_url,
                              settings.notifications_database_url]):
        print(migrate(url))


if __name__ == "__main__":
    main()


__all__ = ["current_revision", "database_url", "migrate", "pending_changes", "stamp", "store_metadata", "upgrade"]
