"""HubSpot webhook deliveries: ``X-HubSpot-Signature-v3`` verification and ``deal.*`` parsing.

v3 signature: base64(HMAC-SHA256(client secret, method + URI + raw body + X-HubSpot-Request-Timestamp)),
where the URI is the one HubSpot called with a fixed set of percent-escapes decoded, and the
timestamp (epoch ms) must be under five minutes old.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from canonical import DealChanged, DealStageReached, DomainEvent
from canonical.events import OwnWriteEcho
from connectors.errors import PayloadInvalid, SignatureInvalid
from connectors.hubspot.mapping import WRITEBACK_PROPERTIES
from connectors.hubspot.spec import HubSpotSettings
from connectors.identifiers import NUMERIC_ID, bounded_count, load_json, payload_id
from settings import Settings

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE_MS = 5 * 60 * 1000

# HubSpot decodes exactly these escapes in the URI before signing.
_URI_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}

#: deal properties only the integration writes: their changes are our own echo, not news
_OWN_PROPERTIES = frozenset(WRITEBACK_PROPERTIES.values())


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def signing_uri(url: str) -> str:
    """The URI as HubSpot signs it (its listed percent-escapes decoded, case-insensitively)."""
    out = []
    i = 0
    while i < len(url):
        chunk = url[i:i + 3].upper()
        if url[i] == "%" and chunk in _URI_DECODES:
            out.append(_URI_DECODES[chunk])
            i += 3
        else:
            out.append(url[i])
            i += 1
    return "".join(out)


#: HubSpot batches at most 100 events per request
MAX_EVENTS_PER_DELIVERY = 100


class HubSpotWebhooks:
    """The :class:`connectors.ports.WebhookReceiver` for HubSpot app webhooks."""

    vendor = "hubspot"
    header_prefixes = ("x-hubspot-",)  # kept with each delivery in the event ledger

    def __init__(self, *, client_secret: str, approval_stage: str, closed_won_stage: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = client_secret.encode()
        self.approval_stage = approval_stage
        self.closed_won_stage = closed_won_stage
        self._clock = clock

    async def verify(self, *, method: str, url: str, headers: Mapping[str, str], body: bytes) -> None:
        """Raise :class:`SignatureInvalid` unless the v3 signature matches and is fresh."""
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
        timestamp = _header(headers, TIMESTAMP_HEADER)
        if not timestamp:
            raise SignatureInvalid(f"missing {TIMESTAMP_HEADER} header")
        try:
            sent_ms = int(timestamp.strip())
        except ValueError:
            raise SignatureInvalid(f"{TIMESTAMP_HEADER} is not epoch milliseconds") from None
        age = self._clock() * 1000 - sent_ms
        if age > MAX_AGE_MS:
            raise SignatureInvalid(f"stale timestamp: sent {age / 1000:.0f}s ago (limit 300s)")
        if age < -MAX_AGE_MS:
            raise SignatureInvalid("timestamp is in the future")
        source = method.upper().encode() + signing_uri(url).encode() + body + timestamp.strip().encode()
        expected = base64.b64encode(hmac.new(self._secret, source, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature.strip().encode()):
            raise SignatureInvalid("signature does not match")

    def parse(self, *, headers: Mapping[str, str], body: bytes) -> list[DomainEvent]:
        """``deal.propertyChange`` into :class:`DealStageReached` (approval or closed-won stage) or
        :class:`DealChanged`; changes of our own write-back properties become one :class:`OwnWriteEcho` per
        deal (recorded as ``echo``, never routed); other subscriptions are dropped."""
        payload = load_json(body)
        if not isinstance(payload, list):
            raise PayloadInvalid("body", "expected a JSON array of events")
        events: list[DomainEvent] = []
        echoes: dict[str, OwnWriteEcho] = {}
        for index, item in enumerate(bounded_count(payload, "body", MAX_EVENTS_PER_DELIVERY)):
            event = self._event(index, item)
            if isinstance(event, DealChanged) and _is_own(next(iter(event.properties), "")):
                # the CRM telling us what our write-back just set: one echo per deal, recorded, never routed
                echo = echoes.get(event.deal_id)
                if echo is None:
                    echoes[event.deal_id] = echo = OwnWriteEcho(
                        source_system="hubspot", source_event_id=event.source_event_id,
                        occurred_at=event.occurred_at, correlation_id=event.correlation_id, deal_id=event.deal_id,
                        change_source=str(item.get("changeSource") or ""))
                    events.append(echo)
                echo.properties.extend(p for p in event.properties if p not in echo.properties)
            elif event is not None:
                events.append(event)
        return events

    def _event(self, index: int, item: Any) -> DomainEvent | None:
        where = f"[{index}]"
        if not isinstance(item, dict):
            raise PayloadInvalid(where, "event is not an object")
        event_id = payload_id(_required(item, where, "eventId", (int, str)), f"{where}.eventId", NUMERIC_ID)
        kind = _required(item, where, "subscriptionType", str)
        object_id = payload_id(_required(item, where, "objectId", (int, str)), f"{where}.objectId", NUMERIC_ID)
        occurred = _required(item, where, "occurredAt", int)
        if isinstance(occurred, bool):
            raise PayloadInvalid(f"{where}.occurredAt", "expected epoch milliseconds")
        try:
            occurred_at = datetime.fromtimestamp(occurred / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise PayloadInvalid(f"{where}.occurredAt", f"not a timestamp: {exc}") from exc
        if kind != "deal.propertyChange":
            return None
        name = _required(item, where, "propertyName", str)
        value = item.get("propertyValue")
        if value is not None and not isinstance(value, str | int | float):
            raise PayloadInvalid(f"{where}.propertyValue", "expected a string")
        value = None if value is None else str(value)
        common: dict[str, Any] = {"source_system": "hubspot", "source_event_id": str(event_id),
                                  "occurred_at": occurred_at, "correlation_id": f"hubspot-{event_id}",
                                  "deal_id": str(object_id)}
        if len(name) > 200 or (value is not None and len(value) > 10_000):
            raise PayloadInvalid(f"{where}.propertyValue", "property name or value too long")
        if name == "dealstage" and value in (self.approval_stage, self.closed_won_stage):
            return DealStageReached(stage=value, is_closed_won=value == self.closed_won_stage, **common)
        return DealChanged(properties={name: value}, **common)


def _is_own(name: str) -> bool:
    """A property only our write-backs set (deal write-backs and the billing figures)."""
    return name in _OWN_PROPERTIES or name.startswith("revops_") and _is_figure(name)


def _is_figure(name: str) -> bool:
    return name == "revops_last_payment_date" or any(
        name.startswith(f"revops_{f}_") for f in ("billed", "paid", "outstanding", "overdue", "credited", "dso_days",
                                                   "unbilled"))


def _required(item: dict[str, Any], where: str, key: str, types: type | tuple[type, ...]) -> Any:
    value = item.get(key)
    if value is None or value == "":
        raise PayloadInvalid(f"{where}.{key}", "missing")
    if not isinstance(value, types):
        raise PayloadInvalid(f"{where}.{key}", f"unexpected type {type(value).__name__}")
    return value


def from_settings(settings: Settings, *, clock: Callable[[], float] = time.time,
                  config: HubSpotSettings | None = None) -> HubSpotWebhooks:
    """The receiver with the app's client secret and the stages flows act on."""
    config = config or HubSpotSettings.of(settings)
    return HubSpotWebhooks(client_secret=config.client_secret, approval_stage=config.approval_stage,
                           closed_won_stage=config.closed_won_stage, clock=clock)
