"""What a ledger must hear to catch up with billing: a repair for billing events that never arrived.

Reconciliation finds an invoice (or its payment, credit note, void or write-off) missing in the ERP; when the
billing event that carried it was lost, the ledger holds nothing to re-post. The repair re-reads the invoice
from billing and feeds the ledger the events it lacks, built here from the invoice as it stands and what the
ledger holds of it. Their IDs are derived from the state they carry, so feeding the same state twice is a
duplicate the ledger ignores, and an invoice the ledger already agrees with yields no event at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from canonical.billing import CreditNote, Invoice, InvoiceStatus, Payment
from canonical.events import CreditNoteIssued, DomainEvent, InvoiceFinalized, InvoicePaid, InvoiceVoided
from canonical.ledger import LedgerInvoice

_PREFIX = "reread"


def catch_up_events(invoice: Invoice, credit_notes: Iterable[CreditNote], held: LedgerInvoice | None, *,
                    source_system: str, read_at: datetime) -> list[DomainEvent]:
    """The events that bring ``held`` (the ledger's entry, ``None`` when it has none) to ``invoice`` as billing
    holds it now, with its credit notes: finalized, paid (what billing shows paid beyond what the ledger
    recorded), credited, voided or written off. A draft owes the ledger nothing."""
    if invoice.status is InvoiceStatus.DRAFT:
        return []
    events: list[DomainEvent] = []
    ends_settled = invoice.status in (InvoiceStatus.VOID, InvoiceStatus.UNCOLLECTIBLE)
    # a snapshot that says void or written off settles the entry at once: the void event must do it (it writes off)
    snapshot = invoice.model_copy(update={"status": InvoiceStatus.OPEN}) if ends_settled else invoice
    if held is None or not held.known:
        events.append(InvoiceFinalized(source_event_id=f"{_PREFIX}:{invoice.billing_id}:finalized", invoice=snapshot,
                                       source_system=source_system, occurred_at=read_at,
                                       correlation_id=invoice.billing_id))
    paid = invoice.amount_paid.amount
    if paid > (held.paid if held else 0):
        charge = invoice.payment_ids[-1] if invoice.payment_ids else f"{invoice.billing_id}-paid"
        events.append(InvoicePaid(
            source_event_id=f"{_PREFIX}:{invoice.billing_id}:paid:{paid}", invoice=snapshot,
            payment=Payment(billing_id=charge, invoice_billing_id=invoice.billing_id, amount=invoice.amount_paid,
                            paid_at=read_at),
            source_system=source_system, occurred_at=read_at, correlation_id=invoice.billing_id))
    known_notes = set(held.credit_note_ids) if held else set()
    for note in credit_notes:
        if note.invoice_billing_id == invoice.billing_id and note.billing_id not in known_notes:
            events.append(CreditNoteIssued(source_event_id=f"{_PREFIX}:{note.billing_id}:issued", credit_note=note,
                                           customer_id=invoice.customer_id, source_system=source_system,
                                           occurred_at=read_at, correlation_id=invoice.billing_id))
    held_status = held.status if held else InvoiceStatus.OPEN
    if ends_settled and held_status is not invoice.status:
        events.append(InvoiceVoided(source_event_id=f"{_PREFIX}:{invoice.billing_id}:{invoice.status.value}",
                                    invoice=invoice, uncollectible=invoice.status is InvoiceStatus.UNCOLLECTIBLE,
                                    source_system=source_system, occurred_at=read_at,
                                    correlation_id=invoice.billing_id))
    return events


__all__ = ["catch_up_events"]
