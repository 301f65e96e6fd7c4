"""The billing and amendment polls catch what a lost webhook did not deliver, through the webhooks' own dedupe
path: the production worker and the ingress on one event ledger, the real dev server, the emulators over HTTP.
A lost webhook is one the emulator emitted to no target."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.worker import Worker

from activities.change_polls import AmendmentPollRequest, BillingPollRequest, ChangePollResult
from canonical import Invoice, Money
from connectors.ports import BillingPort
from runtime.schedules import ensure_change_poll_schedules
from settings import Settings
from stores.events import AcceptedEvent, list_deliveries, save_checkpoint
from tests.helpers.deals import DealSpec
from tests.helpers.histories import save_history
from tests.helpers.ledger import billing_account, draft_invoices, finalize, pay
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.waiting import eventually
from tests.helpers.webhooks import stripe_sign
from tests.ingress.conftest import MakeIngress, RunningIngress, post, signal_names
from tests.workflows.test_amendments import amend, applied, provision, until, with_seats
from worker import Connectors, build_worker, open_connectors
from workflows.change_polls import AmendmentPollWorkflow, BillingEventPollWorkflow

US01_TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


@dataclass
class PollRig:
    client: Client
    settings: Settings
    connectors: Connectors
    ingress: RunningIngress
    sandboxes: dict[str, SandboxHandle]

    async def start_window(self, checkpoint: str) -> None:
        """The poll's checkpoint at the start of a fresh second, before the test acts: the vendors keep times in
        whole seconds, so the poll reads this test's changes and no earlier test's."""
        now = datetime.now(UTC)
        await asyncio.sleep(1 - now.microsecond / 1_000_000)
        self.ingress.ledger.run_sync(save_checkpoint, name=checkpoint,
                                     checkpoint=datetime.now(UTC).replace(microsecond=0))

    async def billing_poll(self, history: str | None = None) -> ChangePollResult:
        handle = await self.client.start_workflow(
            BillingEventPollWorkflow.run, BillingPollRequest(overlap_seconds=0), id=f"billing-poll-{uuid.uuid4()}",
            task_queue=self.settings.task_queue)
        result = await handle.result()
        if history:
            await save_history(handle, history)
        return result

    async def amendment_poll(self, overlap_seconds: float = 0, history: str | None = None) -> ChangePollResult:
        handle = await self.client.start_workflow(
            AmendmentPollWorkflow.run, AmendmentPollRequest(overlap_seconds=overlap_seconds),
            id=f"amendment-poll-{uuid.uuid4()}", task_queue=self.settings.task_queue)
        result = await handle.result()
        if history:
            await save_history(handle, history)
        return result

    async def deliver_stripe(self, raw: dict[str, Any]) -> dict[str, Any]:
        """One Stripe event delivered to the ingress as Stripe sends it."""
        body = json.dumps(raw).encode()
        secret = vendor_settings(self.settings, "stripe").webhook_secret
        response = await post(self.ingress.url("stripe"), body, {"Stripe-Signature": stripe_sign(secret, body),
                                                                 "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def erp_invoice(self, invoice_id: str) -> Invoice | None:
        found = [i for i in await self.connectors.erp.list_invoices(US01_TENANT) if i.billing_id == invoice_id]
        return found[0] if found else None

    def dedupe_records(self, key: str) -> list[AcceptedEvent]:
        def rows(*, session: Any) -> list[AcceptedEvent]:
            from sqlmodel import select
            return list(session.exec(select(AcceptedEvent).where(AcceptedEvent.vendor_event_id == key)).all())

        return self.ingress.ledger.run_sync(rows)

    def deliveries(self, event_id: str) -> list[Any]:
        return self.ingress.ledger.run_sync(list_deliveries, event_id=event_id, limit=50)


@pytest.fixture
def poll_settings(ingress_settings: Settings) -> Settings:
    return ingress_settings.model_copy(update={"contract_poll_interval_seconds": 1.0,
                                               "activity_retry_max_seconds": 2.0,
                                               "ingress_temporal_timeout_seconds": 10.0})


@pytest_asyncio.fixture
async def rig(client: Client, poll_settings: Settings, make_ingress: MakeIngress,
              sandboxes: dict[str, SandboxHandle]) -> AsyncIterator[PollRig]:
    """The production worker (its polls included) and the ingress, sharing the test's event ledger."""
    ingress = make_ingress(settings=poll_settings)
    async with open_connectors(poll_settings) as connectors:
        worker: Worker = build_worker(client, poll_settings, connectors)
        async with worker:
            yield PollRig(client=client, settings=poll_settings, connectors=connectors, ingress=ingress,
                          sandboxes=sandboxes)


