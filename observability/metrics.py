"""The worker's Prometheus metrics (``settings.worker_metrics_port``, 9464): the Temporal SDK's runtime metrics
(``temporal_*``, from the SDK's own Prometheus endpoint on a private port, re-served here) and the business
metrics below, refreshed every ``settings.metrics_refresh_seconds`` from Temporal visibility, the runs' queries,
the reconciliation findings and the task queue; the KPIs every ``settings.kpi_refresh_seconds``.

    revops_vendor_calls_total{vendor, status}            every vendor call: HTTP status, ``timeout`` or ``network``
    revops_vendor_call_seconds{vendor}                    vendor call latency (histogram)
    revops_deals_by_stage{stage, legal_entity}            running quote-to-cash runs
    revops_open_exceptions{workflow, kind}                runs waiting in a business exception
    revops_open_exception_oldest_age_seconds{workflow, kind}   since the oldest of them entered its exception
    revops_exception_sla_seconds{kind}                    the SLA of each kind (settings), for the alert
    revops_approvals_waiting{workflow}                    finance approvals pending
    revops_approval_oldest_age_seconds{workflow}          since the oldest was requested
    revops_approval_expires_soonest_seconds{workflow}     until the first of them expires
    revops_erp_postings_refused{legal_entity}             invoices whose ERP posting was refused, still open
    revops_reconciliation_findings_open{kind}             open reconciliation findings
    revops_task_queue_backlog{task_queue, kind}           tasks waiting for a worker (workflow, activity)
    revops_kpi_duration_seconds{kpi, legal_entity, quantile}   KPI durations (p50, p90)
    revops_kpi_ratio{kpi, legal_entity}                   KPI rates (0..1)
    revops_kpi_dso_days{legal_entity, currency}           DSO
    revops_metrics_refresh_errors_total{part}             refreshes that failed (the last values stay)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Histogram, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlmodel import Session
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecution, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.service import RPCError

from canonical.exceptions import LEDGER_EXCEPTION_KINDS, ExceptionKind
from canonical.kpis import KpiReport
from observability.kpis import gather_kpis
from settings import Settings
from stores.findings import OPEN, findings_engine, list_findings
from workflows.attributes import EXCEPTION_KIND, LEGAL_ENTITY, STAGE
from workflows.models import (
    AMENDMENTS_WORKFLOW,
    LEDGER_WORKFLOW,
    AmendmentStage,
    ContractAmendmentsStatus,
    LedgerStatus,
    LedgerStatusRequest,
    QuoteToCashStatus,
    Stage,
)

log = logging.getLogger("revops.metrics")
#: how often the worker checks that Temporal answers (its ``/readyz``)
HEALTH_CHECK_SECONDS = 5.0

Q2C_WORKFLOW = "QuoteToCashWorkflow"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# -- serving ---------------------------------------------------------------------------------------------
@dataclass
class MetricsServer:
    """A Prometheus text endpoint (``GET /metrics``) in a thread; :meth:`stop` ends it."""

    host: str
    port: int
    _server: Any
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Readiness(Protocol):
    def ready(self) -> tuple[bool, str]:
        ...


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Probes and scrapes every few seconds: not worth a log line each."""


def serve_metrics(registry: CollectorRegistry, *, host: str, port: int,
                  readiness: Readiness | None = None) -> MetricsServer:
    """``GET /metrics`` (Prometheus text), ``GET /healthz`` (the process answers) and ``GET /readyz`` (200 when
    ``readiness`` says the process can do its work, else 503 with the reason: a Kubernetes readiness probe)."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok, reason = (True, "alive") if path == "/healthz" or readiness is None else readiness.ready()
            body = json.dumps({"status": "ok" if ok else "not ready", "detail": reason}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return metrics(environ, start_response)

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return MetricsServer(host=host, port=int(server.server_address[1]), _server=server, _thread=thread)


class SdkRuntimeMetrics(Collector):
    """Re-serves the Temporal SDK's runtime metrics, read from its own Prometheus endpoint at each scrape."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as answer:  # noqa: S310 (loopback)
                text = answer.read().decode("utf-8")
        except OSError as exc:
            log.warning("SDK runtime metrics not readable at %s: %s", self.url, exc)
            return
        yield from text_string_to_metric_families(text)


# -- the business metrics ------------------------------------------------------------------------------
@dataclass
class _Sample:
    name: str
    labels: dict[str, str]
    value: float


