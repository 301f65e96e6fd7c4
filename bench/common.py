"""What every benchmark and the chaos run share: an embedded stack of their own on free ports, seeding,
sandbox controls, figures, tables, and ``bench/results/<name>.json``.

The stack is :class:`devstack.stack.Stack` (child processes in their own process groups: the Temporal
dev server on a SQLite file, the emulator of every adapter, the ingress, the worker). The children read their
settings from the environment, so :func:`child_env` exports this run's settings to them (each adapter's under
its own environment prefix). The harness acts on the systems through the registry's acts
(:class:`connectors.acts.RoleActs`), so it names roles, never vendors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sqlite3
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from canonical.ownership import SystemRole
from connectors.acts import DealDraft, EmulatorControls, Records, RoleActs
from connectors.registry import default_registry
from connectors.spec import AdapterSpec
from devstack.stack import Stack
from runtime.connect import data_converter
from sandbox.serve import free_port
from settings import ROOT, Settings

RESULTS = ROOT / "bench" / "results"

# Settings the children must share with the harness (Settings field names; exported upper-cased).
_EXPORTED = (
    "stack", "task_queue", "temporal_ui_url", "data_dir", "ingress_host", "ingress_port", "sandbox_host",
    "http_timeout_seconds",
    "activity_retry_max_seconds", "activity_timeout_seconds", "contract_poll_interval_seconds", "poll_interval_seconds",
    "poll_initial_lookback_hours", "ingress_temporal_timeout_seconds", "approval_reminder_hours",
    "approval_expiry_days", "ledger_continue_after_events",
    "worker_metrics_port", "ingress_metrics_port", "otel_traces_exporter",
    "sandbox_slack_port", "sandbox_smtp_port", "notify_slack_webhook_url", "notify_smtp_port",
    "approvals_port", "codec_server_port", "prometheus_port",
)


def emulated(settings: Settings) -> list[AdapterSpec]:
    """Every adapter with an emulator (the stack serves each one)."""
    return [spec for spec in default_registry(settings).all() if spec.emulator is not None]


def bench_settings(data_dir: Path, *, roles: dict[SystemRole, dict[str, Any]] | None = None,
                   **overrides: Any) -> Settings:
    """Settings on free loopback ports (never a developer's ``make up`` nor the tests'), state in ``data_dir``.
    ``roles``: fields of the own settings of the adapter each role is configured with (e.g. its
    ``requests_per_second``; the ERP's: every entity's ERP)."""
    ui_port = free_port()
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "task_queue": f"bench-{uuid.uuid4().hex[:8]}",
        "ingress_port": free_port(),
        "worker_metrics_port": free_port(),
        "ingress_metrics_port": free_port(),
        "temporal_ui_url": f"http://localhost:{ui_port}",
        # bound by the ingress (approvals API), `make up`'s codec server and Prometheus: never their defaults
        "approvals_port": free_port(), "codec_server_port": free_port(), "prometheus_port": free_port(),
    }
    slack, smtp = free_port(), free_port()  # the notification emulators the sandbox process serves
    values.update(sandbox_slack_port=slack, sandbox_smtp_port=smtp, notify_smtp_port=smtp,
                  notify_slack_webhook_url=f"http://127.0.0.1:{slack}/services/T0BENCH/B0BENCH/bench")
    values.update(overrides)
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    adapters: dict[str, dict[str, Any]] = {name: dict(fields) for name, fields in settings.adapter_settings.items()}
    for spec in emulated(settings):
        port = free_port()
        adapters.setdefault(spec.name, {}).update(base_url=f"http://127.0.0.1:{port}", sandbox_port=port)
    registry = default_registry(settings)
    for role, fields in (roles or {}).items():
        specs = [registry.chosen(settings, role)]
        if role is SystemRole.ERP:
            specs += [registry.erp_of(settings, e) for e in settings.legal_entities]
        for spec in specs:
            adapters.setdefault(spec.name, {}).update(fields)
    return settings.model_copy(update={"adapter_settings": adapters})


def child_env(settings: Settings) -> dict[str, str]:
    """This run's settings as the children read them: the global ones the stack needs and every one the run
    chose (a scalar set explicitly, e.g. the chaos run's sweep interval), each adapter's under its env prefix."""
    env = {}
    chosen = [name for name in settings.model_fields_set if name not in _EXPORTED]
    for name in (*_EXPORTED, *sorted(chosen)):
        value = getattr(settings, name)
        if value is not None and isinstance(value, _SCALARS):
            env[name.upper()] = str(value.value if isinstance(value, Enum) else value)
    for spec in default_registry(settings).all():
        prefix = str(spec.settings_class.model_config.get("env_prefix") or "")
        for field_name, value in settings.adapter_settings.get(spec.name, {}).items():
            if value is not None and prefix:
                env[f"{prefix}{field_name}".upper()] = str(value)
    return env


#: settings a child reads back from their text (lists and tables of settings travel otherwise)
_SCALARS = (str, int, float, Decimal, Path, Enum)


class SqliteRecords:
    """An emulator's stored records, read from its SQLite file (``sandbox-<adapter>.sqlite``) after a run."""

    def __init__(self, data_dir: Path, spec: AdapterSpec) -> None:
        self.path = Path(data_dir) / f"sandbox-{spec.name}.sqlite"

    def records(self, kind: str) -> Records:
        with contextlib.closing(sqlite3.connect(self.path)) as db:
            rows = db.execute("SELECT tenant, data FROM sandbox_records WHERE kind = ? ORDER BY seq",
                              (kind,)).fetchall()
        return [(tenant, json.loads(data)) for tenant, data in rows]


def records_of(settings: Settings, role: SystemRole) -> SqliteRecords:
    """The stored records of the emulator of ``role``'s adapter (the default ERP's for the ERP)."""
    return SqliteRecords(Path(settings.data_dir), default_registry(settings).chosen(settings, role))


@dataclass
class BenchStack:
    """A running stack with a Temporal client, an HTTP client, and the acts of every role's system."""

    settings: Settings
    stack: Stack
    client: Client
    http: httpx.AsyncClient
    acts: RoleActs = field(init=False)

    def __post_init__(self) -> None:
        self.acts = RoleActs.of(self.settings, self.http)

    @property
    def emulators(self) -> list[EmulatorControls]:
        """The controls of every emulator the stack serves."""
        return [EmulatorControls(spec, spec.load(self.settings).base_url, self.http)
                for spec in emulated(self.settings)]

    async def clear_faults(self) -> None:
        for emulator in self.emulators:
            await emulator.clear_faults()

    async def stats(self) -> dict[str, dict[str, Any]]:
        """Adapter name -> its emulator's request statistics."""
        return {e.spec.name: await e.stats() for e in self.emulators}

    def name_of(self, role: SystemRole) -> str:
        """The adapter name of ``role`` (the key of :meth:`stats`)."""
        return default_registry(self.settings).chosen(self.settings, role).name

    async def seed_deal(self, draft: DealDraft) -> str:
        return (await self.acts.crm.seed_deal(draft)).deal_id

    def pid(self, name: str) -> int:
        return self.stack.process(name).pid


@asynccontextmanager
async def running_stack(settings: Settings, *, with_worker: bool = True, with_ingress: bool = False,
                        replicas: int = 1, with_postgres: bool = False) -> AsyncIterator[BenchStack]:
    """Start the stack (the bench worker: production composition plus the bench workflows), yield, stop."""
    data_dir = Path(settings.data_dir)
    temporal_port = free_port()
    ui_port = int(settings.temporal_ui_url.rsplit(":", 1)[1])
    stack = Stack(settings=settings, data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port,
                  with_worker=with_worker, with_ingress=with_ingress, with_codec_server=False,
                  replicas=replicas, with_postgres=with_postgres,
                  worker_args=["-m", "bench.worker"],
                  extra_env={**child_env(settings), "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
                             "TEMPORAL_NAMESPACE": "default"})
    starting = asyncio.ensure_future(asyncio.to_thread(stack.start))
    try:
        await asyncio.shield(starting)  # Ctrl-C during start: let it finish, then stop everything it started
        client = await Client.connect(stack.temporal_address, data_converter=data_converter(settings))
        async with httpx.AsyncClient(timeout=30) as http:
            bench = BenchStack(settings=settings, stack=stack, client=client, http=http)
            if with_worker:
                await wait_worker(bench)
            yield bench
    finally:
        if not starting.done():
            with contextlib.suppress(BaseException):
                await starting
        await asyncio.to_thread(stack.stop)


async def wait_worker(bench: BenchStack, timeout: float = 90) -> None:
    """Until the worker runs a no-op workflow (it is polling the task queue)."""
    from bench.noop import NoopInput, NoopWorkflow

    handle = await bench.client.start_workflow(NoopWorkflow.run, NoopInput(activities=1),
                                               id=f"warmup-{uuid.uuid4().hex[:8]}",
                                               task_queue=bench.settings.task_queue)
    await asyncio.wait_for(handle.result(), timeout=timeout)


# ---------------------------------------------------------------------------------------------
# Figures and tables
# ---------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95),
            "mean": statistics.fmean(values) if values else float("nan"),
            "min": min(values) if values else float("nan"), "max": max(values) if values else float("nan")}


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a process, in MiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux), children included once they are reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def stack_cpu(bench: BenchStack) -> dict[str, float]:
    """CPU seconds so far of each of the stack's processes (replicas by their own names), and of this harness
    (``harness``: it signs and posts the events and reads the emulators' records back)."""
    used = {name: cpu_seconds(process.pid) for name, process in bench.stack.processes}
    used["harness"] = sum(os.times()[:2])
    return used