def _billing(rig: PollRig) -> Any:
    billing: BillingPort = rig.connectors.billing
    return billing


# -- billing ---------------------------------------------------------------------------------------
async def test_billing_poll_applies_a_lost_invoice_paid_once_and_a_late_webhook_changes_nothing(
        rig: PollRig) -> None:
    stripe = rig.sandboxes["stripe"]
    account = await billing_account(_billing(rig), rig.sandboxes["hubspot"])
    [invoice_id] = await draft_invoices(_billing(rig), account, ["100.00"])
    await rig.start_window("billing-events")
    [finalized] = await finalize(_billing(rig), stripe, invoice_id)
    await rig.deliver_stripe(finalized)
    await eventually(lambda: rig.erp_invoice(invoice_id), lambda i: i is not None, what="invoice posted")
    lost = pay(stripe, invoice_id)  # invoice.payment_succeeded, invoice.paid, invoice.updated: no webhook
    [paid] = [e for e in lost if e["type"] == "invoice.paid"]

    first = await rig.billing_poll(history="poll_billing_lost_payment")
    erp = await eventually(lambda: rig.erp_invoice(invoice_id),
                           lambda i: i is not None and i.amount_paid == Money.of("100.00", "USD"), what="paid")
    second = await rig.billing_poll()
    late = await rig.deliver_stripe(paid)

    assert first.complete and first.outcomes == {"signalled": 2}, first  # payment_succeeded and paid
    assert first.already_handled == 1, "the finalized event came by webhook"
    assert second.outcomes == {} and second.already_handled == second.events_seen >= 2, second
    assert [r["outcome"] for r in late["events"]] == ["duplicate"]
    assert erp is not None and erp.amount_paid == Money.of("100.00", "USD")
    after = await rig.erp_invoice(invoice_id)
    assert after is not None and after.amount_paid == Money.of("100.00", "USD"), "posted once"
    [record] = rig.dedupe_records(paid["id"])
    assert (record.state, record.outcome) == ("done", "signalled")
    rows = rig.deliveries(paid["id"])
    assert sorted((r.signature, r.outcome) for r in rows) == [("poll", "signalled"), ("valid", "duplicate")]


