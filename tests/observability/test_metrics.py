"""The worker's Prometheus endpoint, scraped over HTTP after a scenario: names and values."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from canonical.ledger import Finding, FindingKind
from connectors.http import observe_vendor_calls
from observability.metrics import WorkerMetrics, free_port, sdk_runtime, serve_metrics
from runtime.connect import data_converter
from runtime.launch import start_quote_to_cash
from settings import Settings
from stores.findings import findings_engine, record_run
from tests.helpers.deals import DealSpec, seed_deal
from tests.helpers.ledger import billing_account, canonical, draft_invoices, finalize, signal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_quote_to_cash import run_to_end, wait_for_stage
from worker import build_worker, open_connectors
from workflows.models import LedgerStatus, Stage

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls)


@pytest_asyncio.fixture
async def runtime_client(temporal_env: WorkflowEnvironment) -> AsyncIterator[tuple[Client, str]]:
    """A client on a Runtime that exports the SDK's metrics (as worker.py builds it), and that endpoint."""
    runtime, url = sdk_runtime(Settings(_env_file=None))  # type: ignore[call-arg]
    assert runtime is not None and url is not None
    client = await Client.connect(temporal_env.client.service_client.config.target_host,
                                  namespace=temporal_env.client.namespace, data_converter=data_converter(Settings()),
                                  runtime=runtime)
    yield client, url


async def test_worker_metrics_after_a_scenario(runtime_client: tuple[Client, str], flow_settings: Settings,
                                               sandboxes: dict[str, SandboxHandle], tmp_path: Path) -> None:
    client, sdk_url = runtime_client
    settings = flow_settings.model_copy(update={"data_dir": tmp_path, "worker_metrics_port": 0})
    hubspot, ironclad, stripe, xero = (sandboxes[v] for v in ("hubspot", "ironclad", "stripe", "xero"))
    metrics = WorkerMetrics(settings, sdk_metrics_url=sdk_url)
    server = serve_metrics(metrics.registry, host="127.0.0.1", port=0)
    stop_observing = observe_vendor_calls(metrics.observe_vendor_call)
    try:
        async with open_connectors(settings) as connectors, build_worker(client, settings, connectors):
            # provisioned in US01; one waiting for data; one waiting for finance approval (non-standard terms)
            d1 = seed_deal(hubspot, DealSpec(model="subscription"))
            assert (await run_to_end(client, settings, d1, ironclad)).outcome is Stage.PROVISIONED
            d2 = seed_deal(hubspot, DealSpec(region=None, start_date=None))
            await wait_for_stage(await start_quote_to_cash(client, settings, d2), Stage.DATA_EXCEPTION)
            d3 = seed_deal(hubspot, DealSpec(non_standard=True))
            approval_requested = datetime.now(UTC)
            await wait_for_stage(await start_quote_to_cash(client, settings, d3), Stage.AWAITING_APPROVAL)
            # Xero refuses the posting of a finalized US01 invoice (a validation error, 400)
            account = await billing_account(connectors.billing, hubspot)
            (invoice_id,) = await draft_invoices(connectors.billing, account, ["250.00"])
            events = canonical(settings, (await finalize(connectors.billing, stripe, invoice_id))[-1])
            with xero.faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/Invoices", methods=["PUT"]):
                handle = await signal(client, settings, account.customer_id, events)
                await eventually(lambda: handle.query("open_items", result_type=LedgerStatus),
                                 lambda s: s.exception_kind == "erp_rejected", what="posting refused")
            # HubSpot answers one call with 429 (rate limited)
            with hubspot.faults(error_rate=1.0, status=429, path_prefix=f"/crm/v3/objects/deals/{d1}"):
                with pytest.raises(Exception):  # noqa: B017 (the connector's RateLimited; only the count matters)
                    await connectors.crm.get_deal(d1)
            # one open reconciliation finding
            engine = findings_engine(settings.findings_database_url)
            with Session(engine) as session:
                record_run(session=session, scope="all", run_id="r1", now=datetime.now(UTC), findings=[
                    Finding(kind=FindingKind.MISSING_IN_ERP, key=f"missing_in_erp:{invoice_id}",
                            billing_id=invoice_id)])
            engine.dispose()

            await eventually(lambda: _listed(client, settings), lambda n: n >= 4, what="runs visible")
            await metrics.refresh(client)
            await metrics.refresh_kpis(client)
            samples = await asyncio.to_thread(scrape, server.url)
    finally:
        stop_observing()
        server.stop()

    assert value(samples, "revops_deals_by_stage", stage="data_exception", legal_entity="") == 1
    assert value(samples, "revops_deals_by_stage", stage="awaiting_approval", legal_entity="US01") == 1
    assert value(samples, "revops_open_exceptions", workflow="QuoteToCashWorkflow", kind="missing_data") == 1
    age = value(samples, "revops_open_exception_oldest_age_seconds", workflow="QuoteToCashWorkflow",
                kind="missing_data")
    assert age is not None and 0 <= age < 600
    assert value(samples, "revops_open_exceptions", workflow="AccountLedgerWorkflow", kind="erp_rejected") == 1
    assert value(samples, "revops_erp_postings_refused", legal_entity="US01") == 1
    assert value(samples, "revops_exception_sla_seconds", kind="erp_rejected") == 4 * 3600
    assert value(samples, "revops_exception_sla_seconds", kind="missing_data") == 24 * 3600
    assert value(samples, "revops_approvals_waiting", workflow="QuoteToCashWorkflow") == 1
    # expiry is 7 days after the request (settings.approval_expiry_days)
    expires = value(samples, "revops_approval_expires_soonest_seconds", workflow="QuoteToCashWorkflow")
    elapsed = (datetime.now(UTC) - approval_requested).total_seconds()
    assert expires is not None and 7 * 86400 - elapsed - 60 <= expires <= 7 * 86400
    waited = value(samples, "revops_approval_oldest_age_seconds", workflow="QuoteToCashWorkflow")
    assert waited is not None and 0 <= waited <= elapsed + 60
    assert value(samples, "revops_reconciliation_findings_open", kind="missing_in_erp") == 1
    assert value(samples, "revops_task_queue_backlog", task_queue=settings.task_queue, kind="activity") is not None
    # vendor calls by vendor and status, with latency
    for vendor in ("hubspot", "ironclad", "stripe", "xero"):
        assert total(samples, "revops_vendor_calls_total", vendor=vendor) > 0, vendor
        assert total(samples, "revops_vendor_call_seconds_count", vendor=vendor) == total(
            samples, "revops_vendor_calls_total", vendor=vendor)
    assert value(samples, "revops_vendor_calls_total", vendor="hubspot", status="429") == 1
    assert value(samples, "revops_vendor_calls_total", vendor="xero", status="400") == 1
    # KPIs as metrics: d2 of d1..d3 entered a data exception; the refused invoice needs a person
    assert value(samples, "revops_kpi_ratio", kpi="data_exception_rate", legal_entity="all") == pytest.approx(1 / 3)
    assert value(samples, "revops_kpi_ratio", kpi="billing_exception_rate", legal_entity="US01") == 1.0
    assert value(samples, "revops_kpi_dso_days", legal_entity="US01", currency="USD") == 90.0
    assert value(samples, "revops_kpi_duration_seconds", kpi="contract_signed_to_project_created",
                 legal_entity="US01", quantile="0.5") is not None
    # the SDK's runtime metrics, re-served on the same endpoint
    assert total(samples, "temporal_workflow_completed_total") >= 1
    assert any(name.startswith("temporal_activity_execution_latency") for name, _ in samples)