class _Snapshot(Collector):
    """Gauges rebuilt by each refresh and swapped in whole, so a scrape never sees half a refresh."""

    def __init__(self, descriptions: dict[str, tuple[str, list[str]]]) -> None:
        self.descriptions = descriptions
        self.samples: list[_Sample] = []

    def collect(self) -> Iterator[Metric]:
        samples = self.samples
        for name, (documentation, labels) in self.descriptions.items():
            family = GaugeMetricFamily(name, documentation, labels=labels)
            for s in samples:
                if s.name == name:
                    family.add_metric([s.labels.get(label, "") for label in labels], s.value)
            yield family


GAUGES: dict[str, tuple[str, list[str]]] = {
    "revops_deals_by_stage": ("Running quote-to-cash runs by stage and legal entity", ["stage", "legal_entity"]),
    "revops_open_exceptions": ("Runs waiting in a business exception", ["workflow", "kind"]),
    "revops_open_exception_oldest_age_seconds": ("Since the oldest run in the exception entered it",
                                                 ["workflow", "kind"]),
    "revops_exception_sla_seconds": ("How long an exception of the kind may stay open (settings)", ["kind"]),
    "revops_approvals_waiting": ("Finance approvals pending", ["workflow"]),
    "revops_approval_oldest_age_seconds": ("Since the oldest pending approval was requested", ["workflow"]),
    "revops_approval_expires_soonest_seconds": ("Until the first pending approval expires", ["workflow"]),
    "revops_erp_postings_refused": ("Invoices whose ERP posting was refused, not resolved", ["legal_entity"]),
    "revops_reconciliation_findings_open": ("Open reconciliation findings", ["kind"]),
    "revops_task_queue_backlog": ("Tasks waiting on the task queue for a worker", ["task_queue", "kind"]),
}
KPI_GAUGES: dict[str, tuple[str, list[str]]] = {
    "revops_kpi_duration_seconds": ("KPI durations: p50 and p90", ["kpi", "legal_entity", "quantile"]),
    "revops_kpi_ratio": ("KPI rates between 0 and 1", ["kpi", "legal_entity"]),
    "revops_kpi_dso_days": ("Days sales outstanding per legal entity and currency", ["legal_entity", "currency"]),
}


def kpi_samples(report: KpiReport) -> list[_Sample]:
    """The KPI report as gauge samples."""
    samples: list[_Sample] = []
    for e in report.entities:
        for kpi, d in (("contract_signed_to_project_created", e.contract_signed_to_project),
                       ("closed_won_to_billing_live", e.closed_won_to_billing_live),
                       ("amendment_executed_to_propagated", e.amendment_propagation)):
            for quantile, value in (("0.5", d.p50_seconds), ("0.9", d.p90_seconds)):
                if value is not None:
                    samples.append(_Sample("revops_kpi_duration_seconds",
                                           {"kpi": kpi, "legal_entity": e.legal_entity, "quantile": quantile}, value))
        for kpi, rate in (("billing_exception_rate", e.billing_exceptions), ("invoices_aligned", e.invoices_aligned),
                          ("data_exception_rate", e.data_exceptions),
                          ("duplicate_customers_avoided", e.duplicate_customers_avoided)):
            if rate.rate is not None:
                samples.append(_Sample("revops_kpi_ratio", {"kpi": kpi, "legal_entity": e.legal_entity}, rate.rate))
        for f in e.dso:
            if f.dso_days is not None:
                samples.append(_Sample("revops_kpi_dso_days", {"legal_entity": e.legal_entity, "currency": f.currency},
                                       float(f.dso_days)))
    for quantile, value in (("0.5", report.webhook_to_workflow.p50_seconds),
                            ("0.9", report.webhook_to_workflow.p90_seconds)):
        if value is not None:
            samples.append(_Sample("revops_kpi_duration_seconds", {"kpi": "webhook_to_workflow", "legal_entity": "all",
                                                                   "quantile": quantile}, value))
    return samples


def _exception_start(since: datetime | None, timeline: list[Any], fallback: datetime) -> datetime:
    """When the run's exception began: its ``exception_since``; a run that cannot say (one started by an
    earlier version) by its last timeline entry."""
    return since or max((t.at for t in timeline), default=fallback)


