"""The steps of an ERP cut-over (``CutoverWorkflow``, ``starter.py erp cutover <entity> --to <erp>``), and the
forwarding of ERP writes addressed to a tenant whose books moved (:class:`ErpMoves`).

A cut-over moves one legal entity's books from its ERP to another:

1. ``survey_cutover``: refuse while the entity has runs mid-posting (a ledger with ERP writes pending for one
   of the entity's invoices or an ERP write running now; a quote-to-cash run provisioning or compensating in
   the entity; a company backfill into the entity running), and name the customers whose ledgers hold the
   entity's invoices (their ERP contacts are the ones to move);
2. ``switch_entity_erp``: record the switch (``stores/cutover.py``). From here on every ERP write addressed to
   the old tenant goes to the new one (:class:`ErpMoves`), so nothing is posted to the old ERP while the copy
   runs; a payment on an invoice not copied yet is refused there and re-posted by its ledger once it is;
3. ``move_erp_contacts``, ``move_open_projects`` and ``move_open_receivables``: copy the contacts, then every
   open project (budget, deadline, tasks) of a moved contact, then every open invoice (an amount still due) with
   the payments already recorded on it, each under an idempotency key that is the same on
   every rerun (``cutover-<entity>-<erp>:<kind>:<oldId>``) and each recorded (old ID -> new ID) once done; a
   rerun skips what is recorded, and a write whose record was lost is answered by the ERP's idempotency;
4. ``write_cutover_report``: JSON and text of what moved, under ``data_dir/cutover/``.

A partly paid invoice moves as the whole invoice plus its payments, each payment under its own billing
reference, not as a new invoice for the remaining amount: reconciliation compares each billing invoice's total
and each billing payment with the ERP's, so only the invoice-plus-payments form stays clean, and the new ERP
keeps the history an auditor asks for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.retrying import business_step
from canonical import Account, Invoice, InvoiceStatus, LegalEntity, Payment, Project
from canonical.keys import billing_customer_reference, cutover_record_key, erp_contact_reference
from canonical.ledger import LedgerInvoice
from canonical.reconciliation import ErpPayment
from canonical.systems import Systems
from connectors.ports import ErpChangeFeed, ErpPort
from stores import cutover as store

T = TypeVar("T")

#: the ERP write activities: one of these running in a ledger is a posting in flight
ERP_WRITES = frozenset({"post_erp_invoice", "record_erp_payment", "post_erp_credit_note", "void_erp_invoice",
                        "reverse_erp_credit_note", "find_erp_contacts", "create_erp_contacts"})
LEDGER_TYPE = "AccountLedgerWorkflow"
QUOTE_TO_CASH_TYPE = "QuoteToCashWorkflow"
BACKFILL_TYPE = "CompanyBackfillWorkflow"
POSTING_STAGES = ("provisioning", "compensating")
QUERY_TIMEOUT = timedelta(seconds=10)


class CutoverRequest(BaseModel):
    """Move ``entity``'s books to the ERP adapter ``to_adapter`` (its tenant there: ``to_tenant``, or the same
    tenant ID as now)."""

    entity: str
    to_adapter: str
    to_tenant: str | None = None


class CutoverCustomer(BaseModel):
    """A billing customer whose ledger holds invoices of the entity, and the reference of its ERP contact."""

    customer_id: str
    reference: str


class CutoverSurvey(BaseModel):
    busy: list[str] = Field(default_factory=list, description="'<workflowId>: <what it is doing>'")
    customers: list[CutoverCustomer] = Field(default_factory=list)


class CutoverPlan(BaseModel):
    cutover_id: str
    entity: str
    from_adapter: str
    from_tenant: str
    to_adapter: str
    to_tenant: str
    customers: list[CutoverCustomer] = Field(default_factory=list)
    settings_line: str = Field(default="", description="the entity's LEGAL_ENTITIES entry after the move (JSON)")


class MovedItem(BaseModel):
    """One record copied: ``fresh`` when this run copied it, False when an earlier run had."""

    kind: str
    old_id: str
    new_id: str
    reference: str = ""
    amount: str = ""
    currency: str = ""
    fresh: bool = True


class MoveResult(BaseModel):
    items: list[MovedItem] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list, description="what was not moved, and why")


class CutoverReport(BaseModel):
    """What a cut-over did (the workflow's result; written as JSON and text by the last step)."""

    cutover_id: str
    entity: str
    outcome: str = Field(description="moved, refused, or unchanged (already on the target)")
    from_adapter: str = ""
    from_tenant: str = ""
    to_adapter: str = ""
    to_tenant: str = ""
    refused_by: list[str] = Field(default_factory=list)
    moved: list[MovedItem] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)
    settings_line: str = Field(default="", description="the entity's LEGAL_ENTITIES entry after the move")
    json_path: str = ""
    text_path: str = ""

    def counts(self) -> dict[str, tuple[int, int]]:
        """kind -> (moved by this run, moved before)."""
        out: dict[str, tuple[int, int]] = {}
        for item in self.moved:
            fresh, before = out.get(item.kind, (0, 0))
            out[item.kind] = (fresh + item.fresh, before + (not item.fresh))
        return out

    def text(self) -> str:
        """The report for people."""
        if self.outcome == "refused":
            return (f"cut-over {self.cutover_id} refused: {self.entity} has runs mid-posting; let them finish "
                    "(or repair them) and run it again:\n" + "\n".join(f"  {r}" for r in self.refused_by))
        lines = [f"cut-over {self.cutover_id}: {self.entity} from {self.from_adapter} (tenant {self.from_tenant}) "
                 f"to {self.to_adapter} (tenant {self.to_tenant}): {self.outcome}"]
        for kind, (fresh, before) in sorted(self.counts().items()):
            lines.append(f"  {kind}s: {fresh} moved now, {before} moved before")
        lines += [f"  {i.kind} {i.reference or i.old_id}: {i.old_id} -> {i.new_id}"
                  + (f" ({i.amount} {i.currency})" if i.amount else "") + ("" if i.fresh else " (before)")
                  for i in self.moved]
        lines += [f"  not moved: {s}" for s in self.skipped]
        if self.settings_line:
            lines.append(f"  the entity's entry for LEGAL_ENTITIES in .env: {self.settings_line}")
        return "\n".join(lines)


