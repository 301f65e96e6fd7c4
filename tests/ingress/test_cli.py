"""``starter.py events`` lists recorded deliveries; ``starter.py replay-event`` routes one again."""

from __future__ import annotations

import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import starter
from tests.helpers.webhooks import stripe_delivery, stripe_invoice
from tests.ingress.conftest import RunningIngress, signal_names
from workflows.models import ledger_workflow_id


@pytest.fixture
def cli_env(ingress: RunningIngress, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a deployment would set, pointing the CLI at this test's ledger and Temporal."""
    monkeypatch.setenv("DATA_DIR", str(ingress.settings.data_dir))
    monkeypatch.setenv("TASK_QUEUE", ingress.settings.task_queue)
    monkeypatch.setenv("IRONCLAD_BASE_URL", ingress.settings.ironclad_base_url)
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)


async def test_cli_events_lists_deliveries_and_replay_event_routes_one_again(
        ingress: RunningIngress, client: Client, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    delivery = stripe_delivery(ingress.settings, "invoice.finalized", stripe_invoice(customer))
    async with httpx.AsyncClient(timeout=20) as http:
        first = (await http.post(ingress.url("stripe"), content=delivery.body, headers=delivery.headers)).json()
        rejected = await http.post(ingress.url("stripe"), content=delivery.body)
    assert first["outcome"] == "started" and rejected.status_code == 401

    assert await starter.run(["events", "--vendor", "stripe", "--outcome", "started"]) == 0
    listing = capsys.readouterr().out
    assert first["event_id"] in listing and "rejected" not in listing
    [row] = ingress.deliveries(outcome="started")

    assert await starter.run(["replay-event", str(row.id)]) == 0

    assert capsys.readouterr().out.startswith(f"signalled\t{ledger_workflow_id(customer)}")
    assert await signal_names(client.get_workflow_handle(ledger_workflow_id(customer))) == ["billing_event"] * 2
    [replayed] = ingress.deliveries(outcome="signalled")
    assert (replayed.replay_of, replayed.signature, replayed.vendor_event_id) == (row.id, "replay", first["event_id"])


async def test_cli_replay_event_refuses_a_delivery_without_an_event(
        ingress: RunningIngress, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        await http.post(ingress.url("stripe"), content=b"{}")
    [row] = ingress.deliveries()

    assert await starter.run(["replay-event", str(row.id)]) == 1
    assert "carries no event" in capsys.readouterr().err
