"""Invoice feedback: one long-lived ledger per billing customer (``ledger-stripe-<customerId>``).

Billing events arrive by signal-with-start (``billing_event``), in any order and possibly twice. The
ledger keeps one entry per billing invoice, posts it to the ERP tenant of its legal entity before anything
else touches it (from the event's invoice snapshot, or read from billing when the event has none), applies
payments, credit notes, voids and write-offs once each, waits on a durable timer for the next due date to
mark invoices overdue, and writes per-currency roll-ups to the CRM company and deals. It continues as new
after ``ledger_continue_after_events`` events (or when Temporal suggests it), carrying its state.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.config import ConfigActivities
    from activities.crm import CrmActivities
    from activities.erp import ErpActivities
    from activities.ledger import (
        BillingCustomerRef,
        BillingInvoiceRef,
        CrmFiguresInput,
        ErpContactInput,
        PostCreditNoteInput,
        PostInvoiceInput,
        RecordPaymentInput,
        VoidInvoiceInput,
    )
    from activities.models import FlowConfigRequest, LedgerConfig
    from activities.notify import NotifyActivities
    from canonical import (
        Account,
        CreditNote,
        CreditNoteIssued,
        EventEnvelope,
        Invoice,
        InvoiceFinalized,
        InvoicePaid,
        InvoicePaymentFailed,
        InvoiceStatus,
        InvoiceVoided,
        Money,
        ref,
    )
    from canonical.keys import billing_customer_reference, erp_contact_reference, step_idempotency_key
    from canonical.ledger import (
        CurrencyHistory,
        ErpWriteKind,
        LedgerInvoice,
        PendingErpWrite,
        apply_invoice_snapshot,
        figures_by_currency,
        unrecorded_payment,
    )
    from canonical.notifications import Notice, NoticeKind
    from canonical.requests import AccountFigures
    from workflows.attributes import EXCEPTION_KIND, LEGAL_ENTITY, STAGE
    from workflows.models import (
        LEDGER_SIGNAL,
        AccountLedgerInput,
        LedgerCarried,
        LedgerStatus,
        LedgerStatusRequest,
        RepostRequest,
        RepostResult,
        TimelineEntry,
    )
    from workflows.steps import add_business_keys, failure_reason, run_step

Cfg = ConfigActivities
Crm = CrmActivities
Bill = BillingActivities
Erp = ErpActivities
N = NotifyActivities
MAX_KEYS = 100
#: how often a ledger with ERP writes pending tries them again by itself (the cause may have been fixed)
REPOST_EVERY = timedelta(hours=1)


@workflow.defn(name="AccountLedgerWorkflow")
class AccountLedgerWorkflow:
    """One per billing customer; never completes, continues as new."""

    @workflow.init
    def __init__(self, request: AccountLedgerInput) -> None:
        carried = request.carried or LedgerCarried()
        self._customer_id = request.customer_id
        self._config: LedgerConfig | None = None
        self._company_id = carried.crm_company_id
        self._customer_account: Account | None = None
        self._customer_entity: str | None = None
        self._contacts = dict(carried.erp_contacts)
        self._invoices: dict[str, LedgerInvoice] = {i.invoice_id: i for i in carried.invoices}
        self._history = list(carried.history)
        self._seen = list(carried.seen_event_ids)
        self._seen_set = set(self._seen)
        self._pending: list[EventEnvelope] = list(carried.pending)
        self._applied = carried.events_applied
        self._applied_this_run = 0
        self._duplicates = 0
        self._runs = carried.runs
        self._problems: dict[str, str] = {}  # invoice ID (or "crm") -> exception kind
        self._timeline: list[TimelineEntry] = []
        self._keys: list[str] = []
        self._lock = asyncio.Lock()  # events and operator reposts call the ERP one at a time
        self._next_repost = workflow.now() + REPOST_EVERY

    # ------------------------------------------------------------------------------------------
    @workflow.run
    async def run(self, request: AccountLedgerInput) -> None:
        self._config = (await self._step(Cfg.load_flow_config, FlowConfigRequest(flow="account_ledger"),
                                         "Read ledger settings")).for_ledger()
        self._add_keys(ref("stripe", "customer", self._customer_id))
        await self._load_customer()
        self._note(f"ledger run {self._runs} started with {len(self._open())} open invoice(s), "
                   f"{len(self._pending)} pending event(s)")
        if self._owed():
            self._publish()
        while not self._should_continue():
            wait = self._until_next_wake()
            try:
                await workflow.wait_condition(lambda: bool(self._pending), timeout=wait,
                                              timeout_summary="next invoice due date or ERP re-post")
            except TimeoutError:
                pass
            async with self._lock:
                changed = self._mark_overdue()
                if self._owed() and workflow.now() >= self._next_repost:
                    await self._repost_all(None)
                while self._pending and not self._should_continue():
                    envelope = self._pending.pop(0)
                    changed = await self._apply(envelope) or changed
                    self._applied += 1
                    self._applied_this_run += 1
                if changed:
                    await self._write_figures()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(AccountLedgerInput(customer_id=self._customer_id, carried=self._carry()))

    # -- messages --------------------------------------------------------------------------------
    @workflow.signal(name=LEDGER_SIGNAL)
    def billing_event(self, envelope: EventEnvelope) -> None:
        """A billing event for this customer; one already received (same source event ID) is ignored."""
        event_id = envelope.event.source_event_id
        if event_id in self._seen_set:
            self._duplicates += 1
            return
        self._seen.append(event_id)
        self._seen_set.add(event_id)
        window = self._config.dedupe_window if self._config else 2000
        while len(self._seen) > window:
            self._seen_set.discard(self._seen.pop(0))
        self._pending.append(envelope)

    @workflow.update
    async def repost(self, request: RepostRequest) -> RepostResult:
        """Post again the ERP writes still pending (refused, or waiting for their invoice), once the cause
        is fixed: of one invoice, or of all. Same idempotency keys as the first attempt."""
        async with self._lock:
            self._note(f"{request.by} asked to re-post pending ERP writes"
                       + (f" of invoice {request.invoice_id}" if request.invoice_id else ""))
            posted = await self._repost_all(request.invoice_id)
            self._publish()
        still = [f"{e.invoice_id} {w.kind.value}: {w.reason}" for e in self._owed() for w in e.erp_pending
                 if request.invoice_id in (None, e.invoice_id)]
        return RepostResult(posted=posted, still_pending=still)

    @repost.validator
    def _validate_repost(self, request: RepostRequest) -> None:
        if request.invoice_id is not None and request.invoice_id not in self._invoices:
            raise ValueError(f"invoice {request.invoice_id} is not in this ledger")

    @workflow.query
    def open_items(self, request: LedgerStatusRequest | None = None) -> LedgerStatus:
        """Open invoices and the balances per currency."""
        settled = [i for i in self._invoices.values() if i.status is not InvoiceStatus.OPEN]
        return LedgerStatus(
            customer_id=self._customer_id, crm_company_id=self._company_id, exception_kind=self._exception(),
            open_items=self._open(), settled_items=settled if request and request.include_settled else [],
            balances=self._figures(list(self._invoices.values()), self._history), events_applied=self._applied,
            runs=self._runs, timeline=self._timeline[-50:], problems=dict(self._problems))

    # -- applying events -------------------------------------------------------------------------
    async def _apply(self, envelope: EventEnvelope) -> bool:
        event = envelope.event
        if isinstance(event, InvoiceFinalized | InvoicePaid | InvoicePaymentFailed | InvoiceVoided):
            if event.invoice.customer_id and event.invoice.customer_id != self._customer_id:
                self._note(f"ignored {event.kind} {event.source_event_id}: invoice of customer "
                           f"{event.invoice.customer_id}")
                return False
            entry = self._entry(event.invoice)
            posted = await self._ensure_posted(entry, event.invoice)
            if isinstance(event, InvoicePaid):
                await self._paid(entry, event, posted)
            elif isinstance(event, InvoicePaymentFailed):
                entry.payment_failures += 1
                self._note(f"{_name(entry)}: payment failed ({event.failure_reason or 'no reason given'})")
            elif isinstance(event, InvoiceVoided):
                await self._voided(entry, event, posted)
            else:
                self._note(f"{_name(entry)} finalized: {entry.total} {entry.currency} due {entry.due_on}")
            return True
        if isinstance(event, CreditNoteIssued):
            if event.customer_id != self._customer_id:
                self._note(f"ignored credit note {event.credit_note.billing_id} of customer {event.customer_id}")
                return False
            await self._credited(event.credit_note)
            return True
        self._note(f"ignored {event.kind} {event.source_event_id}: not a billing event")
        return False

    def _entry(self, invoice: Invoice) -> LedgerInvoice:
        entry = self._invoices.get(invoice.billing_id)
        if entry is None:
            entry = LedgerInvoice(invoice_id=invoice.billing_id, currency=invoice.currency)
        entry = apply_invoice_snapshot(entry, invoice)
        self._invoices[entry.invoice_id] = entry
        if entry.deal_id:
            self._add_keys(ref("hubspot", "deal", entry.deal_id))
        return entry

    async def _ensure_posted(self, entry: LedgerInvoice, invoice: Invoice | None) -> bool:
        """Post the invoice to the ERP unless it is there; False when it cannot be (it stays pending and
        visible until a re-post succeeds). ``invoice`` None: read it from billing first."""
        if entry.erp_invoice_id:
            return True
        assert self._config is not None
        if not any(w.kind is ErpWriteKind.INVOICE for w in entry.erp_pending):
            entry.erp_pending.insert(0, PendingErpWrite(kind=ErpWriteKind.INVOICE, step="post"))
        pending = next(w for w in entry.erp_pending if w.kind is ErpWriteKind.INVOICE)
        pending.attempts += 1
        code = entry.legal_entity or self._customer_entity
        entity = next((e for e in self._config.entities if e.code == code), None)
        if entity is None:
            pending.problem = "unroutable_invoice"
            pending.reason = f"no legal entity {code!r} to post it to (invoice or customer metadata)"
            self._note(f"{_name(entry)}: {pending.reason}")
            return False
        entry.legal_entity = entity.code
        try:
            if invoice is None:
                invoice = await self._step(Bill.load_billing_invoice, BillingInvoiceRef(invoice_id=entry.invoice_id),
                                           f"Read Stripe invoice {entry.invoice_id}")
            contact_id = await self._contact(entity.code, entity.erp_tenant_id)
            posted = await self._step(Erp.post_erp_invoice, PostInvoiceInput(
                tenant_id=entity.erp_tenant_id, invoice=invoice.model_copy(update={"legal_entity": entity.code}),
                erp_contact_id=contact_id, idempotency_key=self._key(entry.invoice_id, "post")),
                f"Post {_name(entry)} to Xero {entity.code}")
        except ActivityError as err:
            pending.problem = "erp_rejected"
            pending.reason = f"Xero refused the invoice: {failure_reason(err)}"
            self._note(f"{_name(entry)}: {pending.reason} (kept pending)")
            await self._tell(Notice(
                event_key=self._key(entry.invoice_id, "notice-erp-rejected"), kind=NoticeKind.ERP_REJECTED,
                workflow_id=workflow.info().workflow_id, title=f"Xero refused {_name(entry)} ({entity.code})",
                text=f"Xero refused the invoice: {failure_reason(err)}"))
            return False
        entry.erp_invoice_id = posted.erp_id
        entry.erp_tenant_id = entity.erp_tenant_id
        entry.erp_pending.remove(pending)
        self._note(f"{_name(entry)} posted to Xero {entity.code} as {posted.erp_id}")
        return True

    async def _flush(self, entry: LedgerInvoice, invoice: Invoice | None = None) -> int:
        """Do the invoice's pending ERP writes in order (the invoice itself first); returns how many were
        done. A refused write stays pending with its reason; the others are still tried."""
        done = 0
        if not entry.erp_pending:
            return 0
        if not entry.erp_invoice_id:
            if not await self._ensure_posted(entry, invoice):
                for write in entry.erp_pending:
                    if write.kind is not ErpWriteKind.INVOICE and not write.reason:
                        write.reason = "waiting for the invoice to be posted to Xero"
                return 0
            done += 1
        for write in list(entry.erp_pending):
            write.attempts += 1
            try:
                await self._erp_write(entry, write)
            except ActivityError as err:
                write.problem = "erp_rejected"
                write.reason = f"Xero refused the {write.kind.value.replace('_', ' ')}: {failure_reason(err)}"
                self._note(f"{_name(entry)}: {write.reason} (kept pending)")
                continue
            entry.erp_pending.remove(write)
            done += 1
        return done

    async def _erp_write(self, entry: LedgerInvoice, write: PendingErpWrite) -> None:
        assert entry.erp_tenant_id and entry.erp_invoice_id
        key = self._key(entry.invoice_id, write.step)
        contact = self._contacts.get(entry.legal_entity or "", "")
        if write.kind is ErpWriteKind.PAYMENT and write.payment is not None:
            await self._step(Erp.record_erp_payment, RecordPaymentInput(
                tenant_id=entry.erp_tenant_id, erp_invoice_id=entry.erp_invoice_id, payment=write.payment,
                idempotency_key=key), f"Record payment {write.payment.amount} on {_name(entry)} in Xero")
        elif write.kind in (ErpWriteKind.CREDIT_NOTE, ErpWriteKind.WRITE_OFF) and write.credit_note is not None:
            await self._step(Erp.post_erp_credit_note, PostCreditNoteInput(
                tenant_id=entry.erp_tenant_id, credit_note=write.credit_note, erp_contact_id=contact,
                idempotency_key=key),
                f"Post {write.kind.value.replace('_', ' ')} {write.credit_note.amount} for {_name(entry)} to Xero")
        elif write.kind is ErpWriteKind.VOID:
            await self._step(Erp.void_erp_invoice, VoidInvoiceInput(
                tenant_id=entry.erp_tenant_id, erp_invoice_id=entry.erp_invoice_id, idempotency_key=key),
                f"Void {_name(entry)} in Xero")

    async def _owe(self, entry: LedgerInvoice, write: PendingErpWrite) -> None:
        """Queue an ERP write for the invoice and try it (with anything still pending before it) when the
        invoice is in the ERP; otherwise it waits for the invoice's own (re-)post."""
        entry.erp_pending.append(write)
        if entry.erp_invoice_id:
            await self._flush(entry)
        else:
            write.reason = "waiting for the invoice to be posted to Xero"
            self._note(f"{_name(entry)}: {write.kind.value.replace('_', ' ')} kept pending until the invoice is "
                       "in Xero")

    async def _repost_all(self, invoice_id: str | None) -> int:
        posted = 0
        for entry in self._owed():
            if invoice_id in (None, entry.invoice_id):
                posted += await self._flush(entry)
        self._next_repost = workflow.now() + REPOST_EVERY
        if posted:
            self._note(f"re-posted {posted} pending ERP write(s)")
        return posted

    async def _contact(self, entity_code: str, tenant_id: str) -> str:
        if entity_code in self._contacts:
            return self._contacts[entity_code]
        account = self._customer_account or Account(name=self._customer_id, billing_customer_id=self._customer_id)
        reference = (erp_contact_reference(self._company_id, entity_code) if self._company_id
                     else billing_customer_reference(self._customer_id, entity_code))
        found = await self._step(Erp.ensure_erp_contact, ErpContactInput(
            tenant_id=tenant_id, account=account, reference=reference,
            idempotency_key=f"{workflow.info().workflow_id}:erp-contact-{entity_code}"),
            f"Find or create Xero contact {reference}")
        self._contacts[entity_code] = found.contact_id
        self._add_keys(ref("xero", "contact", found.contact_id))
        return str(found.contact_id)

    async def _paid(self, entry: LedgerInvoice, event: InvoicePaid, posted: bool) -> None:
        payment = unrecorded_payment(entry, event.invoice, event.payment)
        if payment is not None:
            entry.payment_ids.append(payment.billing_id)
            entry.paid += payment.amount.amount
            paid_on = payment.paid_at.date()
            entry.last_payment_on = max(entry.last_payment_on or paid_on, paid_on)
            self._note(f"{_name(entry)}: received {payment.amount} ({entry.paid} of {entry.total} paid)")
            await self._owe(entry, PendingErpWrite(kind=ErpWriteKind.PAYMENT, step=f"payment:{payment.billing_id}",
                                                   payment=payment))
        if event.invoice.status is InvoiceStatus.PAID or entry.paid + entry.credited_before_payment >= entry.total:
            self._settle(entry, InvoiceStatus.PAID)

    async def _voided(self, entry: LedgerInvoice, event: InvoiceVoided, posted: bool) -> None:
        if entry.status is InvoiceStatus.VOID or (event.uncollectible and entry.status is InvoiceStatus.UNCOLLECTIBLE):
            return
        if entry.status is InvoiceStatus.UNCOLLECTIBLE:
            # voided after a write-off: the ERP invoice is already settled by the write-off credit note
            self._settle(entry, InvoiceStatus.VOID)
            self._note(f"{_name(entry)} voided after being written off")
            return
        if event.uncollectible:
            owed = entry.outstanding
            if owed > 0:
                note = CreditNote(billing_id=f"{entry.invoice_id}-uncollectible", invoice_billing_id=entry.invoice_id,
                                  amount=_money(owed, entry.currency), reason="Written off: uncollectible in billing",
                                  issued_at=event.occurred_at)
                await self._owe(entry, PendingErpWrite(kind=ErpWriteKind.WRITE_OFF, step="write-off",
                                                       credit_note=note))
            self._settle(entry, InvoiceStatus.UNCOLLECTIBLE)
            self._note(f"{_name(entry)} marked uncollectible: {owed} {entry.currency} written off")
            return
        if entry.erp_invoice_id:
            await self._owe(entry, PendingErpWrite(kind=ErpWriteKind.VOID, step="void"))
        elif entry.erp_pending:
            # never reached the ERP and void in billing: nothing is owed to the ERP any more
            self._note(f"{_name(entry)}: {len(entry.erp_pending)} pending ERP write(s) dropped, the invoice is void")
            entry.erp_pending.clear()
        self._settle(entry, InvoiceStatus.VOID)
        self._note(f"{_name(entry)} voided")

    async def _credited(self, note: CreditNote) -> None:
        entry = self._invoices.get(note.invoice_billing_id)
        invoice: Invoice | None = None
        if entry is None or not entry.erp_invoice_id:
            invoice = await self._step(Bill.load_billing_invoice, BillingInvoiceRef(invoice_id=note.invoice_billing_id),
                                       f"Read Stripe invoice {note.invoice_billing_id}")
            entry = self._entry(invoice)
        if note.billing_id in entry.credit_note_ids:
            return
        if invoice is not None:
            await self._ensure_posted(entry, invoice)
        entry.credit_note_ids.append(note.billing_id)
        await self._owe(entry, PendingErpWrite(kind=ErpWriteKind.CREDIT_NOTE, step=f"credit:{note.billing_id}",
                                               credit_note=note))
        entry.credited += note.amount.amount
        if entry.status is InvoiceStatus.OPEN:
            entry.credited_before_payment += note.amount.amount
            if entry.paid + entry.credited_before_payment >= entry.total:
                self._settle(entry, InvoiceStatus.PAID)
        self._note(f"{_name(entry)}: credit note {note.billing_id} for {note.amount}")

    def _settle(self, entry: LedgerInvoice, status: InvoiceStatus) -> None:
        if entry.status is InvoiceStatus.OPEN:
            entry.status = status
            entry.settled_on = workflow.now().date()
            if entry.overdue:
                self._note(f"{_name(entry)} no longer overdue ({status.value})")
            entry.overdue = False
        elif status is InvoiceStatus.VOID and entry.status is InvoiceStatus.UNCOLLECTIBLE:
            entry.status = status  # an uncollectible invoice voided later
        if self._problems.get(entry.invoice_id) == "payment_failed":
            self._problems.pop(entry.invoice_id, None)

    # -- due dates -------------------------------------------------------------------------------
    def _until_next_wake(self) -> timedelta | None:
        now = workflow.now()
        moments = [at for e in self._open() if not e.overdue and (at := e.overdue_at()) is not None]
        if self._owed():
            moments.append(self._next_repost)
        if not moments:
            return None
        return max(min(moments) - now, timedelta(seconds=1))

    def _mark_overdue(self) -> bool:
        now = workflow.now()
        changed = False
        for entry in self._open():
            at = entry.overdue_at()
            if not entry.overdue and at is not None and at <= now:
                entry.overdue = True
                changed = True
                self._note(f"{_name(entry)} is overdue: {entry.outstanding} {entry.currency} unpaid since "
                           f"{entry.due_on}")
        return changed

    # -- CRM -------------------------------------------------------------------------------------
    def _figures(self, entries: list[LedgerInvoice], history: list[CurrencyHistory]) -> list[AccountFigures]:
        window = self._config.dso_window_days if self._config else 90
        return figures_by_currency(entries, history, today=workflow.now().date(), dso_window_days=window)

    async def _write_figures(self) -> None:
        entries = list(self._invoices.values())
        deals: dict[str, list[AccountFigures]] = {}
        for deal_id in sorted({e.deal_id for e in entries if e.deal_id}):
            deals[deal_id] = self._figures([e for e in entries if e.deal_id == deal_id], [])
        request = CrmFiguresInput(company_id=self._company_id, company=self._figures(entries, self._history),
                                  deals=deals)
        try:
            await self._step(Crm.write_crm_figures, request, f"Write billing figures to HubSpot ({len(deals)} deal(s))")
            self._problems.pop("crm", None)
        except ActivityError as err:
            self._problem("crm", "write_back_failed", f"the CRM refused the figures: {failure_reason(err)}")
        self._publish()

    # -- plumbing --------------------------------------------------------------------------------
    async def _load_customer(self) -> None:
        try:
            customer = await self._step(Bill.load_billing_customer, BillingCustomerRef(customer_id=self._customer_id),
                                        f"Read Stripe customer {self._customer_id}")
        except ActivityError as err:
            self._problem("customer", "customer_not_found",
                          f"the billing customer could not be read: {failure_reason(err)}")
            return
        self._customer_account = customer.account
        self._customer_entity = customer.legal_entity
        self._company_id = customer.account.crm_id or self._company_id
        if self._company_id:
            self._add_keys(ref("hubspot", "company", self._company_id))
        if customer.legal_entity:
            workflow.upsert_search_attributes([LEGAL_ENTITY.value_set(customer.legal_entity)])

    def _should_continue(self) -> bool:
        assert self._config is not None
        return (self._applied_this_run >= self._config.continue_after_events
                or workflow.info().is_continue_as_new_suggested())

    def _carry(self) -> LedgerCarried:
        """State for the next run; invoices settled before the DSO window are folded into history."""
        assert self._config is not None
        cutoff = workflow.now().date() - timedelta(days=self._config.dso_window_days)
        keep: list[LedgerInvoice] = []
        history = {h.currency: h.model_copy() for h in self._history}
        for entry in self._invoices.values():
            if (entry.status is InvoiceStatus.OPEN or entry.settled_on is None or entry.settled_on >= cutoff
                    or entry.erp_pending):
                keep.append(entry)
                continue
            past = history.setdefault(entry.currency, CurrencyHistory(currency=entry.currency))
            if entry.status is not InvoiceStatus.VOID:
                past.billed += entry.total
            past.paid += entry.paid
            past.credited += entry.credited
            if entry.last_payment_on and (past.last_payment_on is None or entry.last_payment_on > past.last_payment_on):
                past.last_payment_on = entry.last_payment_on
        return LedgerCarried(crm_company_id=self._company_id, erp_contacts=self._contacts, invoices=keep,
                             history=list(history.values()), seen_event_ids=self._seen, pending=self._pending,
                             events_applied=self._applied, runs=self._runs + 1)

    def _owed(self) -> list[LedgerInvoice]:
        """Invoices with ERP writes still pending (refused or waiting), whatever their status."""
        return [e for e in self._invoices.values() if e.erp_pending]

    def _open(self) -> list[LedgerInvoice]:
        return [e for e in self._invoices.values() if e.status is InvoiceStatus.OPEN]

    async def _step(self, activity_fn: Any, arg: Any, summary: str) -> Any:
        config = self._config
        return await run_step(activity_fn, arg, summary,
                              retry_max_seconds=config.activity_retry_max_seconds if config else None)

    def _key(self, invoice_id: str, step: str) -> str:
        """Idempotency key ``<workflowId>:<invoiceId>:<step>``: the same in every run of the chain."""
        return step_idempotency_key(workflow.info().workflow_id, invoice_id, step)

    async def _tell(self, notice: Notice) -> None:
        """Tell operations (once per event key); a channel that cannot be reached is noted, never fatal."""
        try:
            await self._step(N.notify_people, notice, f"Notify: {notice.title}")
        except ActivityError as err:
            self._note(f"could not notify: {failure_reason(err)}")

    def _problem(self, subject: str, kind: str, note: str) -> None:
        self._problems[subject] = kind
        self._note(note)

    def _exception(self) -> str:
        kinds = set(self._problems.values()) | {w.problem for e in self._owed() for w in e.erp_pending}
        for kind in ("customer_not_found", "unroutable_invoice", "erp_rejected", "write_back_failed"):
            if kind in kinds:
                return kind
        if any(e.overdue for e in self._open()):
            return "invoice_overdue"
        if any(e.payment_failures for e in self._open()):
            return "payment_failed"
        return ""

    def _add_keys(self, *keys: str) -> None:
        add_business_keys(self._keys, *keys, limit=MAX_KEYS)

    def _note(self, note: str) -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), stage="ledger", note=note))
        del self._timeline[:-200]
        self._publish()

    def _publish(self) -> None:
        open_items = self._open()
        exception = self._exception()
        workflow.upsert_search_attributes([STAGE.value_set("open_items" if open_items else "settled"),
                                           EXCEPTION_KIND.value_set(exception)])
        lines = [f"**Customer:** Stripe `{self._customer_id}`"
                 + (f", HubSpot company `{self._company_id}`" if self._company_id else ""),
                 f"**Open invoices:** {len(open_items)}" + (f"  \n**Exception:** {exception}" if exception else ""),
                 f"**Events applied:** {self._applied} (run {self._runs}, {self._duplicates} duplicate(s) ignored)"]
        balances = self._figures(list(self._invoices.values()), self._history)
        if balances:
            lines.append("**Balances:**\n" + "\n".join(
                f"- {f.currency}: billed {f.billed}, paid {f.paid}, outstanding {f.outstanding}, "
                f"overdue {f.overdue}, credited {f.credited}, DSO {f.dso_days or '-'}" for f in balances))
        lines.append("**Recent:**\n" + "\n".join(f"- {t.at:%Y-%m-%d %H:%M:%S} {t.note}" for t in self._timeline[-8:]))
        workflow.set_current_details("\n\n".join(lines))


def _name(entry: LedgerInvoice) -> str:
    return f"invoice {entry.number or entry.invoice_id}"


def _money(amount: Decimal, currency: str) -> Money:
    return Money(amount=amount, currency=currency)