async def test_billing_poll_after_the_webhooks_adds_no_ledger_entry(rig: PollRig) -> None:
    stripe = rig.sandboxes["stripe"]
    account = await billing_account(_billing(rig), rig.sandboxes["hubspot"])
    [invoice_id] = await draft_invoices(_billing(rig), account, ["80.00"])
    await rig.start_window("billing-events")
    raw = [*await finalize(_billing(rig), stripe, invoice_id), *pay(stripe, invoice_id, 3000)]
    for event in raw:
        await rig.deliver_stripe(event)
    await eventually(lambda: rig.erp_invoice(invoice_id),
                     lambda i: i is not None and i.amount_paid == Money.of("30.00", "USD"), what="part paid")

    result = await rig.billing_poll()

    handed = [e for e in raw if e["type"] in ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded")]
    assert result.outcomes == {} and result.already_handled == len(handed) >= 2
    for event in handed:
        assert len(rig.dedupe_records(event["id"])) == 1
        assert [r.signature for r in rig.deliveries(event["id"])] == ["valid"], "one ledger entry, the webhook's"
    erp = await rig.erp_invoice(invoice_id)
    assert erp is not None and erp.amount_paid == Money.of("30.00", "USD")


# -- amendments ------------------------------------------------------------------------------------
async def test_amendment_poll_applies_a_lost_amendment_once_and_skips_one_its_webhook_brought(
        rig: PollRig) -> None:
    ironclad = rig.sandboxes["ironclad"]
    result = await provision(rig.client, rig.settings, rig.sandboxes, DealSpec(model="subscription"))
    record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
    assert record_id and signed
    await rig.start_window("clm-amendments")
    thirty = with_seats(signed, 30)
    amend(ironclad, record_id, 1, signed, thirty)  # its webhook goes nowhere: lost

    first = await rig.amendment_poll(history="poll_amendment_lost")
    handle = rig.client.get_workflow_handle(f"contract-ironclad-{record_id}")
    await until(handle, applied(1), "amendment 1 applied by the poll")
    second = await rig.amendment_poll(overlap_seconds=30)  # re-reads the first one's window

    assert first.complete and first.outcomes == {"started": 1}, first
    assert second.outcomes == {} and second.already_handled == 1
    [record] = rig.dedupe_records(f"amendment:{record_id}:1")
    assert record.vendor == "ironclad" and record.outcome == "started"

    # amendment 2's webhook reaches the ingress; the poll then finds it handled
    ironclad.post_control("webhooks", {"url": rig.ingress.url("ironclad")})
    try:
        amend(ironclad, record_id, 2, thirty, with_seats(signed, 35))
        await until(handle, applied(1, 2), "amendment 2 applied by its webhook")
    finally:
        ironclad.control.webhooks.targets = [t for t in ironclad.control.webhooks.targets
                                             if t.url != rig.ingress.url("ironclad")]
    third = await rig.amendment_poll(overlap_seconds=5)

    assert third.outcomes == {} and third.already_handled == 2
    [webhook] = rig.dedupe_records(f"amendment:{record_id}:2")
    assert webhook.outcome == "signalled"
    rows = [r for r in rig.ingress.deliveries(vendor="ironclad") if r.workflow_id == handle.id]
    assert sorted(r.signature for r in rows) == ["poll", "valid"], "one ledger entry per amendment"
    assert (await signal_names(handle)).count("amendment_executed") == 2
    await handle.terminate("test done")


async def test_change_poll_schedules_are_created_then_updated(client: Client, poll_settings: Settings) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}-"
    try:
        created = await ensure_change_poll_schedules(client, poll_settings, prefix=prefix)
        faster = poll_settings.model_copy(update={"billing_poll_interval_seconds": 60})
        updated = await ensure_change_poll_schedules(client, faster, prefix=prefix)

        assert created == {f"{prefix}billing-event-poll": "created", f"{prefix}clm-amendment-poll": "created"}
        assert set(updated.values()) == {"updated"}
        billing = await client.get_schedule_handle(f"{prefix}billing-event-poll").describe()
        amendments = await client.get_schedule_handle(f"{prefix}clm-amendment-poll").describe()
        assert billing.schedule.spec.intervals[0].every == timedelta(seconds=60)
        assert amendments.schedule.spec.intervals[0].every == timedelta(
            seconds=poll_settings.amendment_poll_interval_seconds)
        assert billing.schedule.action.workflow == "BillingEventPollWorkflow"  # type: ignore[attr-defined]
        assert amendments.schedule.action.workflow == "AmendmentPollWorkflow"  # type: ignore[attr-defined]
    finally:
        for name in ("billing-event-poll", "clm-amendment-poll"):
            await client.get_schedule_handle(prefix + name).delete()


async def test_billing_poll_outage_is_retried_durably_then_applies_the_lost_payment(rig: PollRig) -> None:
    """Stripe's events list failing (503) fails the poll's activity; Temporal retries it and, once Stripe answers,
    the lost payment is applied once."""
    stripe = rig.sandboxes["stripe"]
    account = await billing_account(_billing(rig), rig.sandboxes["hubspot"])
    [invoice_id] = await draft_invoices(_billing(rig), account, ["60.00"])
    await rig.start_window("billing-events")
    [finalized] = await finalize(_billing(rig), stripe, invoice_id)
    await rig.deliver_stripe(finalized)
    await eventually(lambda: rig.erp_invoice(invoice_id), lambda i: i is not None, what="invoice posted")
    pay(stripe, invoice_id)  # lost

    with stripe.faults(error_rate=1.0, status=503, path_prefix="/v1/events"):
        handle = await rig.client.start_workflow(
            BillingEventPollWorkflow.run, BillingPollRequest(overlap_seconds=0), id=f"billing-poll-{uuid.uuid4()}",
            task_queue=rig.settings.task_queue)
        pending = await eventually(lambda: _pending(handle), lambda p: p and p[0].attempt >= 2,
                                   what="the poll's activity retried")
    result = await handle.result()
    erp = await eventually(lambda: rig.erp_invoice(invoice_id),
                           lambda i: i is not None and i.amount_paid == Money.of("60.00", "USD"), what="paid")

    assert pending[0].last_failure.application_failure_info.type == "Unavailable", "a transient failure, retried"
    assert result.complete and result.outcomes.get("signalled", 0) >= 1
    assert erp is not None and erp.amount_paid == Money.of("60.00", "USD")


async def _pending(handle: Any) -> list[Any]:
    description = await handle.describe()
    return list(description.raw_description.pending_activities)
