"""``starter.py`` as finance and operators use it, against the real dev server and a running worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

import starter
from settings import Settings
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from workflows.models import Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, flow_settings: Settings) -> Iterator[Settings]:
    """The environment a finance user's shell would have: Temporal address, the vendor settings and the
    approvals API (served here on a free port, as ``starter.py serve`` serves it)."""
    from ingress.approvals import create_approvals_app
    from ingress.routing import ClientProvider
    from sandbox.serve import start_in_thread
    from tests.ingress.conftest import connector_to

    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    for name in ("task_queue", "hubspot_base_url", "ironclad_base_url", "stripe_base_url", "xero_base_url"):
        monkeypatch.setenv(name.upper(), str(getattr(flow_settings, name)))
    monkeypatch.delenv("REVOPS_TOKEN", raising=False)
    provider = ClientProvider(connector_to(client.service_client.config.target_host, client.namespace))
    api = start_in_thread(create_approvals_app(settings=flow_settings, clients=provider))
    monkeypatch.setenv("APPROVALS_PORT", str(api.port))
    yield flow_settings
    api.stop()


async def _stage(client: Client, workflow_id: str) -> Stage:
    status = await client.get_workflow_handle(workflow_id).query(QuoteToCashWorkflow.status)
    return status.stage  # type: ignore[no-any-return]


async def test_starter_start_pending_approve_status_find(
    cli_env: Settings, client: Client, worker: Worker, sandboxes: dict[str, SandboxHandle],
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(lines=[Line("PLAT-ENT", "Enterprise seats", quantity="10",
                                                                   price="100", discount="40", model="subscription",
                                                                   frequency="monthly")]))
    workflow_id = f"q2c-hubspot-{deal_id}"

    assert await starter.run(["start-deal", deal_id]) == 0
    assert workflow_id in capsys.readouterr().out
    await eventually(lambda: _stage(client, workflow_id), lambda s: s is Stage.AWAITING_APPROVAL, what="approval")

    await eventually(lambda: _run_out(["pending"], capsys), lambda out: workflow_id in out, what="pending list")

    # the person is the one of REVOPS_TOKEN: sales ops may not approve a 40 % discount
    from ingress.identity import mint_token

    monkeypatch.setenv("REVOPS_TOKEN", mint_token(cli_env, "sam@revops.example"))
    assert await starter.run(["approve", workflow_id]) == 1
    assert "over Sam (Sales Ops)'s limit of 10%" in capsys.readouterr().err
    monkeypatch.delenv("REVOPS_TOKEN")

    assert await starter.run(["approve", workflow_id, "--approver", "Chris (CFO)", "--note", "fine"]) == 0
    assert "approved by Chris (CFO): fine" in capsys.readouterr().out

    # Nothing is pending any more: the same command is refused at once and says why.
    assert await starter.run(["reject", workflow_id, "--approver", "Chris (CFO)"]) == 1
    assert "no approval is pending" in capsys.readouterr().err

    assert await starter.run(["status", workflow_id]) == 0
    out = capsys.readouterr().out
    assert "deal: " in out and "approval: approved" in out

    assert await starter.run(["find", f"hubspot:deal:{deal_id}"]) in (0, 1)
    found = await eventually(lambda: _run_out(["find", f"hubspot:deal:{deal_id}"], capsys),
                             lambda out: workflow_id in out, what="find by business key")
    assert "QuoteToCashWorkflow" in found
    await client.get_workflow_handle(workflow_id).terminate("test done")


async def _run_out(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    await starter.run(argv)
    return capsys.readouterr().out