async def _listed(client: Client, settings: Settings) -> int:
    return len([e async for e in client.list_workflows(f'TaskQueue = "{settings.task_queue}"')])


async def test_worker_readyz_is_ready_only_while_polling_and_temporal_answers(
        temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A Kubernetes readiness probe on the worker's metrics port: 503 with the reason until the worker polls and
    Temporal has answered a health check, then 200; a worker whose Temporal does not answer is never ready;
    ``/healthz`` and ``/metrics`` answer throughout."""
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    metrics = WorkerMetrics(settings)
    server = serve_metrics(metrics.registry, host="127.0.0.1", port=0, readiness=metrics)
    base = server.url.removesuffix("/metrics")
    # a second worker whose Temporal address answers nothing
    stranded = WorkerMetrics(settings)
    stranded.polling = True
    stranded_server = serve_metrics(stranded.registry, host="127.0.0.1", port=0, readiness=stranded)
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    watchers = [asyncio.create_task(metrics.watch_temporal(temporal_env.client)),
                asyncio.create_task(stranded.watch_temporal(nowhere))]
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            before = await http.get(f"{base}/readyz")
            assert before.status_code == 503 and "not started polling" in before.json()["detail"]
            assert (await http.get(f"{base}/healthz")).status_code == 200
            metrics.polling = True
            await eventually(lambda: httpx.get(f"{base}/readyz", timeout=5).status_code == 200, timeout=15)
            assert "revops_vendor_calls" in (await http.get(server.url)).text
            stranded_base = stranded_server.url.removesuffix("/metrics")
            await eventually(lambda: "Temporal not reachable: " in httpx.get(f"{stranded_base}/readyz").text
                             and "not checked yet" not in httpx.get(f"{stranded_base}/readyz").text, timeout=20)
            refused = await http.get(f"{stranded_base}/readyz")
            assert refused.status_code == 503
            assert (await http.get(f"{stranded_base}/healthz")).status_code == 200
    finally:
        for watcher in watchers:
            watcher.cancel()
        server.stop()
        stranded_server.stop()
