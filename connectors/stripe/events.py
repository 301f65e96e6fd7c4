"""Stripe events -> canonical events, one function for both ways they reach us: a webhook delivery
(``StripeWebhooks.parse``) and the events list the billing poll reads (``StripeBilling.changes_since``). Both
yield the same events under the same IDs (Stripe's ``evt_…``), so the event ledger dedupes one against the
other.

* ``invoice.finalized`` -> ``InvoiceFinalized``
* ``invoice.paid`` and ``invoice.payment_succeeded`` -> ``InvoicePaid``. Stripe sends
  ``previous_attributes`` only on ``*.updated`` events, so neither says how much this payment was: the
  payment carries the charge ID (else the event ID), the date and the invoice's whole ``amount_paid``,
  and the ledger posts ``amount_paid`` less what it has already recorded for the invoice
  (``canonical.ledger.unrecorded_payment``), so a partial, repeated, duplicated or out-of-order event
  posts each unit once. No payment when ``amount_paid`` is zero (e.g. settled by a credit note).
* ``invoice.payment_failed`` -> ``InvoicePaymentFailed``
* ``invoice.voided`` / ``invoice.marked_uncollectible`` -> ``InvoiceVoided(uncollectible=...)``
* ``credit_note.created`` -> ``CreditNoteIssued``; everything else -> no events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from canonical import (
    CreditNoteIssued,
    DomainEvent,
    InvoiceFinalized,
    InvoicePaid,
    InvoicePaymentFailed,
    InvoiceVoided,
)
from connectors.errors import PayloadInvalid
from connectors.identifiers import PREFIXED_ID, payload_id, prefixed_id, shown
from connectors.stripe import mapping

#: the API version every request pins and every event we read must carry
API_VERSION = "2023-08-16"
#: 9999-12-31: a ``created`` past it cannot be a date
MAX_CREATED = 253402300799
#: the event types :func:`domain_events` turns into canonical events (the poll asks for these only)
TYPES = ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
         "invoice.voided", "invoice.marked_uncollectible", "credit_note.created")


def domain_events(event: Mapping[str, Any]) -> list[DomainEvent]:
    """Canonical events for one Stripe event object (none for types the flows ignore); ``PayloadInvalid``
    names the field at fault."""
    event_id = payload_id(_field(event, "id", str), "id", prefixed_id("evt"))
    type_ = _field(event, "type", str)
    version = event.get("api_version")
    if version != API_VERSION:
        # another version shapes objects differently: parsing it as ours would read wrong amounts silently
        raise PayloadInvalid("api_version", f"the endpoint sends Stripe API version {version!r}; this receiver "
                             f"reads {API_VERSION} (set the webhook endpoint's api_version to {API_VERSION})")
    created = _field(event, "created", int)
    if not 0 < created < MAX_CREATED:
        raise PayloadInvalid("created", "not a Unix time Stripe could have sent")
    data = _field(event, "data", dict)
    obj = data.get("object")
    if not isinstance(obj, dict):
        raise PayloadInvalid("data.object", "missing or not an object")
    for key in ("id", "customer"):
        if obj.get(key) is not None:
            payload_id(obj[key], f"data.object.{key}", PREFIXED_ID)
    base = {"source_system": "stripe", "source_event_id": event_id,
            "occurred_at": datetime.fromtimestamp(created, tz=UTC), "correlation_id": f"stripe-{event_id}"}
    try:
        return _events(type_, obj, base, event_id, created)
    except KeyError as exc:
        raise PayloadInvalid(f"data.object.{exc.args[0]}", "missing") from exc
    except (ValidationError, ValueError, TypeError, OverflowError) as exc:
        raise PayloadInvalid("data.object", f"not a valid {shown(type_)} object: {shown(str(exc), 200)}") from exc


def _events(type_: str, obj: dict[str, Any], base: dict[str, Any], event_id: str, created: int
            ) -> list[DomainEvent]:
    if type_ == "credit_note.created":
        return [CreditNoteIssued(**base, credit_note=mapping.credit_note(obj), customer_id=str(obj["customer"]))]
    if not type_.startswith("invoice."):
        return []
    if type_ == "invoice.finalized":
        return [InvoiceFinalized(**base, invoice=mapping.invoice(obj))]
    if type_ in ("invoice.paid", "invoice.payment_succeeded"):
        paid = int(obj["amount_paid"])
        if type_ == "invoice.payment_succeeded" and paid <= 0:
            return []
        # Stripe says how much is paid in all, not how much this payment was (previous_attributes come
        # only with invoice.updated): the ledger posts what it has not recorded yet.
        payment = mapping.payment(obj, amount_units=paid, event_id=event_id,
                                  event_created=created) if paid > 0 else None
        return [InvoicePaid(**base, invoice=mapping.invoice(obj), payment=payment)]
    if type_ == "invoice.payment_failed":
        attempts = obj.get("attempt_count") or 0
        return [InvoicePaymentFailed(**base, invoice=mapping.invoice(obj),
                                     failure_reason=f"payment attempt {attempts} failed"
                                     + (f" (charge {obj['charge']})" if obj.get("charge") else ""))]
    if type_ in ("invoice.voided", "invoice.marked_uncollectible"):
        return [InvoiceVoided(**base, invoice=mapping.invoice(obj),
                              uncollectible=type_ == "invoice.marked_uncollectible")]
    return []


def _field(event: Mapping[str, Any], name: str, kind: type) -> Any:
    value = event.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
        raise PayloadInvalid(name, f"missing or not a {kind.__name__}")
    return value


__all__ = ["API_VERSION", "TYPES", "domain_events"]
