"""``make up``'s Prometheus (Debian package): the configuration the stack writes scrapes the worker's and the
ingress's endpoints and loads the alert rules. Runs the real ``prometheus`` on free ports."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge

from devstack.stack import prometheus_command
from observability.metrics import MetricsServer, free_port, serve_metrics
from settings import Settings
from tests.helpers.waiting import eventually


@pytest.fixture
def endpoints() -> Iterator[tuple[MetricsServer, MetricsServer]]:
    registry = CollectorRegistry()
    Gauge("revops_erp_postings_refused", "test", ["legal_entity"], registry=registry).labels("US01").set(2)
    worker = serve_metrics(registry, host="127.0.0.1", port=0)
    ingress = serve_metrics(CollectorRegistry(), host="127.0.0.1", port=0)
    yield worker, ingress
    worker.stop()
    ingress.stop()


@pytest.fixture
def prometheus(endpoints: tuple[MetricsServer, MetricsServer], tmp_path: Path) -> Iterator[str]:
    """The real Prometheus with the configuration the stack writes (checked by promtool first); its API URL."""
    assert shutil.which("prometheus"), "prometheus is missing: `make test` installs the Debian package"
    worker, ingress = endpoints
    settings = Settings(_env_file=None, worker_metrics_port=worker.port,  # type: ignore[call-arg]
                        ingress_metrics_port=ingress.port, prometheus_port=free_port())
    command = prometheus_command(settings, tmp_path)
    check = subprocess.run(["promtool", "check", "config", command[1].split("=", 1)[1]], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield f"http://127.0.0.1:{settings.prometheus_port}/api/v1"
    process.terminate()
    process.wait(timeout=30)


async def test_stack_prometheus_scrapes_both_endpoints_with_the_rules(prometheus: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        async def get(path: str) -> dict[str, Any]:
            try:
                answer = await http.get(f"{prometheus}/{path}")
            except httpx.TransportError:
                return {}
            # Prometheus answers 503 (plain text) until it is ready
            return dict(answer.json()) if answer.status_code == 200 else {}

        targets = await eventually(lambda: get("targets"), lambda t: sorted(
            (x["labels"]["job"], x["health"]) for x in t.get("data", {}).get("activeTargets", [])) == [
            ("revops-ingress", "up"), ("revops-worker", "up")], timeout=60, what="both targets up")
        assert len(targets["data"]["activeTargets"]) == 2
        rules = await eventually(lambda: get("rules"), lambda r: bool(r.get("data")), what="rules")
        names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
        assert {"RevOpsWorkerDown", "RevOpsErpPostingsRefused", "RevOpsVendorErrors"} <= names and len(names) == 8
        query = await eventually(lambda: get("query?query=revops_erp_postings_refused"),
                                 lambda q: bool(q.get("data", {}).get("result")), timeout=60, what="scraped")
        assert query["data"]["result"][0]["value"][1] == "2"
