"""``make up PG=1`` (``python -m devstack.stack --postgres``): the stores on a temporary PostgreSQL server from
the Debian package, run as an unprivileged user; the ingress writes its ledger there; SIGTERM stops the server
with the rest and its directory goes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from settings import ROOT
from tests.devstack.free_ports import stack_env, stack_ports
from tests.devstack.test_stopping import children_of, wait_all_gone

UP_PG = [sys.executable, "-m", "devstack.stack", "--no-worker", "--postgres"]


def start_up_pg(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(UP_PG, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while "Embedded stack is up" not in log.read_text(errors="replace"):
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    return process


def _uid(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def test_make_up_pg_puts_the_ledger_on_postgres_and_stops_it(tmp_path: Path) -> None:
    env = stack_env(tmp_path / "data")
    parent = start_up_pg(env, tmp_path / "up.log")
    try:
        banner = (tmp_path / "up.log").read_text(errors="replace")
        found = re.search(r"Stores\s+(postgresql\+psycopg://\S+)", banner)
        assert found, banner[-2000:]
        url = make_url(found.group(1))
        children = children_of(parent.pid)
        server = next(pid for pid in children if b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes())
        cluster = Path(Path(f"/proc/{server}/cmdline").read_bytes().split(b"\0")[2].decode()).parent

        ready = httpx.get(f"http://127.0.0.1:{env['INGRESS_PORT']}/readyz", timeout=30)
        with psycopg.connect(host=url.host, port=url.port, user=url.username, dbname=url.database) as conn:
            probes = conn.execute("SELECT count(*) FROM ingress_poll_checkpoints WHERE name = 'readyz'").fetchone()
            (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone() or (None,)
        server_uid = _uid(server)
    finally:
        parent.send_signal(signal.SIGTERM)
    wait_all_gone(children | {parent.pid}, [*stack_ports(env), int(url.port or 0)])

    assert ready.status_code == 200, ready.text
    assert probes == (1,) and revision == "0002"  # the ingress's readiness probe wrote to PostgreSQL
    assert server_uid != 0  # never root
    assert not cluster.exists(), "the temporary cluster outlived the stack"
