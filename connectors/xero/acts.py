"""A bookkeeper in Xero, through its emulator (:class:`connectors.acts.ErpActs`): what the ERP holds per tenant,
and bulk imports of receivables (what a month of ledger runs would have posted)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from canonical.books import EntityBooks
from connectors.acts import EmulatorControls, ReceivableSeen, RecordSource
from connectors.xero import mapping
from connectors.xero.spec import XeroSettings

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: invoices or payments per PUT (Xero takes batches)
BATCH = 50


class XeroActs:
    """:class:`connectors.acts.ErpActs` for Xero."""

    def __init__(self, controls: EmulatorControls, config: XeroSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings
        self._token = ""

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """``x-xero-signature``: base64 HMAC-SHA256 of the body with the webhook key."""
        digest = hmac.new(self.config.webhook_key.encode(), body, hashlib.sha256).digest()
        return {"x-xero-signature": base64.b64encode(digest).decode(), "Content-Type": "application/json"}

    def customers_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        return Counter((tenant, str(doc["ContactNumber"])) for tenant, doc in records.records("contact")
                       if doc.get("ContactNumber"))

    def projects_seen(self, records: RecordSource) -> Counter[tuple[str, str]]:
        found: Counter[tuple[str, str]] = Counter()
        for tenant, doc in records.records("project"):
            name = str(doc.get("name", ""))
            if name.startswith("[") and "]" in name:
                found[(tenant, name[1:name.index("]")])] += 1
        return found

    def receivables(self, records: RecordSource) -> list[ReceivableSeen]:
        return [ReceivableSeen(tenant=tenant, reference=str(doc.get("Reference")), status=str(doc.get("Status")),
                               paid=doc.get("Status") == "PAID", voided=doc.get("Status") == "VOIDED",
                               total=Decimal(str(doc.get("Total") or 0)),
                               lines=tuple(Decimal(str(line.get("LineAmount") or 0))
                                           for line in doc.get("LineItems") or []))
                for tenant, doc in records.records("invoice") if doc.get("Type") == "ACCREC"]

    def payments_per_invoice(self, records: RecordSource) -> Counter[str]:
        return Counter(str((doc.get("Invoice") or {}).get("InvoiceID")) for _, doc in records.records("payment"))

    async def _put(self, tenant_id: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self._token:
            answer = await self.controls.http.post(self.config.token_endpoint,
                                                   data={"grant_type": "client_credentials"},
                                                   auth=(self.config.client_id, self.config.client_secret))
            answer.raise_for_status()
            self._token = answer.json()["access_token"]
        return dict(await self.controls.call(
            "PUT", f"/api.xro/2.0/{path}", content=mapping.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "xero-tenant-id": tenant_id,
                     "Content-Type": "application/json", "Accept": "application/json"}))

    def _books(self, tenant_id: str) -> EntityBooks:
        """The books of the tenant's entity: a bookkeeper keys lines in by the same mapping."""
        entity = next(e.code for e in self.settings.legal_entities if e.erp_tenant_id == tenant_id)
        return self.settings.books_mapping.of(entity)

    async def import_invoices(self, tenant_id: str, invoices: list[tuple[Any, str]]) -> dict[str, str]:
        books = self._books(tenant_id)
        docs = [(inv, mapping.invoice_to_xero(inv, contact_id=contact, books=books)) for inv, contact in invoices]
        made: dict[str, str] = {}
        for start in range(0, len(docs), BATCH):
            chunk = docs[start:start + BATCH]
            body = await self._put(tenant_id, "Invoices", {"Invoices": [d for _, d in chunk]})
            for (inv, _), doc in zip(chunk, body["Invoices"], strict=True):
                made[inv.billing_id] = doc["InvoiceID"]
        return made

    async def import_payments(self, tenant_id: str, payments: list[tuple[str, Decimal, str]]) -> None:
        today = datetime.now(UTC).date().isoformat()
        currency = next(e.currency for e in self.settings.legal_entities if e.erp_tenant_id == tenant_id)
        bank = self._books(tenant_id).bank_account(currency)
        docs = [{"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": bank},
                 "Amount": amount, "Reference": reference, "Date": today}
                for invoice_id, amount, reference in payments]
        for start in range(0, len(docs), BATCH):
            await self._put(tenant_id, "Payments", {"Payments": docs[start:start + BATCH]})


def create_acts(controls: EmulatorControls, config: XeroSettings, settings: Settings) -> XeroActs:
    return XeroActs(controls, config, settings)


__all__ = ["XeroActs", "create_acts"]
