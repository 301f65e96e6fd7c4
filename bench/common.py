"""What every benchmark and the chaos run share: an embedded stack of their own on free ports, seeding,
sandbox controls, figures, tables, and ``bench/results/<name>.json``.

The stack is :class:`devstack.stack.Stack` (child processes in their own process groups: the Temporal
dev server on a SQLite file, the four emulators, the ingress, the worker). The children read their
settings from the environment, so :func:`child_env` exports this run's settings to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from devstack.stack import Stack
from runtime.connect import data_converter
from sandbox.hubspot.seed import DealSpec
from sandbox.serve import free_port
from settings import ROOT, Settings

RESULTS = ROOT / "bench" / "results"
VENDORS = ("hubspot", "ironclad", "stripe", "xero")

# Settings the children must share with the harness (Settings field names; exported upper-cased).
_EXPORTED = (
    "task_queue", "temporal_ui_url", "data_dir", "ingress_host", "ingress_port", "sandbox_host",
    "sandbox_hubspot_port", "sandbox_ironclad_port", "sandbox_stripe_port", "sandbox_xero_port",
    "hubspot_base_url", "ironclad_base_url", "stripe_base_url", "xero_base_url", "http_timeout_seconds",
    "activity_retry_max_seconds", "activity_timeout_seconds", "contract_poll_interval_seconds", "poll_interval_seconds",
    "poll_initial_lookback_hours", "ingress_temporal_timeout_seconds", "approval_reminder_hours",
    "approval_expiry_days", "ledger_continue_after_events", "reconciliation_stripe_requests_per_second",
    "reconciliation_xero_requests_per_second", "reconciliation_hubspot_requests_per_second",
    "worker_metrics_port", "ingress_metrics_port", "otel_traces_exporter",
    "sandbox_slack_port", "sandbox_smtp_port", "notify_slack_webhook_url", "notify_smtp_port",
)


def bench_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings on free loopback ports (never a developer's ``make up`` nor the tests'), state in ``data_dir``."""
    ports = {v: free_port() for v in VENDORS}
    ui_port = free_port()
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "task_queue": f"bench-{uuid.uuid4().hex[:8]}",
        "ingress_port": free_port(),
        "worker_metrics_port": free_port(),
        "ingress_metrics_port": free_port(),
        "temporal_ui_url": f"http://localhost:{ui_port}",
        **{f"sandbox_{v}_port": p for v, p in ports.items()},
        **{f"{v}_base_url": f"http://127.0.0.1:{p}" for v, p in ports.items()},
    }
    slack, smtp = free_port(), free_port()  # the notification emulators the sandbox process serves
    values.update(sandbox_slack_port=slack, sandbox_smtp_port=smtp, notify_smtp_port=smtp,
                  notify_slack_webhook_url=f"http://127.0.0.1:{slack}/services/T0BENCH/B0BENCH/bench")
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def child_env(settings: Settings) -> dict[str, str]:
    env = {}
    for name in _EXPORTED:
        value = getattr(settings, name)
        if value is not None:
            env[name.upper()] = str(value)
    return env


@dataclass
class BenchStack:
    """A running stack with a Temporal client and an HTTP client for the sandbox controls."""

    settings: Settings
    stack: Stack
    client: Client
    http: httpx.AsyncClient

    def url(self, vendor: str) -> str:
        return str(getattr(self.settings, f"{vendor}_base_url"))

    async def control(self, vendor: str, path: str, body: Any = None, *, method: str = "POST") -> Any:
        response = await self.http.request(method, f"{self.url(vendor)}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def faults(self, vendor: str, **faults: Any) -> None:
        await self.control(vendor, "faults", faults)

    async def clear_faults(self) -> None:
        for vendor in VENDORS:
            await self.control(vendor, "faults", method="DELETE")

    async def stats(self) -> dict[str, dict[str, Any]]:
        return {v: await self.control(v, "stats", method="GET") for v in VENDORS}

    async def seed_deal(self, spec: DealSpec) -> str:
        response = await self.http.post(f"{self.url('hubspot')}/_sandbox/seed/deal", json=spec.payload())
        response.raise_for_status()
        return str(response.json()["dealId"])

    def pid(self, name: str) -> int:
        return self.stack.process(name).pid


@asynccontextmanager
async def running_stack(settings: Settings, *, with_worker: bool = True, with_ingress: bool = False,
                        ) -> AsyncIterator[BenchStack]:
    """Start the stack (the bench worker: production composition plus the bench workflows), yield, stop."""
    data_dir = Path(settings.data_dir)
    temporal_port = free_port()
    ui_port = int(settings.temporal_ui_url.rsplit(":", 1)[1])
    stack = Stack(settings=settings, data_dir=data_dir, temporal_port=temporal_port, ui_port=ui_port,
                  with_worker=with_worker, with_ingress=with_ingress, with_codec_server=False,
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
    return {name: cpu_seconds(process.pid) for name, process in bench.stack.processes}


@dataclass
class Table:
    """Rows of figures for one benchmark, printed and saved as JSON."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

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
