"""The temporary PostgreSQL server: found in Debian's layout (the newest version), refused with the way to
install it when absent (the stores' tests then fail with that reason, never skip), and run as a user who is not
root; stopping it removes its directory."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import PostgresServer, PostgresUnavailable, bin_dir


def _debian_layout(root: Path, version: str) -> None:
    for name in ("initdb", "postgres"):
        (root / version / "bin").mkdir(parents=True, exist_ok=True)
        (root / version / "bin" / name).write_text("")


def test_postgres_server_binaries_newest_version_or_a_reason(tmp_path: Path) -> None:
    _debian_layout(tmp_path / "lib", "9.6")
    _debian_layout(tmp_path / "lib", "15")
    (tmp_path / "lib" / "16" / "bin").mkdir(parents=True)  # a client-only version: no server binaries

    found = bin_dir(tmp_path / "lib")
    with pytest.raises(PostgresUnavailable) as missing:
        bin_dir(tmp_path / "nothing")

    assert found == tmp_path / "lib" / "15" / "bin"
    assert "apt-get install postgresql" in str(missing.value)


def test_postgres_server_runs_unprivileged_and_leaves_nothing() -> None:
    server = PostgresServer.create()
    try:
        server.start()
        assert server.process is not None
        status = Path(f"/proc/{server.process.pid}/status").read_text().splitlines()
        uid = int(next(x for x in status if x.startswith("Uid:")).split()[1])
        with psycopg.connect(host="127.0.0.1", port=server.port, user="revops", dbname="revops") as conn:
            (superuser,) = conn.execute("SELECT current_setting('is_superuser')").fetchone() or (None,)
    finally:
        server.stop()

    assert uid != 0 and (uid == os.geteuid() or os.geteuid() == 0)  # never root: ourselves, or dropped from root
    assert superuser == "on"  # our role owns the throw-away cluster
    assert not server.root.exists()
