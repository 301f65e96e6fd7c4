"""Two ERPs side by side, and moving a legal entity from one to the other (``starter.py erp cutover``).

The ERPs: the Xero emulator (over HTTP) and an in-memory ERP added by descriptor only
(``tests/helpers/memory_adapters.py``: ``EXTRA_ADAPTERS`` and an entity's ``erp_adapter``). US01 keeps its
books in the in-memory ERP; EU01 and UK01 in Xero. Each test has its own emulators, data directory and task
queue, and runs the production worker (``worker.build_worker``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle

import starter
from bootstrap import for_cli, open_connectors, with_erp_switches
from cli.ledger import start_reconciliation
from connectors.stripe import StripeBilling
from runtime.launch import signal_amendment, start_quote_to_cash
from settings import Settings
from tests.helpers.books import fresh_sandboxes
from tests.helpers.deals import DealSpec, Line, seed_deal
from tests.helpers.histories import save_history
from tests.helpers.ledger import (
    BillingAccount,
    billing_account,
    canonical,
    draft_invoices,
    finalize,
    object_properties,
    pay,
    signal,
)
from tests.helpers.memory_adapters import ERP_BOOKS, ErpBook
from tests.helpers.servers import SandboxHandle
from tests.helpers.waiting import eventually
from tests.workflows.test_amendments import amend, applied, with_seats
from tests.workflows.test_amendments import until as amendments_until
from tests.workflows.test_quote_to_cash import sign_when_out
from worker import build_worker
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import LedgerStatus, LedgerStatusRequest, QuoteToCashResult, ReconciliationScope, Stage

EXTRA = ["tests.helpers.memory_adapters:ERP"]
NEW_EU01_TENANT = "memory-subsidiary-eu01"


@dataclass
class Mixed:
    client: Client
    settings: Settings
    sandboxes: dict[str, SandboxHandle]
    book: ErpBook
    billing: StripeBilling

    @property
    def stripe(self) -> SandboxHandle:
        return self.sandboxes["stripe"]

    async def account(self, entity: str) -> BillingAccount:
        return await billing_account(self.billing, self.sandboxes["hubspot"], entity=entity)

    async def finalized(self, account: BillingAccount, amounts: list[str], currency: str) -> list[str]:
        ids = await draft_invoices(self.billing, account, amounts, currency=currency)
        for invoice_id in ids:
            raw = await finalize(self.billing, self.stripe, invoice_id)
            await signal(self.client, self.settings, account.customer_id, canonical(self.settings, raw[-1]))
        return ids

    async def pay(self, account: BillingAccount, invoice_id: str, minor: int | None = None) -> WorkflowHandle:
        events = [e for raw in pay(self.stripe, invoice_id, minor) for e in canonical(self.settings, raw)]
        return await signal(self.client, self.settings, account.customer_id, events)

    def xero_docs(self, kind: str, tenant: str, **where: str) -> list[dict[str, Any]]:
        return [d for d in self.sandboxes["xero"].store.list(kind, tenant=tenant)
                if all(d.get(k) == v for k, v in where.items())]


def mixed_settings(base: Settings, book: str) -> Settings:
    """US01 on the in-memory ERP, EU01 and UK01 on Xero: settings alone."""
    entities = [e.model_copy(update={"erp_adapter": "memoryerp"}) if e.code == "US01" else e
                for e in base.legal_entities]
    return base.model_copy(update={"extra_adapters": EXTRA, "legal_entities": entities, "adapter_settings": {
        **base.adapter_settings, "memoryerp": {"book": book}},
        "notify_slack_webhook_url": None, "notify_smtp_host": None,  # no one to tell in these tests
        "contract_poll_interval_seconds": 1.0})  # no ingress here: the contract poll sees the signature


@asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    async with open_connectors(settings) as connectors, build_worker(client, settings, connectors):
        yield


async def end_runs_of(client: Client, task_queue: str) -> None:
    """Terminate the test's never-ending ledgers: fresh emulators number customers from 1 again, so the next
    test's ledger would otherwise join this one's (same workflow ID) on a queue no worker serves any more."""
    async for wf in client.list_workflows(f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"):
        await client.get_workflow_handle(wf.id).terminate(reason="test over")


@pytest_asyncio.fixture
async def mixed(client: Client, tmp_path: Path) -> AsyncIterator[Mixed]:
    with fresh_sandboxes(tmp_path) as (base, sandboxes):
        book = uuid.uuid4().hex
        settings = mixed_settings(base, book)
        async with open_connectors(settings) as connectors:
            billing = connectors.billing
            assert isinstance(billing, StripeBilling)
            try:
                yield Mixed(client=client, settings=settings, sandboxes=sandboxes,
                            book=ERP_BOOKS.setdefault(book, ErpBook()), billing=billing)
            finally:
                await end_runs_of(client, settings.task_queue)


async def ledger_status(client: Client, customer_id: str) -> LedgerStatus:
    handle = client.get_workflow_handle(f"ledger-stripe-{customer_id}")
    return await handle.query(  # type: ignore[no-any-return]
        AccountLedgerWorkflow.open_items, LedgerStatusRequest(include_settled=True))


async def cutover(m: Mixed, settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await starter.run(["erp", "cutover", *args], parts=for_cli(settings, client=m.client))
    out = capsys.readouterr()
    return code, out.out, out.err


# ---------------------------------------------------------------------------------------------------
async def test_erp_coexistence_a_deal_split_across_two_erps_provisions_each_entity_in_its_own(
        mixed: Mixed) -> None:
    m = mixed
    lines = [Line("PLAT-PRO", "Platform seats", quantity="10", price="40.00", model="subscription",
                  frequency="monthly"),
             Line("MS-ROLLOUT-DE", "German rollout", price="8000.00", model="milestone", entity="EU01")]
    deal_id = seed_deal(m.sandboxes["hubspot"], DealSpec(model="subscription", lines=lines))
    async with running_worker(m.client, m.settings):
        handle = await start_quote_to_cash(m.client, m.settings, deal_id)
        await sign_when_out(handle, m.sandboxes["ironclad"])
        result: QuoteToCashResult = await asyncio.wait_for(handle.result(), 60)

        assert result.outcome is Stage.PROVISIONED, result.reason
        us, eu = result.engagements
        assert (us.legal_entity, eu.legal_entity) == ("US01", "EU01")
        assert us.project is not None and eu.project is not None
        # US01's contact and project are in the in-memory ERP, in US01's tenant; EU01's in Xero, in EU01's
        us_tenant, eu_tenant = m.settings.entity("US01").erp_tenant_id, m.settings.entity("EU01").erp_tenant_id
        assert [a.erp_contact_id for a in m.book.contacts[us_tenant].values()] == [us.erp_contact_id]
        assert m.book.projects[us.project.code].erp_id == us.project.erp_id and m.book.tenants == {us_tenant}
        assert [c["ContactID"] for c in m.xero_docs("contact", eu_tenant)] == [eu.erp_contact_id]
        assert not m.xero_docs("contact", us_tenant), "nothing of US01 went to Xero"
        # each reference is named by its own adapter
        keys = set(result.business_keys)
        assert {f"memoryerp:contact:{us.erp_contact_id}", f"memoryerp:project:{us.project.erp_id}",
                f"xero:contact:{eu.erp_contact_id}", f"xero:project:{eu.project.erp_id}"} <= keys

        # reconciliation reads each entity's own ERP, and finds the deal delivered in both
        recon = await start_reconciliation(m.client, m.settings, ReconciliationScope(deal_ids=[deal_id]))
        assert {"memoryerp:US01", "xero:EU01"} <= {r.source for r in recon.reads}
        assert [f"{f.key}: {f.detail}" for f in recon.findings] == []


async def test_erp_cutover_moves_open_invoices_and_a_partial_payment_then_later_payments_follow(
        mixed: Mixed, capsys: pytest.CaptureFixture[str]) -> None:
    m = mixed
    eu01 = m.settings.entity("EU01")
    old_tenant = eu01.erp_tenant_id
    async with running_worker(m.client, m.settings):
        account = await m.account("EU01")
        first, second = await m.finalized(account, ["1000.00", "250.00"], "EUR")
        await m.pay(account, first, 40000)  # 400.00 of 1000.00: a partial payment
        status = await eventually(lambda: ledger_status(m.client, account.customer_id),
                                  lambda s: len(s.open_items) == 2 and all(i.erp_invoice_id for i in s.open_items)
                                  and any(i.paid == Decimal("400.00") for i in s.open_items)
                                  and not any(i.erp_pending for i in s.open_items),
                                  what="both invoices and the partial payment posted to Xero")
        old_first = next(i.erp_invoice_id for i in status.open_items if i.invoice_id == first)
        assert len(m.xero_docs("payment", old_tenant)) == 1

        code, out, err = await cutover(m, m.settings, capsys, "EU01", "--to", "memoryerp",
                                       "--tenant", NEW_EU01_TENANT, "--json")
        assert code == 0, err
        report = json.loads(out)
        assert (report["outcome"], report["from_adapter"], report["to_adapter"]) == ("moved", "xero", "memoryerp")
        moved = {(i["kind"], i["reference"]): i for i in report["moved"]}
        assert sorted(k for k, _ in moved) == ["contact", "invoice", "invoice", "payment"]
        assert moved[("invoice", first)]["old_id"] == old_first
        assert Path(report["json_path"]).exists() and "moved now" in Path(report["text_path"]).read_text()
        assert json.loads(report["settings_line"])["erp_adapter"] == "memoryerp"
        await save_history(m.client.get_workflow_handle("cutover-EU01-memoryerp"), "cutover_moved")

    # in the new ERP: both invoices whole, in the entity's new tenant, with the partial payment under its
    # billing reference; the contact under the same reference as in Xero
    held = {i.billing_id: i for i in m.book.invoices.values()}
    assert {k: (v.total.amount, v.currency) for k, v in held.items()} == {
        first: (Decimal("1000.00"), "EUR"), second: (Decimal("250.00"), "EUR")}
    new_first = moved[("invoice", first)]["new_id"]
    assert m.book.tenant_of[new_first] == NEW_EU01_TENANT
    assert [p.amount.amount for p in m.book.payments[new_first]] == [Decimal("400.00")]
    contact_ref = f"hubspot-company-{account.company_id}-EU01"
    assert m.book.contacts[NEW_EU01_TENANT][contact_ref].erp_contact_id == m.book.contact_of[new_first]

    # the worker restarts with the switch (the persisted override of LEGAL_ENTITIES) and the rest is paid:
    # the payment posts to the new ERP, on the copy of the invoice; nothing more reaches Xero
    switched = with_erp_switches(m.settings)
    assert (switched.entity("EU01").erp_adapter, switched.entity("EU01").erp_tenant_id) == (
        "memoryerp", NEW_EU01_TENANT)
    async with running_worker(m.client, switched):
        await m.pay(account, first)
        await eventually(lambda: ledger_status(m.client, account.customer_id),
                         lambda s: [i.invoice_id for i in s.open_items] == [second]
                         and not any(i.erp_pending for i in s.settled_items),
                         what="the rest of the moved invoice paid")
        await eventually(lambda: _amounts(m.book, new_first), lambda a: len(a) == 2,
                         what="the second payment recorded on the moved invoice")
        assert _amounts(m.book, new_first) == [Decimal("400.00"), Decimal("600.00")]
        assert len(m.xero_docs("payment", old_tenant)) == 1, "nothing more was posted to the old ERP"

        # the CRM shows the paid invoice on the company and the deal (its figures owner writes after the ledger)
        hubspot = m.sandboxes["hubspot"]
        for kind, object_id in (("companies", account.company_id), ("deals", account.deal_id)):
            await eventually(lambda k=kind, o=object_id: object_properties(hubspot, k, o),  # type: ignore[misc]
                             lambda p: p.get("revops_paid_eur") not in (None, "")
                             and Decimal(str(p["revops_paid_eur"])) == Decimal("1000.00"),
                             what=f"the CRM {kind[:-1]}'s paid EUR figure")

        # reconciliation of EU01 now reads the new ERP, and it is clean
        result = await start_reconciliation(m.client, switched, ReconciliationScope(
            legal_entities=["EU01"], customer_ids=[account.customer_id]))
        assert [f"{f.key}: {f.detail}" for f in result.findings] == []
        assert {r.source for r in result.reads} >= {"memoryerp:EU01"}
        [eur] = [t for t in result.totals if t.currency == "EUR"]
        assert (eur.erp_invoiced, eur.erp_paid) == ("1250.00", "1000.00")

        # a second run changes nothing: everything is recorded as moved before
        writes = m.book.writes
        code, out, err = await cutover(m, switched, capsys, "EU01", "--to", "memoryerp", "--tenant",
                                       NEW_EU01_TENANT, "--json")
        assert code == 0, err
        again = json.loads(out)
        assert again["outcome"] == "unchanged" and again["moved"] and not any(i["fresh"] for i in again["moved"])
        assert m.book.writes == writes and len(m.book.invoices) == 2


async def test_erp_cutover_is_refused_while_a_ledger_has_erp_writes_pending_and_names_it(
        mixed: Mixed, capsys: pytest.CaptureFixture[str]) -> None:
    m = mixed
    m.book.refuse = "the ERP period is locked"  # US01's ERP refuses the post: the ledger keeps it pending
    async with running_worker(m.client, m.settings):
        account = await m.account("US01")
        [invoice_id] = await m.finalized(account, ["300.00"], "USD")
        await eventually(lambda: ledger_status(m.client, account.customer_id),
                         lambda s: any(i.erp_pending and i.erp_pending[0].reason for i in s.open_items),
                         what="the post refused and kept pending")

        code, out, err = await cutover(m, m.settings, capsys, "US01", "--to", "xero")
        await save_history(m.client.get_workflow_handle("cutover-US01-xero"), "cutover_refused")

    assert code == 1, out
    assert f"ledger-stripe-{account.customer_id}: ERP writes pending ({invoice_id} invoice)" in out
    assert out.startswith("cut-over cutover-US01-xero refused: US01 has runs mid-posting") and not err
    assert with_erp_switches(m.settings).entity("US01").erp_adapter == "memoryerp", "nothing was switched"
    assert not m.xero_docs("contact", m.settings.entity("US01").erp_tenant_id), "nothing was copied"


async def test_erp_cutover_copies_open_projects_and_a_later_amendment_updates_the_copy_not_the_old_project(
        mixed: Mixed, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 26: an entity's open projects move with it (tasks and budget), the report lists them, and an
    amendment of a moved deal updates the project in the new ERP; a rerun copies nothing twice."""
    m = mixed
    old_tenant = m.settings.entity("EU01").erp_tenant_id
    deal_id = seed_deal(m.sandboxes["hubspot"], DealSpec(model="subscription", region="EMEA", country="DE",
                                                         currency="EUR"))
    async with running_worker(m.client, m.settings):
        handle = await start_quote_to_cash(m.client, m.settings, deal_id)
        await sign_when_out(handle, m.sandboxes["ironclad"])
        result: QuoteToCashResult = await asyncio.wait_for(handle.result(), 60)
        assert result.outcome is Stage.PROVISIONED, result.reason
        [engagement] = result.engagements
        assert engagement.legal_entity == "EU01" and engagement.project and engagement.project.erp_id
        old_project = engagement.project.erp_id
        [xero_project] = m.xero_docs("project", old_tenant, projectId=old_project)
        # the customer's ledger holds an invoice of EU01: its contact is one the cut-over moves
        account = BillingAccount(company_id="", deal_id=deal_id, customer_id=engagement.billing_customer_id or "",
                                 entity="EU01")
        await m.finalized(account, ["100.00"], "EUR")
        await eventually(lambda: ledger_status(m.client, account.customer_id),
                         lambda s: s.open_items and all(i.erp_invoice_id for i in s.open_items),
                         what="the invoice posted to Xero")

        code, out, err = await cutover(m, m.settings, capsys, "EU01", "--to", "memoryerp",
                                       "--tenant", NEW_EU01_TENANT, "--json")
        assert code == 0, err
        report = json.loads(out)
        [project_item] = [i for i in report["moved"] if i["kind"] == "project"]
        assert (project_item["old_id"], project_item["reference"]) == (old_project, engagement.project.code)
        assert Decimal(project_item["amount"]) == Decimal(xero_project["estimate"]["value"])
        assert "projects: 1 moved now" in Path(report["text_path"]).read_text()

    # the copy in the new ERP: same code, budget and tasks, in the entity's new tenant, for the moved contact
    copy = m.book.projects[engagement.project.code]
    assert copy.erp_id == project_item["new_id"] and copy.erp_tenant_id == NEW_EU01_TENANT
    assert copy.budget.amount == Decimal(xero_project["estimate"]["value"])
    assert sorted(t.name for t in copy.tasks) == sorted(t.name for t in engagement.project.tasks)
    assert copy.erp_contact_id == m.book.contacts[NEW_EU01_TENANT][next(iter(m.book.contacts[NEW_EU01_TENANT]))
                                                                   ].erp_contact_id

    switched = with_erp_switches(m.settings)
    async with running_worker(m.client, switched):
        record_id, signed = result.contract.clm_record_id, result.contract.terms  # type: ignore[union-attr]
        assert record_id and signed
        expanded = with_seats(signed, 30, signed.end_date.replace(year=2028))  # type: ignore[union-attr]
        amendment_id = amend(m.sandboxes["ironclad"], record_id, 1, signed, expanded)
        amendments = await signal_amendment(m.client, switched, record_id, sequence=1,
                                            clm_amendment_id=amendment_id)
        status = await amendments_until(amendments, applied(1), "amendment 1 applied")
        assert status.history[0].outcome == "applied", [t.note for t in status.timeline]
        budget = m.book.projects[engagement.project.code].budget
        assert budget.amount == expanded.total_value.amount and budget.amount != copy.budget.amount
        assert m.book.projects[engagement.project.code].erp_id == copy.erp_id
        [untouched] = m.xero_docs("project", old_tenant, projectId=old_project)
        assert untouched["estimate"] == xero_project["estimate"], "the old ERP's project was not updated"
        await amendments.terminate("test done")

        # a rerun copies nothing twice
        code, out, err = await cutover(m, switched, capsys, "EU01", "--to", "memoryerp", "--tenant",
                                       NEW_EU01_TENANT, "--json")
        assert code == 0, err
        again = json.loads(out)
        assert again["outcome"] == "unchanged" and not any(i["fresh"] for i in again["moved"])
        assert [i["new_id"] for i in again["moved"] if i["kind"] == "project"] == [copy.erp_id]
        assert len(m.book.projects) == 1


def _amounts(book: ErpBook, erp_invoice_id: str) -> list[Decimal]:
    return [p.amount.amount for p in book.payments.get(erp_invoice_id, [])]