class WorkerMetrics:
    """The worker's registry: vendor calls (observed in process), business gauges and KPIs (refreshed)."""

    def __init__(self, settings: Settings, *, registry: CollectorRegistry | None = None,
                 sdk_metrics_url: str | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.vendor_calls = Counter("revops_vendor_calls", "Vendor API calls by vendor and status",
                                    ["vendor", "status"], registry=self.registry)
        self.vendor_latency = Histogram("revops_vendor_call_seconds", "Vendor API call latency", ["vendor"],
                                        registry=self.registry,
                                        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.refresh_errors = Counter("revops_metrics_refresh_errors", "Metric refreshes that failed", ["part"],
                                      registry=self.registry)
        self._business = _Snapshot(GAUGES)
        self._kpis = _Snapshot(KPI_GAUGES)
        self.registry.register(self._business)
        self.registry.register(self._kpis)
        if sdk_metrics_url:
            self.registry.register(SdkRuntimeMetrics(sdk_metrics_url))
        self.polling = False  # the worker's run began (set by worker.py)
        self._temporal_ok_at: float | None = None
        self._temporal_error = "not checked yet"

    def ready(self) -> tuple[bool, str]:
        """Ready (``/readyz``): the worker polls its task queue and Temporal answered a health check lately."""
        if not self.polling:
            return False, "the worker has not started polling"
        if self._temporal_ok_at is None or time.monotonic() - self._temporal_ok_at > 3 * HEALTH_CHECK_SECONDS:
            return False, f"Temporal not reachable: {self._temporal_error}"
        return True, "polling; Temporal reachable"

    async def watch_temporal(self, client: Client) -> None:
        """Check Temporal's health every :data:`HEALTH_CHECK_SECONDS` (what ``/readyz`` reports)."""
        while True:
            try:
                if await client.service_client.check_health(timeout=timedelta(seconds=5)):
                    self._temporal_ok_at = time.monotonic()
                else:
                    self._temporal_error = "health check answered not serving"
            except Exception as exc:  # any failure only makes the worker not ready
                self._temporal_error = exc.__class__.__name__
            await asyncio.sleep(HEALTH_CHECK_SECONDS)

    def observe_vendor_call(self, vendor: str, status: str, seconds: float) -> None:
        """The observer ``connectors.http.observe_vendor_calls`` takes."""
        self.vendor_calls.labels(vendor, status).inc()
        self.vendor_latency.labels(vendor).observe(seconds)

    # -- refresh -------------------------------------------------------------------------------------
    def _sla_seconds(self, kind: str) -> float:
        hours = self.settings.exception_sla_hours_by_kind.get(kind, self.settings.exception_sla_hours)
        return hours * 3600

    async def refresh(self, client: Client, *, now: datetime | None = None) -> None:
        """Rebuild the business gauges from Temporal and the findings store."""
        now = now or datetime.now(UTC)
        samples: list[_Sample] = []
        kinds = [k.value for k in ExceptionKind if k.value] + list(LEDGER_EXCEPTION_KINDS)
        samples += [_Sample("revops_exception_sla_seconds", {"kind": k}, self._sla_seconds(k)) for k in kinds]
        for part, fill in (("runs", self._runs), ("findings", self._findings), ("backlog", self._backlog)):
            try:
                samples += await fill(client, now)
            except (RPCError, OSError, RuntimeError) as exc:
                self.refresh_errors.labels(part).inc()
                log.warning("metrics refresh of %s failed: %s", part, exc)
                samples += [s for s in self._business.samples if s.name in _PARTS[part]]
        self._business.samples = samples

    async def refresh_kpis(self, client: Client, *, now: datetime | None = None) -> None:
        """Recompute the KPI gauges over the runs started in the last ``kpi_window_days``."""
        since = (now or datetime.now(UTC)) - timedelta(days=self.settings.kpi_window_days)
        try:
            report = await gather_kpis(client, self.settings, since=since)
        except (RPCError, OSError, RuntimeError) as exc:
            self.refresh_errors.labels("kpis").inc()
            log.warning("KPI refresh failed: %s", exc)
            return
        self._kpis.samples = kpi_samples(report)

    async def _runs(self, client: Client, now: datetime) -> list[_Sample]:
        tq = self.settings.task_queue
        executions = [e async for e in client.list_workflows(
            f'TaskQueue = "{tq}" AND ExecutionStatus = "Running" AND WorkflowType IN '
            f'("{Q2C_WORKFLOW}", "{AMENDMENTS_WORKFLOW}", "{LEDGER_WORKFLOW}")')]
        stages: dict[tuple[str, str], int] = {}
        exceptions: dict[tuple[str, str], list[datetime]] = {}
        approvals: dict[str, list[tuple[datetime, datetime]]] = {}
        refused: dict[str, int] = {}
        for e in executions:
            attrs = e.typed_search_attributes
            stage, kind = attrs.get(STAGE) or "", attrs.get(EXCEPTION_KIND) or ""
            if e.workflow_type == Q2C_WORKFLOW:
                key = (stage, attrs.get(LEGAL_ENTITY) or "")
                stages[key] = stages.get(key, 0) + 1
            if not kind and not self._awaits_approval(e.workflow_type, stage):
                continue
            await self._inspect(client, e, kind, now, exceptions, approvals, refused)
        samples = [_Sample("revops_deals_by_stage", {"stage": s, "legal_entity": le}, n)
                   for (s, le), n in sorted(stages.items())]
        for (workflow_type, kind), moved in sorted(exceptions.items()):
            labels = {"workflow": workflow_type, "kind": kind}
            samples.append(_Sample("revops_open_exceptions", labels, len(moved)))
            samples.append(_Sample("revops_open_exception_oldest_age_seconds", labels,
                                   max(0.0, (now - min(moved)).total_seconds())))
        for workflow_type, pending in sorted(approvals.items()):
            labels = {"workflow": workflow_type}
            samples.append(_Sample("revops_approvals_waiting", labels, len(pending)))
            samples.append(_Sample("revops_approval_oldest_age_seconds", labels,
                                   max(0.0, (now - min(r for r, _ in pending)).total_seconds())))
            samples.append(_Sample("revops_approval_expires_soonest_seconds", labels,
                                   (min(x for _, x in pending) - now).total_seconds()))
        samples += [_Sample("revops_erp_postings_refused", {"legal_entity": le}, n)
                    for le, n in sorted(refused.items())]
        return samples

    @staticmethod
    def _awaits_approval(workflow_type: str, stage: str) -> bool:
        return ((workflow_type == Q2C_WORKFLOW and stage == Stage.AWAITING_APPROVAL.value)
                or (workflow_type == AMENDMENTS_WORKFLOW and stage == AmendmentStage.AWAITING_APPROVAL.value))

    async def _inspect(self, client: Client, e: WorkflowExecution, kind: str, now: datetime,
                       exceptions: dict[tuple[str, str], list[datetime]],
                       approvals: dict[str, list[tuple[datetime, datetime]]], refused: dict[str, int]) -> None:
        """Query one run in an exception or awaiting approval: when its exception began, its approval, its
        refusals."""
        handle = client.get_workflow_handle(e.id, run_id=e.run_id)
        moved = e.start_time
        try:
            if e.workflow_type == Q2C_WORKFLOW:
                q = await handle.query("status", result_type=QuoteToCashStatus)
                moved = _exception_start(q.exception_since, q.timeline, moved)
                if q.approval is not None and q.approval.status == "pending":
                    approvals.setdefault(e.workflow_type, []).append((q.approval.requested_at, q.approval.expires_at))
            elif e.workflow_type == AMENDMENTS_WORKFLOW:
                a = await handle.query("status", result_type=ContractAmendmentsStatus)
                moved = _exception_start(a.exception_since, a.timeline, moved)
                approval = a.current.approval if a.current else None
                if approval is not None and approval.status == "pending":
                    approvals.setdefault(e.workflow_type, []).append((approval.requested_at, approval.expires_at))
            else:
                ledger = await handle.query("open_items", LedgerStatusRequest(include_settled=True),
                                            result_type=LedgerStatus)
                moved = _exception_start(ledger.exception_since, ledger.timeline, moved)
                entity_of = {i.invoice_id: i.legal_entity or "" for i in [*ledger.open_items, *ledger.settled_items]}
                # refused ERP writes stay pending on their invoice (payments, credit notes) or are a problem
                refused_ids = {subject for subject, problem in ledger.problems.items()
                               if problem is ExceptionKind.ERP_REJECTED}
                refused_ids |= {i.invoice_id for i in [*ledger.open_items, *ledger.settled_items]
                                if any(w.problem is ExceptionKind.ERP_REJECTED for w in i.erp_pending)}
                for subject in refused_ids:
                    entity = entity_of.get(subject, "")
                    refused[entity] = refused.get(entity, 0) + 1
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
            # the run closed meanwhile, or cannot answer now: count it as it was listed
            log.info("metrics: %s did not answer its query (%s)", e.id, exc)
        if kind:
            exceptions.setdefault((e.workflow_type, kind), []).append(moved)

    async def _findings(self, client: Client, now: datetime) -> list[_Sample]:
        def count() -> dict[str, int]:
            engine = findings_engine(self.settings.findings_database_url)
            try:
                with Session(engine) as session:
                    kinds: dict[str, int] = {}
                    for f in list_findings(session=session, status=OPEN, limit=1_000_000):
                        kinds[f.kind] = kinds.get(f.kind, 0) + 1
                    return kinds
            finally:
                engine.dispose()

        counted = await asyncio.to_thread(count)
        return [_Sample("revops_reconciliation_findings_open", {"kind": k}, n) for k, n in sorted(counted.items())]

    async def _backlog(self, client: Client, now: datetime) -> list[_Sample]:
        samples = []
        tq = self.settings.task_queue
        for kind, queue_type in (("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                                 ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)):
            answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=client.namespace, task_queue=TaskQueue(name=tq), task_queue_type=queue_type,
                report_stats=True))
            samples.append(_Sample("revops_task_queue_backlog", {"task_queue": tq, "kind": kind},
                                   float(answer.stats.approximate_backlog_count)))
        return samples

    async def run(self, client: Client) -> None:
        """Refresh forever: business gauges every ``metrics_refresh_seconds``, KPIs every ``kpi_refresh_seconds``."""
        loop = asyncio.get_running_loop()
        # not at start-up: a worker (re)starting, as after a crash, first serves the flows waiting for it
        next_kpis = loop.time() + self.settings.kpi_refresh_seconds
        while True:
            try:
                await self.refresh(client)
                if loop.time() >= next_kpis:
                    next_kpis = loop.time() + self.settings.kpi_refresh_seconds
                    await self.refresh_kpis(client)
            except Exception:  # never let a refresh bug stop the refreshing (the last values stay served)
                self.refresh_errors.labels("unexpected").inc()
                log.exception("metrics refresh failed")
            await asyncio.sleep(self.settings.metrics_refresh_seconds)


_PARTS = {
    "runs": {"revops_deals_by_stage", "revops_open_exceptions", "revops_open_exception_oldest_age_seconds",
             "revops_approvals_waiting", "revops_approval_oldest_age_seconds",
             "revops_approval_expires_soonest_seconds", "revops_erp_postings_refused"},
    "findings": {"revops_reconciliation_findings_open"},
    "backlog": {"revops_task_queue_backlog"},
}




# -- the worker's wiring -------------------------------------------------------------------------------
def sdk_runtime(settings: Settings) -> tuple[Any, str | None]:
    """A Temporal ``Runtime`` exporting the SDK's metrics on a private loopback port, and that port's URL;
    ``(None, None)`` when the worker's metrics are off (port 0)."""
    if not settings.worker_metrics_port:
        return None, None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))
    return runtime, f"http://127.0.0.1:{port}/metrics"


