"""One composition root (``bootstrap.py``): each process's parts come from it, tests swap what they like, and
no command, store or converter builds its own settings, vendor client or schedule."""

from __future__ import annotations

import ast
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

import starter
from bootstrap import for_cli, for_ingress, for_worker
from canonical import Account
from canonical.keys import quote_to_cash_workflow_id
from canonical.ledger import BillingCustomer
from canonical.ownership import SystemRole
from connectors.errors import NotFound
from connectors.registry import AdapterRegistry, default_registry
from settings import Settings
from tests.helpers.fakes import FakeBilling, FakeClm, FakeCrm, fake_deal
from tests.helpers.memory_adapters import with_instances
from tests.helpers.webhooks import unique_deal_id

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RecordingCrm(FakeCrm):
    """The in-memory CRM, remembering which deals it was asked for and whether it was closed."""

    asked: list[str] = field(default_factory=list)
    closed: bool = False

    async def get_deal(self, deal_id: str):  # type: ignore[no-untyped-def]
        self.asked.append(deal_id)
        return await super().get_deal(deal_id)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class StrictBilling(FakeBilling):
    """In-memory billing that knows only the customers it holds (the fake answers for any ID)."""

    known: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)

    async def get_customer(self, customer_id: str):  # type: ignore[no-untyped-def]
        self.asked.append(customer_id)
        if customer_id not in self.known:
            raise NotFound(f"no such customer: {customer_id}")
        return BillingCustomer(customer_id=customer_id, account=Account(name="Known Co"))


def _memory(settings: Settings, **adapters: object) -> tuple[Settings, AdapterRegistry]:
    """Settings naming the ``memory`` adapter for each role given (a descriptor in ``EXTRA_ADAPTERS``: settings
    alone), and the registry those settings make."""
    configured = with_instances(settings, **adapters)
    return configured, default_registry(configured)


def _refusing_registry() -> AdapterRegistry:
    """A registry whose every adapter factory fails the test: nothing may be built."""
    def refuse(_settings: Settings, _transport: object) -> object:
        raise AssertionError("a vendor adapter was built for a command that uses none")

    registry = default_registry()
    for role in (SystemRole.CRM, SystemRole.CLM, SystemRole.BILLING, SystemRole.ERP):
        for name in registry.names(role):
            registry = registry.with_adapter(role, name, refuse)
    return registry


async def test_bootstrap_cli_start_deal_reads_the_deal_through_the_configured_crm(
        settings: Settings, client: Client) -> None:
    deal_id = unique_deal_id()
    crm = RecordingCrm(deals={deal_id: fake_deal().model_copy(update={"crm_id": deal_id})})
    configured, registry = _memory(settings, crm=crm)
    configured = configured.model_copy(update={"task_queue": f"bootstrap-{uuid.uuid4().hex[:8]}"})  # no worker

    parts = for_cli(configured, registry=registry, client=client)
    try:
        assert await starter.run(["start-deal", deal_id], parts=parts) == 0
        assert crm.asked == [deal_id]  # the injected CRM, not a client the command made for itself
        assert not crm.closed  # the bundle was given: the caller closes it
    finally:
        await parts.aclose()
    assert crm.closed
    handle = client.get_workflow_handle(quote_to_cash_workflow_id("memory", deal_id))
    description = await handle.describe()
    assert description.status is WorkflowExecutionStatus.RUNNING
    assert description.task_queue == configured.task_queue
    await handle.terminate("test over")


async def test_bootstrap_cli_reconcile_checks_customers_with_the_configured_billing(
        settings: Settings, client: Client, capsys: pytest.CaptureFixture[str]) -> None:
    billing = StrictBilling(known={"cus_known"})
    configured, registry = _memory(settings, billing=billing)
    async with for_cli(configured, registry=registry, client=client) as parts:
        code = await starter.run(["reconcile", "--customer", "cus_known", "--customer", "cus_gone", "--no-wait"],
                                 parts=parts)
    assert code == 2
    assert billing.asked == ["cus_known", "cus_gone"]
    assert "unknown billing customer cus_gone" in capsys.readouterr().err


