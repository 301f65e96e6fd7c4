"""Domain events: what happened in a source system, in our words.

Every event carries the source system, the vendor's own event ID, when it happened and a correlation ID
that follows it through workflows and connector calls. The event ledger dedupes by :func:`dedupe_key`: the
vendor's event ID, except where a poll must find the same change under the same key as its webhook
without knowing the webhook's ID (an executed amendment: the contract record and the sequence).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from canonical.billing import CreditNote, Invoice, Payment


class EventBase(BaseModel):
    source_system: str
    source_event_id: str = Field(min_length=1)
    occurred_at: datetime
    correlation_id: str = Field(min_length=1)


class DealStageReached(EventBase):
    """A CRM deal entered a stage we act on (approval requested, closed-won)."""

    kind: Literal["deal.stage_reached"] = "deal.stage_reached"
    deal_id: str
    stage: str
    is_closed_won: bool = False


class DealChanged(EventBase):
    """Properties of a CRM deal changed (used to re-check a deal waiting on data)."""

    kind: Literal["deal.changed"] = "deal.changed"
    deal_id: str
    properties: dict[str, str | None] = Field(default_factory=dict)


class OwnWriteEcho(EventBase):
    """The CRM telling us about properties our own write-back set: recorded, never routed."""

    kind: Literal["crm.own_write_echo"] = "crm.own_write_echo"
    deal_id: str
    properties: list[str] = Field(default_factory=list, description="names only: the values are ours")
    change_source: str = ""


class ContractExecuted(EventBase):
    """The CLM workflow completed: the contract is signed by all parties."""

    kind: Literal["contract.executed"] = "contract.executed"
    clm_workflow_id: str
    clm_record_id: str | None = None


class AmendmentExecuted(EventBase):
    kind: Literal["contract.amendment_executed"] = "contract.amendment_executed"
    clm_record_id: str
    sequence: int | None = None
    clm_amendment_id: str | None = None


class InvoiceFinalized(EventBase):
    kind: Literal["invoice.finalized"] = "invoice.finalized"
    invoice: Invoice


class InvoicePaid(EventBase):
    """Fully or partly paid. ``payment`` names the latest payment (ID, date, method); its ``amount`` is all
    the invoice shows paid so far (``invoice.amount_paid``): billing systems such as Stripe do not say how
    much one payment was, so the ledger posts what it has not recorded (``unrecorded_payment``)."""

    kind: Literal["invoice.paid"] = "invoice.paid"
    invoice: Invoice
    payment: Payment | None = None


class InvoicePaymentFailed(EventBase):
    kind: Literal["invoice.payment_failed"] = "invoice.payment_failed"
    invoice: Invoice
    failure_reason: str | None = None


class InvoiceVoided(EventBase):
    kind: Literal["invoice.voided"] = "invoice.voided"
    invoice: Invoice
    uncollectible: bool = False


class CreditNoteIssued(EventBase):
    kind: Literal["credit_note.issued"] = "credit_note.issued"
    credit_note: CreditNote
    customer_id: str


class ErpRecordChanged(EventBase):
    """Xero tells us a record changed; we only learn which one, then read it."""

    kind: Literal["erp.record_changed"] = "erp.record_changed"
    tenant_id: str
    category: str
    record_id: str
    change: str


DomainEvent = Annotated[
    DealStageReached | DealChanged | ContractExecuted | AmendmentExecuted | InvoiceFinalized | InvoicePaid
    | InvoicePaymentFailed | InvoiceVoided | CreditNoteIssued | ErpRecordChanged | OwnWriteEcho,
    Field(discriminator="kind"),
]


def dedupe_key(event: EventBase) -> str:
    """The key the event ledger claims the event under: ``amendment:<recordId>:<sequence>`` for an executed
    amendment with a sequence (its webhook and a poll of the CLM's records name it alike), else the vendor's
    event ID."""
    if isinstance(event, AmendmentExecuted) and event.sequence is not None:
        return f"amendment:{event.clm_record_id}:{event.sequence}"
    return event.source_event_id


class EventEnvelope(BaseModel):
    """One model around any domain event, for signals and the event ledger."""

    event: DomainEvent