def cpu_between(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """What each process spent between two :func:`stack_cpu` readings (processes started in between: all of it)."""
    return {name: round(end[name] - start.get(name, 0.0), 2) for name in end}


def cpu_note(phase: str, used: dict[str, float], seconds: float | None = None) -> str:
    """One line of a table's notes: CPU seconds by process, and with ``seconds`` of wall time the share of the
    machine's cores they kept busy (near 100 %: the phase is bound by the cores, not by waiting)."""
    line = f"CPU seconds during {phase}: " + ", ".join(f"{n} {s:g}" for n, s in used.items())
    if seconds:
        line += f" (total {sum(used.values()):.1f} in {seconds:.1f} s on {os.cpu_count()} cores: " \
                f"{sum(used.values()) / (seconds * (os.cpu_count() or 1)):.0%} busy)"
    return line


@dataclass
class Table:
    """Rows of figures for one benchmark, printed and saved as JSON."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    #: the run did not reach the state it waits for (a timeout): its stack's data folder is kept for a look
    incomplete: bool = False

    def add(self, *row: Any) -> None:
        self.rows.append(list(row))

    def render(self) -> str:
        cells = [[_fmt(c) for c in row] for row in [self.columns, *self.rows]]
        widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(self.columns))]
        line = "-" * (sum(widths) + 3 * (len(widths) - 1))
        out = [f"\n{self.title}", line, " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=False)),
               line]
        out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in cells[1:]]
        out.append(line)
        out += [f"  {n}" for n in self.notes]
        return "\n".join(out)

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.name}.json"
        path.write_text(json.dumps({
            "name": self.name, "title": self.title, "at": datetime.now(UTC).isoformat(),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "host": platform.node()},
            "columns": self.columns, "rows": self.rows, "notes": self.notes, "data": self.data,
        }, indent=2, default=str))
        return path

    def emit(self) -> None:
        print(self.render(), flush=True)
        print(f"  -> {self.save().relative_to(ROOT)}", flush=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


class Timer:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


async def gather_limited(coros: Iterable[Any], limit: int) -> list[Any]:
    """Await coroutines with at most ``limit`` at a time, results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro: Any) -> Any:
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))
