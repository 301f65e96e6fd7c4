"""A throw-away PostgreSQL server from the Debian package (``postgresql``): ``make up PG=1`` and the tests.

The cluster lives in a temporary directory made for it and removed when it stops. PostgreSQL refuses to run
as root, so when we are root ``initdb`` and ``postgres`` run as an unprivileged user (``nobody`` unless
``POSTGRES_RUN_AS`` names another), with that user's group and no supplementary groups. The server listens on
loopback only, on a free port, with its unix socket in its own directory, and trusts local connections (the
cluster exists only for this run). Stopping: SIGINT (PostgreSQL's "fast" shutdown), then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.serve import free_port

DEBIAN_ROOT = Path("/usr/lib/postgresql")
DATABASE = "revops"
SUPERUSER = "revops"
INSTALL_HINT = "install the Debian package: `make postgresql` (apt-get install postgresql)"


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing, or the server would not start (the reason says which)."""


def bin_dir(root: Path = DEBIAN_ROOT) -> Path:
    """The newest ``<root>/<version>/bin`` that holds ``initdb`` and ``postgres`` (Debian's layout)."""
    found = [d / "bin" for d in root.glob("*") if (d / "bin" / "initdb").exists()
             and (d / "bin" / "postgres").exists()] if root.is_dir() else []
    if not found:
        raise PostgresUnavailable(f"no PostgreSQL server binaries under {root}: {INSTALL_HINT}")
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


def run_as() -> dict[str, Any]:
    """``subprocess`` arguments that drop root to the unprivileged user; nothing when we are not root."""
    if os.geteuid() != 0:
        return {}
    name = os.environ.get("POSTGRES_RUN_AS", "nobody")
    try:
        user = pwd.getpwnam(name)
    except KeyError as exc:
        raise PostgresUnavailable(f"no user {name!r} to run PostgreSQL as (POSTGRES_RUN_AS)") from exc
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@dataclass
class PostgresServer:
    """One cluster in ``root`` (``data/`` and the socket directory), served on ``127.0.0.1:port``."""

    root: Path
    port: int
    bin: Path
    process: subprocess.Popen[bytes] | None = None
    popen_user: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, *, port: int | None = None) -> PostgresServer:
        """``initdb`` a cluster in a new temporary directory (owned by the user the server runs as)."""
        binaries = bin_dir()
        user = run_as()
        root = Path(tempfile.mkdtemp(prefix="revops-postgres-"))
        if user:
            os.chown(root, user["user"], user["group"])
        server = cls(root=root, port=port or free_port(), bin=binaries, popen_user=user)
        done = subprocess.run(
            [str(binaries / "initdb"), "-D", str(server.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
             "--no-locale", "--no-sync"],
            cwd=root, env=server._env(), capture_output=True, **user)
        if done.returncode != 0:
            server.remove()
            raise PostgresUnavailable(f"initdb failed ({done.returncode}): "
                                      f"{done.stderr.decode(errors='replace')[-500:]}")
        return server

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.root)}

    def command(self) -> list[str]:
        """The server in the foreground: loopback only, the socket in our directory, a temporary cluster's
        durability (no fsync: it is removed at the end anyway)."""
        return [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-h", "127.0.0.1",
                "-k", str(self.root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB"]

    def popen_kwargs(self) -> dict[str, Any]:
        """What ``subprocess.Popen`` needs besides the command (user, environment, working directory)."""
        return {"cwd": self.root, "env": self._env(), **self.popen_user}

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Run the server as our child (its own session) and wait until it takes connections."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True, **self.popen_kwargs())
        self.wait_ready(self.process)

    def wait_ready(self, process: subprocess.Popen[bytes] | None, *, timeout: float = 60) -> None:
        """Until the ``revops`` database answers (made on first readiness); raise with the log's tail if the
        server exits or takes longer than ``timeout``."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if process is not None and process.poll() is not None:
                raise PostgresUnavailable(f"postgres exited with code {process.returncode}: {self.log_tail()}")
            try:
                with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                                     autocommit=True, connect_timeout=2) as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise PostgresUnavailable(f"postgres did not take connections within {timeout:.0f}s ({exc}): "
                                              f"{self.log_tail()}") from exc
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        """A new empty database (one per test); its URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-800:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self, *, grace: float = 10) -> None:
        """Fast shutdown (SIGINT: open sessions are ended), SIGKILL after ``grace``; then the directory goes."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["DATABASE", "PostgresServer", "PostgresUnavailable", "bin_dir", "run_as"]
