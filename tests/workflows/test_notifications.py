"""People are told, once per event: the production worker on the dev server, the Slack-compatible webhook
receiver and the SMTP server emulators, a CRM outage that makes the write-back retry, and a worker restart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHandle

from runtime.launch import start_quote_to_cash
from settings import Settings
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.notify import NotifyEmulators, notify_emulators
from tests.helpers.servers import SandboxHandle, stripe_auth
from tests.helpers.waiting import eventually
from worker import build_worker, open_connectors
from workflows.models import QuoteToCashResult, QuoteToCashStatus, Stage
from workflows.quote_to_cash import QuoteToCashWorkflow


@pytest.fixture
def emulators() -> Iterator[NotifyEmulators]:
    with notify_emulators() as running:
        yield running


async def _status(handle: WorkflowHandle) -> QuoteToCashStatus:
    return await handle.query(QuoteToCashWorkflow.status)  # type: ignore[no-any-return]


def running_worker(client: Client, settings: Settings) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run() -> Any:
        async with open_connectors(settings) as connectors, build_worker(client, settings, connectors) as w:
            yield w

    return run()


async def test_notifications_sent_once_per_event_across_retries_and_a_worker_restart(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], emulators: NotifyEmulators,
    tmp_path: Path
) -> None:
    hubspot = sandboxes["hubspot"]
    settings = emulators.configure(flow_settings, notifications_url=tmp_path / "sent.sqlite",
                                   approval_reminder_hours=3 / 3600, approval_expiry_days=9 / 86400)
    deal_id = seed_deal(hubspot, DealSpec(lines=[Line("PLAT-ENT", "Enterprise seats", quantity="100",
                                                      price="100.00", discount="25", model="subscription",
                                                      frequency="monthly")]))
    workflow_id = f"q2c-hubspot-{deal_id}"
    requested = f"{workflow_id}:"  # keys are <workflowId>:<run>:notice-<event>

    # The CRM refuses the write-back that records the request: the activity retries after telling people.
    with hubspot.faults(error_rate=1.0, status=503, path_prefix=f"/crm/v3/objects/deals/{deal_id}",
                        methods=["PATCH"]):
        async with running_worker(client, settings):
            handle = await start_quote_to_cash(client, settings, deal_id)
            await eventually(lambda: asyncio.sleep(0, emulators.slack_events()),
                             lambda events: any(k.endswith("notice-approval-requested") for k in events),
                             what="approval requested on Slack")
            await eventually(lambda: asyncio.sleep(0, hubspot.control.stats.faults),
                             lambda faults: faults >= 3, what="write-back retried")
        # the worker stops while the write-back still fails; a new worker takes the retry and the rest
    async with running_worker(client, settings):
        result: QuoteToCashResult = await asyncio.wait_for(handle.result(), timeout=90)

    assert result.outcome is Stage.EXPIRED
    slack, mail = emulators.slack_events(), emulators.mail_events()
    assert slack == mail, "every channel told every event"
    events = {key.rpartition(":notice-")[2]: count for key, count in slack.items() if key.startswith(requested)}
    assert set(events) >= {"approval-requested", "approval-reminder-1", "approval-expired"}, events
    assert all(count == 1 for count in events.values()), f"each event exactly once: {events}"

    [request] = emulators.mails("notice-approval-requested")
    # the approvers who may approve a 25 % discount of 7,500 USD: the finance manager, the CFO and the treasurer
    assert sorted(request["to"]) == ["chris@revops.example", "dana@revops.example", "robin@revops.example"]
    assert "discount 25% exceeds 15%" in request["text"] and f"{settings.approvals_base_url}/inbox" in request["text"]
    [expired] = emulators.mails("notice-approval-expired")
    assert expired["subject"].startswith("Approval expired") and "deal stopped" in expired["text"]


async def test_notifications_business_exception_tells_operations_with_a_ui_link(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], emulators: NotifyEmulators,
    tmp_path: Path
) -> None:
    settings = emulators.configure(flow_settings, notifications_url=tmp_path / "sent.sqlite")
    deal_id = seed_deal(sandboxes["hubspot"], DealSpec(region=None, start_date=None))
    async with running_worker(client, settings):
        handle = await start_quote_to_cash(client, settings, deal_id)
        await eventually(lambda: _status(handle), lambda s: s.stage is Stage.DATA_EXCEPTION, what="data exception")
        await eventually(lambda: asyncio.sleep(0, emulators.mails("notice-data-exception-0")), bool, what="mail")
        await handle.terminate("test done")

    [mail] = emulators.mails("notice-data-exception-0")
    assert mail["to"] == settings.notify_operations
    assert "is missing data" in mail["subject"] and "region" in mail["text"]
    assert f"/workflows/{handle.id}" in mail["text"]
    [posted] = [m for m in emulators.webhook.app.state.inbox.messages if "missing data" in m["body"]["text"]]
    assert f"/workflows/{handle.id}" in posted["body"]["text"]


async def test_notifications_amendment_gap_and_amendment_approval_requests_are_told(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], emulators: NotifyEmulators,
    tmp_path: Path
) -> None:
    from cli.amendments import signal_amendment
    from tests.workflows.test_amendments import amend, provision, until, with_seats

    settings = emulators.configure(flow_settings, notifications_url=tmp_path / "sent.sqlite",
                                   amendment_gap_timeout_seconds=1.0)
    ironclad = sandboxes["ironclad"]
    async with running_worker(client, settings):
        result = await provision(client, settings, sandboxes, DealSpec(model="subscription"))
        record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
        assert record_id and signed
        first = with_seats(signed, 10)  # a decrease: finance must approve
        amend(ironclad, record_id, 1, signed, first)
        second_id = amend(ironclad, record_id, 2, first, with_seats(signed, 12))
        handle = await signal_amendment(client, settings, record_id, sequence=2, clm_amendment_id=second_id)
        await eventually(lambda: asyncio.sleep(0, emulators.mails(":a1:notice-gap")), bool, what="gap told")
        await signal_amendment(client, settings, record_id, sequence=1)
        await until(handle, lambda s: s.current is not None and s.current.approval is not None, "approval asked")
        await eventually(lambda: asyncio.sleep(0, emulators.mails(":a1:notice-approval-requested")), bool,
                         what="amendment approval told")
        await handle.terminate("test done")

    [gap] = emulators.mails(":a1:notice-gap")
    assert gap["to"] == settings.notify_operations and "amendment(s) [1] never arrived" in gap["text"]
    [asked] = emulators.mails(":a1:notice-approval-requested")
    assert "decreases" in asked["text"] and "/inbox" in asked["text"]
    assert set(asked["to"]) == {"sam@revops.example", "dana@revops.example", "chris@revops.example",
                               "robin@revops.example"}


async def test_notifications_erp_rejection_in_the_ledger_is_told_once(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], emulators: NotifyEmulators,
    tmp_path: Path
) -> None:
    from tests.helpers.ledger import billing_account, canonical, draft_invoices, finalize, signal

    settings = emulators.configure(flow_settings, notifications_url=tmp_path / "sent.sqlite")
    xero, stripe, hubspot = sandboxes["xero"], sandboxes["stripe"], sandboxes["hubspot"]
    async with running_worker(client, settings), open_connectors(settings) as connectors:
        account = await billing_account(connectors.billing, hubspot)
        [invoice_id] = await draft_invoices(connectors.billing, account, ["1250.00"])
        with xero.faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/Invoices"):
            raw = await finalize(connectors.billing, stripe, invoice_id)
            handle = await signal(client, settings, account.customer_id, canonical(settings, raw[-1]))
            await eventually(lambda: asyncio.sleep(0, emulators.mails(f":{invoice_id}:notice-erp-rejected")), bool,
                             what="ERP rejection told")
        # the same event delivered again (a webhook redelivery) tells nobody twice
        await signal(client, settings, account.customer_id, canonical(settings, raw[-1]))
        await asyncio.sleep(1)
        await handle.terminate("test done")

    [mail] = emulators.mails(f":{invoice_id}:notice-erp-rejected")
    assert mail["to"] == settings.notify_operations and "ERP refused" in mail["subject"]
    assert f"/workflows/{handle.id}" in mail["text"]
    assert emulators.slack_events()[mail["event"]] == 1


async def test_notifications_every_refused_ledger_write_is_told_once(
    client: Client, flow_settings: Settings, sandboxes: dict[str, SandboxHandle], emulators: NotifyEmulators,
    tmp_path: Path
) -> None:
    """Not only a refused invoice posting: a refused payment and a refused write-off tell operations too,
    once per write however often the ledger tries it again (a re-post, the next event)."""
    from tests.helpers.ledger import billing_account, canonical, draft_invoices, finalize, pay, signal, stripe_events
    from workflows.ledger import AccountLedgerWorkflow
    from workflows.models import LedgerStatus, RepostRequest

    settings = emulators.configure(flow_settings, notifications_url=tmp_path / "sent.sqlite")
    xero, stripe, hubspot = sandboxes["xero"], sandboxes["stripe"], sandboxes["hubspot"]

    async def status(handle: WorkflowHandle) -> LedgerStatus:
        return await handle.query(AccountLedgerWorkflow.open_items)  # type: ignore[no-any-return]

    def refusals(invoice_id: str, step: str) -> list[dict[str, Any]]:
        return [m for m in emulators.mails("") if f":{invoice_id}:notice-erp-rejected:{step}" in m["event"]]

    async with running_worker(client, settings), open_connectors(settings) as connectors:
        account = await billing_account(connectors.billing, hubspot)
        [paid_id, lost_id] = await draft_invoices(connectors.billing, account, ["300.00", "90.00"])
        handle = await signal(client, settings, account.customer_id,
                              canonical(settings, (await finalize(connectors.billing, stripe, paid_id))[-1]))
        await signal(client, settings, account.customer_id,
                     canonical(settings, (await finalize(connectors.billing, stripe, lost_id))[-1]))
        await eventually(lambda: status(handle), lambda s: all(i.erp_invoice_id for i in s.open_items)
                         and len(s.open_items) == 2, what="both invoices posted")
        # Xero refuses every new document (payments, credit notes) for a while
        with xero.faults(error_rate=1.0, status=400, path_prefix="/api.xro/2.0/", methods=["PUT"]):
            await signal(client, settings, account.customer_id,
                         [e for raw in pay(stripe, paid_id) for e in canonical(settings, raw)])
            async with httpx.AsyncClient(base_url=stripe.base_url, timeout=10) as http:
                marked = await http.post(f"/v1/invoices/{lost_id}/mark_uncollectible",
                                         headers=stripe_auth(settings))
                marked.raise_for_status()
            [raw] = stripe_events(stripe, lost_id, "invoice.marked_uncollectible")
            await signal(client, settings, account.customer_id, canonical(settings, raw))
            await eventually(lambda: asyncio.sleep(0, refusals(paid_id, "payment:") + refusals(lost_id, "write-off")),
                             lambda found: len(found) == 2, what="refused payment and write-off told")
            again = await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest())
            assert again.posted == 0 and len(again.still_pending) == 2
        posted = await handle.execute_update(AccountLedgerWorkflow.repost, RepostRequest())
        assert posted.posted == 2 and posted.still_pending == []
        await handle.terminate("test done")

    [payment] = refusals(paid_id, "payment:")
    assert payment["to"] == settings.notify_operations and "ERP refused the payment" in payment["subject"]
    [write_off] = refusals(lost_id, "write-off")
    assert "ERP refused the write off" in write_off["subject"] and f"/workflows/{handle.id}" in write_off["text"]
    assert emulators.slack_events()[payment["event"]] == 1 and emulators.slack_events()[write_off["event"]] == 1
