"""Emulator state shared by the accounting and projects routes: tenants, tokens, the request
pipeline (auth, tenant, JSON body, idempotency) and webhook emission signed the way Xero signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
import string
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import Request, Response

from canonical import LegalEntity
from sandbox.kit import IdempotencyGuard, SandboxControl, Store
from sandbox.xero import wire
from settings import Settings

TOKEN_LIFETIME = 1800
IDEMPOTENCY_KEY_MAX = 128  # the spec's "128 character max"
DEFAULT_SCOPES = "accounting.transactions accounting.contacts accounting.settings projects"

#: the chart of accounts every sandbox organisation starts with: code -> (name, type, default tax type)
CHART: dict[str, tuple[str, str, str]] = {
    "090": ("Business Bank Account", "BANK", "NONE"),
    "091": ("Business Savings Account", "BANK", "NONE"),
    "200": ("Sales", "REVENUE", "NONE"),
    "260": ("Other Revenue", "REVENUE", "NONE"),
    "485": ("Bad Debts", "EXPENSE", "NONE"),
    "610": ("Accounts Receivable", "CURRENT", "NONE"),
}
#: sales tax types the sandbox knows, with their rate in percent (used when TaxAmount is not sent)
TAX_RATES: dict[str, str] = {
    "NONE": "0", "EXEMPTOUTPUT": "0", "ZERORATEDOUTPUT": "0", "ECZROUTPUTSERVICES": "0",
    "OUTPUT": "10", "OUTPUT2": "20", "RROUTPUT": "5", "TAX001": "8.25",
}
_ID_NAMESPACE = uuid.UUID("6f0e6a0c-5c2b-4f3e-9a41-0c7d2b1e9a10")


@dataclass
class Call:
    """One authenticated vendor request for one tenant."""

    request: Request
    tenant: str
    entity: LegalEntity
    body: Any


class XeroState:
    """Everything the routes share."""

    def __init__(self, config: Any, settings: Settings, store: Store, control: SandboxControl) -> None:
        self.config = config  # the adapter's settings: credentials, webhook key
        self.settings = settings
        self.store = store
        self.control = control
        self.tenants: dict[str, LegalEntity] = {e.erp_tenant_id: e for e in settings.legal_entities}
        self.tokens: dict[str, float] = {}
        self.guard = IdempotencyGuard(store, self._key_reused)
        self.chart = dict(CHART)

    # -- reference data ------------------------------------------------------------------------
    def stable_id(self, *parts: str) -> str:
        return str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))

    def users(self, tenant: str) -> list[dict[str, str]]:
        """The organisation's users (who may log project time)."""
        return [{"userId": self.stable_id(tenant, "user", str(n)), "name": name, "email": email}
                for n, (name, email) in enumerate([("Sandbox Consultant", "consultant@example.com"),
                                                   ("Sandbox Manager", "manager@example.com")], start=1)]

    def accounts(self, tenant: str) -> list[dict[str, Any]]:
        return [{"AccountID": self.stable_id(tenant, "account", code), "Code": code, "Name": name, "Type": kind,
                 "TaxType": tax, "Status": "ACTIVE",
                 **({"BankAccountType": "BANK", "EnablePaymentsToAccount": True} if kind == "BANK" else {})}
                for code, (name, kind, tax) in self.chart.items()]

    def tax_rates(self, tenant: str) -> list[dict[str, Any]]:
        """The organisation's sales tax rates (``GET /TaxRates``), each usable on revenue."""
        return [{"Name": f"{rate}% ({tax_type})", "TaxType": tax_type, "ReportTaxType": "OUTPUT",
                 "CanApplyToAssets": False, "CanApplyToEquity": False, "CanApplyToExpenses": False,
                 "CanApplyToLiabilities": False, "CanApplyToRevenue": True, "DisplayTaxRate": Decimal(rate),
                 "EffectiveRate": Decimal(rate), "Status": "ACTIVE",
                 "TaxComponents": [{"Name": tax_type, "Rate": Decimal(rate), "IsCompound": False,
                                    "IsNonRecoverable": False}]}
                for tax_type, rate in TAX_RATES.items()]

    # -- identity --------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = "sbx-xero." + secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + TOKEN_LIFETIME
        return token

    def authenticated(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expiry = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        return expiry is not None and expiry > time.monotonic()

    # -- the request pipeline --------------------------------------------------------------------
    async def run(self, request: Request, handler: Callable[[Call], Awaitable[Response]], *,
                  projects: bool = False) -> Response:
        """Auth, tenant, body and idempotency, then ``handler``: the order Xero's gateway checks them."""
        if not self.authenticated(request):
            return wire.unauthorized()
        tenant = (request.headers.get("xero-tenant-id") or "").strip().lower()
        entity = self.tenants.get(tenant)
        if entity is None:
            return wire.forbidden()
        raw = await request.body()
        body: Any = None
        if raw.strip():
            try:
                body = wire.loads(raw)
            except ValueError:
                if projects:
                    return wire.projects_error("The request body could not be read as JSON.")
                return wire.accounting_error(14, "PostDataInvalidException",
                                             "The JSON request body could not be parsed.")
        call = Call(request=request, tenant=tenant, entity=entity, body=body)
        if request.method not in ("POST", "PUT", "PATCH"):
            return await handler(call)
        key = request.headers.get("idempotency-key")
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX:
            message = f"Idempotency-Key must be at most {IDEMPOTENCY_KEY_MAX} characters."
            if projects:
                return wire.projects_error(message, {"Idempotency-Key": [message]})
            return wire.accounting_error(14, "PostDataInvalidException", message)
        # Keys are scoped to the organisation; the fingerprint covers method, path, query and body,
        # so a key reused for any other request is refused rather than replayed.
        return await self.guard.run(
            scope=f"xero:{tenant}", key=key or None,
            fingerprint_parts=[request.method, request.url.path, sorted(request.query_params.multi_items()), body],
            handler=lambda: handler(call))

    @staticmethod
    def _key_reused(key: str) -> Response:
        return wire.problem(409, "Conflict",
                            f"The Idempotency-Key '{key}' has already been used for a different request.")

    # -- webhooks --------------------------------------------------------------------------------
    def sign(self, body: bytes, key: bytes | None = None) -> str:
        """``x-xero-signature``: base64 of HMAC-SHA256 over the raw body with the webhook key."""
        mac = hmac.new(key if key is not None else self.config.webhook_key.encode(), body, hashlib.sha256)
        return base64.b64encode(mac.digest()).decode()

    def emit(self, request: Request, tenant: str, category: str, event_type: str, resource_id: str,
             data: dict[str, Any] | None = None) -> None:
        """Queue one event to every webhook target (Xero batches; we send one per change)."""
        if not self.control.webhooks.targets:
            return
        collection = {"CONTACT": "Contacts", "INVOICE": "Invoices", "CREDITNOTE": "CreditNotes"}[category]
        base = str(request.base_url).rstrip("/")
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "resourceUrl": f"{base}/api.xro/2.0/{collection}/{resource_id}",
            "resourceId": resource_id,
            "eventDateUtc": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}",
            "eventType": event_type,
            "eventCategory": category,
            "tenantId": tenant,
            "tenantType": "ORGANISATION",
        }
        if data is not None:
            event["data"] = data
        sequence = self.store.next_number("xero:webhook-sequence")
        payload = {"events": [event], "firstEventSequence": sequence, "lastEventSequence": sequence,
                   "entropy": entropy()}
        body = wire.dumps(payload).encode()
        self.control.webhooks.emit(body, lambda _url, raw: {"x-xero-signature": self.sign(raw)})


def entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


def page_of(request: Request, items: list[dict[str, Any]], *, default_size: int = 100, max_size: int = 1000,
            always: bool = False) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """Xero paging: without ``page`` everything comes back (unless ``always``); with it, ``pageSize``
    items (100 by default)."""
    raw_page = request.query_params.get("page")
    if raw_page is None and not always:
        return items, None
    try:
        page = max(1, int(raw_page or 1))
    except ValueError:
        page = 1
    try:
        size = int(request.query_params.get("pageSize") or default_size)
    except ValueError:
        size = default_size
    size = min(max(1, size), max_size)
    start = (page - 1) * size
    pagination = {"page": page, "pageSize": size, "pageCount": math.ceil(len(items) / size),
                  "itemCount": len(items)}
    return items[start:start + size], pagination
