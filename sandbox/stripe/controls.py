"""``/_sandbox`` acts: the customer pays (part of) an invoice, a collection attempt fails, a
subscription bills its next period."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sandbox.kit import new_id
from sandbox.stripe.core import Emulator
from sandbox.stripe.objects import StripeError, add_interval, bad, now


class PaymentAct(BaseModel):
    """The customer pays (part of) an open invoice."""

    amount: int | None = Field(default=None, gt=0, description="minor units; all that remains when absent")


class PaymentFailureAct(BaseModel):
    reason: str | None = None


class Controls:
    """The people's acts over the shared :class:`Emulator`."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.store = emu.store

    def register(self, app: FastAPI) -> None:
        """Add the routes to ``app`` (no API key: these are the people's acts)."""
        app.post("/_sandbox/invoices/{invoice_id}/payments")(self.sandbox_payment)
        app.post("/_sandbox/invoices/{invoice_id}/payment_failure")(self.sandbox_payment_failure)
        app.post("/_sandbox/subscriptions/{sub_id}/cycle")(self.sandbox_cycle)

    async def sandbox_payment(self, request: Request, invoice_id: str, act: PaymentAct | None = None) -> Response:
        """The customer pays an open (or uncollectible) invoice, fully or partly (emits payment_succeeded,
        then paid)."""
        try:
            invoice = self.emu.get("invoice", invoice_id)
            amount = act.amount if act and act.amount is not None else invoice["amount_remaining"]
            events = self.emu.pay(invoice, amount, request)
        except StripeError as exc:
            return exc.response()
        invoice = self.emu.get("invoice", invoice_id)
        return JSONResponse({"invoice": invoice, "charge": invoice["charge"], "amount": amount, "events": events})

    async def sandbox_payment_failure(self, request: Request, invoice_id: str,
                                      act: PaymentFailureAct | None = None) -> Response:
        """A collection attempt on an open invoice fails (emits invoice.payment_failed)."""
        try:
            invoice = self.emu.get("invoice", invoice_id)
            if invoice["status"] != "open":
                raise bad(f"Invoice {invoice_id} is {invoice['status']}; only open invoices can fail payment.")
        except StripeError as exc:
            return exc.response()
        previous = {"attempt_count": invoice["attempt_count"], "attempted": invoice["attempted"]}
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1,
                       charge=new_id("ch_", self.store), next_payment_attempt=now() + 3 * 86400)
        self.emu.save(invoice)
        event = self.emu.emit("invoice.payment_failed", invoice, request)
        self.emu.emit("invoice.updated", invoice, request, previous)
        return JSONResponse({"invoice": invoice, "charge": invoice["charge"],
                             "reason": (act.reason if act else None) or "card_declined", "events": [event["id"]]})

    async def sandbox_cycle(self, request: Request, sub_id: str) -> Response:
        """Bill the next period: the subscription moves on one interval; its invoice is created and finalized."""
        try:
            sub = self.emu.get("subscription", sub_id)
            if sub["status"] not in ("active", "trialing"):
                raise bad(f"Subscription {sub_id} is {sub['status']}; only active or trialing ones bill.")
        except StripeError as exc:
            return exc.response()
        recurring = sub["items"]["data"][0]["price"]["recurring"]
        start = sub["current_period_end"]
        if sub["cancel_at"] and start >= sub["cancel_at"]:
            sub.update(status="canceled", canceled_at=sub["cancel_at"], ended_at=sub["cancel_at"])
            self.emu.save(sub)
            self.emu.emit("customer.subscription.deleted", sub, request)
            return JSONResponse({"subscription": sub, "invoice": None})
        end = add_interval(start, recurring["interval"], recurring["interval_count"])
        reason = "subscription_create" if sub["status"] == "trialing" or sub["latest_invoice"] is None \
            else "subscription_cycle"
        sub.update(status="active", current_period_start=start, current_period_end=end)
        self.emu.save(sub)
        invoice = self.emu.bill_period(sub, (start, end), reason, request)
        return JSONResponse({"subscription": self.emu.get("subscription", sub_id),
                             "invoice": self.emu.get("invoice", invoice["id"])})
