"""``starter.py`` as finance and operators use it, against the real dev server and a running worker."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

import starter
from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.waiting import eventually
from tests.workflows.test_quote_to_cash import sign_when_out
from workflows.models import QuoteToCashResult, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, client: Client, flow_settings: Settings) -> Iterator[Settings]:
    """The environment a finance user's shell would have: Temporal address, the vendor settings and the
    approvals API (served here on a free port, as ``starter.py serve`` serves it)."""
    from ingress.approvals import create_approvals_app
    from intake import ClientProvider
    from sandbox.serve import start_in_thread
    from tests.ingress.conftest import connector_to

    monkeypatch.setenv("TEMPORAL_ADDRESS", client.service_client.config.target_host)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", client.namespace)
    monkeypatch.setenv("TASK_QUEUE", flow_settings.task_queue)
    for vendor in ("hubspot", "ironclad", "stripe", "xero"):  # each adapter reads its own prefix
        monkeypatch.setenv(f"{vendor.upper()}_BASE_URL", vendor_settings(flow_settings, vendor).base_url)
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
    assert _field(out, "deal").startswith("Deal ") and _field(out, "approval").startswith("approved")
    assert _field(out, "stage").startswith(("awaiting_approval", "contracting", "awaiting_signature"))

    assert await starter.run(["find", f"hubspot:deal:{deal_id}"]) in (0, 2)
    found = await eventually(lambda: _run_out(["find", f"hubspot:deal:{deal_id}"], capsys),
                             lambda out: workflow_id in out, what="find by business key")
    assert "QuoteToCashWorkflow" in found
    await client.get_workflow_handle(workflow_id).terminate("test done")


async def _run_out(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    await starter.run(argv)
    return capsys.readouterr().out


def _field(out: str, label: str) -> str:
    """The value printed beside ``label`` by ``status`` (aligned ``label  value`` lines)."""
    for line in out.splitlines():
        if line.startswith(label + " "):
            return line[len(label):].strip()
    raise AssertionError(f"no {label!r} line in:\n{out}")


async def _one_error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await starter.run(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return code, lines[0]


async def test_starter_expected_errors_are_one_line_with_exit_codes(
    cli_env: Settings, client: Client, worker: Worker, sandboxes: dict[str, SandboxHandle],
    capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"q2c-hubspot-{uuid.uuid4().int % 10**12}"
    code, message = await _one_error_line(["status", missing], capsys)
    assert code == 2 and f"no workflow '{missing}'" in message

    # a quote must never reach the visibility query (the dev server's store fails on it even escaped)
    code, message = await _one_error_line(["find", 'a"b'], capsys)
    assert code == 2 and message.startswith("not an ID: 'a\"b'")

    code, message = await _one_error_line(["approve", missing, "--approver", ""], capsys)
    assert code == 2 and "approver is required" in message
    assert "pydantic" not in message and "http" not in message

    code, message = await _one_error_line(["backfill", "XX99"], capsys)
    assert code == 2 and message.count("XX99") == 1 and "US01" in message

    code, message = await _one_error_line(["find", "cus_nothing0000"], capsys)
    assert code == 2 and "stripe:customer" in message  # the hint says how a bare ID was read

    assert await starter.run(["pending", "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)


async def test_starter_status_shows_failed_outcome_with_reason_and_recheck_refuses(
    cli_env: Settings, client: Client, worker: Worker, sandboxes: dict[str, SandboxHandle],
    capsys: pytest.CaptureFixture[str]
) -> None:
    deal_id = str(9 * 10**11 + uuid.uuid4().int % 10**11)  # no such deal in the CRM
    workflow_id = f"q2c-hubspot-{deal_id}"
    assert await starter.run(["start-deal", deal_id]) == 0
    capsys.readouterr()
    handle = client.get_workflow_handle(workflow_id)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status is WorkflowExecutionStatus.FAILED

    assert await starter.run(["status", deal_id]) == 0  # a bare deal ID names its run
    out = capsys.readouterr().out
    assert _field(out, "outcome").startswith("failed [deal_not_found] (run failed)")
    assert "could not be read" in _field(out, "reason") and "NotFound" in _field(out, "reason")

    code, message = await _one_error_line(["recheck", workflow_id], capsys)
    assert code == 1 and message == (f"refused: {workflow_id} has finished (failed); nothing to recheck. "
                                     f"See: starter.py status {workflow_id}")


async def test_starter_status_looks_past_a_skipped_rerun_and_find_takes_bare_stripe_ids(
    cli_env: Settings, client: Client, worker: Worker, sandboxes: dict[str, SandboxHandle],
    capsys: pytest.CaptureFixture[str]
) -> None:
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(model="subscription"))
    workflow_id = f"q2c-hubspot-{deal_id}"
    handle = await start_quote_to_cash(client, cli_env, deal_id)
    await sign_when_out(handle, sandboxes["ironclad"])
    first: QuoteToCashResult = await handle.result()
    assert first.outcome is Stage.PROVISIONED

    # start-deal on a provisioned deal says so and starts nothing
    assert await starter.run(["start-deal", deal_id]) == 0
    assert "already provisioned" in capsys.readouterr().out
    assert (await client.get_workflow_handle(workflow_id).describe()).run_id == handle.result_run_id

    # an operator's reopen makes a re-run that skips (the deal is provisioned); status still shows the
    # provisioning run and its IDs (a late webhook starts nothing at all: the outcome of a closed run stands)
    again = await start_quote_to_cash(client, cli_env, deal_id, trigger="manual", reopen=True)
    assert (await again.result()).outcome is Stage.SKIPPED
    status = await eventually(lambda: _status_json(deal_id, capsys), lambda s: s["later_runs"], what="skip seen")
    assert status["run_id"] == handle.result_run_id and status["stage"] == "provisioned"
    assert status["later_runs"][0]["stage"] == "skipped"
    assert f"hubspot:deal:{deal_id}" in status["business_keys"]

    customer = next(k.split(":", 2)[2] for k in first.business_keys if k.startswith("stripe:customer:"))
    prices = [k.split(":", 2)[2] for k in first.business_keys if k.startswith("stripe:price:")]
    products = [k.split(":", 2)[2] for k in first.business_keys if k.startswith("stripe:product:")]
    assert prices and products, first.business_keys
    for bare in (customer, prices[0], products[0]):
        found = await eventually(lambda b=bare: _find_json(b, capsys), bool, what=f"find {bare}")  # type: ignore[misc]
        assert workflow_id in {row["workflow_id"] for row in found}


def readme_views() -> dict[str, str]:
    """The saved views the README tells operators to bookmark: name -> visibility query."""
    from settings import ROOT

    text = (ROOT / "README.md").read_text()
    section = text[text.index("Saved views operators bookmark"):]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| ([a-z' ]+) \| `([^`]+)`", section, re.M)}


async def _ids(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def test_starter_readme_saved_views_find_stuck_waiting_and_failed_runs(
    cli_env: Settings, client: Client, worker: Worker, sandboxes: dict[str, SandboxHandle]
) -> None:
    views = readme_views()
    assert {"stuck in an exception", "waiting for finance", "failed today"} <= set(views)
    stuck = await start_quote_to_cash(client, cli_env, seed_deal(sandboxes["hubspot"], DealSpec(region=None)))
    waiting = await start_quote_to_cash(client, cli_env, seed_deal(sandboxes["hubspot"], DealSpec(lines=[
        Line("PLAT-ENT", "Enterprise seats", quantity="10", price="100", discount="40", model="subscription",
             frequency="monthly")])))
    failed = await start_quote_to_cash(client, cli_env, str(8 * 10**11 + uuid.uuid4().int % 10**11))
    with pytest.raises(WorkflowFailureError):
        await failed.result()
    today = datetime.now(UTC).date().isoformat()

    for view, handle in (("stuck in an exception", stuck), ("waiting for finance", waiting),
                         ("failed today", failed)):
        query = views[view].replace("<today>", today)
        found = await eventually(lambda q=query: _ids(client, q), lambda ids, h=handle: h.id in ids,  # type: ignore[misc]
                                 what=view)
        others = {stuck.id, waiting.id, failed.id} - {handle.id}
        assert not found & others, (view, found & others)
    for handle in (stuck, waiting):
        await handle.terminate("test done")


async def _status_json(deal_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert await starter.run(["status", deal_id, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


async def _find_json(key: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    await starter.run(["find", key, "--json"])
    return list(json.loads(capsys.readouterr().out))
