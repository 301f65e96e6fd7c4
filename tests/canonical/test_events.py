"""Domain events: the discriminated envelope round-trips through JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from canonical.billing import CreditNote, Invoice, InvoiceStatus, Payment
from canonical.events import (
    AmendmentExecuted,
    ContractExecuted,
    CreditNoteIssued,
    DealChanged,
    DealStageReached,
    ErpRecordChanged,
    EventBase,
    EventEnvelope,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceVoided,
    dedupe_key,
)
from canonical.money import Money

WHEN = datetime(2027, 3, 1, 12, 30, tzinfo=UTC)
COMMON: dict[str, Any] = {"source_system": "stripe", "source_event_id": "evt_1", "occurred_at": WHEN,
                          "correlation_id": "q2c-hubspot-42"}


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def invoice() -> Invoice:
    return Invoice(billing_id="in_1", number="INV-1", customer_id="cus_1", currency="EUR",
                   status=InvoiceStatus.OPEN, issued_on=date(2027, 3, 1), due_on=date(2027, 3, 31),
                   subtotal=eur("100"), tax=eur("19"), total=eur("119"), amount_paid=eur("0"),
                   amount_due=eur("119"), crm_deal_id="42", legal_entity="DE01")


EVENTS: list[EventBase] = [
    DealStageReached(**COMMON, deal_id="42", stage="closedwon", is_closed_won=True),
    DealChanged(**COMMON, deal_id="42", properties={"amount": "100", "closedate": None}),
    ContractExecuted(**COMMON, clm_workflow_id="wf-1", clm_record_id="rec-1"),
    AmendmentExecuted(**COMMON, clm_record_id="rec-1", sequence=2, clm_amendment_id="am-2"),
    InvoiceFinalized(**COMMON, invoice=invoice()),
    InvoicePaid(**COMMON, invoice=invoice(), payment=Payment(billing_id="ch_1", invoice_billing_id="in_1",
                                                             amount=eur("50.50"), paid_at=WHEN, method="card")),
    InvoicePaymentFailed(**COMMON, invoice=invoice(), failure_reason="card_declined"),
    InvoiceVoided(**COMMON, invoice=invoice(), uncollectible=True),
    CreditNoteIssued(**COMMON, customer_id="cus_1",
                     credit_note=CreditNote(billing_id="cn_1", invoice_billing_id="in_1", amount=eur("19"))),
    ErpRecordChanged(**COMMON, tenant_id="t-de", category="INVOICE", record_id="inv-9", change="UPDATE"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind)  # type: ignore[attr-defined]
def test_events_envelope_round_trips_through_json(event: EventBase) -> None:
    envelope = EventEnvelope(event=event)  # type: ignore[arg-type]
    back = EventEnvelope.model_validate_json(envelope.model_dump_json())
    assert type(back.event) is type(event)
    assert back == envelope


def test_events_envelope_picks_the_class_from_kind() -> None:
    raw = {"event": {**COMMON, "occurred_at": WHEN.isoformat(), "kind": "contract.executed",
                     "clm_workflow_id": "wf-7"}}
    parsed = EventEnvelope.model_validate(raw)
    assert isinstance(parsed.event, ContractExecuted) and parsed.event.clm_workflow_id == "wf-7"


def test_events_money_survives_the_round_trip_exactly() -> None:
    envelope = EventEnvelope(event=EVENTS[5])  # type: ignore[arg-type]
    back = EventEnvelope.model_validate_json(envelope.model_dump_json())
    assert isinstance(back.event, InvoicePaid) and back.event.payment is not None
    assert back.event.payment.amount == eur("50.50") and back.event.invoice.total.amount.as_tuple().exponent == -2


def test_events_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        EventEnvelope.model_validate({"event": {**COMMON, "kind": "deal.deleted", "deal_id": "1"}})


def test_events_empty_dedupe_key_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        DealStageReached(**{**COMMON, "source_event_id": ""}, deal_id="1", stage="x")
    assert info.value.errors()[0]["loc"] == ("source_event_id",)


def test_dedupe_key_names_an_amendment_by_record_and_sequence_whoever_brought_it() -> None:
    webhook = AmendmentExecuted(source_system="clm", source_event_id="webhookEvent9f", occurred_at=WHEN,
                                correlation_id="c", clm_record_id="rec-1", sequence=3, clm_amendment_id="amd-3")
    polled = webhook.model_copy(update={"source_event_id": "poll:amendment:rec-1:3", "clm_amendment_id": None})
    unnumbered = webhook.model_copy(update={"sequence": None})
    finalized = InvoiceFinalized(**COMMON, invoice=invoice())

    assert dedupe_key(webhook) == dedupe_key(polled) == "amendment:rec-1:3"
    assert dedupe_key(webhook.model_copy(update={"sequence": 4})) != dedupe_key(webhook)
    assert dedupe_key(unnumbered) == "webhookEvent9f", "no sequence: only the vendor's ID names it"
    assert dedupe_key(finalized) == "evt_1", "a billing event: the vendor's own ID, its webhook's and its poll's"