class _LedgerView(BaseModel):
    """The part of a ledger's ``open_items`` answer a cut-over reads (the workflows' model, seen from below)."""

    customer_id: str
    crm_company_id: str | None = None
    open_items: list[LedgerInvoice] = Field(default_factory=list)
    settled_items: list[LedgerInvoice] = Field(default_factory=list)


@dataclass(frozen=True)
class ErpBooks:
    """Where an ERP call addressed to one tenant goes: ``tenant`` at ``erp`` (the new ones when a cut-over moved
    the addressed tenant's books); ``receives``: a cut-over copied records into ``tenant``, so an ID from before
    the move may name a copy there (:meth:`ErpMoves.new_id`)."""

    tenant: str
    erp: ErpPort
    receives: bool = False


class ErpMoves:
    """Forwarding of ERP writes after a cut-over: a call addressed to a tenant whose books moved goes to the new
    adapter and tenant, and an ID of a record the cut-over copied (contact, project, invoice) becomes the copy's
    ID there. On a database server the look-ups run off the event loop."""

    def __init__(self, engine: Engine, adapter_of: Callable[[str], ErpPort]) -> None:
        self.engine = engine
        self.adapter_of = adapter_of
        # SQLite answers in-process in tens of microseconds, less than a hop to a thread costs; a server's
        # round trip must not hold the worker's event loop
        self._in_place = engine.dialect.name == "sqlite"

    async def _ask(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs) if self._in_place else await asyncio.to_thread(fn, *args, **kwargs)

    async def books(self, tenant_id: str, erp: ErpPort) -> ErpBooks:
        """Where a call to ``tenant_id`` (at ``erp``, as addressed) goes: one look-up."""
        moves = await self._ask(store.tenant_moves, self.engine, tenant_id)
        if moves.forwarded_to is None:
            return ErpBooks(tenant_id, erp, moves.receives)
        adapter, tenant = moves.forwarded_to
        return ErpBooks(tenant, self.adapter_of(adapter), receives=True)

    async def new_id(self, books: ErpBooks, kind: str, old_id: str) -> str:
        """The ID in ``books.tenant`` of what was ``old_id`` before a cut-over copied it there (else ``old_id``);
        no look-up where nothing was ever copied."""
        if not books.receives or not old_id:
            return old_id
        new = await self._ask(store.new_id_of, self.engine, to_tenant=books.tenant, kind=kind, old_id=old_id)
        return new or old_id


