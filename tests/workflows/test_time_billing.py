"""Time billing on the time-skipping server against the Xero and Stripe emulators over real HTTP: a person logs
time in the project system, each month's approved time is billed once at the contract's rate card, with
hours, rate and period on each invoice line, and a period billed again bills nothing twice."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
import stripe
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.time_billing import TimeBillingActivities
from canonical import Account, Address, Money, Project, ProjectTask, TaskChargeType
from canonical.keys import project_code, time_task_name
from canonical.time_billing import BillingPeriod
from connectors.acts import erp_acts
from connectors.stripe import from_settings as stripe_from_settings
from connectors.stripe.client import StripeBilling
from connectors.xero import XeroErp
from connectors.xero import from_settings as xero_from_settings
from settings import Settings
from tests.helpers.histories import save_history
from tests.helpers.servers import SandboxHandle, vendor_settings
from tests.helpers.waiting import eventually
from workflows.models import TimeBillingInput, TimeBillingStage, TimeBillingStatus
from workflows.time_billing import TimeBillingWorkflow


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


@pytest_asyncio.fixture
async def ports(settings: Settings, xero_sandbox: SandboxHandle, stripe_sandbox: SandboxHandle
                ) -> AsyncIterator[tuple[XeroErp, StripeBilling]]:
    erp, billing = xero_from_settings(settings), stripe_from_settings(settings)
    yield erp, billing
    await erp.aclose()
    await billing.aclose()


async def t_and_m_project(erp: XeroErp, billing: StripeBilling, settings: Settings, today: date
                          ) -> tuple[Project, str, str]:
    """A provisioned time-and-materials engagement: ERP contact and project (two rate-card roles and a fixed
    milestone task), billing customer. Returns the project, the billing customer and the deal ID."""
    deal = uuid.uuid4().hex[:10]
    tenant = settings.entity("US01").erp_tenant_id
    account = Account(name=f"Timely {deal} Inc", crm_id=deal, country="US",
                      address=Address(line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"))
    ref = f"test-company-{deal}-US01"
    contact = await erp.upsert_customer(tenant, account, contact=None, reference=ref, idempotency_key=f"c-{deal}")
    project = await erp.create_project(tenant, Project(
        code=project_code(deal, "US01"), name="Rollout", erp_contact_id=contact.erp_contact_id or "",
        erp_tenant_id=tenant, budget=usd("20000.00"), deadline=today + timedelta(days=90), tasks=[
            ProjectTask(name=time_task_name("CONSULT"), charge_type=TaskChargeType.TIME, rate=usd("150.00")),
            ProjectTask(name=time_task_name("ARCH"), charge_type=TaskChargeType.TIME, rate=usd("133.33")),
            ProjectTask(name="M1 Kick-off", charge_type=TaskChargeType.FIXED, rate=usd("5000.00"))]),
        idempotency_key=f"p-{deal}")
    customer = await billing.ensure_customer(account, contact=None, reference=ref, legal_entity="US01",
                                             idempotency_key=f"b-{deal}")
    return project, customer, deal


def request(project: Project, customer: str, deal: str, start: date, end: date) -> TimeBillingInput:
    return TimeBillingInput(project_code=project.code, legal_entity="US01", tenant_id=project.erp_tenant_id,
                            project_id=project.erp_id or "", customer_id=customer, deal_id=deal, currency="USD",
                            rates={"CONSULT": usd("150.00"), "ARCH": usd("133.33")}, start_date=start, end_date=end)


def sdk(settings: Settings, stripe_sandbox: SandboxHandle) -> stripe.StripeClient:
    return stripe.StripeClient(vendor_settings(settings, "stripe").api_key, max_network_retries=0,
                               base_addresses={"api": stripe_sandbox.base_url})


def time_lines(client: stripe.StripeClient, customer: str) -> list[Any]:
    items = client.invoice_items.list(params={"customer": customer, "limit": 100})
    return [i for i in items.auto_paging_iter() if (i.metadata or {}).get("revops_time_entry")]


async def test_time_and_materials_bills_logged_time_once_per_period(
        time_skipping_env: WorkflowEnvironment, settings: Settings, ports: tuple[XeroErp, StripeBilling],
        stripe_sandbox: SandboxHandle) -> None:
    erp, billing = ports
    env = time_skipping_env
    today = (await env.get_current_time()).date()
    project, customer, deal = await t_and_m_project(erp, billing, settings, today)
    first = BillingPeriod.month_of(today)
    second = first.following()
    async with httpx.AsyncClient(timeout=10) as http:
        consultant = erp_acts(settings, settings.entity("US01"), http)
        # month one: 1.5 h consulting, 15 min architecture; 2 h on the fixed milestone (not billed by time)
        e1 = await consultant.log_time(project.code, hours=Decimal("1.5"), user="consultant@example.com",
                                       task="CONSULT", day=today)
        e2 = await consultant.log_time(project.code, hours=Decimal("0.25"), user="Sandbox Manager", task="ARCH",
                                       day=today)
        await consultant.log_time(project.code, hours=Decimal(2), user="consultant@example.com", task="M1 Kick-off",
                                  day=today)
        assert e1.minutes == 90 and e1.status == "ACTIVE"

        queue = f"time-{uuid.uuid4()}"
        flow = request(project, customer, deal, today, second.start + timedelta(days=10))
        async with Worker(env.client, task_queue=queue, workflows=[TimeBillingWorkflow],
                          activities=TimeBillingActivities(erp=erp, billing=billing).all()):
            handle = await env.client.start_workflow(TimeBillingWorkflow.run, flow, id=f"time-test-{uuid.uuid4()}",
                                                     task_queue=queue)
            now = await env.get_current_time()
            await env.sleep(timedelta(days=(first.end - now.date()).days) + timedelta(hours=1))
            status = await eventually(lambda: handle.query(TimeBillingWorkflow.status),
                                      lambda s: len(s.periods) == 1, what="the first month billed")
            [invoice_one] = status.invoices
            sdk_client = sdk(settings, stripe_sandbox)
            one = await asyncio.to_thread(sdk_client.invoices.retrieve, invoice_one)
            # hand-computed: 1.5 h x 150.00 = 225.00; 0.25 h x 133.33 = 33.3325 -> 33.33
            assert (one.status, one.amount_due, one.currency) == ("open", 22500 + 3333, "usd")
            lines = {line.metadata["revops_time_entry"]: line for line in one.lines.data}
            assert set(lines) == {e1.entry_id, e2.entry_id}, "the fixed milestone's time is not billed by the hour"
            assert lines[e1.entry_id].description.startswith("CONSULT: 1.50 h x 150.00 USD per hour")
            assert f"period {first.label}" in lines[e1.entry_id].description
            assert (lines[e2.entry_id].metadata["revops_hours"], lines[e2.entry_id].metadata["revops_rate"],
                    lines[e2.entry_id].metadata["revops_period"]) == ("0.25", "133.33", first.label)

            # month two: 2 h consulting, and an hour of architecture logged late for the first month
            now = (await env.get_current_time()).date()
            assert now >= second.start
            e4 = await consultant.log_time(project.code, hours=Decimal(2), user="consultant@example.com",
                                           task="CONSULT", day=now)
            e5 = await consultant.log_time(project.code, hours=Decimal(1), user="consultant@example.com",
                                           task="ARCH", day=first.end - timedelta(days=1))
            result: TimeBillingStatus = await handle.result()
            await save_history(handle, "time_billing_two_periods")
            assert result.stage is TimeBillingStage.DONE and len(result.invoices) == 2
            two = await asyncio.to_thread(sdk_client.invoices.retrieve, result.invoices[1])
            assert two.amount_due == 30000 + 13333
            assert {line.metadata["revops_time_entry"] for line in two.lines.data} == {e4.entry_id, e5.entry_id}
            assert result.billed_entries == 4 and result.hours_to_date == Decimal("4.75")
            assert result.billed_to_date == usd("691.66") and result.budget == usd("20000.00")

            # the same periods run again (a retried or duplicated period run): nothing is billed twice
            again = await env.client.execute_workflow(
                TimeBillingWorkflow.run, request(project, customer, deal, today, second.start + timedelta(days=10)),
                id=f"time-test-{uuid.uuid4()}", task_queue=queue)
            assert again.invoices == [] and again.billed_entries == 0
            assert again.billed_to_date == usd("691.66"), "the time billed so far is still visible"

    billed = Counter(i.metadata["revops_time_entry"] for i in time_lines(sdk_client, customer))
    assert billed == Counter({e1.entry_id: 1, e2.entry_id: 1, e4.entry_id: 1, e5.entry_id: 1})
