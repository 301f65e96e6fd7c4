"""Books for reconciliation tests: fresh emulators of all four vendors (so a run over a whole entity sees only
what the test seeded), and Xero edited by hand over its public API, as a bookkeeper would."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from canonical.billing import TaxStatus
from connectors.xero import mapping as xero_mapping
from sandbox.serve import free_port, start_in_thread
from settings import Settings
from tests.helpers.servers import SandboxHandle, build_app, emulator_adapter_settings, vendor_settings


def _xero(settings: Settings) -> Any:
    return vendor_settings(settings, "xero")

VENDORS = ("hubspot", "ironclad", "stripe", "xero")


@contextmanager
def fresh_sandboxes(data_dir: Path, *, also: tuple[str, ...] = (), **overrides: Any
                    ) -> Iterator[tuple[Settings, dict[str, SandboxHandle]]]:
    """Settings and four emulators of their own (and those of the vendors in ``also``, e.g. a second ERP), on
    free ports, stopped on exit."""
    vendors = (*VENDORS, *(v for v in also if v not in VENDORS))
    ports = {v: free_port() for v in vendors}
    settings = Settings(_env_file=None, data_dir=data_dir,  # type: ignore[call-arg]
                        adapter_settings=emulator_adapter_settings(ports),
                        task_queue=f"test-{uuid.uuid4()}", activity_retry_max_seconds=2.0, **overrides)
    running = {v: start_in_thread(build_app(v, settings), port=ports[v]) for v in vendors}
    try:
        handles = {v: SandboxHandle(vendor=v, running=r) for v, r in running.items()}
        # Fresh emulators count from 1, and their IDs name workflows (q2c-hubspot-…, ledger-stripe-…) on a Temporal
        # server that every test shares: each fresh set numbers from its own random start, so no two collide.
        start = random.randrange(10**8, 10**9)
        number_from(handles["stripe"], "id:cus_", start)
        number_from(handles["hubspot"], "hs:object-id", start)
        yield settings, handles
    finally:
        for r in running.values():
            r.stop()


def number_from(sandbox: SandboxHandle, counter: str, start: int) -> None:
    """Have a fresh emulator number ``counter``'s IDs (``id:cus_``, ``hs:object-id``) after ``start``: its
    customers and companies then name workflows (``ledger-…``, ``figures-…``) no other test's emulator names."""
    from sqlmodel import Session

    from sandbox.kit import Counter

    store = sandbox.store
    with store.lock, Session(store.engine) as session:
        row = session.get(Counter, counter) or Counter(name=counter, value=0)
        row.value = max(row.value, start)
        session.add(row)
        session.commit()


class XeroByHand:
    """Direct writes to the Xero API (what a person does in Xero's screens), bypassing our connector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        token = httpx.post(_xero(settings).token_endpoint, data={"grant_type": "client_credentials"},
                           auth=(_xero(settings).client_id, _xero(settings).client_secret), timeout=10)
        token.raise_for_status()
        self.token = token.json()["access_token"]

    def _send(self, method: str, tenant: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = httpx.request(method, f"{_xero(self.settings).base_url}/api.xro/2.0/{path}",
                                 timeout=10,
                                 content=xero_mapping.dumps(body).encode(),  # amounts as JSON numbers, no float
                                 headers={"Authorization": f"Bearer {self.token}", "xero-tenant-id": tenant,
                                          "Accept": "application/json", "Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def invoice(self, tenant: str, contact_id: str, *, reference: str, amount: str, currency: str,
                number: str | None = None, due: str | None = None) -> str:
        """An untaxed invoice keyed in by the entity's books (its first revenue row, a taxable customer's code)."""
        entity = next(e.code for e in self.settings.legal_entities if e.erp_tenant_id == tenant)
        books = self.settings.books_mapping.of(entity)
        body: dict[str, Any] = {
            "Type": "ACCREC", "Contact": {"ContactID": contact_id}, "CurrencyCode": currency, "Reference": reference,
            "Status": "AUTHORISED", "LineAmountTypes": "Exclusive",
            "LineItems": [{"Description": "Typed in by hand", "Quantity": 1, "UnitAmount": Decimal(amount),
                           "AccountCode": books.revenue[0].account,
                           "TaxType": books.tax_code(TaxStatus.TAXABLE, None), "TaxAmount": Decimal(0)}]}
        if number:
            body["InvoiceNumber"] = number
        body["DueDate"] = due or (date.today() + timedelta(days=30)).isoformat()
        return str(self._send("PUT", tenant, "Invoices", {"Invoices": [body]})["Invoices"][0]["InvoiceID"])

    def payment(self, tenant: str, invoice_id: str, *, amount: str, reference: str, on: str) -> str:
        entity = next(e for e in self.settings.legal_entities if e.erp_tenant_id == tenant)
        bank = self.settings.books_mapping.of(entity.code).bank_account(entity.currency)
        body = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": bank}, "Amount": Decimal(amount),
                "Date": on, "Reference": reference}
        return str(self._send("PUT", tenant, "Payments", {"Payments": [body]})["Payments"][0]["PaymentID"])

    def credit_note(self, tenant: str, contact_id: str, *, reference: str, amount: str, currency: str) -> str:
        body = {"Type": "ACCRECCREDIT", "Contact": {"ContactID": contact_id}, "CurrencyCode": currency,
                "Reference": reference, "Status": "AUTHORISED", "LineAmountTypes": "NoTax",
                "LineItems": [{"Description": "Goodwill", "Quantity": 1, "UnitAmount": Decimal(amount),
                               "AccountCode": "200", "TaxType": "NONE"}]}
        return str(self._send("PUT", tenant, "CreditNotes", {"CreditNotes": [body]})["CreditNotes"][0]["CreditNoteID"])

    def delete_payment(self, tenant: str, payment_id: str) -> None:
        """A bookkeeper deletes a payment typed in by mistake (Xero's deletePayment)."""
        self._send("POST", tenant, f"Payments/{payment_id}", {"Payments": [{"Status": "DELETED"}]})

    def void(self, tenant: str, invoice_id: str) -> None:
        self._send("POST", tenant, f"Invoices/{invoice_id}",
                   {"Invoices": [{"InvoiceID": invoice_id, "Status": "VOIDED"}]})