class CutoverActivities:
    """The cut-over's steps. ``adapter_of`` builds (once) the ERP adapter of a registry name; ``client`` reads
    Temporal's visibility and the ledgers' ``open_items``."""

    def __init__(self, *, client: Client, engine: Engine, adapter_of: Callable[[str], ErpPort],
                 entities: Callable[[], list[LegalEntity]], systems: Systems,
                 erp_name_of: Callable[[LegalEntity], str],
                 report_dir: Path) -> None:
        self.client = client
        self.engine = engine
        self.adapter_of = adapter_of
        self.entities = entities
        self.systems = systems
        self.erp_name_of = erp_name_of
        self.report_dir = report_dir

    # -- 1. who is mid-posting, whose contacts move ------------------------------------------------------
    @activity.defn(name="survey_cutover")
    @business_step
    async def survey_cutover(self, request: CutoverRequest) -> CutoverSurvey:
        """The runs mid-posting in the entity (a cut-over is refused while any is), and its ledgers' customers."""
        entity = request.entity
        survey = CutoverSurvey()
        running = "ExecutionStatus = 'Running'"
        # a billing customer bills from one entity, and its ledger carries that entity as ``LegalEntity``
        async for wf in self.client.list_workflows(
                f"WorkflowType = '{LEDGER_TYPE}' AND {running} AND LegalEntity = '{entity}'"):
            handle = self.client.get_workflow_handle(wf.id)
            try:
                view = await handle.query("open_items", {"include_settled": True}, result_type=_LedgerView,
                                          rpc_timeout=QUERY_TIMEOUT)
            except (RPCError, WorkflowQueryFailedError) as exc:  # what cannot be seen is not known to be quiet
                survey.busy.append(f"{wf.id}: did not answer ({exc}); is its worker running?")
                continue
            mine = [i for i in [*view.open_items, *view.settled_items] if i.legal_entity == entity]
            if not mine:
                continue
            reference = (erp_contact_reference(self.systems.crm.name, view.crm_company_id, entity)
                         if view.crm_company_id
                         else billing_customer_reference(self.systems.billing.name, view.customer_id, entity))
            survey.customers.append(CutoverCustomer(customer_id=view.customer_id, reference=reference))
            pending = [f"{i.invoice_id} {w.kind.value}" for i in mine for w in i.erp_pending]
            if pending:
                survey.busy.append(f"{wf.id}: ERP writes pending ({', '.join(pending)})")
                continue
            described = await handle.describe()
            posting = sorted({a.activity_type.name for a in described.raw_description.pending_activities
                              if a.activity_type.name in ERP_WRITES})
            if posting:
                survey.busy.append(f"{wf.id}: posting to the ERP now ({', '.join(posting)})")
        stages = ", ".join(f"'{s}'" for s in POSTING_STAGES)
        async for wf in self.client.list_workflows(
                f"WorkflowType = '{QUOTE_TO_CASH_TYPE}' AND {running} AND LegalEntity = '{entity}' "
                f"AND Stage IN ({stages})"):
            stage = (wf.search_attributes.get("Stage") or ["?"])[0]
            survey.busy.append(f"{wf.id}: quote-to-cash {stage} in {entity}")
        async for wf in self.client.list_workflows(f"WorkflowType = '{BACKFILL_TYPE}' AND {running}"):
            if wf.id.endswith(f"-{entity}"):
                survey.busy.append(f"{wf.id}: company backfill into {entity}")
        return survey

    # -- 2. the switch -------------------------------------------------------------------------------------
    @activity.defn(name="switch_entity_erp")
    @business_step
    async def switch_entity_erp(self, request: CutoverRequest) -> CutoverPlan | None:
        """Record the entity's switch (the source is what settings say now, or what an earlier run of this
        cut-over recorded); None when the entity is already on the target and no cut-over moved it there."""
        cutover_id = activity.info().workflow_id or ""
        found = [e for e in self.entities() if e.code == request.entity]
        if not found:
            raise ApplicationError(f"unknown legal entity {request.entity}", type="UnknownLegalEntity",
                                   non_retryable=True)
        entity = found[0]
        held = await asyncio.to_thread(store.switch_of, self.engine, request.entity)
        if held is not None and held.cutover_id == cutover_id:
            return CutoverPlan(cutover_id=cutover_id, entity=request.entity, from_adapter=held.from_adapter,
                               from_tenant=held.from_tenant, to_adapter=held.to_adapter, to_tenant=held.to_tenant,
                               settings_line=_entry(entity, held.to_adapter, held.to_tenant))
        if held is not None:  # an earlier cut-over of another target: its target is where the books are now
            from_adapter, from_tenant = held.to_adapter, held.to_tenant
        else:
            from_adapter, from_tenant = self.erp_name_of(entity), entity.erp_tenant_id
        to_tenant = request.to_tenant or from_tenant
        if from_adapter == request.to_adapter and from_tenant == to_tenant:
            return None
        self.adapter_of(request.to_adapter)  # an unknown target is refused before anything is recorded
        row = await asyncio.to_thread(store.record_switch, self.engine, entity=request.entity,
                                      cutover_id=cutover_id, from_adapter=from_adapter, from_tenant=from_tenant,
                                      to_adapter=request.to_adapter, to_tenant=to_tenant)
        return CutoverPlan(cutover_id=cutover_id, entity=request.entity, from_adapter=row.from_adapter,
                           from_tenant=row.from_tenant, to_adapter=row.to_adapter, to_tenant=row.to_tenant,
                           settings_line=_entry(entity, row.to_adapter, row.to_tenant))

    # -- 3. the copy -----------------------------------------------------------------------------------------
    async def _copy(self, plan: CutoverPlan, done: dict[tuple[str, str], store.ErpMovedRecord], kind: str,
                    old_id: str, write: Callable[[str], Any], *, reference: str = "", amount: str = "",
                    currency: str = "") -> MovedItem:
        held = done.get((kind, old_id))
        if held is not None:
            return MovedItem(kind=kind, old_id=old_id, new_id=held.new_id, reference=held.reference,
                             amount=held.amount, currency=held.currency, fresh=False)
        new_id = await write(cutover_record_key(plan.cutover_id, kind, old_id))
        record = store.ErpMovedRecord(cutover_id=plan.cutover_id, entity=plan.entity, kind=kind, old_id=old_id,
                                      new_id=new_id, to_tenant=plan.to_tenant, reference=reference, amount=amount,
                                      currency=currency, moved_at=datetime.now(UTC))
        await asyncio.to_thread(store.record_moved, self.engine, record)
        done[(kind, old_id)] = record
        return MovedItem(kind=kind, old_id=old_id, new_id=new_id, reference=reference, amount=amount,
                         currency=currency)

    @activity.defn(name="move_erp_contacts")
    @business_step
    async def move_erp_contacts(self, plan: CutoverPlan) -> MoveResult:
        """Each customer's ERP contact, found by its reference in the source, upserted under it in the target."""
        source, target = self.adapter_of(plan.from_adapter), self.adapter_of(plan.to_adapter)
        done = await asyncio.to_thread(store.moved, self.engine, plan.cutover_id)
        result = MoveResult()
        for customer in plan.customers:
            account = await source.find_customer(plan.from_tenant, customer.reference)
            if account is None or not account.erp_contact_id:
                result.skipped.append(f"contact {customer.reference}: not in {plan.from_adapter} (it is made in "
                                      f"{plan.to_adapter} when its ledger next posts)")
                continue

            async def upsert(key: str, account: Account = account, reference: str = customer.reference) -> str:
                made = await target.upsert_customer(plan.to_tenant, account.model_copy(update={"erp_contact_id": None}),
                                                    contact=None, reference=reference, idempotency_key=key)
                return made.erp_contact_id or ""

            result.items.append(await self._copy(plan, done, "contact", account.erp_contact_id, upsert,
                                                 reference=customer.reference))
            activity.heartbeat(f"contact {customer.reference}")
        return result

    @activity.defn(name="move_open_receivables")
    @business_step
    async def move_open_receivables(self, plan: CutoverPlan) -> MoveResult:
        """Every invoice of the source tenant with an amount still due, with the payments recorded on it."""
        source, target = self.adapter_of(plan.from_adapter), self.adapter_of(plan.to_adapter)
        if not isinstance(source, ErpChangeFeed):
            raise ApplicationError(f"the ERP {plan.from_adapter} cannot list its receivables (no change feed)",
                                   type="Misconfigured", non_retryable=True)
        done = await asyncio.to_thread(store.moved, self.engine, plan.cutover_id)
        invoices: list[Invoice] = await _drain(lambda c: source.invoices_page(plan.from_tenant, c))
        payments: list[ErpPayment] = await _drain(lambda c: source.payments_page(plan.from_tenant, c))
        result = MoveResult()
        for invoice in invoices:
            old_id = invoice.metadata.get("erp_invoice_id", "")
            live = invoice.status is InvoiceStatus.OPEN and invoice.metadata.get("erp_status") not in (
                "DELETED", "VOIDED", "DRAFT")
            if not live or invoice.amount_due.amount <= 0:
                continue
            contact = done.get(("contact", invoice.customer_id))
            if contact is None:
                result.skipped.append(f"invoice {invoice.billing_id} ({old_id}): its contact {invoice.customer_id} "
                                      "was not moved (no ledger names it)")
                continue
            copy = invoice.model_copy(update={"legal_entity": plan.entity, "lines_complete": True})

            async def post(key: str, copy: Invoice = copy, contact_id: str = contact.new_id) -> str:
                return await target.post_invoice(plan.to_tenant, copy, erp_contact_id=contact_id, idempotency_key=key)

            moved = await self._copy(plan, done, "invoice", old_id, post, reference=invoice.billing_id,
                                     amount=str(invoice.total.amount), currency=invoice.currency)
            result.items.append(moved)
            for pay in [p for p in payments if p.erp_invoice_id == old_id and p.status != "DELETED"]:
                payment = Payment(billing_id=pay.reference or pay.erp_id, invoice_billing_id=invoice.billing_id,
                                  amount=pay.amount, paid_at=pay.updated_at or datetime.now(UTC),
                                  method="moved in an ERP cut-over")

                async def record(key: str, payment: Payment = payment, new_invoice: str = moved.new_id) -> str:
                    return await target.record_payment(plan.to_tenant, new_invoice, payment, idempotency_key=key)

                result.items.append(await self._copy(plan, done, "payment", pay.erp_id, record,
                                                     reference=payment.billing_id, amount=str(pay.amount.amount),
                                                     currency=pay.amount.currency))
            activity.heartbeat(f"invoice {invoice.billing_id}")
        return result

    @activity.defn(name="move_open_projects")
    @business_step
    async def move_open_projects(self, plan: CutoverPlan) -> MoveResult:
        """Every open project of the source tenant, whole (budget, deadline, tasks with their rates and
        estimates), created under its code in the target for the moved contact; recorded (old ID -> new ID), so
        an amendment addressed to the old project updates the copy (:class:`ErpMoves`)."""
        source, target = self.adapter_of(plan.from_adapter), self.adapter_of(plan.to_adapter)
        done = await asyncio.to_thread(store.moved, self.engine, plan.cutover_id)
        result = MoveResult()
        for listed in await source.list_projects(plan.from_tenant):
            old_id = listed.erp_id or ""
            if not old_id:
                continue
            project = await source.get_project(plan.from_tenant, old_id)  # a listing may leave the tasks out
            contact = done.get(("contact", project.erp_contact_id))
            if contact is None and ("project", old_id) not in done:
                result.skipped.append(f"project {listed.code} ({old_id}): its contact {project.erp_contact_id} was "
                                      "not moved (no ledger names it)")
                continue
            copy = project.model_copy(update={
                "erp_id": None, "code": listed.code or project.code, "erp_tenant_id": plan.to_tenant,
                "erp_contact_id": contact.new_id if contact else project.erp_contact_id,
                "tasks": [t.model_copy(update={"erp_id": None}) for t in project.tasks]})

            async def create(key: str, copy: Project = copy) -> str:
                made = await target.create_project(plan.to_tenant, copy, idempotency_key=key)
                return made.erp_id or ""

            result.items.append(await self._copy(plan, done, "project", old_id, create, reference=copy.code,
                                                 amount=str(project.budget.amount),
                                                 currency=project.budget.currency))
            activity.heartbeat(f"project {copy.code}")
        return result

    # -- 4. the report ------------------------------------------------------------------------------------
    @activity.defn(name="write_cutover_report")
    @business_step
    async def write_cutover_report(self, report: CutoverReport) -> CutoverReport:
        """The report as JSON and text under ``data_dir/cutover/`` (one pair per run, stamped)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.report_dir
        done = report.model_copy(update={"json_path": str(folder / f"{report.cutover_id}-{stamp}.json"),
                                         "text_path": str(folder / f"{report.cutover_id}-{stamp}.txt")})

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            Path(done.json_path).write_text(json.dumps(done.model_dump(mode="json"), indent=2) + "\n")
            Path(done.text_path).write_text(done.text() + "\n")

        await asyncio.to_thread(write)
        return done

    def all(self) -> list[Callable[..., Any]]:
        return [self.survey_cutover, self.switch_entity_erp, self.move_erp_contacts, self.move_open_projects,
                self.move_open_receivables, self.write_cutover_report]


def _entry(entity: LegalEntity, adapter: str, tenant: str) -> str:
    return json.dumps(entity.model_copy(update={"erp_adapter": adapter, "erp_tenant_id": tenant}).model_dump(
        mode="json"), separators=(",", ":"))


async def _drain(fetch: Callable[[str | None], Any]) -> list[Any]:
    out: list[Any] = []
    cursor: str | None = None
    while True:
        items, cursor = await fetch(cursor)
        out += items
        if cursor is None:
            return out


__all__ = ["CutoverActivities", "CutoverCustomer", "CutoverPlan", "CutoverReport", "CutoverRequest",
           "CutoverSurvey", "ErpMoves", "MoveResult", "MovedItem"]
