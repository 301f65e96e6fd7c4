"""The Alembic migrations match the models: after them, autogenerate finds nothing to add (on PostgreSQL, where
the tables come from the migrations, and on SQLite, where ``create_all`` makes them); ``make migrate`` brings
the configured databases to the head revision."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Column, String, create_engine, inspect
from sqlalchemy.engine import make_url

from devstack.postgres import PostgresServer
from stores.cutover import cutover_engine
from stores.events import ledger_engine
from stores.findings import findings_engine
from stores.migrate import current_revision, database_url, pending_changes, store_metadata, upgrade
from stores.mirror import mirror_engine
from stores.notifications import notifications_engine

ROOT = Path(__file__).resolve().parents[2]
HEAD = "0002"
TABLES = {"ingress_deliveries", "ingress_events", "ingress_poll_checkpoints", "reconciliation_finding",
          "reconciliation_mirror", "reconciliation_checkpoint", "notification_sent", "erp_entity_switch",
          "erp_moved_record"}


def test_migrations_autogenerate_diff_is_empty(store_url: str) -> None:
    for build in (ledger_engine, findings_engine, mirror_engine, notifications_engine, cutover_engine):
        build(store_url).dispose()
    engine = create_engine(database_url(store_url))
    try:
        diff = pending_changes(engine)
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert diff == []
    assert TABLES <= tables


def test_migrations_bare_upgrade_matches_the_models_and_a_change_would_show(postgres_server: PostgresServer) -> None:
    engine = create_engine(postgres_server.create_database("migrations_bare"))
    try:
        upgrade(engine)
        revision = current_revision(engine)
        diff = pending_changes(engine)
        changed = store_metadata()
        changed.tables["ingress_events"].append_column(Column("tenant", String(), nullable=True))
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as connection:
            seen = compare_metadata(MigrationContext.configure(connection), changed)
    finally:
        engine.dispose()

    assert (revision, diff) == (HEAD, [])
    assert [(op[0], op[2], op[3].name) for op in seen] == [("add_column", "ingress_events", "tenant")]


def test_migrations_make_migrate_applies_them_to_the_configured_urls(postgres_server: PostgresServer,
                                                                     tmp_path: Path) -> None:
    url = make_url(postgres_server.create_database("migrations_cli"))
    plain = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"  # as an operator writes it
    findings = tmp_path / "findings.sqlite"
    env = {**os.environ, "DATABASE_URL": plain, "FINDINGS_URL": f"sqlite:///{findings}", "NOTIFICATIONS_URL": plain,
           "DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "stores.migrate"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone() or (None,)
    sqlite = create_engine(f"sqlite:///{findings}")
    try:
        sqlite_revision = current_revision(sqlite)
    finally:
        sqlite.dispose()

    assert done.stdout.count(f"at revision {HEAD}") == 2, done.stdout  # the ledger's and the send log's: one
    assert TABLES | {"alembic_version"} == tables and version == HEAD
    assert sqlite_revision == HEAD


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "postgres://u@h/db"])
def test_migrations_plain_postgres_urls_use_psycopg_3(url: str) -> None:
    assert database_url(url) == "postgresql+psycopg://u@h/db"