async def test_bootstrap_cli_builds_no_adapter_for_a_command_that_uses_none(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async with for_cli(settings, registry=_refusing_registry()) as parts:
        assert await starter.run(["exceptions", "--json"], parts=parts) == 0
        assert await starter.run(["events", "--json", "--limit", "1"], parts=parts) == 0
    assert capsys.readouterr().err == ""


async def test_bootstrap_worker_parts_route_through_the_configured_ports_and_close_their_stores(
        settings: Settings, client: Client) -> None:
    crm, clm = RecordingCrm(), FakeClm()
    configured, registry = _memory(settings, crm=crm, clm=clm)
    parts = await for_worker(configured, client=client, registry=registry)
    async with parts:
        assert parts.client is client
        assert parts.connectors.crm is crm and parts.connectors.clm is clm
        # the poll's and the sweep's intake: the same ports and the worker's own ledger
        assert parts.intake.router.crm is crm and parts.intake.router.clm is clm
        assert parts.intake.ledger is parts.stores.events
        assert await parts.intake.router.clients.get() is client
    assert crm.closed
    with pytest.raises(RuntimeError):  # the ledger's executor is shut down with the bundle
        await parts.stores.events.run(lambda **_: None)


async def test_bootstrap_ingress_parts_share_one_client_provider_and_the_configured_crm(
        settings: Settings, client: Client) -> None:
    crm = RecordingCrm()  # (the CLM stays the configured vendor's: its webhook receiver fetches its key with it)
    configured, registry = _memory(settings, crm=crm)
    async with for_ingress(configured, client=client, registry=registry) as parts:
        intake = parts.intake()
        assert intake.router.crm is crm and intake.router.clm is parts.clm
        assert intake.ledger is parts.ledger
        assert intake.router.clients is parts.clients and await parts.clients.get() is client
        assert parts.receivers, "the ingress needs its webhook receivers"
    assert crm.closed


# -- the rules the bootstrap stands for, over the source -----------------------------------------------------
def _product_sources() -> list[Path]:
    files = [p for p in ROOT.glob("*.py")]
    for package in ROOT.iterdir():
        if package.is_dir() and (package / "__init__.py").exists() and package.name != "tests":
            files += list(package.rglob("*.py"))
    return files


def test_bootstrap_no_cli_command_builds_a_vendor_client_or_store_itself() -> None:
    forbidden = re.compile(r"\.from_settings\(|\bbuild_role\(|\bbuild_adapters\(|AsyncClient\(|\bEventLedger\("
                           r"|findings_engine\(|^\s*from connectors import ", re.MULTILINE)
    found = [f"{path.relative_to(ROOT)}: {m.group(0).strip()}"
             for path in [ROOT / "starter.py", *(ROOT / "cli").rglob("*.py")]
             for m in forbidden.finditer(path.read_text())]
    assert not found, "\n".join(found)


#: the entry points that may read settings from the environment (their ``main``), and the bootstrap
SETTINGS_READERS = {"bootstrap.py", "sandbox/__main__.py", "runtime/codec_server.py", "devstack/demo.py",
                    "devstack/stack.py", "stores/migrate.py", "observability/docs.py"}


def test_bootstrap_no_module_builds_hidden_settings() -> None:
    hidden = []
    for path in _product_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Settings"
                    and not node.args and not node.keywords and str(path.relative_to(ROOT)) not in SETTINGS_READERS):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not hidden, "Settings() built outside the entry points: " + ", ".join(hidden)


def test_bootstrap_every_schedule_is_defined_in_one_module() -> None:
    defining = set()
    for path in _product_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "temporalio.client" and any(
                    alias.name == "Schedule" or alias.name.startswith("ScheduleAction") for alias in node.names):
                defining.add(str(path.relative_to(ROOT)))
    assert defining == {"runtime/schedules.py"}
