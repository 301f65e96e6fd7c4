"""``StripeWebhooks``: verifies ``Stripe-Signature`` and turns Stripe events into canonical events.

Signature: ``t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]``; each ``v1`` is HMAC-SHA256 of
``"{t}.{raw body}"`` with the endpoint secret. One matching ``v1`` suffices (several appear while a
secret is being rolled); other schemes are ignored; the timestamp must be within 300 s of now.

Events: ``connectors.stripe.events`` (shared with the billing poll).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

from canonical import DomainEvent
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.identifiers import load_json
from connectors.stripe.events import domain_events
from connectors.stripe.spec import StripeSettings
from settings import Settings

SIGNATURE_HEADER = "stripe-signature"
DEFAULT_TOLERANCE = 300


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
        return domain_events(event)


def from_settings(settings: Settings, *, tolerance: int = DEFAULT_TOLERANCE) -> StripeWebhooks:
    """A receiver verifying with the endpoint's signing secret (``STRIPE_WEBHOOK_SECRET``)."""
    return StripeWebhooks(StripeSettings.of(settings).webhook_secret, tolerance=tolerance)


__all__ = ["StripeWebhooks", "from_settings"]
