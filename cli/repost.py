"""``starter.py repost <ledger-workflow-id> [--invoice ID] [--figures]``: the repair reconciliation suggests for an
invoice, payment or credit note missing in the ERP, and (``--figures``) for CRM figures that differ from billing.

With ``--invoice``, billing is read again first: the events the ledger lacks (a lost webhook, a ledger that never
started) are fed to it by signal-with-start (:func:`canonical.catch_up.catch_up_events`), then what it still owes
the ERP is re-posted. Exit 0 when something changed and nothing is left pending, 1 when nothing changed (the
repair did not repair: the finding stays true) or writes are still refused, 2 for an unknown ledger or invoice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

import cli.process as cli
from bootstrap import CliParts
from canonical import CreditNote, Invoice
from canonical.catch_up import catch_up_events
from canonical.keys import LEDGER, parse_workflow_id
from canonical.ledger import LedgerInvoice
from connectors.errors import NotFound
from connectors.ports import BillingFeed
from connectors.registry import default_registry
from runtime.launch import launch_billing_event
from workflows.ledger import AccountLedgerWorkflow
from workflows.models import LedgerStatus, LedgerStatusRequest, RepostRequest, RepostResult

#: how long the command waits for the ledger to apply what it was fed (it posts to the ERP meanwhile)
APPLY_TIMEOUT_SECONDS = 60.0


async def _status(client: Client, workflow_id: str) -> LedgerStatus | None:
    handle = client.get_workflow_handle_for(AccountLedgerWorkflow.run, workflow_id)
    try:
        return await handle.query(AccountLedgerWorkflow.open_items, LedgerStatusRequest(include_settled=True))
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            return None
        raise


def _held(status: LedgerStatus | None, invoice_id: str) -> LedgerInvoice | None:
    if status is None:
        return None
    return next((i for i in [*status.open_items, *status.settled_items] if i.invoice_id == invoice_id), None)


async def _credit_notes(app: CliParts, invoice_id: str) -> list[CreditNote]:
    feed: BillingFeed = app.billing()  # type: ignore[assignment]
    notes: list[CreditNote] = []
    cursor: str | None = None
    while True:
        page, cursor = await feed.credit_notes_page(cursor)
        notes += [c.credit_note for c in page if c.credit_note and c.credit_note.invoice_billing_id == invoice_id]
        if cursor is None:
            return notes


async def _read_invoice(app: CliParts, workflow_id: str, invoice_id: str) -> Invoice:
    parsed = parse_workflow_id(workflow_id)
    if parsed is None or parsed.kind != "customer":
        raise cli.UnknownId(f"not a ledger workflow ID: {workflow_id} ({LEDGER}-<billing>-<customerId>)")
    try:
        invoice = await app.billing().get_invoice(invoice_id)
    except NotFound as exc:
        raise cli.CliError(f"refused: billing has no invoice {invoice_id}, and it is not in this ledger") from exc
    if invoice.customer_id != parsed.id:
        raise cli.CliError(f"refused: billing invoice {invoice_id} is of customer {invoice.customer_id}, not of "
                           f"{parsed.id}: repost it with that customer's ledger")
    return invoice


async def _fed(client: Client, app: CliParts, workflow_id: str, invoice: Invoice) -> int:
    """Feed the ledger the events it lacks and wait until it has applied them; how many it applied."""
    before = await _status(client, workflow_id)
    billing = (app.registry or default_registry(app.settings)).systems(app.settings).billing
    events = catch_up_events(invoice, await _credit_notes(app, invoice.billing_id), _held(before, invoice.billing_id),
                             source_system=billing.name, read_at=datetime.now(UTC))
    for event in events:
        await launch_billing_event(client, app.settings, invoice.customer_id, event)
        cli.line(f"fed the ledger {event.kind} of {invoice.billing_id} (re-read from {billing.display})")
    if not events:
        return 0
    applied_before = before.events_applied if before else 0
    applied = 0
    deadline = time.monotonic() + APPLY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        now = await _status(client, workflow_id)
        applied = (now.events_applied if now else 0) - applied_before
        if applied >= len(events):
            break
        await asyncio.sleep(0.5)
    if applied < len(events):  # seen before (a duplicate changes nothing), or the ledger is still busy
        cli.line(f"the ledger applied {max(applied, 0)} of the {len(events)} event(s) within "
                 f"{APPLY_TIMEOUT_SECONDS:.0f}s: see starter.py status {workflow_id}")
    return max(applied, 0)


async def repost(client: Client, app: CliParts, workflow_id: str, invoice_id: str | None, by: str, *,
                 figures: bool = False) -> int:
    """Catch the ledger up with billing (one invoice), then post again what it still owes the ERP; with
    ``figures``, have the CRM figures written again (over a figure typed by hand)."""
    fed = 0
    if invoice_id is not None:
        fed = await _fed(client, app, workflow_id, await _read_invoice(app, workflow_id, invoice_id))
    handle = client.get_workflow_handle_for(AccountLedgerWorkflow.run, workflow_id)
    try:
        result: RepostResult = await handle.execute_update(AccountLedgerWorkflow.repost,
                                                           RepostRequest(invoice_id=invoice_id, by=by,
                                                                         refresh_figures=figures))
    except WorkflowUpdateFailedError as exc:
        raise cli.CliError(getattr(exc.cause, "message", None) or str(exc)) from exc
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise cli.UnknownId(f"no ledger workflow {workflow_id}") from exc
        raise
    print(f"posted {result.posted} pending ERP write(s)")
    if figures:
        print("CRM figures " + ("reported again: the company's figures are written over every ledger"
                                if result.figures_reported else "NOT written: see the ledger's timeline"))
    for line in result.still_pending:
        print(f"  still pending: {line}")
    if result.still_pending or (figures and not result.figures_reported):
        return cli.REFUSED
    if not fed and not result.posted and not result.figures_reported:
        cli.error("nothing changed: the ledger already holds what billing holds" + (
            f" for {invoice_id}" if invoice_id else "") + " and owes the ERP nothing; the finding needs another "
            "repair (see its detail)")
        return cli.REFUSED
    return cli.OK


__all__ = ["repost"]
