"""``StripeWebhooks``: verifies ``Stripe-Signature`` and turns Stripe events into canonical events.

Signature: ``t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]``; each ``v1`` is HMAC-SHA256 of
``"{t}.{raw body}"`` with the endpoint secret. One matching ``v1`` suffices (several appear while a
secret is being rolled); other schemes are ignored; the timestamp must be within 300 s of now.

Events:

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

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
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
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.identifiers import PREFIXED_ID, load_json, payload_id, prefixed_id, shown
from connectors.stripe import mapping
from connectors.stripe.client import API_VERSION
from connectors.stripe.spec import StripeSettings
from settings import Settings

SIGNATURE_HEADER = "stripe-signature"
DEFAULT_TOLERANCE = 300


#: 9999-12-31: a ``created`` past it cannot be a date
MAX_CREATED = 253402300799


class StripeWebhooks:
    """The ``WebhookReceiver`` for Stripe."""

    vendor = "stripe"
    header_prefixes = ("stripe-",)  # kept with each delivery in the event ledger

    def __init__(self, secret: str, *, tolerance: int = DEFAULT_TOLERANCE,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret.encode()
        self.tolerance = tolerance
        self._clock = clock

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureInvalid`` unless a ``v1`` signature matches and the timestamp is fresh."""
        header = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not header:
            raise SignatureInvalid("missing Stripe-Signature header")
        timestamp: int | None = None
        candidates: list[str] = []
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name == "t":
                try:
                    timestamp = int(value)
                except ValueError as exc:
                    raise SignatureInvalid("Stripe-Signature timestamp is not an integer") from exc
            elif name == "v1":
                candidates.append(value.strip())
        if timestamp is None:
            raise SignatureInvalid("Stripe-Signature has no timestamp")
        if not candidates:
            raise SignatureInvalid("Stripe-Signature has no v1 signature")
        expected = hmac.new(self._secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        # compare against every candidate so timing does not reveal which one matched
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureInvalid("no v1 signature matches the payload")
        if abs(self._clock() - timestamp) > self.tolerance:
            raise SignatureInvalid(f"timestamp outside the {self.tolerance}s tolerance")

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """Canonical events for one Stripe event (none for types the flows ignore)."""
        event = load_json(body)
        if not isinstance(event, dict):
            raise PayloadInvalid("body", "not a JSON object")
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
        previous = data.get("previous_attributes") if isinstance(data.get("previous_attributes"), dict) else None
        base = {"source_system": "stripe", "source_event_id": event_id,
                "occurred_at": datetime.fromtimestamp(created, tz=UTC), "correlation_id": f"stripe-{event_id}"}
        try:
            return self._events(type_, obj, previous, base, event_id, created)
        except KeyError as exc:
            raise PayloadInvalid(f"data.object.{exc.args[0]}", "missing") from exc
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            raise PayloadInvalid("data.object", f"not a valid {shown(type_)} object: {shown(str(exc), 200)}") from exc

    def _events(self, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None, base: dict[str, Any],
                event_id: str, created: int) -> list[DomainEvent]:
        if type_ == "credit_note.created":
            return [CreditNoteIssued(**base, credit_note=mapping.credit_note(obj),
                                     customer_id=str(obj["customer"]))]
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


def _field(event: dict[str, Any], name: str, kind: type) -> Any:
    value = event.get(name)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is str and not value):
        raise PayloadInvalid(name, f"missing or not a {kind.__name__}")
    return value


def from_settings(settings: Settings, *, tolerance: int = DEFAULT_TOLERANCE) -> StripeWebhooks:
    """A receiver verifying with the endpoint's signing secret (``STRIPE_WEBHOOK_SECRET``)."""
    return StripeWebhooks(StripeSettings.of(settings).webhook_secret, tolerance=tolerance)


__all__ = ["StripeWebhooks", "from_settings"]