@asynccontextmanager
async def worker_metrics(settings: Settings, client: Client, *, sdk_metrics_url: str | None
                         ) -> AsyncIterator[WorkerMetrics | None]:
    """Serve the worker's metrics, observe every vendor call and keep the gauges fresh, while inside."""
    if not settings.worker_metrics_port:
        yield None
        return
    from connectors.http import observe_vendor_calls

    metrics = WorkerMetrics(settings, sdk_metrics_url=sdk_metrics_url)
    server: MetricsServer | None = None
    try:
        server = serve_metrics(metrics.registry, host=settings.metrics_host, port=settings.worker_metrics_port,
                               readiness=metrics)
        log.info("worker metrics on %s", server.url)
    except OSError as exc:  # a second worker on the same host: it works, only the first one is scraped
        log.warning("worker metrics not served on %s:%s (%s)", settings.metrics_host, settings.worker_metrics_port,
                    exc)
    stop_observing = observe_vendor_calls(metrics.observe_vendor_call)
    refresher = asyncio.create_task(metrics.run(client), name="metrics-refresh")
    health = asyncio.create_task(metrics.watch_temporal(client), name="temporal-health")
    try:
        yield metrics
    finally:
        for task in (refresher, health):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        stop_observing()
        if server is not None:
            server.stop()


__all__ = ["GAUGES", "KPI_GAUGES", "MetricsServer", "SdkRuntimeMetrics", "WorkerMetrics", "free_port", "kpi_samples",
           "sdk_runtime", "serve_metrics", "worker_metrics"]
