"""Invoice feedback: one long-lived ledger per billing customer (``ledger-<billing>-<customerId>``).

Billing events arrive by signal-with-start (``billing_event``), in any order and possibly twice. The rules
(what to post to the ERP and when, payments, credit notes, voids, write-offs, overdue, what continue-as-new
keeps) live in the pure state machine ``canonical.settlement``; this workflow only dispatches: an event goes
into ``apply``, each action it returns runs through its activity, and the vendor's answer goes back through
``settle``. It sleeps on a durable timer until the next due date or hourly re-post (the book's ``ArmTimer``),
and continues as new after ``ledger_continue_after_events`` events (or when Temporal suggests it), carrying
the folded book.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.config import ConfigActivities
    from activities.crm import CrmActivities
    from activities.erp import ErpActivities
    from activities.ledger import (
        BillingCustomerRef,
        BillingInvoiceRef,
        CrmFiguresInput,
        PostCreditNoteInput,
        PostInvoiceInput,
        RecordPaymentInput,
        ReverseCreditNoteInput,
        VoidInvoiceInput,
    )
    from activities.models import FlowConfigRequest, LedgerConfig
    from activities.notify import NotifyActivities
    from canonical import Account, EventEnvelope, InvoiceStatus
    from canonical.backfill import ErpCustomerDraft
    from canonical.company_figures import FiguresReport
    from canonical.exceptions import ExceptionKind
    from canonical.keys import billing_customer_reference, company_figures_workflow_id, erp_contact_reference
    from canonical.ledger import BillingCustomer, LedgerInvoice
    from canonical.notifications import Notice, NoticeKind
    from canonical.settlement import (
        ERP_ACTIONS,
        Action,
        ArmTimer,
        Dispatched,
        ErpWrite,
        Event,
        LedgerBook,
        Note,
        Notify,
        Outcome,
        OverdueChanged,
        PostCreditNote,
        PostInvoice,
        RecordPayment,
        RefreshCrmFigures,
        Repost,
        ReverseCreditNote,
        Tick,
        apply,
        balances,
        configure,
        crm_figures,
        figures_report,
        fold,
        open_invoices,
        owed,
        settle,
    )
    from canonical.systems import System, Systems
    from workflows.attributes import LEGAL_ENTITY
    from workflows.company_figures import CompanyFiguresWorkflow
    from workflows.erp_contacts import find_or_create_erp_contact
    from workflows.models import (
        FIGURES_SIGNAL,
        LEDGER_SIGNAL,
        AccountLedgerInput,
        CompanyFiguresInput,
        LedgerCarried,
        LedgerStage,
        LedgerStatus,
        LedgerStatusRequest,
        RepostRequest,
        RepostResult,
    )
    from workflows.status import WorkflowStatus, idempotency_key
    from workflows.steps import STEP_FAILED, failure_reason

Cfg = ConfigActivities
Crm = CrmActivities
Bill = BillingActivities
Erp = ErpActivities
N = NotifyActivities
MAX_KEYS = 100
#: what one search attribute value may weigh on the server (2 KiB by default), with room to spare
MAX_KEYS_BYTES = 2000
#: the objects of the keys that roll out, oldest first, to make room (a customer's documents); the customer,
#: its company, deals and contacts stay
DOCUMENT_OBJECTS = frozenset({"invoice", "payment", "credit_note", "charge", "payment_intent"})
#: timeline entries a run keeps (the ``open_items`` query shows the newest 50)
TIMELINE_KEPT = 200
_SECOND = timedelta(seconds=1)
#: vendor calls of one ledger in flight at most, each for a different invoice (ERPs cap a tenant's concurrent
#: calls, commonly at five)
LANES = 4
#: actions the events of one batch may ask for before the batch is dispatched
_BATCH_ACTIONS = 200


@workflow.defn(name="AccountLedgerWorkflow")
class AccountLedgerWorkflow:
    """One per billing customer; never completes, continues as new."""

    @workflow.init
    def __init__(self, request: AccountLedgerInput) -> None:
        carried = request.carried or LedgerCarried()
        self._customer_id = request.customer_id
        self._book = carried.book or LedgerBook(customer_id=request.customer_id)
        # what queries see: the book as it stood once every action of the last batch was done. `_dispatch` keeps
        # a copy here, since the book itself changes in place: a copy per event and per vendor answer cost the
        # whole book each time, so a batch of N events on a book of N invoices cost N squared
        self._shown = self._book
        self._config: LedgerConfig | None = None
        self._customer_account: Account | None = None
        self._pending: list[EventEnvelope] = list(carried.pending)
        self._applied_this_run = 0
        self._duplicates = 0
        self._runs = carried.runs
        self._lock = asyncio.Lock()  # events and operator reposts dispatch one batch at a time
        self._contacts: dict[str, str] = {}  # the customer's ERP contact per entity, as found this run
        self._contact_locks: dict[str, asyncio.Lock] = {}
        self._wake_at: datetime | None = self._book.wake_at
        self._figures_due = False
        self._owner_reached = carried.figures_owner  # the company's figures owner runs: signal it, not start it
        self._done = 0  # ERP writes done since the counter was last read (reposts report it)
        # stage and exception kind follow from the book: open items or settled, and the book's most urgent problem
        self._status = WorkflowStatus(LedgerStage.SETTLED, details=self._details, derive=self._derive,
                                      timeline_kept=TIMELINE_KEPT, keys_kept=MAX_KEYS, keys_bytes=MAX_KEYS_BYTES,
                                      rolling_keys=_is_document_key)
        # what each invoice's keys were published for: keys are added when an invoice learns an ID (the
        # previous run published those of the book it carried over)
        self._keyed = {i.invoice_id: _document_ids(i) for i in self._book.invoices.values()}
        self._status.resume_exception(carried.exception_kind, carried.exception_since)
        self._step = self._status.step  # the typed step of the status component, under its short name

    # ------------------------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: AccountLedgerInput) -> None:
        self._status.started_with(workflow.info())
        self._config = (await self._step(Cfg.load_flow_config, FlowConfigRequest(flow="account_ledger"),
                                         "Read ledger settings", local=True)).for_ledger()
        self._status.use(retry_max_seconds=self._config.activity_retry_max_seconds)
        customer, error = await self._load_customer()
        self._status.add_keys(self._config.systems.billing.ref("customer", self._customer_id))
        async with self._lock:
            self._book, actions = configure(
                self._book, entities={e.code: e.erp_tenant_id for e in self._config.entities},
                dedupe_window=self._config.dedupe_window, dso_window_days=self._config.dso_window_days,
                customer=customer, customer_error=error, now=workflow.now())
            self._status.note(f"ledger run {self._runs} started with {len(open_invoices(self._book))} open "
                              f"invoice(s), {len(self._pending)} pending event(s)")
            await self._dispatch(actions)
        while not self._should_continue():
            wait = max(self._wake_at - workflow.now(), _SECOND) if self._wake_at else None
            # events already received go in at once: the task's one upsert then shows their invoices (a ledger
            # just started never shows its empty book first)
            try:
                if not self._pending:
                    await workflow.wait_condition(lambda: bool(self._pending), timeout=wait,
                                                  timeout_summary="next invoice due date or ERP re-post")
            except TimeoutError:
                pass
            async with self._lock:
                self._done = 0
                await self._dispatch(self._apply(Tick()))
                if self._done:
                    self._status.note(f"re-posted {self._done} pending ERP write(s)")
                while self._pending and not self._should_continue():
                    # the events waiting go into the book together; their writes then run side by side
                    batch: list[Action] = []
                    while self._pending and len(batch) < _BATCH_ACTIONS and not self._should_continue():
                        batch += self._apply(self._pending.pop(0).event)
                        self._applied_this_run += 1
                    await self._dispatch(batch)
                await self._write_figures()
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = LedgerCarried(book=fold(self._book, today=workflow.now().date()), pending=self._pending,
                                runs=self._runs + 1, exception_kind=self._status.exception,
                                exception_since=self._status.exception_since, figures_owner=self._owner_reached)
        self._status.flush()  # the next run starts with these attributes
        workflow.continue_as_new(AccountLedgerInput(customer_id=self._customer_id, carried=carried))

    # -- messages --------------------------------------------------------------------------------
    @workflow.signal(name=LEDGER_SIGNAL)
    def billing_event(self, envelope: EventEnvelope) -> None:
        """A billing event for this customer; one already received (same source event ID) is ignored."""
        event_id = envelope.event.source_event_id
        if event_id in self._book.seen_event_ids or any(p.event.source_event_id == event_id for p in self._pending):
            self._duplicates += 1
            return
        self._pending.append(envelope)

    @workflow.update
    async def repost(self, request: RepostRequest) -> RepostResult:
        """Post again the ERP writes still pending (refused, or waiting for their invoice), once the cause
        is fixed: of one invoice, or of all. Same idempotency keys as the first attempt. With
        ``refresh_figures``, the CRM figures are reported again too (a figure typed over by hand)."""
        async with self._lock:
            self._status.note(f"{request.by} asked to re-post pending ERP writes"
                              + (f" of invoice {request.invoice_id}" if request.invoice_id else ""))
            self._done = 0
            await self._dispatch(self._apply(Repost(invoice_id=request.invoice_id)))
            posted, self._done = self._done, 0
            if posted:
                self._status.note(f"re-posted {posted} pending ERP write(s)")
            reported = False
            if request.refresh_figures:
                self._figures_due = True
                await self._write_figures()
                reported = "crm" not in self._book.problems
        still = [f"{e.invoice_id} {w.kind.value}: {w.reason}" for e in owed(self._book) for w in e.erp_pending
                 if request.invoice_id in (None, e.invoice_id)]
        return RepostResult(posted=posted, still_pending=still, figures_reported=reported)

    @repost.validator
    def _validate_repost(self, request: RepostRequest) -> None:
        if request.invoice_id is not None and request.invoice_id not in self._book.invoices:
            raise ValueError(f"invoice {request.invoice_id} is not in this ledger")

    @workflow.query
    def open_items(self, request: LedgerStatusRequest | None = None) -> LedgerStatus:
        """Open invoices and the balances per currency (as they stand once the last event's writes are done)."""
        book = self._shown
        settled = [i for i in book.invoices.values() if i.status is not InvoiceStatus.OPEN]
        # a vendor refusing our credentials holds the run whatever the book says
        kind = self._status.exception if self._status.exception is ExceptionKind.VENDOR_AUTH_FAILED else book.exception
        since = self._status.exception_since if self._status.exception is kind else None
        return LedgerStatus(
            customer_id=self._customer_id, crm_company_id=book.crm_company_id, exception_kind=kind,
            exception_since=since,
            open_items=open_invoices(book), settled_items=settled if request and request.include_settled else [],
            balances=balances(book, today=workflow.now().date()), events_applied=book.events_applied,
            runs=self._runs, timeline=self._status.timeline[-50:], problems=dict(book.problems))

    # -- dispatch --------------------------------------------------------------------------------
    def _apply(self, event: Event) -> list[Action]:
        self._book, actions = apply(self._book, event, now=workflow.now(), in_place=True)
        return actions

    async def _dispatch(self, actions: list[Action]) -> None:
        """Carry out the book's actions: the vendor calls of one invoice one after another in the order the book
        emitted them, those of different invoices side by side (at most :data:`LANES` at once). A vendor's answer
        goes back to the book, and what that asks for (the writes that waited for their invoice) joins the end of
        its invoice's queue. Notes, timers and the figures flag take effect as they come, so the last
        ``ArmTimer`` is always the book's latest (the exception kind is read from the book itself).

        A write is carried at most once per dispatch (the book asks again for one still pending each time an
        event touches its invoice), and not at all once the book no longer holds it (settled or dropped while it
        waited its turn)."""
        queues: dict[str, deque[Dispatched]] = {}
        taken: set[tuple[str, str]] = set()
        busy: set[str] = set()

        def take(batch: list[Action]) -> None:
            for action in batch:
                if isinstance(action, Note | OverdueChanged):
                    self._status.record(action.text)  # published before the next vendor call, or below
                elif isinstance(action, ArmTimer):
                    self._wake_at = action.at
                elif isinstance(action, RefreshCrmFigures):
                    self._figures_due = True  # once, after the batch of events
                else:
                    lane = action.scope if isinstance(action, Notify) else action.invoice_id
                    if (lane, action.step) not in taken:
                        taken.add((lane, action.step))
                        queues.setdefault(lane, deque()).append(action)

        async def run_lanes() -> None:
            while (lane := next((k for k, q in queues.items() if q and k not in busy), None)) is not None:
                busy.add(lane)
                try:
                    await self._carry(queues[lane].popleft(), take)
                finally:
                    busy.discard(lane)

        take(actions)
        while any(queues.values()):  # a lane's answer may queue more after its runner found nothing to do
            await asyncio.gather(*(run_lanes() for _ in range(LANES)))
        self._shown = self._book.model_copy(deep=True)  # the book changes in place from here on
        self._publish()

    async def _carry(self, action: Dispatched, take: Callable[[list[Action]], None]) -> None:
        """One vendor call of a dispatch, unless the book no longer holds its write; its answer to the book."""
        if isinstance(action, ERP_ACTIONS):
            entry = self._book.invoices.get(action.invoice_id)
            if entry is None or all(w.step != action.step for w in entry.erp_pending):
                return
        self._publish()  # what the book says now, before the lane blocks on the vendor
        outcome = await (self._notify(action) if isinstance(action, Notify) else self._erp(action))
        if outcome.ok and isinstance(action, ERP_ACTIONS):
            self._done += 1
        self._book, more = settle(self._book, action, outcome, now=workflow.now(), in_place=True)
        take(more)

    async def _erp(self, action: ErpWrite) -> Outcome:
        key = idempotency_key(action.step, scope=action.invoice_id)  # <workflowId>:<invoiceId>:<step>
        held = self._book.invoices.get(action.invoice_id)
        entity = action.legal_entity if isinstance(action, PostInvoice) else (held.legal_entity if held else None)
        erp = self._erp_of(entity or "")
        loaded = None
        try:
            if isinstance(action, PostInvoice):
                invoice = action.invoice
                if invoice is None:
                    invoice = loaded = await self._step(
                        Bill.load_billing_invoice, BillingInvoiceRef(invoice_id=action.invoice_id),
                        f"Read {self._billing.label} invoice {action.invoice_id}", local=True)
                contact = action.contact_id or await self._contact(action.legal_entity, action.tenant_id)
                routed = invoice.model_copy(update={"legal_entity": action.legal_entity})
                posted = await self._step(Erp.post_erp_invoice, PostInvoiceInput(
                    tenant_id=action.tenant_id, invoice=routed, erp_contact_id=contact, idempotency_key=key),
                    f"Post {action.title} to {erp.label} {action.legal_entity}")
                return Outcome(ok=True, erp_id=posted.erp_id, contact_id=contact, invoice=loaded)
            if isinstance(action, RecordPayment):
                done = await self._step(Erp.record_erp_payment, RecordPaymentInput(
                    tenant_id=action.tenant_id, erp_invoice_id=action.erp_invoice_id, payment=action.payment,
                    idempotency_key=key), f"Record payment {action.payment.amount} on {action.title} in {erp.label}")
                self._status.add_keys(erp.ref("payment", done.erp_id))
            elif isinstance(action, PostCreditNote):
                done = await self._step(Erp.post_erp_credit_note, PostCreditNoteInput(
                    tenant_id=action.tenant_id, credit_note=action.credit_note, erp_contact_id=action.contact_id,
                    idempotency_key=key),
                    f"{'Write off' if action.write_off else 'Credit'} {action.credit_note.amount} on {action.title} "
                    f"in {erp.label}")
                self._status.add_keys(erp.ref("credit_note", done.erp_id))
            elif isinstance(action, ReverseCreditNote):
                await self._step(Erp.reverse_erp_credit_note, ReverseCreditNoteInput(
                    tenant_id=action.tenant_id, credit_note=action.credit_note, idempotency_key=key),
                    f"Reverse {action.credit_note.billing_id} ({action.credit_note.amount}) on {action.title} "
                    f"in {erp.label}")
            else:
                await self._step(Erp.void_erp_invoice, VoidInvoiceInput(
                    tenant_id=action.tenant_id, erp_invoice_id=action.erp_invoice_id, idempotency_key=key),
                    f"Void {action.title} in {erp.label}")
        except STEP_FAILED as err:
            return Outcome(ok=False, reason=failure_reason(err), invoice=loaded)
        return Outcome(ok=True)

    async def _contact(self, entity_code: str, tenant_id: str) -> str:
        """The customer's ERP contact in the entity's tenant: found or made once, whichever invoice of the
        entity gets here first (the others wait for it)."""
        async with self._contact_locks.setdefault(entity_code, asyncio.Lock()):
            if entity_code not in self._contacts:
                self._contacts[entity_code] = await self._find_or_create_contact(entity_code, tenant_id)
            return self._contacts[entity_code]

    async def _find_or_create_contact(self, entity_code: str, tenant_id: str) -> str:
        company_id = self._book.crm_company_id
        account = self._customer_account or Account(name=self._customer_id, billing_customer_id=self._customer_id)
        systems = self._systems
        erp = self._erp_of(entity_code)
        reference = (erp_contact_reference(systems.crm.name, company_id, entity_code) if company_id
                     else billing_customer_reference(systems.billing.name, self._customer_id, entity_code))
        draft = ErpCustomerDraft(account=account, reference=reference)
        contact = await find_or_create_erp_contact(
            self._step, erp=erp, tenant_id=tenant_id, entity_code=entity_code, draft=draft,
            idempotency_key=f"{workflow.info().workflow_id}:erp-contact-{entity_code}")
        return contact.contact_id

    async def _notify(self, action: Notify) -> Outcome:
        """Tell operations (once per event key); a channel that cannot be reached is noted, never fatal."""
        notice = Notice(event_key=idempotency_key(action.step, scope=action.scope),
                        kind=NoticeKind.ERP_REJECTED, workflow_id=workflow.info().workflow_id, title=action.title,
                        text=action.text)
        try:
            await self._step(N.notify_people, notice, f"Notify: {notice.title}")
        except STEP_FAILED as err:
            return Outcome(ok=False, reason=failure_reason(err))
        return Outcome(ok=True)

    async def _write_figures(self) -> None:
        """The CRM figures after a batch: reported to the company's figures owner, which writes the sum over
        every ledger of the company (a customer billed from several entities); a customer with no CRM company
        has only this ledger, which writes its deals' figures itself."""
        if not self._figures_due:
            return
        self._figures_due = False
        action = RefreshCrmFigures()
        try:
            report = figures_report(self._book, now=workflow.now())
            if report is not None:
                await self._report_figures(report)
            else:
                _company, deals = crm_figures(self._book, today=workflow.now().date())
                await self._step(Crm.write_crm_figures, CrmFiguresInput(deals=deals),
                                 f"Write billing figures to {self._systems.crm.label} ({len(deals)} deal(s))")
            outcome = Outcome(ok=True)
        except FailureError as err:  # a refused step, or the owner could be neither signalled nor started
            outcome = Outcome(ok=False, reason=failure_reason(err))
        self._book, more = settle(self._book, action, outcome, now=workflow.now(), in_place=True)
        await self._dispatch(more)

    async def _report_figures(self, report: FiguresReport) -> None:
        """Signal the company's figures owner once this ledger has reached it; the first time, start it with the
        report (when another ledger of the company already started it, signal it instead)."""
        owner = company_figures_workflow_id(self._systems.crm.name, report.company_id)
        if self._owner_reached:
            try:
                await workflow.get_external_workflow_handle(owner).signal(FIGURES_SIGNAL, report)
                return
            except FailureError:
                pass  # it no longer runs (ended by a person): start it again
        try:
            await workflow.start_child_workflow(
                CompanyFiguresWorkflow.run, CompanyFiguresInput(company_id=report.company_id, reports=[report]),
                id=owner, parent_close_policy=workflow.ParentClosePolicy.ABANDON)
            self._status.note(f"started the company's figures owner {owner}")
        except WorkflowAlreadyStartedError:
            await workflow.get_external_workflow_handle(owner).signal(FIGURES_SIGNAL, report)
        self._owner_reached = True

    # -- plumbing --------------------------------------------------------------------------------
    async def _load_customer(self) -> tuple[BillingCustomer | None, str | None]:
        try:
            customer: BillingCustomer = await self._step(
                Bill.load_billing_customer, BillingCustomerRef(customer_id=self._customer_id),
                f"Read {self._billing.label} customer {self._customer_id}", local=True)
        except STEP_FAILED as err:
            return None, failure_reason(err)
        self._customer_account = customer.account
        if customer.account.crm_id:
            self._status.add_keys(self._systems.crm.ref("company", customer.account.crm_id))
        if customer.legal_entity:
            self._status.set(LEGAL_ENTITY.value_set(customer.legal_entity))
        return customer, None

    @property
    def _systems(self) -> Systems:
        assert self._config is not None, "the configuration is read first"
        return self._config.systems

    @property
    def _billing(self) -> System:
        return self._systems.billing

    def _erp_of(self, entity_code: str) -> System:
        """The ERP of an entity (an entity no longer configured is named as the role only)."""
        return self._systems.erp_or_unknown(entity_code)

    def _should_continue(self) -> bool:
        assert self._config is not None
        return (self._applied_this_run >= self._config.continue_after_events
                or workflow.info().is_continue_as_new_suggested())

    def _derive(self) -> tuple[LedgerStage, ExceptionKind]:
        """The ``Stage``: open items while an invoice is open, else settled (also before the first invoice and
        once all are folded away: nothing is owed); the ``ExceptionKind``: the book's most urgent problem."""
        book = self._book
        return (LedgerStage.OPEN_ITEMS if open_invoices(book) else LedgerStage.SETTLED), book.exception

    def _publish(self) -> None:
        """The book's keys (its deals, its ERP contacts, the IDs its invoices learnt since the last publish), then
        stage, exception kind and current details."""
        book = self._book
        if self._config is not None:
            crm = self._config.systems.crm
            self._status.add_keys(*(crm.ref("deal", e.deal_id) for e in book.invoices.values() if e.deal_id),
                                  *(self._erp_of(code).ref("contact", contact)
                                    for code, contact in book.erp_contacts.items()))
            for entry in book.invoices.values():
                ids = _document_ids(entry)
                if self._keyed.get(entry.invoice_id) != ids:
                    self._keyed[entry.invoice_id] = ids
                    self._status.add_keys(*self._document_keys(entry))
        self._status.waiting_for = "billing events" + (
            f", or {self._wake_at:%Y-%m-%d %H:%M} UTC (a due date or the ERP re-post)" if self._wake_at else "")
        self._status.publish()

    def _document_keys(self, entry: LedgerInvoice) -> list[str]:
        """An invoice's keys: its billing invoice, payments and credit notes, and its ERP invoice (the ERP's
        payments and credit notes are added as they are posted)."""
        billing = self._billing
        keys = [billing.ref_of_id(entry.invoice_id, "invoice")]
        keys += [billing.ref_of_id(p.partition(":")[0], "payment") for p in entry.payment_ids]
        keys += [billing.ref_of_id(n, "credit_note") for n in entry.credit_note_ids]
        if entry.erp_invoice_id:
            keys.append(self._erp_of(entry.legal_entity or "").ref("invoice", entry.erp_invoice_id))
        return keys

    def _details(self) -> list[str]:
        """The ledger's lines of the run's current details (the status component adds stage, exception,
        waiting-for and the recent timeline)."""
        book = self._book
        company = book.crm_company_id
        billing, crm = ((self._config.systems.billing.display, self._config.systems.crm.display) if self._config
                        else ("billing", "CRM"))
        lines = [f"**Customer:** {billing} `{self._customer_id}`" + (f", {crm} company `{company}`" if company else ""),
                 f"**Open invoices:** {len(open_invoices(book))}",
                 f"**Events applied:** {book.events_applied} (run {self._runs}, {self._duplicates} duplicate(s) "
                 "ignored)"]
        figures = balances(book, today=workflow.now().date())
        if figures:
            lines.append("**Balances:**\n" + "\n".join(
                f"- {f.currency}: billed {f.billed}, paid {f.paid}, outstanding {f.outstanding}, "
                f"overdue {f.overdue}, credited {f.credited}, DSO {f.dso_days or '-'}" for f in figures))
        return lines


def _is_document_key(key: str) -> bool:
    """A key of one of the customer's documents (these roll out, oldest first, when the keys are full)."""
    parts = key.split(":", 2)
    return len(parts) == 3 and parts[1] in DOCUMENT_OBJECTS


def _document_ids(entry: LedgerInvoice) -> tuple[str | None, int, int]:
    """What decides an invoice's keys: its ERP ID and how many payments and credit notes it has."""
    return entry.erp_invoice_id, len(entry.payment_ids), len(entry.credit_note_ids)
