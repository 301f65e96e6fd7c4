"""The second phase of ``make chaos``: the books under the same disturbances as quote-to-cash.

Once the deals are provisioned, the CLM executes amendments to the subscription contracts (seat increases, in
sequence; the CLM's webhooks reach the ingress, which feeds each contract's amendment propagation), and the
billing system bills periods that the customers pay, partly then in full (billing's webhooks reach the ingress,
which feeds each customer's account ledger, which posts invoices and payments to the ERP and the figures to the
CRM). Vendor faults keep rotating and the worker is SIGKILLed once in the middle; with ``--replicas 2`` the
second ingress is SIGKILLed while billing's webhooks flow, with ``--postgres`` the stores' server is restarted.

At the end it checks, from the systems' own records: every amendment applied once and in order; every billed
invoice in the ERP exactly once with billing's total and paid state; every payment in the ERP once; the CRM's
billed and paid figures per company equal billing's to the minor unit; and a full reconciliation run opens no
finding.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from temporalio.service import RPCError

from bench.common import SqliteRecords, gather_limited, records_of
from canonical import ContractTerms
from canonical.keys import write_off_credit_note_id
from canonical.ownership import SystemRole
from connectors.errors import Rejected, Unavailable
from connectors.registry import default_registry
from runtime.launch import amendments_id
from workflows.amendments import ContractAmendmentsWorkflow
from workflows.models import ContractAmendmentsStatus, ReconciliationInput, ReconciliationResult, Stage
from workflows.reconciliation import ReconciliationWorkflow

T = TypeVar("T")

#: seats added by each amendment
SEATS_PER_AMENDMENT = 5


@dataclass
class BookDeal:
    """A provisioned subscription deal the books phase amends, bills and gets paid."""

    deal_id: str
    company_id: str
    record_id: str
    customer_id: str
    subscription_id: str
    terms: ContractTerms
    currency: str
    amended: int = 0
    applied: list[int] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    invoices: list[str] = field(default_factory=list)
    payments: int = 0
    credit_notes: list[str] = field(default_factory=list)  # billing's credit note IDs
    voided: list[str] = field(default_factory=list)  # invoice IDs
    written_off: list[str] = field(default_factory=list)  # invoice IDs (half paid, the rest written off)
    last_billed: Decimal = Decimal(0)  # the amount due of the last period billed


def with_seats(terms: ContractTerms, seats: int) -> ContractTerms:
    """``terms`` with ``seats`` on its one recurring charge, valued over the term."""
    [charge] = terms.recurring
    amended = charge.model_copy(update={"quantity": Decimal(seats)})
    return terms.model_copy(update={"recurring": [amended],
                                    "total_value": amended.over_term(terms.start_date, terms.end_date)})


def book_deals(chaos: Any, limit: int) -> list[BookDeal]:
    """Up to ``limit`` provisioned deals with one subscription and a contract of one recurring charge (the
    deals finance approved are left out: a seat change on them asks finance again)."""
    billing = chaos.bench.acts.billing
    chosen: list[BookDeal] = []
    for deal in chaos.deals:
        result = deal.result
        if (len(chosen) >= limit or deal.needs_approval or result is None
                or result.outcome is not Stage.PROVISIONED or len(result.engagements) != 1):
            continue
        terms = result.contract.terms if result.contract else None
        [engagement] = result.engagements
        subscriptions = billing.subscription_ids(engagement.billing_schedule_ids)
        if terms is None or len(terms.recurring) != 1 or len(subscriptions) != 1 or not result.contract:
            continue
        chosen.append(BookDeal(deal_id=deal.deal_id, company_id=deal.company_id,
                               record_id=result.contract.clm_record_id or "",
                               customer_id=engagement.billing_customer_id or "", subscription_id=subscriptions[0],
                               terms=terms, currency=terms.total_value.currency))
    return chosen


# ---------------------------------------------------------------------------------------------
# The acts
# ---------------------------------------------------------------------------------------------
async def persist(act: Callable[[], Awaitable[T]], attempts: int = 40) -> T:
    """A person's act, tried again while the vendor's API is faulted (an act may read through the public API
    before it acts through ``/_sandbox/``, which is never faulted: a failed try changed nothing)."""
    for attempt in range(attempts):
        try:
            return await act()
        except (Unavailable, Rejected) as exc:
            transient = isinstance(exc, Unavailable) or (exc.status or 0) in (408, 429) or (exc.status or 0) >= 500
            if not transient or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def amend_all(chaos: Any, books: list[BookDeal], per_deal: int) -> None:
    """The CLM executes ``per_deal`` amendments to each contract, in sequence (its webhooks do the rest)."""
    clm = chaos.bench.acts.clm

    async def amend(book: BookDeal) -> None:
        seats = int(book.terms.recurring[0].quantity)
        before = book.terms
        for sequence in range(1, per_deal + 1):
            after = with_seats(book.terms, seats + SEATS_PER_AMENDMENT * sequence)
            await persist(partial(clm.amend, book.record_id, sequence=sequence, before=before, after=after))
            book.amended, before = sequence, after

    await gather_limited((amend(b) for b in books), 4)
    chaos.log(f"books: {sum(b.amended for b in books)} amendments executed in the CLM on {len(books)} contracts")


#: what finance does after the periods are paid, to the contracts in turn: a credit note on the last paid
#: invoice, one more period billed and voided, one more period billed, half paid and the rest written off
SETTLEMENTS = ("credit", "void", "write_off")
#: the share of a paid invoice a credit note gives back
CREDIT_SHARE = Decimal("0.1")


async def settle_one(chaos: Any, book: BookDeal, kind: str) -> None:
    """Finance's act of ``kind`` on ``book``'s subscription (:data:`SETTLEMENTS`), through billing's API under
    the faults: each act carries an idempotency key, so a retry after a lost answer is the same act."""
    billing = chaos.bench.acts.billing
    if kind == "credit":
        if not book.invoices:
            return
        invoice, total = book.invoices[-1], book.last_billed
        amount = (total * CREDIT_SHARE).quantize(Decimal(1).scaleb(-_decimals(total)))
        if amount <= 0:
            return
        note = await persist(partial(billing.credit, invoice, amount, key=f"chaos-credit-{invoice}"))
        book.credit_notes.append(note.credit_note_id)
        return
    billed = await persist(partial(billing.bill_next_period, book.subscription_id))
    if not billed.invoice_id:
        return
    book.invoices.append(billed.invoice_id)
    if kind == "void":
        await persist(partial(billing.void, billed.invoice_id, key=f"chaos-void-{billed.invoice_id}"))
        book.voided.append(billed.invoice_id)
        return
    half = (billed.amount_due / 2).quantize(Decimal(1).scaleb(-_decimals(billed.amount_due)))
    if 0 < half < billed.amount_due:
        await persist(partial(billing.pay, billed.invoice_id, half))
        book.payments += 1
    await persist(partial(billing.write_off, billed.invoice_id, key=f"chaos-write-off-{billed.invoice_id}"))
    book.written_off.append(billed.invoice_id)


def _decimals(amount: Decimal) -> int:
    """The decimals billing gave ``amount`` (its currency's minor unit, as the acts answer in major units)."""
    exponent = amount.as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


async def bill_and_pay(chaos: Any, books: list[BookDeal], periods: int) -> None:
    """Billing bills ``periods`` periods of each subscription; the customer pays the first in two parts (half,
    then the rest) and every later one at once; then finance credits, voids or writes off (:data:`SETTLEMENTS`,
    the contracts in turn)."""
    billing = chaos.bench.acts.billing

    async def bill(index: int, book: BookDeal) -> None:
        for period in range(periods):
            billed = await persist(partial(billing.bill_next_period, book.subscription_id))
            if not billed.invoice_id:
                continue
            book.invoices.append(billed.invoice_id)
            book.last_billed = billed.amount_due
            if period == 0 and billed.amount_due > 1:
                half = (billed.amount_due / 2).quantize(Decimal("0.01"))
                await persist(partial(billing.pay, billed.invoice_id, half))
                book.payments += 1
            await persist(partial(billing.pay, billed.invoice_id))
            book.payments += 1
        await settle_one(chaos, book, SETTLEMENTS[index % len(SETTLEMENTS)])

    await gather_limited((bill(i, b) for i, b in enumerate(books)), 4)
    chaos.log(f"books: {sum(len(b.invoices) for b in books)} invoices billed, {sum(b.payments for b in books)} "
              f"payments made, {sum(len(b.credit_notes) for b in books)} credit notes, "
              f"{sum(len(b.voided) for b in books)} voids, {sum(len(b.written_off) for b in books)} write-offs")


async def kill_worker_once(chaos: Any) -> None:
    """SIGKILL the worker while the books phase runs, and start it again."""
    stack = chaos.bench.stack
    chaos.log(f"books: SIGKILL the worker (pid {stack.process('worker').pid})")
    await asyncio.to_thread(stack.kill, "worker", signal.SIGKILL)
    await asyncio.sleep(chaos.args.down_seconds)
    await asyncio.to_thread(stack.restart, "worker")
    chaos.log(f"books: worker restarted (pid {stack.process('worker').pid})")


async def kill_ingress_replica(chaos: Any) -> None:
    """SIGKILL the second ingress while deliveries flow (the emulators deliver to each in turn: theirs to it fail
    and are retried), and start it again."""
    stack = chaos.bench.stack
    chaos.log(f"books: SIGKILL ingress-2 (pid {stack.process('ingress-2').pid})")
    await asyncio.to_thread(stack.kill, "ingress-2", signal.SIGKILL)
    await asyncio.sleep(chaos.args.down_seconds)
    await asyncio.to_thread(stack.restart, "ingress-2")
    chaos.log(f"books: ingress-2 restarted (pid {stack.process('ingress-2').pid})")


async def restart_postgres(chaos: Any) -> None:
    """Stop the stores' PostgreSQL server (fast shutdown: open connections are cut) and start it again on the
    same data directory."""
    stack = chaos.bench.stack
    chaos.log(f"books: stop PostgreSQL (pid {stack.process('postgres').pid})")
    await asyncio.to_thread(stack.kill, "postgres", signal.SIGINT)
    await asyncio.sleep(chaos.args.down_seconds)
    await asyncio.to_thread(stack.restart, "postgres")
    chaos.log("books: PostgreSQL restarted on the same data directory")


# ---------------------------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------------------------
async def amendment_status(chaos: Any, book: BookDeal) -> ContractAmendmentsStatus | None:
    handle = chaos.bench.client.get_workflow_handle(amendments_id(chaos.bench.settings, book.record_id))
    try:
        status: ContractAmendmentsStatus = await handle.query(ContractAmendmentsWorkflow.status)
    except RPCError:
        return None
    return status


async def wait_amendments(chaos: Any, books: list[BookDeal], deadline: float) -> None:
    """Until every contract's amendments are applied (or the deadline)."""
    pending = list(books)
    last = 0.0
    while pending and time.monotonic() < deadline:
        still: list[tuple[BookDeal, str]] = []
        for book in pending:
            status = await amendment_status(chaos, book)
            if status is not None:
                book.applied = [h.sequence for h in status.history]
                book.outcomes = [h.outcome for h in status.history]
            if status is None or len(book.applied) < book.amended or status.current is not None:
                still.append((book, "no run yet" if status is None else
                              f"{status.stage.value} {status.waiting_for or status.failure}".strip()))
        pending = [book for book, _ in still]
        if time.monotonic() - last > 15:
            last = time.monotonic()
            waiting = Counter(why[:80] for _, why in still)
            chaos.log(f"books: amendments settled on {len(books) - len(pending)}/{len(books)} contracts"
                      + (f"; open: {dict(waiting)}" if waiting else ""))
        if pending:
            await asyncio.sleep(2)


@dataclass
class Posted:
    """What the ERPs hold, from their records: receivables per billing invoice ID (and those voided), payments,
    and credit notes per our reference (billing's credit note ID, or the ledger's write-off ID)."""

    references: Counter[str] = field(default_factory=Counter)
    voided: Counter[str] = field(default_factory=Counter)
    paid: set[str] = field(default_factory=set)  # billing invoice IDs the ERP shows paid in full
    payments: int = 0
    credit_notes: Counter[str] = field(default_factory=Counter)


def _posted(chaos: Any) -> Posted:
    settings = chaos.bench.settings
    registry = default_registry(settings)
    posted = Posted()
    for spec in {registry.erp_of(settings, e).name: registry.erp_of(settings, e)
                 for e in settings.legal_entities}.values():
        erp = next(a for a in chaos.bench.acts.every if a.controls.spec is spec)
        stored = SqliteRecords(settings.data_dir, spec)
        receivables = erp.receivables(stored)
        posted.references.update(r.reference for r in receivables)
        posted.voided.update(r.reference for r in receivables if r.voided)
        posted.paid.update(r.reference for r in receivables if r.paid)
        posted.payments += sum(erp.payments_per_invoice(stored).values())
        posted.credit_notes.update(erp.credit_notes_seen(stored))
    return posted


def paid_in_billing(chaos: Any, books: list[BookDeal]) -> set[str]:
    """The invoices of ``books`` billing shows paid in full."""
    wanted = {i for b in books for i in b.invoices}
    return {i.invoice_id for i in chaos.bench.acts.billing.invoices(records_of(chaos.bench.settings,
                                                                               SystemRole.BILLING))
            if i.invoice_id in wanted and i.status == "paid" and i.amount_paid > 0}


def settled_in_erp(books: list[BookDeal], posted: Posted, paid: set[str]) -> bool:
    """Whether the ERP holds every billed invoice, payment, credit note, void and write-off of ``books``."""
    return ({i for b in books for i in b.invoices} <= set(posted.references) and paid <= posted.paid
            and all(posted.credit_notes[n] for b in books for n in b.credit_notes)
            and all(posted.voided[i] for b in books for i in b.voided)
            and all(posted.credit_notes[write_off_credit_note_id(i)] for b in books for i in b.written_off))


async def wait_posted(chaos: Any, books: list[BookDeal], deadline: float) -> None:
    """Until the ERP holds every billed invoice, payment, credit note, void and write-off (or the deadline)."""
    wanted = {i for b in books for i in b.invoices}
    payments = sum(b.payments for b in books)
    last = 0.0
    while time.monotonic() < deadline:
        posted = await asyncio.to_thread(_posted, chaos)
        if settled_in_erp(books, posted, await asyncio.to_thread(paid_in_billing, chaos, books)):
            return
        if time.monotonic() - last > 15:
            last = time.monotonic()
            chaos.log(f"books: {len(wanted & set(posted.references))}/{len(wanted)} invoices and "
                      f"{posted.payments}/{payments} payments in the ERP")
        await asyncio.sleep(2)


async def reconcile(chaos: Any) -> ReconciliationResult:
    """A full reconciliation run over everything, as the nightly schedule runs it."""
    result: ReconciliationResult = await chaos.bench.client.execute_workflow(
        ReconciliationWorkflow.run, ReconciliationInput(trigger="manual", full_pass=True),
        id=f"reconciliation-chaos-{uuid.uuid4().hex[:8]}", task_queue=chaos.bench.settings.task_queue)
    return result


# ---------------------------------------------------------------------------------------------
# The phase and its checks
# ---------------------------------------------------------------------------------------------
@dataclass
class Check:
    """One count of the chaos run (quote-to-cash's records and the books alike): what was expected, what was
    found, how many keys were duplicated and how many missing or wrong."""

    name: str
    expected: int
    found: int
    duplicates: int
    missing: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.missing == 0


@dataclass
class Books:
    deals: list[BookDeal] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    reconciliation: ReconciliationResult | None = None


async def run_books(chaos: Any, *, deals: int, amendments: int, periods: int, timeout: float) -> Books:
    """Amend, bill and pay under faults, with the worker killed once; then wait for the books to settle."""
    books = Books(deals=book_deals(chaos, deals))
    if not books.deals:
        chaos.log("books: no provisioned subscription deal to amend and bill")
        return books
    deadline = time.monotonic() + timeout
    await amend_all(chaos, books.deals, amendments)
    if chaos.args.kills:
        await kill_worker_once(chaos)
    billing = asyncio.create_task(bill_and_pay(chaos, books.deals, periods))
    await asyncio.sleep(1)  # while billing's webhooks flow
    if chaos.args.replicas >= 2:
        await kill_ingress_replica(chaos)
    if chaos.args.postgres:
        await restart_postgres(chaos)
    await billing
    await wait_amendments(chaos, books.deals, deadline)
    await wait_posted(chaos, books.deals, deadline)
    return books


async def settle_and_check(chaos: Any, books: Books) -> None:
    """With the faults cleared: the CRM's figures, reconciliation, and the checks."""
    if not books.deals:
        return
    figures = await crm_figures(chaos, books.deals)
    books.reconciliation = await reconcile(chaos)
    books.checks = book_checks(chaos, books.deals, figures, books.reconciliation)


async def crm_figures(chaos: Any, books: list[BookDeal], timeout: float = 120) -> dict[str, tuple[str, str]]:
    """Company ID -> the billed and paid figures the CRM shows, once they equal billing's (or the timeout:
    the figures owner writes after the ledger, so the last payment's figures may still be on their way)."""
    crm = chaos.bench.acts.crm
    expected = billing_figures(chaos, books)
    shown: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for book in books:
            with contextlib.suppress(Exception):
                billed, paid = await crm.company_figures(book.company_id, book.currency)
                shown[book.company_id] = (billed or "", paid or "")
        if all(_same(shown.get(c), e) for c, e in expected.items()):
            break
        await asyncio.sleep(2)
    return shown


def billing_figures(chaos: Any, books: list[BookDeal]) -> dict[str, tuple[Decimal, Decimal]]:
    """Company ID -> billed and paid in billing's records (its invoices but drafts and voids: what the CRM's
    figures count, a written-off invoice as billed)."""
    settings = chaos.bench.settings
    invoices = chaos.bench.acts.billing.invoices(records_of(settings, SystemRole.BILLING))
    by_customer: dict[str, tuple[Decimal, Decimal]] = {}
    for invoice in invoices:
        if invoice.status not in ("open", "paid", "uncollectible"):
            continue
        billed, paid = by_customer.get(invoice.customer_id, (Decimal(0), Decimal(0)))
        by_customer[invoice.customer_id] = (billed + invoice.total, paid + invoice.amount_paid)
    return {b.company_id: by_customer.get(b.customer_id, (Decimal(0), Decimal(0))) for b in books}


def _same(shown: tuple[str, str] | None, expected: tuple[Decimal, Decimal]) -> bool:
    if shown is None or not shown[0]:
        return expected == (Decimal(0), Decimal(0))
    try:
        return (Decimal(shown[0]), Decimal(shown[1] or 0)) == expected
    except ArithmeticError:
        return False


def _once(name: str, wanted: list[str], held: Counter[str]) -> Check:
    """A check that ``held`` has each of ``wanted`` exactly once."""
    return Check(name, len(wanted), sum(held[k] for k in wanted), sum(1 for k in wanted if held[k] > 1),
                 sum(1 for k in wanted if held[k] == 0))


def book_checks(chaos: Any, books: list[BookDeal], figures: dict[str, tuple[str, str]],
                reconciliation: ReconciliationResult) -> list[Check]:
    checks: list[Check] = []
    # amendments: each contract's applied exactly 1..n, in order, each once
    amended = sum(b.amended for b in books)
    in_order = [b for b in books if b.applied == list(range(1, b.amended + 1))
                and all(o == "applied" for o in b.outcomes)]
    twice = sum(1 for b in books if len(b.applied) != len(set(b.applied)))
    checks.append(Check("amendments applied once, in order", amended, sum(len(b.applied) for b in books),
                            twice, len(books) - len(in_order), "per contract: sequences 1..n, each applied"))
    # invoices, payments, credit notes, voids and write-offs in the ERP
    posted = _posted(chaos)
    references = posted.references
    wanted = {i for b in books for i in b.invoices}
    checks.append(Check("invoices in the ERP by billing ID", len(wanted), sum(references[i] for i in wanted),
                        sum(1 for i in wanted if references[i] > 1), sum(1 for i in wanted if references[i] == 0)))
    # Stripe's invoice events say how much is paid in all, not how much one payment was: the ledger posts
    # what it has not recorded yet, so a part payment whose event arrives after the final one's is inside
    # that one ERP payment. Checked: every invoice billing shows paid is paid in the ERP, and no ERP payment
    # is one too many (the amounts are reconciliation's, below).
    made = sum(b.payments for b in books)
    paid = paid_in_billing(chaos, books)
    checks.append(Check("payments in the ERP (paid invoices paid there)", len(paid), len(paid & posted.paid),
                        max(posted.payments - made, 0), len(paid - posted.paid),
                        f"{made} payments made, {posted.payments} ERP payments (never more; fewer when a part "
                        "payment's event came after the final one's)"))
    checks.append(_once("credit notes in the ERP by billing ID", [n for b in books for n in b.credit_notes],
                        posted.credit_notes))
    voided = [i for b in books for i in b.voided]
    checks.append(Check("voided invoices voided in the ERP", len(voided), sum(1 for i in voided if posted.voided[i]),
                        sum(1 for i in voided if references[i] > 1), sum(1 for i in voided if not posted.voided[i])))
    checks.append(_once("write-offs in the ERP (remainder credited)",
                        [write_off_credit_note_id(i) for b in books for i in b.written_off], posted.credit_notes))
    # the CRM's figures equal billing's, per company, to the minor unit
    expected = billing_figures(chaos, books)
    wrong = [c for c, e in expected.items() if not _same(figures.get(c), e)]
    checks.append(Check("CRM billed/paid = billing per company", len(expected), len(expected) - len(wrong), 0,
                            len(wrong), "; ".join(f"{c}: CRM {figures.get(c)} billing {expected[c]}"
                                                  for c in wrong[:3])))
    # reconciliation: ERP = billing = contracts, nothing open
    open_kinds = ", ".join(f"{kind}: {n}" for kind, n in reconciliation.counts.items())
    checks.append(Check("reconciliation findings (full pass)", 0, reconciliation.still_open, 0,
                            reconciliation.still_open, open_kinds))
    return checks


__all__ = ["Check", "BookDeal", "Books", "run_books", "settle_and_check", "with_seats"]
