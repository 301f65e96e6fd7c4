"""Stripe's clock and the customer's bank, through the emulator's ``/_sandbox/`` controls
(:class:`connectors.acts.BillingActs`). Amounts cross this boundary in major units; Stripe's are minor units of
the invoice's currency (:func:`canonical.money.minor_unit` decimals: JPY none, KWD three)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from canonical.money import minor_unit
from connectors.acts import Billed, BilledInvoice, EmulatorControls, Paid, RecordSource, Settled
from connectors.errors import Rejected
from connectors.stripe.spec import StripeSettings

if TYPE_CHECKING:  # pragma: no cover
    from settings import Settings

#: the events that tell a ledger an invoice was finalized and paid
INVOICE_EVENTS = ("invoice.finalized", "invoice.paid")


def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` (major units) in Stripe's integer minor units; refuses what the currency cannot hold."""
    scaled = amount * (Decimal(10) ** minor_unit(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more decimals than {currency.upper()} has ({minor_unit(currency)})")
    return int(scaled)


def to_major(amount: int | str | None, currency: str) -> Decimal:
    """Stripe's minor units of ``currency`` as a major-unit amount."""
    return Decimal(int(amount or 0)).scaleb(-minor_unit(currency))


class StripeActs:
    """:class:`connectors.acts.BillingActs` for Stripe."""

    def __init__(self, controls: EmulatorControls, config: StripeSettings, settings: Settings) -> None:
        self.controls = controls
        self.config = config
        self.settings = settings

    def signed_headers(self, url: str, body: bytes) -> dict[str, str]:
        """``Stripe-Signature: t=…,v1=…`` over ``"{t}.{body}"``."""
        t = int(time.time())
        v1 = hmac.new(self.config.webhook_secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={t},v1={v1}", "Content-Type": "application/json"}

    async def _currency_of(self, invoice_id: str) -> str:
        invoice = await self.controls.call("GET", f"/v1/invoices/{invoice_id}",
                                           headers={"Authorization": f"Bearer {self.config.api_key}"})
        return str(invoice.get("currency") or "usd")

    async def bill_next_period(self, subscription_id: str) -> Billed:
        billed = await self.controls.control(f"subscriptions/{subscription_id}/cycle")
        invoice = billed.get("invoice") or {}
        currency = str(invoice.get("currency") or "")
        return Billed(subscription_id=subscription_id, invoice_id=str(invoice.get("id") or ""),
                      status=str(invoice.get("status") or ""), currency=currency.upper(),
                      amount_due=to_major(invoice.get("amount_due"), currency or "usd"))

    async def pay(self, invoice_id: str, amount: Decimal | None = None) -> Paid:
        body: dict[str, Any] | None = None
        if amount is not None:
            currency = await self._currency_of(invoice_id)
            try:
                body = {"amount": to_minor(amount, currency)}
            except ValueError as exc:
                raise Rejected(str(exc), vendor=self.controls.spec.name) from exc
        paid = await self.controls.control(f"invoices/{invoice_id}/payments", body)
        invoice = paid.get("invoice") or {}
        currency = str(invoice.get("currency") or "usd")
        return Paid(invoice_id=invoice_id, amount=to_major(paid.get("amount"), currency), currency=currency.upper(),
                    status=str(invoice.get("status") or ""),
                    amount_remaining=to_major(invoice.get("amount_remaining"), currency),
                    payment_id=str(paid.get("charge") or ""))

    async def fail_payment(self, invoice_id: str) -> dict[str, Any]:
        return dict(await self.controls.control(f"invoices/{invoice_id}/payment_failure"))

    async def _post(self, path: str, form: dict[str, str] | None, key: str) -> dict[str, Any]:
        """A form POST to Stripe's public API with an ``Idempotency-Key`` (a retry is the same request)."""
        answer = await self.controls.call("POST", path, data=form or {}, headers={
            "Authorization": f"Bearer {self.config.api_key}", "Idempotency-Key": key})
        return dict(answer or {})

    async def credit(self, invoice_id: str, amount: Decimal, *, key: str) -> Settled:
        currency = await self._currency_of(invoice_id)
        try:
            minor = to_minor(amount, currency)
        except ValueError as exc:
            raise Rejected(str(exc), vendor=self.controls.spec.name) from exc
        note = await self._post("/v1/credit_notes", {"invoice": invoice_id, "amount": str(minor),
                                                     "reason": "order_change"}, key)
        return Settled(invoice_id=invoice_id, status=str(note.get("status") or ""), credit_note_id=str(note["id"]),
                       amount=to_major(note.get("amount"), currency))

    async def void(self, invoice_id: str, *, key: str) -> Settled:
        invoice = await self._post(f"/v1/invoices/{invoice_id}/void", None, key)
        return Settled(invoice_id=invoice_id, status=str(invoice.get("status") or ""))

    async def write_off(self, invoice_id: str, *, key: str) -> Settled:
        invoice = await self._post(f"/v1/invoices/{invoice_id}/mark_uncollectible", None, key)
        return Settled(invoice_id=invoice_id, status=str(invoice.get("status") or ""),
                       amount=to_major(invoice.get("amount_remaining"), str(invoice.get("currency") or "usd")))

    def subscription_ids(self, ids: Iterable[str]) -> list[str]:
        return [i for i in ids if self.controls.spec.recognise(i) == ["subscription"]]

    def customers_seen(self, records: RecordSource) -> Counter[str]:
        return Counter(doc["metadata"].get("revops_ref") for _, doc in records.records("customer")
                       if not doc.get("deleted") and (doc.get("metadata") or {}).get("revops_ref"))

    def live_subscriptions(self, records: RecordSource) -> Counter[str]:
        return Counter(str(doc.get("customer")) for _, doc in records.records("subscription")
                       if doc.get("status") != "canceled")

    def invoices(self, records: RecordSource) -> list[BilledInvoice]:
        found = []
        for _, doc in records.records("invoice"):
            currency = str(doc.get("currency") or "usd")
            found.append(BilledInvoice(
                invoice_id=doc["id"], customer_id=str(doc.get("customer") or ""), status=str(doc.get("status")),
                total=to_major(doc.get("total"), currency), amount_paid=to_major(doc.get("amount_paid"), currency),
                lines=tuple(to_major(line["amount"], currency) for line in doc["lines"]["data"]),
                currency=currency.upper()))
        return found

    def invoice_events(self, records: RecordSource, invoice_ids: set[str]) -> list[bytes]:
        return [json.dumps(doc, separators=(",", ":")).encode() for _, doc in records.records("event")
                if doc.get("type") in INVOICE_EVENTS and doc["data"]["object"]["id"] in invoice_ids]


def create_acts(controls: EmulatorControls, config: StripeSettings, settings: Settings) -> StripeActs:
    return StripeActs(controls, config, settings)


__all__ = ["StripeActs", "create_acts", "to_major", "to_minor"]
