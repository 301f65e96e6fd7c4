"""HubSpot's ``deal.*`` webhooks: events built as HubSpot sends them, signed with ``X-HubSpot-Signature-v3``
(and the legacy v1 signature), delivered through the kit's webhook targets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from sandbox.hubspot.crm import APP_ID, PORTAL_ID
from sandbox.kit import SandboxControl

SUBSCRIPTION_IDS = {"deal.creation": 1_100_001, "deal.propertyChange": 1_100_002, "deal.deletion": 1_100_003}

#: the percent-escapes HubSpot decodes in the URI before signing (its v3 documentation lists these twelve)
SIGNING_DECODES = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
                   "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}


def decoded_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed escapes decoded (any case), every other escape kept."""
    out, i = [], 0
    while i < len(uri):
        chunk = uri[i:i + 3].upper()
        if uri[i] == "%" and chunk in SIGNING_DECODES:
            out.append(SIGNING_DECODES[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + decoded URI + body + timestamp."""
    source = method.encode() + decoded_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def sign_v1(secret: str, body: bytes) -> str:
    """The legacy ``X-HubSpot-Signature`` (v1): hex SHA-256 of client secret + body."""
    return hashlib.sha256(secret.encode() + body).hexdigest()


class DealWebhooks:
    """Builds, signs and delivers the portal's ``deal.*`` events."""

    def __init__(self, client_secret: str, control: SandboxControl) -> None:
        self.client_secret = client_secret
        self.control = control
        # Event IDs stay unique across /_sandbox/reset and restarts, so ingress dedupe never misfires.
        self.event_ids = itertools.count(int(time.time() * 1000))

    def sign(self, url: str, body: bytes) -> dict[str, str]:
        """The signature headers of one delivery to ``url``."""
        timestamp = str(int(time.time() * 1000))
        secret = self.client_secret
        return {"X-HubSpot-Signature-v3": sign_v3(secret, "POST", url, body, timestamp),
                "X-HubSpot-Request-Timestamp": timestamp,
                "X-HubSpot-Signature": sign_v1(secret, body), "X-HubSpot-Signature-Version": "v1"}

    def emit(self, events: list[dict[str, Any]]) -> list[int]:
        """Deliver ``events`` as one batch (HubSpot sends arrays); their IDs."""
        if not events:
            return []
        self.control.webhooks.emit(json.dumps(events, separators=(",", ":")).encode(), self.sign)
        return [e["eventId"] for e in events]

    def event(self, subscription: str, deal_id: str, source: str, **extra: Any) -> dict[str, Any]:
        """One event of ``subscription`` about a deal, changed by ``source`` (``INTEGRATION``, ``CRM_UI``)."""
        return {"eventId": next(self.event_ids), "subscriptionId": SUBSCRIPTION_IDS[subscription],
                "portalId": PORTAL_ID, "appId": APP_ID, "occurredAt": int(time.time() * 1000),
                "subscriptionType": subscription, "attemptNumber": 0, "objectId": int(deal_id),
                "changeSource": source, **({"sourceId": str(APP_ID)} if source == "INTEGRATION" else {}), **extra}

    def deal_created(self, deal_id: str, source: str) -> list[int]:
        """``deal.creation`` for a new deal."""
        return self.emit([self.event("deal.creation", deal_id, source)])

    def deal_changed(self, deal_id: str, changed: dict[str, str], source: str) -> list[int]:
        """``deal.propertyChange``, one event per changed property."""
        return self.emit([self.event("deal.propertyChange", deal_id, source, propertyName=name, propertyValue=value)
                          for name, value in changed.items()])
