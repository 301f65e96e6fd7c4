"""Signed vendor deliveries built in tests: signatures computed here, independently of the connectors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from settings import Settings
from tests.helpers.servers import vendor_settings

TENANT = "4f7a0c1e-0001-4000-8000-000000000001"


@dataclass
class Signed:
    """A delivery ready to POST: body bytes and headers."""

    body: bytes
    headers: dict[str, str]


def unique_deal_id() -> str:
    """A numeric deal ID no emulator hands out (they count from 1), so workflow IDs never collide."""
    return str(9_000_000_000_000 + uuid.uuid4().int % 999_999_999_999)


# -- HubSpot ----------------------------------------------------------------------------------------
def hubspot_sign(secret: str, url: str, body: bytes, *, timestamp_ms: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    source = b"POST" + url.encode() + body + timestamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp,
            "Content-Type": "application/json"}


def hubspot_property_change(deal_id: str, name: str, value: str | None, *, event_id: int | None = None
                            ) -> dict[str, Any]:
    return {"eventId": event_id or uuid.uuid4().int % 10**12, "subscriptionId": 1, "portalId": 62515,
            "appId": 1, "occurredAt": int(time.time() * 1000), "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0, "objectId": int(deal_id), "changeSource": "CRM_UI", "propertyName": name,
            "propertyValue": value}


def hubspot_delivery(settings: Settings, url: str, events: list[dict[str, Any]], *,
                     timestamp_ms: int | None = None) -> Signed:
    body = json.dumps(events, separators=(",", ":")).encode()
    return Signed(body, hubspot_sign(vendor_settings(settings, "hubspot").client_secret, url, body,
                                     timestamp_ms=timestamp_ms))


# -- Stripe ------------------------------------------------------------------------------------------
def stripe_sign(secret: str, body: bytes, *, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def stripe_invoice(customer_id: str, **update: Any) -> dict[str, Any]:
    invoice_id = f"in_{uuid.uuid4().hex[:14]}"
    obj: dict[str, Any] = {
        "id": invoice_id, "object": "invoice", "customer": customer_id, "currency": "eur", "status": "open",
        "number": "RO-0001", "amount_due": 10000, "amount_paid": 0, "amount_remaining": 10000, "subtotal": 10000,
        "total": 10000, "tax": None, "total_tax_amounts": [], "due_date": 1767225600, "charge": None,
        "paid_out_of_band": False, "attempt_count": 0,
        "status_transitions": {"finalized_at": 1764547200, "paid_at": None, "voided_at": None,
                               "marked_uncollectible_at": None},
        "metadata": {}, "subscription_details": {"metadata": {"legal_entity": "EU01"}},
        "lines": {"object": "list", "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines", "data": [{
            "id": "il_1", "object": "line_item", "amount": 10000, "currency": "eur", "description": "Licence",
            "quantity": 2, "metadata": {}, "tax_amounts": [],
            "price": {"id": "price_1", "unit_amount": 5000, "product": "prod_1", "metadata": {}}}]},
    }
    obj.update(update)
    return obj


def stripe_delivery(settings: Settings, type_: str, obj: dict[str, Any], *, event_id: str | None = None,
                    timestamp: int | None = None) -> Signed:
    body = json.dumps({"id": event_id or f"evt_{uuid.uuid4().hex[:20]}", "object": "event",
                       "api_version": "2023-08-16", "created": int(time.time()), "type": type_,
                       "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}}).encode()
    return Signed(body, {"Stripe-Signature": stripe_sign(vendor_settings(settings, "stripe").webhook_secret, body,
                                                         timestamp=timestamp),
                         "Content-Type": "application/json"})


# -- Xero --------------------------------------------------------------------------------------------
def xero_sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def xero_delivery(settings: Settings, events: list[dict[str, Any]], *, key: str | None = None) -> Signed:
    body = json.dumps({"events": events, "firstEventSequence": 1, "lastEventSequence": len(events),
                       "entropy": uuid.uuid4().hex}).encode()
    return Signed(body, {"x-xero-signature": xero_sign(key or vendor_settings(settings, "xero").webhook_key, body),
                         "Content-Type": "application/json"})


def xero_event(resource_id: str | None = None) -> dict[str, Any]:
    resource_id = resource_id or str(uuid.uuid4())
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}", "resourceId": resource_id,
            "eventDateUtc": "2026-01-05T10:15:39.902", "eventType": "UPDATE", "eventCategory": "INVOICE",
            "tenantId": TENANT, "tenantType": "ORGANISATION"}
