"""``starter.py events`` lists recorded deliveries; ``starter.py replay-event`` routes one again."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

import starter
from tests.helpers.ids import ledger_id
from tests.helpers.servers import vendor_settings
from tests.helpers.webhooks import (
    hubspot_delivery,
    hubspot_property_change,
    stripe_delivery,
    stripe_invoice,
    unique_deal_id,
)
from tests.ingress.conftest import RunningIngress, signal_names


@pytest.fixture
def cli_env(ingress: RunningIngress, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a deployment would set, pointing the CLI at this test's ledger and Temporal."""
    monkeypatch.setenv("DATA_DIR", str(ingress.settings.data_dir))
    monkeypatch.setenv("TASK_QUEUE", ingress.settings.task_queue)
    monkeypatch.setenv("IRONCLAD_BASE_URL", vendor_settings(ingress.settings, "ironclad").base_url)
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

    assert capsys.readouterr().out.startswith(f"signalled\t{ledger_id(customer)}")
    assert await signal_names(client.get_workflow_handle(ledger_id(customer))) == ["billing_event"] * 2
    [replayed] = ingress.deliveries(outcome="signalled")
    assert (replayed.replay_of, replayed.signature, replayed.vendor_event_id) == (row.id, "replay", first["event_id"])


async def test_cli_replay_event_refuses_a_delivery_without_an_event(
        ingress: RunningIngress, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        await http.post(ingress.url("stripe"), content=b"{}")
    [row] = ingress.deliveries()

    assert await starter.run(["replay-event", str(row.id)]) == 1
    assert "carries no event" in capsys.readouterr().err
    assert await starter.run(["replay-event", "987654321"]) == 2
    assert capsys.readouterr().err.strip() == "refused: no recorded delivery '987654321'"


async def test_cli_events_counts_echoes_of_our_write_backs_apart(
        ingress: RunningIngress, cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    deal_id = unique_deal_id()
    changes = [hubspot_property_change(deal_id, "revops_status", "provisioned"),
               hubspot_property_change(deal_id, "revops_region", "EMEA")]
    changes[0]["changeSource"] = "INTEGRATION"
    delivery = hubspot_delivery(ingress.settings, ingress.url("hubspot"), changes)
    async with httpx.AsyncClient(timeout=20) as http:
        assert (await http.post(ingress.url("hubspot"), content=delivery.body, headers=delivery.headers)).is_success
    assert {row.outcome for row in ingress.deliveries()} == {"echo", "ignored"}

    assert await starter.run(["events"]) == 0
    listing = capsys.readouterr().out
    rows = [line for line in listing.splitlines() if "hubspot" in line]
    assert len(rows) == 1 and "ignored" in rows[0] and "deal.changed" in rows[0]
    assert "1 echo(es) of our own write-backs not shown" in listing
    header = listing.splitlines()[0]
    assert rows[0].index("hubspot") == header.index("vendor")  # aligned columns

    assert await starter.run(["events", "--outcome", "echo", "--json"]) == 0
    [echo] = json.loads(capsys.readouterr().out)
    assert (echo["event_kind"], echo["workflow_id"]) == ("crm.own_write_echo", f"q2c-hubspot-{deal_id}")
