"""``XeroWebhooks``: verifies ``x-xero-signature`` and parses Xero's event batches.

Xero signs the raw body: ``base64(HMAC-SHA256(webhook key, body))``; there is no timestamp, so
there is no staleness window. Its intent-to-receive probe is a payload with ``"events": []``
(signed correctly or not): verification decides the answer (200 or 401) and parsing yields nothing.

Xero events carry no event ID, so ``source_event_id`` is built from what identifies one event:
``<tenantId>:<eventCategory>:<resourceId>:<eventType>:<eventDateUtc>``. A redelivery of the same
event (even re-batched) gets the same ID; two distinct changes to one record land on different
timestamps (if two ever shared a millisecond they would collapse into one "re-read this record"
signal, which loses nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from canonical import DomainEvent, ErpRecordChanged
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.identifiers import UUID, bounded_count, load_json, payload_id
from connectors.xero.spec import XeroSettings
from settings import Settings

SIGNATURE_HEADER = "x-xero-signature"
_CATEGORIES = {"CONTACT": "contact", "INVOICE": "invoice", "CREDITNOTE": "credit_note",
               "SUBSCRIPTION": "subscription"}
_EVENT_TYPES = {"CREATE": "create", "UPDATE": "update"}
_REQUIRED = ("resourceUrl", "resourceId", "eventDateUtc", "eventType", "eventCategory", "tenantId", "tenantType")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _event_time(value: str) -> datetime:
    """``2024-06-21T01:15:39.902`` (UTC, usually without a zone) as an aware datetime."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: a Xero delivery batches events; more than this is not Xero
MAX_EVENTS_PER_DELIVERY = 500


class XeroWebhooks:
    """The :class:`connectors.ports.WebhookReceiver` for Xero."""

    vendor = "xero"
    header_prefixes = ("x-xero-",)  # kept with each delivery in the event ledger
    bodyless_answers = True  # Xero wants no body in any answer, its intent-to-receive check included

    def __init__(self, *, webhook_key: str) -> None:
        self._key = webhook_key.encode()

    def signature(self, body: bytes) -> str:
        return base64.b64encode(hmac.new(self._key, body, hashlib.sha256).digest()).decode()

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureInvalid`` unless ``x-xero-signature`` is the body's HMAC under our key."""
        given = _header(headers, SIGNATURE_HEADER)
        if not given:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
        if not hmac.compare_digest(given.strip().encode(), self.signature(body).encode()):
            raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """One ``ErpRecordChanged`` per event we know; none for an intent-to-receive probe. An event of a
        category or type we do not act on is skipped, so the known ones of its batch are still acknowledged
        (refusing the batch would make Xero redeliver and, in the end, disable the subscription)."""
        payload: Any = load_json(body)
        if not isinstance(payload, dict):
            raise PayloadInvalid("body", "expected a JSON object")
        events = payload.get("events")
        if not isinstance(events, list):
            raise PayloadInvalid("events", "missing or not a list")
        out: list[DomainEvent] = []
        for index, event in enumerate(bounded_count(events, "events", MAX_EVENTS_PER_DELIVERY)):
            parsed = self._event(index, event)
            if parsed is not None:
                out.append(parsed)
        return out

    @staticmethod
    def _event(index: int, event: Any) -> ErpRecordChanged | None:
        where = f"events[{index}]"
        if not isinstance(event, dict):
            raise PayloadInvalid(where, "expected an object")
        for field in _REQUIRED:
            if not isinstance(event.get(field), str) or not event[field]:
                raise PayloadInvalid(f"{where}.{field}", "missing or not a string")
        category = _CATEGORIES.get(event["eventCategory"])
        change = _EVENT_TYPES.get(event["eventType"])
        if category is None or change is None:
            return None  # a category or type Xero added that no flow reads
        payload_id(event["resourceId"], f"{where}.resourceId", UUID)
        payload_id(event["tenantId"], f"{where}.tenantId", UUID)
        if len(event["eventDateUtc"]) > 40:
            raise PayloadInvalid(f"{where}.eventDateUtc", "not a date-time")
        try:
            occurred = _event_time(event["eventDateUtc"])
        except ValueError as exc:
            raise PayloadInvalid(f"{where}.eventDateUtc", f"not a date-time: {exc}") from exc
        event_id = ":".join((event["tenantId"], event["eventCategory"], event["resourceId"], event["eventType"],
                             event["eventDateUtc"]))
        return ErpRecordChanged(
            source_system="xero",
            source_event_id=event_id,
            occurred_at=occurred,
            correlation_id=f"xero-{event['eventCategory'].lower()}-{event['resourceId']}",
            tenant_id=event["tenantId"],
            category=category,
            record_id=event["resourceId"],
            change=change,
        )


def from_settings(settings: Settings) -> XeroWebhooks:
    """The receiver keyed with the app's webhook key (``XERO_WEBHOOK_KEY``)."""
    return XeroWebhooks(webhook_key=XeroSettings.of(settings).webhook_key)


__all__ = ["SIGNATURE_HEADER", "XeroWebhooks", "from_settings"]
